"""The report's charts, drawn by svg.py: the training curves, the confusion heatmaps and
the reliability diagram. Each returns a Drawing, to inline in the page (`.inline(prefix)`)
or to write as a file (`.document(prefix)`); a point's value shows when hovered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from slotfill.analysis.calibration import Reliability
from slotfill.analysis.svg import (
    INK,
    MUTED,
    Drawing,
    Plot,
    integer_ticks,
    legend,
    text_width,
    tick_labels,
    ticks,
)

SERIES = {"precision": "#2563eb", "recall": "#d97706", "f1": "#059669",
          "loss": "#7c3aed", "lr": "#0891b2", "grad_norm": "#db2777", "intent": "#7c3aed"}
# panel title; (series, history column, scale, value format); whether the axis starts at 0
PANELS = (
    ("training loss", [("loss", "train_loss", 1, "{:.4f}")], False),
    ("dev scores (%)", [("precision", "dev_precision", 100, "{:.2f}"),
                        ("recall", "dev_recall", 100, "{:.2f}"),
                        ("f1", "dev_f1", 100, "{:.2f}")], False),
    ("learning rate (at the epoch's start)", [("lr", "lr", 1, "{:.2e}")], True),
    ("gradient norm (mean, before clipping)", [("grad_norm", "grad_norm", 1, "{:.3g}")], False),
)
# matplotlib's "Reds" (ColorBrewer), low to high
REDS = ("#fff5f0", "#fee0d2", "#fcbba1", "#fc9272", "#fb6a4a", "#ef3b2c", "#cb181d",
        "#a50f15", "#67000d")


def _finite(value) -> float | None:
    """A number to draw, or None for a missing one (None, NaN, infinite, not a number)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _scaled(value, scale: float) -> float | None:
    value = _finite(value)
    return None if value is None else value * scale


def curves(history: Sequence[dict], best_epoch: int | None) -> Drawing:
    """Training curves per epoch (rows of RunDir.read_history), a panel each: loss; dev
    precision, recall and F1; learning rate; gradient norm. A dashed line marks the best
    epoch on each. Missing values (a dev score never computed, a NaN loss) leave a gap."""
    d = Drawing(960, 480, "Training curves: training loss, dev precision, recall and F1, "
                          "learning rate and gradient norm per epoch")
    epochs = [row["epoch"] for row in history] or [1]
    first, last = min(epochs), max(epochs)
    pad = 0.5 if first == last else 0.03 * (last - first)
    x_ticks = integer_ticks(first, last)
    best = next((row for row in history if row["epoch"] == best_epoch), None)
    panels = []
    for title, series, from_zero in PANELS:
        values = [[_scaled(r.get(key), scale) for r in history] for _, key, scale, _ in series]
        drawn = [v for line in values for v in line if v is not None]
        low, high = min(drawn, default=0.0), max(drawn, default=1.0)
        panels.append((title, series, values, ticks(0.0 if from_zero else low, high)))
    # a column's panels share their left edge, so that epochs line up
    margins = [14 + max(text_width(label) for _, _, _, y_ticks in panels[column::2]
                        for label in tick_labels(y_ticks)) for column in (0, 1)]
    for i, (title, series, values, y_ticks) in enumerate(panels):
        column, row = i % 2, i // 2
        left = 490 * column + margins[column]
        plot = Plot(d, left, 48 if row == 0 else 270, 462 + 490 * column - left, 160,
                    (first - pad, last + pad), (y_ticks[0], y_ticks[-1]))
        if best is not None and title.startswith("dev") and _finite(best["dev_f1"]) is not None:
            title = f"{title}: best F1 {100 * best['dev_f1']:.2f} at epoch {best_epoch}"
        d.open("panel")
        d.text(plot.left, plot.top - (32 if row == 0 else 12), title, size=13, bold=True)
        plot.y_axis(y_ticks)
        plot.x_axis(x_ticks, [str(t) for t in x_ticks] if row == 1 else None,
                    title="epoch" if row == 1 else None)
        plot.frame()
        if best is not None:
            d.line(plot.x(best_epoch), plot.top, plot.x(best_epoch), plot.bottom, MUTED, 1.2,
                   dash="5 4", class_="best", tip=f"best epoch: {best_epoch}")
        for (name, _, _, shown), line in zip(series, values):
            _series(d, plot, epochs, line, SERIES[name], name, shown, len(epochs) < 30)
        if len(series) > 1:
            legend(d, plot.left + 6, 34, [(name, SERIES[name], "line") for name, *_ in series])
        d.close()
    return d


def _series(d: Drawing, plot: Plot, epochs: list[int], values: list[float | None],
            colour: str, name: str, shown: str, markers: bool) -> None:
    """A line through the values, broken where one is missing; a dot on each point
    (a lone point always has one)."""
    runs: list[list[tuple[int, float]]] = [[]]
    for epoch, value in zip(epochs, values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((epoch, value))
    for points in filter(None, runs):
        if len(points) > 1:
            d.polyline([(plot.x(e), plot.y(v)) for e, v in points], colour, 2.0)
        if markers or len(points) == 1:
            for e, v in points:
                d.circle(plot.x(e), plot.y(v), 3, colour, tip=f"epoch {e}: {name} "
                                                             + shown.format(v))


def heatmap(rows: Sequence[str], columns: Sequence[str], counts: dict[tuple[str, str], int],
            row_label: str, column_label: str) -> Drawing:
    """Counts of (row, column) pairs as a heatmap with the numbers in the cells. Cells
    where row and column name the same label stay blank: they are not confusions."""
    cell_w, cell_h, turn = 48, 32, math.radians(40)
    rows_w = max((text_width(r) for r in rows), default=0)
    columns_w = [text_width(c) for c in columns]
    # how far left of the grid the turned column names reach
    reach = max((w * math.cos(turn) - (j + 0.5) * cell_w - 4 for j, w in enumerate(columns_w)),
                default=0)
    left = max(40 + rows_w, reach + 8)
    grid_w, grid_h = cell_w * len(columns), cell_h * len(rows)
    below = max(columns_w, default=0) * math.sin(turn) + 24
    top = 8
    # the axis names beside and below the grid, however small it is
    row_middle = max(top + grid_h / 2, text_width(row_label) / 2 + 4)
    d = Drawing(max(left + grid_w + 12, left + (grid_w + text_width(column_label)) / 2 + 6),
                max(top + grid_h + below + 26, row_middle + text_width(row_label) / 2 + 4),
                f"Heatmap of {row_label} (rows) against {column_label} (columns)")
    matrix = [[counts.get((r, c), 0) if r != c else 0 for c in columns] for r in rows]
    peak = max((n for line in matrix for n in line), default=0) or 1
    d.rect(left, top, grid_w, grid_h, "#fff", stroke="#f3f4f6")
    for i, r in enumerate(rows):
        y = top + i * cell_h
        d.text(left - 8, y + cell_h / 2, r, colour=MUTED, anchor="end", middle=True)
        for j, c in enumerate(columns):
            n, x = matrix[i][j], left + j * cell_w
            d.rect(x + 0.75, y + 0.75, cell_w - 1.5, cell_h - 1.5,
                   _reds(n / peak) if n else "#fff", tip=f"{row_label} {r}, {column_label} "
                                                       f"{c}: {n}" if n else None)
            if n:
                d.text(x + cell_w / 2, y + cell_h / 2, str(n), size=11, middle=True,
                       anchor="middle", colour="#fff" if n > 0.55 * peak else INK)
    for j, c in enumerate(columns):  # names turned 40 degrees, ending under their column
        x, y = left + (j + 0.5) * cell_w + 4, top + grid_h + 14
        d.text(x, y, c, colour=MUTED, anchor="end", angle=-40)
    d.text(left + grid_w / 2, top + grid_h + below + 18, column_label, anchor="middle")
    d.text(14, row_middle, row_label, anchor="middle", angle=-90, middle=True)
    return d  # no colour bar: every cell shows its count


def _reds(share: float) -> str:
    """The colour of `share` (0 to 1) of the peak count, between REDS' stops."""
    at = min(max(share, 0.0), 1.0) * (len(REDS) - 1)
    i = min(int(at), len(REDS) - 2)
    low, high = REDS[i], REDS[i + 1]
    mix = [round(int(low[k:k + 2], 16) + (at - i) * (int(high[k:k + 2], 16)
                                                     - int(low[k:k + 2], 16)))
           for k in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def reliability_diagram(curves: dict[str, Reliability]) -> Drawing:
    """One panel per named reliability: accuracy per confidence bin against the diagonal
    of perfect calibration, the bins' shares of predictions below."""
    d = Drawing(440 * len(curves), 420, "Reliability diagram: share right against "
                                        "confidence, per confidence bin")
    x_ticks = ticks(0.0, 1.0, 6)  # 0.0, 0.2, ... 1.0, also the share right
    for k, (name, result) in enumerate(curves.items()):
        left = 440 * k + 72
        top = Plot(d, left, 34, 350, 240, (0.0, 1.0), (0.0, 1.0))
        most = max((b.count for b in result.bins), default=0) / max(result.count, 1)
        share_ticks = ticks(0.0, most or 1.0, 4)
        bottom = Plot(d, left, 292, 350, 80, (0.0, 1.0), (0.0, share_ticks[-1]))
        d.open("panel")
        d.text(left, 20, f"{name}: ECE {100 * result.ece:.2f}%", size=13, bold=True)
        top.y_axis(x_ticks, title="share right")
        top.x_axis(x_ticks)
        top.frame()
        bottom.y_axis(share_ticks, title="share")
        bottom.x_axis(x_ticks, [f"{t:.1f}" for t in x_ticks], grid=False, title="confidence")
        bottom.frame()
        filled = [b for b in result.bins if b.count]
        for b in filled:
            gap = 0.05 * (b.high - b.low)  # bars 90% of their bin wide
            top.bar(b.low + gap, b.high - gap, b.accuracy, "#93c5fd", stroke="#2563eb",
                    tip=f"confidence {b.low:.1f} to {b.high:.1f}: {100 * b.accuracy:.1f}% "
                        f"right of {b.count:,}")
            bottom.bar(b.low + gap, b.high - gap, b.count / result.count, "#d1d5db",
                       tip=f"confidence {b.low:.1f} to {b.high:.1f}: "
                           f"{100 * b.count / result.count:.1f}% of the predictions")
        d.line(top.x(0), top.y(0), top.x(1), top.y(1), MUTED, 1.2, dash="5 4")
        for b in filled:
            d.circle(top.x(b.confidence), top.y(b.accuracy), 3.2, "#1d4ed8",
                     tip=f"mean confidence {100 * b.confidence:.1f}%, "
                         f"{100 * b.accuracy:.1f}% right")
        legend(d, top.left + 12, top.top + 14, [
            ("perfectly calibrated", MUTED, "dashed"), ("mean confidence", "#1d4ed8", "dot"),
            ("right", "#93c5fd/#2563eb", "bar")], column=True, size=11)
        d.close()
    return d
