"""The report's page: sections of HTML around the charts, with the stylesheet and the
script (report_assets/) inlined, so the file opens offline in any browser.

Scores appear as eval's tables show them (percentages with two decimals); the exact
fractions travel in a JSON block (`#report-data`) that equals `slotfill eval --json`.
Each slot type keeps one colour everywhere on the page.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import datetime, timezone
from importlib import resources

from slotfill import __version__
from slotfill.analysis.errors import (
    EXACT,
    GOLD_KINDS,
    NONE,
    SPURIOUS,
)
from slotfill.analysis.report_inputs import ReportInputs
from slotfill.analysis.tables import (
    SEMEVAL_HEADER,
    SEMEVAL_KEY,
    SEMEVAL_SCENARIOS,
    SUMMARY_ROWS,
    describe_tagger,
    pct,
    semeval_rows,
)
from slotfill.analysis.utterance_html import css_name, utterance_list

MAX_LISTED = 1000  # wrong utterances on the page (--errors-file has them all)
SECTIONS = (("run", "Run"), ("curves", "Curves"), ("scores", "Scores"),
            ("partial", "Partial matches"), ("errors", "Errors"), ("confusion", "Confusion"),
            ("buckets", "Length & unseen"), ("calibration", "Calibration"),
            ("utterances", "Wrong utterances"))
e = html.escape


def render(inputs: ReportInputs) -> str:
    hues = palette(inputs)
    body = "\n".join(section(inputs, hues) for section in (
        _run, _curves, _scores, _partial, _breakdown, _confusion, _buckets, _calibration,
        _utterances))
    data = {"split": inputs.result.split, "scores": inputs.result.scores,
            **{k: v for k, v in inputs.analysis.to_dict().items()
               if k not in ("scores", "wrong")}}
    asset = resources.files("slotfill.analysis") / "report_assets"
    nav = "".join(f'<a href="#{key}">{label}</a>' for key, label in SECTIONS)
    result = inputs.result
    headline = "".join(f"<div><b>{pct(result.scores[key])}</b><span>{label}</span></div>"
                       for key, label in (("f1", "slot F1"), ("intent_accuracy", "intent acc."),
                                          ("sentence_accuracy", "sentence acc."))
                       if key in result.scores)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="slotfill {e(__version__)}">
<title>{e(inputs.run.name)}: slotfill report</title>
<style>
{(asset / "report.css").read_text(encoding="utf-8")}
</style>
</head>
<body>
<header class="top"><div class="wrap">
<div class="headline">{headline}</div>
<div class="eyebrow">slotfill run report</div>
<h1>{e(inputs.run.name)}</h1>
<p class="sub">{e(describe_tagger(inputs.run.config.get("model", {})))} tagger, scored on
the <b>{e(result.split)}</b> split of <code>{e(str(result.corpus))}</code>
({result.scores["sentences"]:,} utterances, {result.scores["tokens"]:,} tokens)</p>
</div></header>
<nav class="nav"><div class="wrap">{nav}</div></nav>
<main class="wrap">
{body}
</main>
<footer class="wrap">Written {datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")} by
slotfill {e(__version__)}. Every number is computed as <code>slotfill eval</code> computes
it for this checkpoint and split.</footer>
<script type="application/json" id="report-data">{_json(data)}</script>
<script>
{(asset / "report.js").read_text(encoding="utf-8")}
</script>
</body>
</html>
"""


# ---------------------------------------------------------------- sections

def _section(key: str, title: str, content: str, intro: str = "") -> str:
    intro = f'<p class="intro">{intro}</p>' if intro else ""
    return f'<section id="{key}"><h2>{e(title)}</h2>{intro}\n{content}\n</section>'


def _run(inputs: ReportInputs, hues: dict[str, int]) -> str:
    import yaml

    run, result, summary = inputs.run, inputs.result, inputs.run.summary
    facts = [("tagger", describe_tagger(run.config.get("model", {}))),
             ("corpus", f"{result.corpus} ({run.config.get('data', {}).get('format', '')})"),
             ("scored", f"{result.split}: {result.scores['sentences']:,} utterances")]
    if summary:
        epochs = summary.get("epochs", 0)
        facts += [("best epoch", f"{summary.get('best_epoch', '')} of {epochs} run"),
                  ("training time", _duration(summary.get("seconds", 0.0))),
                  ("state", summary.get("state", "") + (f" ({summary['reason']})"
                                                        if summary.get("reason") else "")),
                  ("started", summary.get("started", "").replace("T", " "))]
    facts += [("checkpoint", str(result.checkpoint)),
              ("written with", ", ".join(f"{k} {v}" for k, v in result.versions.items()))]
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in facts)
    config = yaml.safe_dump(run.config, sort_keys=False)
    return _section("run", "The run", f"""<div class="two">
<dl class="facts">{rows}</dl>
<div><div class="label">resolved config</div><pre class="config">{e(config)}</pre></div>
</div>""")


def _curves(inputs: ReportInputs, hues: dict[str, int]) -> str:
    if "curves" not in inputs.charts:
        return _section("curves", "Training curves", '<p class="none">No training history: '
                        "this checkpoint is not in a run directory.</p>")
    history = inputs.run.history
    head = "".join(f"<th>{h}</th>" for h in ("epoch", "loss", "dev P", "dev R", "dev F1",
                                              "|grad|", "lr", "seconds"))
    rows = "".join(
        f"<tr{' class=best' if r.get('best') else ''}><td>{r['epoch']}</td>"
        f"<td>{r['train_loss']:.4f}</td><td>{pct(r['dev_precision'])}</td>"
        f"<td>{pct(r['dev_recall'])}</td><td>{pct(r['dev_f1'])}</td>"
        f"<td>{r['grad_norm']:.3g}</td><td>{r['lr']:.2e}</td><td>{r['seconds']:.1f}</td></tr>"
        for r in history)
    best = inputs.run.summary.get("best_epoch")
    chart = inputs.charts["curves"]
    return _section("curves", "Training curves", f"""<figure class="chart">{chart}</figure>
<details><summary>every epoch (history.csv)</summary>
<table class="num"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></details>""",
                    f"Per epoch; the dashed line marks epoch {best}, whose checkpoint "
                    "(best dev F1) is scored below. Also in <code>curves.svg</code>.")


def _scores(inputs: ReportInputs, hues: dict[str, int]) -> str:
    scores = inputs.result.scores
    cards = "".join(f'<div class="card"><div class="big">{pct(scores[key])}</div>'
                    f'<div class="label">{e(label)} (%)</div></div>'
                    for key, label in SUMMARY_ROWS if key in scores)
    rows = "".join(
        f'<tr><td data-v="{e(slot)}">{_swatch(slot, hues)}{e(slot)}</td>'
        + "".join(f'<td data-v="{row[k]}">{pct(row[k])}</td>'
                  for k in ("precision", "recall", "f1"))
        + f'<td data-v="{row["support"]}">{row["support"]}</td></tr>'
        for slot, row in scores["per_slot"].items())
    table = _table("per-slot", ["slot", "precision", "recall", "F1", "support"], rows)
    return _section("scores", "Scores", f'<div class="cards">{cards}</div>\n{table}',
                    "Span precision, recall and F1 as conlleval computes them (micro-"
                    "averaged), then per slot type; click a column to sort.")


def _partial(inputs: ReportInputs, hues: dict[str, int]) -> str:
    semeval = inputs.result.scores["semeval"]
    overall = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>"
                      for row in semeval_rows(semeval))
    head = "".join(f"<th{' class=text' if i == 0 else ''}>{e(h)}</th>"
                   for i, h in enumerate(SEMEVAL_HEADER))
    rows = "".join(
        f'<tr><td data-v="{e(slot)}">{_swatch(slot, hues)}{e(slot)}</td>'
        + "".join(f'<td data-v="{r[s]["f1"]}">{pct(r[s]["f1"])}</td>' for s in SEMEVAL_SCENARIOS)
        + f'<td data-v="{r["strict"]["possible"]}">{r["strict"]["possible"]}</td></tr>'
        for slot, r in semeval["per_slot"].items())
    per_slot = _table("partial-per-slot", ["slot", *(f"{s} F1" for s in SEMEVAL_SCENARIOS),
                                           "gold spans"], rows)
    return _section("partial", "Partial matches (SemEval-2013)", f"""<div class="scroll">
<table class="num" id="table-partial"><thead><tr>{head}</tr></thead><tbody>{overall}</tbody>
</table></div>
<details><summary>per slot type (F1, %)</summary>{per_slot}</details>""",
                    "Span scores that give credit for near misses, in the four scenarios of "
                    f"SemEval-2013 task 9, counted as nervaluate counts them ({SEMEVAL_KEY}): "
                    "correct, incorrect, partial, missed and spurious spans, then precision, "
                    "recall and F1 (%). Strict equals the conlleval scores above.")


def _breakdown(inputs: ReportInputs, hues: dict[str, int]) -> str:
    breakdown = inputs.analysis.breakdown
    every = breakdown["all"]
    gold = sum(every[k] for k in GOLD_KINDS)
    predicted = sum(inputs.analysis.counts.predicted.values())
    bar = _stacked(every, gold)
    legend = "".join(f'<span class="key"><i class="k-{css_name(k)}"></i>{e(k)} '
                     f'<b>{every[k]:,}</b></span>' for k in GOLD_KINDS)
    kinds = [*GOLD_KINDS, SPURIOUS]
    rows = []
    for slot, counts in sorted(((k, v) for k, v in breakdown.items() if k != "all"),
                               key=lambda kv: (-_errors(kv[1]), kv[0])):
        support = sum(counts[k] for k in GOLD_KINDS)
        rows.append(f'<tr><td data-v="{e(slot)}">{_swatch(slot, hues)}{e(slot)}</td>'
                    f'<td data-v="{support}">{support}</td>'
                    + "".join(f'<td data-v="{counts[k]}">{counts[k] or ""}</td>' for k in kinds)
                    + f'<td data-v="{_errors(counts)}">{_errors(counts)}</td>'
                    f'<td class="barcell">{_stacked(counts, support)}</td></tr>')
    table = _table("breakdown", ["slot", "gold spans", "exact", "wrong type", "wrong bounds",
                                 "type and bounds", "missed", "spurious", "errors",
                                 "gold spans by kind"], "".join(rows))
    return _section("errors", "Error breakdown", f"""<div class="overall">{bar}
<div class="legend">{legend}</div>
<p>{gold:,} gold spans; {predicted:,} predicted spans, of which
<b>{every[SPURIOUS]:,}</b> overlap no gold span (spurious).</p></div>
{table}""", "Each gold span is exact (type and boundaries right), of the wrong type, with the "
                    "wrong boundaries, both, or missed (no predicted span overlaps it). Slot "
                    "types with the most errors first.")


def _confusion(inputs: ReportInputs, hues: dict[str, int]) -> str:
    analysis = inputs.analysis
    pairs = [(g, p, n) for (g, p), n in analysis.slot_confusion.items() if g != p]
    pairs.sort(key=lambda x: (-x[2], x[0], x[1]))
    listed = "".join(f"<tr><td>{_label(g, hues)}</td><td class=text>{_label(p, hues)}</td>"
                     f"<td data-v='{n}'>{n}</td></tr>" for g, p, n in pairs[:25])
    parts = []
    if "slot_confusion" in inputs.charts:
        pairs_table = _table("confused-pairs", ["gold", "predicted", "spans"], listed, 2)
        parts.append(f'<div class="side"><figure class="chart">{inputs.charts["slot_confusion"]}'
                     f"</figure>{pairs_table}</div>")
    else:
        parts.append('<p class="none">No slot type was confused with another.</p>')
    if analysis.intent_confusion is not None:
        parts.append("<h3>Intents</h3>")
        if "intent_confusion" in inputs.charts:
            parts.append(f'<figure class="chart">{inputs.charts["intent_confusion"]}</figure>')
        else:
            parts.append('<p class="none">Every intent was predicted right.</p>')
    return _section("confusion", "Label transfer", "\n".join(parts),
                    "Gold slot type (rows) against the type of the predicted span that "
                    "overlaps it (columns), for the most confused pairs: how many gold spans "
                    "of a type were taken for another; (no span) is a missed gold span, or a "
                    "spurious predicted one. Spans of the right "
                    "type with wrong boundaries are counted under Error breakdown.")


def _buckets(inputs: ReportInputs, hues: dict[str, int]) -> str:
    intents = inputs.analysis.intent_confusion is not None
    head = ["utterances", "precision", "recall", "F1", "sentence accuracy",
            *(["intent accuracy"] if intents else [])]
    tables = []
    for title, first, buckets in (
            ("utterance length", "length", inputs.analysis.by_length),
            ("words unseen in training", "words", inputs.analysis.by_unseen)):
        rows = []
        for label, counts in buckets.items():
            s = counts.scores(semeval=False)
            if not s["sentences"]:
                continue
            cells = [f'<td data-v="{s["sentences"]}">{s["sentences"]:,}</td>']
            for key in ("precision", "recall", "f1", "sentence_accuracy",
                        *(["intent_accuracy"] if intents else [])):
                cells.append(f'<td data-v="{s[key]}">{_bar(s[key])}{pct(s[key])}</td>')
            rows.append(f"<tr><td>{e(label)}</td>{''.join(cells)}</tr>")
        tables.append(f"<div><h3>{e(title)}</h3>"
                      f"{_table(first, [first, *head], ''.join(rows))}</div>")
    return _section("buckets", "By length and unseen words", "\n".join(tables),
                    "The same scores on subsets of the utterances: by number of words, and "
                    "whether an utterance holds a word the training data never showed.")


def _calibration(inputs: ReportInputs, hues: dict[str, int]) -> str:
    if "calibration" not in inputs.charts:
        return _section("calibration", "Calibration",
                        '<p class="none">No predicted spans to calibrate.</p>')
    rows = []
    for name, result in (("slot spans", inputs.analysis.calibration),
                         ("intents", inputs.analysis.intent_calibration)):
        if result is not None and result.count:
            rows.append(f"<tr><td>{name}</td><td data-v='{result.count}'>{result.count:,}</td>"
                        f"<td>{pct(result.confidence)}</td><td>{pct(result.accuracy)}</td>"
                        f"<td>{pct(result.ece)}</td></tr>")
    table = _table("calibration", ["predictions", "count", "mean confidence (%)",
                                   "share right (%)", "ECE (%)"], "".join(rows))
    chart = inputs.charts["calibration"]
    return _section("calibration", "Calibration", f"""<figure class="chart narrow">{chart}</figure>
{table}""", "Does a confidence of 0.8 come true 80% of the time? Predictions are binned by "
                    "confidence; a bar below the diagonal means overconfidence. A predicted span "
                    "is right when it is exact. ECE: the bins' mean gap, weighted by their size.")


def _utterances(inputs: ReportInputs, hues: dict[str, int]) -> str:
    content, intro = utterance_list(inputs.analysis, hues, MAX_LISTED)
    return _section("utterances", "Wrong utterances", content, intro)


def _table(name: str, header: list[str], rows: str, text_columns: int = 1) -> str:
    """A sortable table; the first `text_columns` columns are text (left-aligned), the
    others numbers."""
    head = "".join(f'<th data-col="{i}"{" class=text" if i < text_columns else ""}>{e(h)}</th>'
                   for i, h in enumerate(header))
    return (f'<div class="scroll"><table class="sortable num" id="table-{css_name(name)}">'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")


def _stacked(counts: Counter, total: int) -> str:
    if not total:
        return '<div class="stack empty"></div>'
    parts = "".join(f'<i class="k-{css_name(k)}" style="width:{100 * counts[k] / total:.3f}%" '
                    f'title="{e(k)}: {counts[k]}"></i>' for k in GOLD_KINDS if counts[k])
    return f'<div class="stack">{parts}</div>'


def _bar(value: float) -> str:
    return f'<span class="bar"><i style="width:{100 * value:.2f}%"></i></span>'


def _swatch(slot: str, hues: dict[str, int]) -> str:
    return f'<i class="swatch" style="--h:{hues.get(slot, 0)}"></i>'


def _label(name: str, hues: dict[str, int]) -> str:
    if name == NONE:
        return '<span class="muted">(no span)</span>'
    return f"{_swatch(name, hues)}{e(name)}"


def _errors(counts: Counter) -> int:
    return sum(n for k, n in counts.items() if k != EXACT)


def palette(inputs: ReportInputs) -> dict[str, int]:
    """One hue per slot type for the whole page: the most frequent types (gold spans,
    then predicted ones) first, each a golden angle from the one before, so that the
    common types differ most."""
    counts = inputs.analysis.counts
    ranked = sorted(set(counts.gold) | set(counts.predicted),
                    key=lambda kind: (-counts.gold[kind], -counts.predicted[kind], kind))
    return {kind: round(i * 137.508 + 210) % 360 for i, kind in enumerate(ranked)}


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _json(data: dict) -> str:
    return json.dumps(data).replace("</", "<\\/")
