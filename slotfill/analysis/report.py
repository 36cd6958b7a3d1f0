"""The run report: one self-contained HTML file (inline CSS, SVG charts and script; no
network) that shows a run, its curves, its scores and what its model gets wrong on a
split, with every number computed as `slotfill eval` computes it.

`build_report` gathers the pieces: the checkpoint scored with confidences
(analysis/evaluate.py), the error analysis (errors.py), the charts (charts.py); the caller
hands in what the run directory holds (training/loggers.py reads it and writes the
files); report_html.py lays it all out, from the ReportInputs (report_inputs.py) given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slotfill.analysis import charts
from slotfill.analysis.errors import NONE, ErrorAnalysis, analyse
from slotfill.analysis.evaluate import evaluate_checkpoint
from slotfill.analysis.report_html import render
from slotfill.analysis.report_inputs import ReportInputs, RunRecord

__all__ = ["Report", "ReportInputs", "RunRecord", "build_report", "most_confused"]

CONFUSED_PAIRS = 16  # the heatmaps show the labels of this many most confused pairs
NO_SPAN = "(no span)"  # NONE as the heatmaps label it


@dataclass
class Report:
    html: str
    curves_svg: str | None  # the training curves as an .svg file, when the run has a history
    inputs: ReportInputs


def build_report(checkpoint: Path, run: RunRecord, data: str | None = None,
                 split: str = "test", device: str = "cpu", batch_size: int = 256) -> Report:
    """Score `checkpoint` on a split (of its own corpus, or of `data`) with confidences,
    analyse its errors, draw the charts and lay out the page."""
    result = evaluate_checkpoint(checkpoint, data, split, device=device,
                                 batch_size=batch_size, confidence=True)
    analysis = analyse(result.examples, result.predictions,
                       frozenset(result.vocabs.words.itos))
    if not run.config:
        from slotfill.models.checkpoint import load_checkpoint
        run.config = load_checkpoint(checkpoint).config.to_dict()
    inputs = ReportInputs(result, analysis, run)
    curves_svg = None
    if run.history:
        drawing = charts.curves(run.history, run.summary.get("best_epoch"))
        inputs.charts["curves"] = drawing.inline("curves")
        curves_svg = drawing.document("curves")
    inputs.charts.update(_analysis_charts(analysis))
    return Report(render(inputs), curves_svg, inputs)


def _analysis_charts(analysis: ErrorAnalysis) -> dict[str, str]:
    """The confusion heatmaps (when anything is confused) and the reliability diagram."""
    found = {}
    for name, counter, row_label, column_label in (
            ("slot_confusion", analysis.slot_confusion, "gold slot type",
             "predicted slot type"),
            ("intent_confusion", analysis.intent_confusion, "gold intent",
             "predicted intent")):
        rows, columns = most_confused(counter or {})
        if rows:
            shown = {label: NO_SPAN if label == NONE else label for label in [*rows, *columns]}
            counts = {(shown[g], shown[p]): n for (g, p), n in counter.items()
                      if g in shown and p in shown}
            found[name] = charts.heatmap(
                [shown[r] for r in rows], [shown[c] for c in columns], counts, row_label,
                column_label).inline(name)
    curves = {name: value for name, value in (("slot spans", analysis.calibration),
                                              ("intents", analysis.intent_calibration))
              if value is not None and value.count}
    if curves:
        found["calibration"] = charts.reliability_diagram(curves).inline("calibration")
    return found


def most_confused(counts: dict[tuple[str, str], int], pairs: int = CONFUSED_PAIRS
                  ) -> tuple[list[str], list[str]]:
    """The gold (rows) and predicted (columns) labels of the most frequent pairs whose
    two labels differ, most confused first; NONE (no span) last on either side."""
    top = sorted(((n, g, p) for (g, p), n in counts.items() if g != p),
                 key=lambda x: (-x[0], x[1], x[2]))[:pairs]
    rows = _ranked((g, n) for n, g, _ in top)
    columns = _ranked((p, n) for n, _, p in top)
    return rows, columns


def _ranked(items) -> list[str]:
    totals: dict[str, int] = {}
    for label, n in items:
        totals[label] = totals.get(label, 0) + n
    ranked = sorted(totals, key=lambda label: (label == NONE, -totals[label], label))
    return ranked
