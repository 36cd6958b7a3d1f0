"""Presentation: rich tables for the terminal, markdown and CSV for the run directory.

Scores are fractions everywhere in data; tables show them as percentages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from slotfill.analysis.semeval import SCENARIOS as SEMEVAL_SCENARIOS

SUMMARY_ROWS = (  # (key in scores, label)
    ("precision", "precision"),
    ("recall", "recall"),
    ("f1", "F1"),
    ("token_accuracy", "token accuracy"),
    ("sentence_accuracy", "sentence accuracy"),
    ("intent_accuracy", "intent accuracy"),
    ("overall_accuracy", "overall accuracy"),
    ("intent_string_accuracy", "intent accuracy, exact string"),
    ("overall_string_accuracy", "overall accuracy, exact string"),
)

SEMEVAL_COUNTS = (("correct", "COR"), ("incorrect", "INC"), ("partial", "PAR"),
                  ("missed", "MIS"), ("spurious", "SPU"))
SEMEVAL_HEADER = ["scenario", *(short for _, short in SEMEVAL_COUNTS),
                  "precision", "recall", "F1"]
SEMEVAL_KEY = ("strict: type and boundaries right; exact: boundaries right, any type; "
               "partial: as exact, and an overlap counts half (PAR); type: type right, "
               "some overlap")

EPOCH_COLUMNS = (  # (field of EpochRecord, header, width, format)
    ("epoch", "epoch", 5, "{:d}"),
    ("train_loss", "loss", 8, "{:.4f}"),
    ("dev_precision", "dev P", 7, "{:.2%}"),
    ("dev_recall", "dev R", 7, "{:.2%}"),
    ("dev_f1", "dev F1", 7, "{:.2%}"),
    ("grad_norm", "|grad|", 7, "{:.3g}"),
    ("lr", "lr", 8, "{:.2e}"),
    ("seconds", "sec", 6, "{:.1f}"),
)


def pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _summary_rows(columns: dict[str, dict]) -> list[tuple[str, list[str]]]:
    first = next(iter(columns.values()))
    return [(label, [pct(s[key]) if key in s else "" for s in columns.values()])
            for key, label in SUMMARY_ROWS if key in first]


def summary_table(columns: dict[str, dict], title: str | None = None) -> Table:
    """Overall scores, one column per named score dict (e.g. dev and test)."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric (%)")
    for name in columns:
        table.add_column(name, justify="right")
    for label, values in _summary_rows(columns):
        table.add_row(label, *values)
    return table


def per_slot_table(scores: dict, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in (("slot", "left"), ("precision", "right"), ("recall", "right"),
                          ("F1", "right"), ("support", "right")):
        table.add_column(name, justify=justify)
    for slot, row in scores["per_slot"].items():
        table.add_row(slot, pct(row["precision"]), pct(row["recall"]), pct(row["f1"]),
                      str(row["support"]))
    return table


def semeval_rows(semeval: dict) -> list[list[str]]:
    """One row per SemEval scenario: its name, the five counts, P/R/F1 in percent."""
    return [[scenario, *(str(semeval[scenario][key]) for key, _ in SEMEVAL_COUNTS),
             *(pct(semeval[scenario][key]) for key in ("precision", "recall", "f1"))]
            for scenario in SEMEVAL_SCENARIOS]


def semeval_table(scores: dict) -> Table:
    """The SemEval-2013 scenarios overall: outcome counts, then P/R/F1 in percent (an
    80-column terminal holds it)."""
    table = Table(title="partial matches (SemEval-2013)", title_justify="left",
                  caption=f"{SEMEVAL_KEY}. P, R, F1 in %", caption_justify="left")
    for i, name in enumerate([*SEMEVAL_HEADER[:-3], "P", "R", "F1"]):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in semeval_rows(scores["semeval"]):
        table.add_row(*row)
    return table


def epoch_header() -> str:
    return ("  ".join(f"{header:>{width}}" for _, header, width, _ in EPOCH_COLUMNS)
            + "  (* new best dev F1, saved as best.pt)")


def epoch_row(record: Any) -> str:
    values = asdict(record)
    cells = [f"{fmt.format(values[key]):>{width}}" for key, _, width, fmt in EPOCH_COLUMNS]
    return "  ".join(cells) + ("  *" if values.get("best") else "")


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_markdown(columns: dict[str, dict], heading: str = "Scores") -> str:
    """Summary table plus a per-slot table for each named score dict."""
    parts = [f"# {heading}", "",
             _markdown_table(["metric (%)", *columns],
                             [[label, *values] for label, values in _summary_rows(columns)])]
    for name, scores in columns.items():
        rows = [[slot, pct(r["precision"]), pct(r["recall"]), pct(r["f1"]), str(r["support"])]
                for slot, r in scores["per_slot"].items()]
        parts += ["", f"## Per slot: {name} ({scores['sentences']} utterances)", "",
                  _markdown_table(["slot", "precision", "recall", "F1", "support"], rows)]
    for name, scores in columns.items():
        semeval = scores["semeval"]
        rows = [[slot, *(pct(r[s]["f1"]) for s in SEMEVAL_SCENARIOS),
                 str(r["strict"]["possible"])] for slot, r in semeval["per_slot"].items()]
        parts += ["", f"## Partial matches (SemEval-2013): {name}", "", SEMEVAL_KEY + ".",
                  "", _markdown_table(SEMEVAL_HEADER, semeval_rows(semeval)), "",
                  f"### Partial matches per slot: {name} (F1)", "",
                  _markdown_table(["slot", *SEMEVAL_SCENARIOS, "support"], rows)]
    return "\n".join(parts) + "\n"


def data_tables(result: Any) -> list[Table]:
    """Tables of a datacheck.DataReport: split sizes, then slot and intent inventories."""
    splits = result.splits
    sizes = Table(title="splits", title_justify="left")
    for name in ("split", "utterances", "tokens", "slot spans", "intents", "OOV vs train"):
        sizes.add_column(name, justify="left" if name == "split" else "right")
    for name, stats in splits.items():
        oov = result.oov_rate.get(name)
        sizes.add_row(name, str(stats.utterances), str(stats.tokens),
                      str(sum(stats.slot_counts.values())), str(len(stats.intent_counts)),
                      "" if oov is None else f"{100 * oov:.2f}%")
    tables = [sizes]
    for title, attribute in (("slots (spans)", "slot_counts"),
                             ("intents (utterances)", "intent_counts")):
        names = sorted({k for stats in splits.values() for k in getattr(stats, attribute)})
        if not names:
            continue
        table = Table(title=title, title_justify="left")
        table.add_column(title.split()[0][:-1])
        for name in splits:
            table.add_column(name, justify="right")
        for key in names:
            table.add_row(key, *[str(getattr(stats, attribute)[key]) for stats in
                                 splits.values()])
        tables.append(table)
    return tables


def describe_tagger(model: dict, members: Sequence | None = None) -> str:
    """A run's model config in a few words: `bilstm+cnn+crf+intent`; an ensemble's as
    `3 x bilstm+...` (its first member's)."""
    m = model
    return (f"{len(members)} x " if members else "") + "+".join(filter(None, [
        ("bi" if m.get("bidirectional") else "") + str(m.get("type", "?")),
        f"{m['num_layers']}layers" if m.get("num_layers", 1) > 1 else "",
        f"window{m['context_window']}" if m.get("context_window") else "",
        m.get("char") if m.get("char", "none") != "none" else "",
        "crf" if m.get("head") == "crf" else "",
        "intent" if m.get("intent") else ""]))


def _run_name(run: dict) -> str:
    name = Path(run["run"]).name
    return name if run["state"] == "finished" else f"{name} ({run['state']})"


def _minutes(run: dict) -> str:
    return f"{run['seconds'] / 60:.1f}" if run.get("epochs") else ""


def compare_table(runs: list[dict]) -> Table:
    """Runs side by side (finished or not); scores in percent. The intent columns appear
    when some run predicts intents."""
    intents = any("intent_accuracy" in (run.get("test") or {}) for run in runs)
    test_keys = ["f1", *(["intent_accuracy", "overall_accuracy"] if intents else []),
                 "sentence_accuracy"]
    headers = {"f1": "F1", "intent_accuracy": "intent", "overall_accuracy": "overall",
               "sentence_accuracy": "sent"}
    table = Table(caption="test: " + ", ".join(
        k.replace("_", " ").replace("f1", "slot F1") for k in test_keys)
        + "; best/ep: best epoch / epochs run; min: minutes of training and dev scoring",
        caption_justify="left")
    for name in ("run", "tagger", "best/ep", "dev F1", *(headers[k] for k in test_keys),
                 "min"):
        text = name in ("run", "tagger")
        table.add_column(name, justify="left" if text else "right",
                         overflow="fold" if text else "ellipsis", no_wrap=not text)
    for run in runs:
        dev, test = run.get("dev") or {}, run.get("test") or {}
        table.add_row(_run_name(run), describe_tagger(run["model"], run.get("members")),
                      f"{run.get('best_epoch', '')}/{run['epochs']}" if run.get("epochs") else "",
                      pct(dev["f1"]) if "f1" in dev else "",
                      *(pct(test[k]) if k in test else "" for k in test_keys), _minutes(run))
    return table


def runs_table(runs: list[dict]) -> Table:
    """`slotfill runs`: one line per run, newest first."""
    table = Table(caption="F1 in percent; best: best epoch / epochs run; min: minutes",
                  caption_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("run", "tagger", "state", "best", "dev F1", "test F1", "started", "min"):
        text = name in ("run", "tagger", "state")
        table.add_column(name, justify="left" if text else "right",
                         no_wrap=True)
    for run in runs:
        dev, test = run.get("dev") or {}, run.get("test") or {}
        table.add_row(Path(run["run"]).name, describe_tagger(run["model"], run.get("members")),
                      run["state"],
                      f"{run.get('best_epoch', '')}/{run['epochs']}" if run["epochs"] else "",
                      pct(dev["f1"]) if "f1" in dev else "",
                      pct(test["f1"]) if "f1" in test else "",
                      run["started"][5:16].replace("T", " "), _minutes(run))
    return table


def significance_table(tests: dict) -> Table:
    """`compare`'s paired bootstrap: each run's difference from the first, in points,
    with its 95% interval; `*` marks p < 0.05."""
    if "error" in tests:
        table = Table(caption=f"no significance test: {tests['reference']} has "
                              f"{tests['error']}", caption_justify="left")
        return table
    keys = [k for k in ("f1", "intent_accuracy", "overall_accuracy")
            if any(d["metric"] == k for row in tests["runs"] for d in row["differences"])]
    headers = {"f1": "slot F1", "intent_accuracy": "intent", "overall_accuracy": "overall"}
    table = Table(caption=f"minus {Path(tests['reference']).name}, in points, on "
                          f"{tests['split']} ({tests['utterances']} utterances, "
                          f"{tests['samples']} paired bootstrap resamples): difference "
                          "(95% interval); * p < 0.05, beyond noise", caption_justify="left")
    table.add_column("run", overflow="fold")
    for key in keys:
        table.add_column(headers[key], justify="right", no_wrap=True)
    for row in tests["runs"]:
        found = {d["metric"]: d for d in row["differences"]}
        cells = [(f"{100 * d['delta']:+.2f}{'*' if d['significant'] else ' '} "
                  f"({100 * d['low']:+.2f}..{100 * d['high']:+.2f})") if d else ""
                 for d in (found.get(k) for k in keys)]
        if row["reason"]:
            cells = [row["reason"]] + [""] * (len(keys) - 1)
        table.add_row(Path(row["run"]).name, *cells)
    return table
