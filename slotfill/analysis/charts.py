"""The report's charts, drawn by matplotlib (imported here, inside the functions, so that
`slotfill --help` never loads it) on its Agg-based canvases, as SVG text to inline in
HTML or as PNG bytes. Figures are built without pyplot: no global state, no GUI.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Sequence

from slotfill.analysis.calibration import Reliability

INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
SERIES = {"precision": "#2563eb", "recall": "#d97706", "f1": "#059669",
          "loss": "#7c3aed", "lr": "#0891b2", "grad_norm": "#db2777", "intent": "#7c3aed"}
STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold",
         "axes.edgecolor": "#9ca3af", "axes.labelcolor": INK, "xtick.color": MUTED,
         "ytick.color": MUTED, "text.color": INK, "axes.spines.top": False,
         "axes.spines.right": False, "svg.fonttype": "path", "svg.hashsalt": "slotfill",
         "legend.frameon": False}


def _styled(draw):
    """Run a drawing function under the report's style (rcParams are read as artists
    are made, so the whole drawing happens inside the context)."""
    @functools.wraps(draw)
    def styled(*args, **kwargs):
        import matplotlib
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)
    return styled


def _figure(width: float, height: float):
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


@_styled
def svg(fig, prefix: str) -> str:
    """The figure as an <svg> element that scales to its container, its ids prefixed so
    that several charts can share one page."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    # no larger than drawn (its text keeps its size), narrower when the page is
    text = re.sub(r'(<svg[^>]*?) width="([^"]*)" height="[^"]*"',
                  r'\1 style="width: 100%; max-width: \2"', text, count=1)
    text = re.sub(r'\bid="', f'id="{prefix}-', text)
    return re.sub(r'(url\(#|href="#)', rf'\g<1>{prefix}-', text)


@_styled
def png(fig, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


@_styled
def curves(history: Sequence[dict], best_epoch: int | None):
    """Training curves per epoch (rows of RunDir.read_history): loss; dev precision,
    recall and F1; learning rate; gradient norm. The best epoch is marked on each."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    # fixed margins: a layout engine would double the drawing time of this chart
    fig = Figure(figsize=(10, 5.4))
    fig.subplots_adjust(left=0.065, right=0.985, top=0.93, bottom=0.1, hspace=0.38,
                        wspace=0.16)
    epochs = [row["epoch"] for row in history]
    panels = fig.subplots(2, 2, sharex=True)
    plots = [
        (panels[0, 0], "training loss", [("loss", "train_loss", 1)]),
        (panels[0, 1], "dev scores (%)", [("precision", "dev_precision", 100),
                                          ("recall", "dev_recall", 100),
                                          ("f1", "dev_f1", 100)]),
        (panels[1, 0], "learning rate (at the epoch's start)", [("lr", "lr", 1)]),
        (panels[1, 1], "gradient norm (mean, before clipping)",
         [("grad_norm", "grad_norm", 1)]),
    ]
    marker = "o" if len(epochs) < 30 else None
    best = next((row for row in history if row["epoch"] == best_epoch), None)
    for ax, title, series in plots:
        ax.set_title(title, loc="left")
        ax.grid(True, color=GRID, linewidth=0.8)
        for name, key, scale in series:
            ax.plot(epochs, [row[key] * scale for row in history], color=SERIES[name],
                    marker=marker, markersize=3.5, linewidth=1.8,
                    label=name if len(series) > 1 else None)
        if best is not None:
            ax.axvline(best_epoch, color=MUTED, linestyle="--", linewidth=1)
        if len(series) > 1:
            ax.legend(loc="best", ncols=3)
    if best is not None:
        panels[0, 1].set_title(f"dev scores (%): best F1 {100 * best['dev_f1']:.2f} at "
                               f"epoch {best_epoch}", loc="left")
    lr = panels[1, 0]
    lr.set_ylim(0, 1.15 * max((row["lr"] for row in history), default=1.0) or 1.0)
    lr.yaxis.set_major_formatter(FuncFormatter(_short_number))
    for ax in panels[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def _short_number(value: float, _position=None) -> str:
    """1e-3 rather than 0.001000 (tick labels of learning rates)."""
    if value == 0:
        return "0"
    text = f"{value:.2g}"
    return text.replace("e-0", "e-").replace("e+0", "e")


@_styled
def heatmap(rows: Sequence[str], columns: Sequence[str], counts: dict[tuple[str, str], int],
            row_label: str, column_label: str):
    """Counts of (row, column) pairs as a heatmap with the numbers in the cells. Cells
    where row and column name the same label stay blank: they are not confusions."""
    import numpy as np

    matrix = np.array([[counts.get((r, c), 0) if r != c else 0 for c in columns]
                       for r in rows], dtype=float)
    longest = max((len(x) for x in [*rows, *columns]), default=1)
    fig = _figure(min(10.5, 1.4 + 0.055 * longest + 0.5 * len(columns)),
                  min(10.0, 1.2 + 0.055 * longest + 0.36 * len(rows)))
    ax = fig.subplots()
    peak = max(matrix.max(), 1.0)
    ax.imshow(np.ma.masked_equal(matrix, 0), cmap="Reds", vmin=0, vmax=peak, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            if matrix[i, j]:
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=9,
                        color="white" if matrix[i, j] > 0.55 * peak else INK)
    ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right",
                  rotation_mode="anchor")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(column_label)
    ax.set_ylabel(row_label)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xticks(np.arange(len(columns) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(rows) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="#f3f4f6", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    return fig  # no colour bar: every cell shows its count


@_styled
def reliability_diagram(curves: dict[str, Reliability]):
    """One panel per named reliability: accuracy per confidence bin against the diagonal
    of perfect calibration, the bins' shares of predictions below."""
    fig = _figure(4.6 * len(curves), 4.6)
    grid = fig.subplots(2, len(curves), squeeze=False, height_ratios=[3, 1], sharex="col")
    for (name, result), top, bottom in zip(curves.items(), grid[0], grid[1]):
        centers = [(b.low + b.high) / 2 for b in result.bins]
        width = result.bins[0].high - result.bins[0].low if result.bins else 0.1
        filled = [b for b in result.bins if b.count]
        top.plot([0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=1,
                 label="perfectly calibrated")
        top.bar([(b.low + b.high) / 2 for b in filled], [b.accuracy for b in filled],
                width=width * 0.9, color="#93c5fd", edgecolor="#2563eb", label="right")
        top.plot([b.confidence for b in filled], [b.accuracy for b in filled], "o",
                 color="#1d4ed8", markersize=4, label="mean confidence")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1.02)
        top.set_ylabel("share right")
        top.set_title(f"{name}: ECE {100 * result.ece:.2f}%", loc="left")
        top.grid(True, color=GRID, linewidth=0.8)
        top.legend(loc="upper left", fontsize=8)
        bottom.bar(centers, [b.count / max(result.count, 1) for b in result.bins],
                   width=width * 0.9, color="#d1d5db")
        bottom.set_xlabel("confidence")
        bottom.set_ylabel("share")
        bottom.grid(True, axis="y", color=GRID, linewidth=0.8)
    return fig
