"""The run report: numbers equal to `slotfill eval --json`, one self-contained file,
written by `slotfill report` and at the end of `slotfill train`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import CONFIGS, tiny_overrides
from typer.testing import CliRunner

from slotfill.analysis.semeval import SCENARIOS
from slotfill.analysis.tables import pct, semeval_rows
from slotfill.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def report_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>',
                      html, re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


class Tables(HTMLParser):
    """The text of every cell of every table, by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.current = self.row = self.cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.current = self.tables.setdefault(dict(attrs).get("id", ""), [])
        elif tag == "tr" and self.current is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.current.append(self.row)
            self.row = None
        elif tag == "table":
            self.current = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables_of(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def run_facts(html: str) -> dict[str, str]:
    """The "The run" panel's facts (its <dl>), by name."""
    panel = re.search(r'<dl class="facts">(.*?)</dl>', html, re.S).group(1)
    return {unescape(k): unescape(v)
            for k, v in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", panel, re.S)}


def assert_report_shows_final_state(run: Path) -> None:
    """The report written at the end of training shows the state the run ended in, as
    status.json has it once training has returned (not `running`)."""
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished", status
    shown = run_facts((run / "report.html").read_text())["state"]
    assert shown == f"finished ({status['reason']})", shown


@pytest.mark.parametrize("split", ["test", "valid"])
def test_every_number_equals_eval_json(trained_intent_run, tmp_path, split):
    output = tmp_path / "report.html"
    files = {p.name: p.stat().st_mtime_ns for p in Path(trained_intent_run).iterdir()}
    result = invoke("report", "--model", trained_intent_run, "--split", split,
                    "--output", output)
    assert result.exit_code == 0, result.output
    assert f"wrote {output}" in result.stdout and "curves.svg" not in result.stdout
    # with --output, the run directory is left as it was
    assert {p.name: p.stat().st_mtime_ns for p in Path(trained_intent_run).iterdir()} == files
    scores = json.loads(invoke("eval", "--model", trained_intent_run, "--split", split,
                               "--json").stdout)
    del scores["model"]
    html = output.read_text()
    data = report_data(html)
    assert data["scores"] == scores
    # what the page shows: eval's table values, with eval's rounding
    tables = tables_of(html)
    shown = {row[0]: row[1:] for row in tables["table-per-slot"][1:]}
    assert shown == {slot: [pct(r["precision"]), pct(r["recall"]), pct(r["f1"]),
                            str(r["support"])] for slot, r in scores["per_slot"].items()}
    for key in ("precision", "recall", "f1", "sentence_accuracy", "intent_accuracy",
                "overall_accuracy"):
        assert f'<div class="big">{pct(scores[key])}</div>' in html
    # the partial matches: eval's table, and each slot type's F1 in every scenario
    assert tables["table-partial"][1:] == semeval_rows(scores["semeval"])
    partial = {row[0]: row[1:] for row in tables["table-partial-per-slot"][1:]}
    assert partial == {slot: [*(pct(r[s]["f1"]) for s in SCENARIOS),
                              str(r["strict"]["possible"])]
                       for slot, r in scores["semeval"]["per_slot"].items()}
    # the breakdown: exact spans are the correct ones, gold spans the support
    breakdown = {row[0]: row[1:] for row in tables["table-breakdown"][1:]}
    for slot, row in scores["per_slot"].items():
        if row["support"]:
            support, exact = int(breakdown[slot][0]), int(breakdown[slot][1] or 0)
            assert support == row["support"]
            assert exact == round(row["recall"] * row["support"])
    everything = data["breakdown"]["all"]
    assert everything.get("exact", 0) == round(scores["recall"] * sum(
        r["support"] for r in scores["per_slot"].values()))
    # buckets partition the utterances; the wrong ones are listed
    for buckets in ("by_length", "by_unseen"):
        assert sum(s["sentences"] for s in data[buckets].values()) == scores["sentences"]
    wrong = scores["sentences"] - round(scores["overall_accuracy"] * scores["sentences"])
    assert html.count('<article class="utt"') == wrong
    assert f"{wrong:,} of {scores['sentences']:,} utterances have a wrong" in html


def test_the_page_needs_nothing_from_the_network(trained_intent_run):
    html = (trained_intent_run / "report.html").read_text()
    assert "<link" not in html and not re.search(r"\ssrc=", html)
    assert not re.search(r"https?://(?!www\.w3\.org/)", html)  # only SVG namespaces
    assert html.count("<svg") >= 4  # curves, slot and intent confusion, calibration
    assert "<style>" in html and "<script>" in html


def test_the_report_written_by_training_shows_the_final_state(trained_intent_run):
    assert_report_shows_final_state(trained_intent_run)  # joint, through training.run


def test_train_writes_the_report_and_curves_unless_switched_off(tmp_path):
    import xml.etree.ElementTree as ET

    run = tmp_path / "run"
    result = invoke("train", CONFIGS / "lstm-crf.yaml", *tiny_overrides(epochs=2),
                    "train.report=true", "--output", run)
    assert result.exit_code == 0, result.output
    assert f"report: {run / 'report.html'}" in result.stdout  # said before the run dir
    curves = ET.parse(run / "curves.svg").getroot()  # a standalone SVG file
    assert curves.tag == "{http://www.w3.org/2000/svg}svg" and curves.get("width")
    assert sum(1 for _ in curves.iter("{http://www.w3.org/2000/svg}polyline")) == 6
    data = report_data((run / "report.html").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert data["scores"] == metrics["test"]
    assert_report_shows_final_state(run)  # through `slotfill train`
    off = tmp_path / "off"
    assert invoke("train", "lstm", *tiny_overrides(), "--output", off).exit_code == 0
    assert not (off / "report.html").exists() and not (off / "curves.svg").exists()


def test_report_of_a_lone_checkpoint_and_a_corpus_without_test(trained_run, tmp_path):
    lone = tmp_path / "lone" / "model.pt"
    lone.parent.mkdir()
    shutil.copy(trained_run / "best.pt", lone)
    result = invoke("report", "--model", lone, "--split", "valid")
    assert result.exit_code == 0, result.output
    html = (lone.parent / "report.html").read_text()
    assert "No training history" in html and not (lone.parent / "curves.svg").exists()
    assert "intent accuracy" not in html  # a model without intents
    result = invoke("report", "--model", trained_run, "--data", tmp_path / "missing")
    assert result.exit_code == 1 and "Error" in result.stderr


def test_help_loads_neither_torch_nor_matplotlib():
    code = ("import sys; from slotfill.cli import app; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(app, ['report', '--help']); assert r.exit_code == 0; "
            "assert 'report.html' in r.stdout; "
            "assert not {'torch', 'matplotlib'} & set(sys.modules), 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_report_skips_sections_it_has_nothing_for(trained_run, tmp_path):
    """A model that gets everything right has no wrong utterances to list (here: its
    own predictions as the gold standard)."""
    from slotfill.analysis.report import RunRecord, build_report
    from slotfill.serving.predict import Predictor

    test = Path(tiny_overrides()[0].split("=", 1)[1]) / "test"
    words = [line.split() for line in (test / "seq.in").read_text().splitlines()]
    predictor = Predictor(trained_run / "best.pt")
    corpus = tmp_path / "own"
    for split in ("train", "valid", "test"):
        (corpus / split).mkdir(parents=True)
        (corpus / split / "seq.in").write_text("\n".join(" ".join(w) for w in words) + "\n")
        tags = predictor.tag(words).tags
        (corpus / split / "seq.out").write_text("\n".join(" ".join(t) for t in tags) + "\n")
    report = build_report(trained_run / "best.pt", RunRecord("own"), str(corpus))
    assert report.inputs.result.scores["sentence_accuracy"] == 1.0
    assert "0 of 20 utterances have a wrong" in report.html
    assert "No slot type was confused" in report.html
    assert report.curves_svg is None
