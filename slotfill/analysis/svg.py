"""A small SVG writer for the report's charts (charts.py): shapes and text on a canvas in
pixel units, plot areas that map data onto pixels with round ticks, legends. Every text
and attribute is escaped (slot and intent names come from the user's data). The result
is inline <svg> that scales to its container, or a standalone .svg document.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

INK, MUTED, GRID, EDGE = "#1f2937", "#6b7280", "#e5e7eb", "#9ca3af"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
SIZE = 12  # px, tick labels and most text


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def num(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _attrs(values: dict) -> str:
    """XML attributes, None left out, numbers as coordinates; names with a trailing
    underscore and inner ones as hyphens (class_ -> class, stroke_width -> stroke-width)."""
    return "".join(
        f' {k.rstrip("_").replace("_", "-")}="{num(v) if isinstance(v, (int, float)) else esc(v)}"'
        for k, v in values.items() if v is not None)


def text_width(text: str, size: float = SIZE) -> float:
    """Roughly how wide `text` is in a sans-serif font (layout needs no exact width)."""
    def em(c: str) -> float:
        if c in "ijlt.,:;'|!()[] ":
            return 0.3
        if c in "mwMW":
            return 0.85
        return 0.66 if c.isupper() else 0.56
    return size * sum(map(em, text))


class Drawing:
    """Shapes in the order drawn, on a width x height canvas (pixels)."""

    def __init__(self, width: float, height: float, title: str) -> None:
        self.width, self.height, self.title = math.ceil(width), math.ceil(height), title
        self.parts: list[str] = []

    def _shape(self, tag: str, tip: str | None, **attrs) -> None:
        inner = f"<title>{esc(tip)}</title>" if tip else ""
        self.parts.append(f"<{tag}{_attrs(attrs)}>{inner}</{tag}>" if inner
                          else f"<{tag}{_attrs(attrs)}/>")

    def line(self, x1: float, y1: float, x2: float, y2: float, colour: str,
             width: float = 1.0, dash: str | None = None, class_: str | None = None,
             tip: str | None = None) -> None:
        self._shape("line", tip, x1=x1, y1=y1, x2=x2, y2=y2, stroke=colour,
                    stroke_width=width, stroke_dasharray=dash, class_=class_)

    def polyline(self, points: Sequence[tuple[float, float]], colour: str,
                 width: float = 1.0) -> None:
        self._shape("polyline", None, points=" ".join(f"{num(x)},{num(y)}" for x, y in points),
                    fill="none", stroke=colour, stroke_width=width, stroke_linejoin="round",
                    stroke_linecap="round")

    def rect(self, x: float, y: float, width: float, height: float, fill: str,
             stroke: str | None = None, tip: str | None = None,
             opacity: float | None = None) -> None:
        self._shape("rect", tip, x=x, y=y, width=max(width, 0), height=max(height, 0),
                    fill=fill, fill_opacity=opacity, stroke=stroke)

    def circle(self, x: float, y: float, r: float, fill: str, tip: str | None = None) -> None:
        self._shape("circle", tip, cx=x, cy=y, r=r, fill=fill)

    def text(self, x: float, y: float, content: str, size: float = SIZE,
             colour: str = INK, anchor: str = "start", bold: bool = False,
             angle: float = 0, middle: bool = False) -> None:
        """Text whose baseline is at y (its middle, with `middle`), turned `angle` degrees
        about (x, y)."""
        attrs = _attrs({"x": x, "y": y, "font-size": size, "fill": colour,
                        "text-anchor": anchor if anchor != "start" else None,
                        "font-weight": "bold" if bold else None,
                        "dy": "0.35em" if middle else None,
                        "transform": f"rotate({num(angle)} {num(x)} {num(y)})" if angle
                        else None})
        self.parts.append(f"<text{attrs}>{esc(content)}</text>")

    def open(self, class_: str) -> None:
        self.parts.append(f'<g class="{esc(class_)}">')

    def close(self) -> None:
        self.parts.append("</g>")

    def _svg(self, prefix: str, size: str, margin: int = 0, background: str = "") -> str:
        title = f"{prefix}-title"
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{-margin} {-margin} '
                f'{self.width + 2 * margin} {self.height + 2 * margin}" {size} role="img" '
                f'aria-labelledby="{esc(title)}" '
                f'font-family="{FONT}" font-size="{SIZE}">'
                f'<title id="{esc(title)}">{esc(self.title)}</title>{background}'
                + "".join(self.parts) + "</svg>")

    def inline(self, prefix: str) -> str:
        """An <svg> element for a page: as wide as its container, never wider than drawn
        (its text keeps its size); ids start with `prefix`, so charts can share a page."""
        return self._svg(prefix, f'style="width: 100%; max-width: {self.width}px"')

    def document(self, prefix: str, margin: int = 12) -> str:
        """A standalone .svg file, on white (viewers may show a dark background) with a
        margin around the drawing."""
        size = f'width="{self.width + 2 * margin}" height="{self.height + 2 * margin}"'
        paper = f'<rect x="{-margin}" y="{-margin}" width="100%" height="100%" fill="#fff"/>'
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                + self._svg(prefix, size, margin, paper) + "\n")


# ---------------------------------------------------------------- ticks

def ticks(low: float, high: float, count: int = 6) -> list[float]:
    """About `count` round values (1, 2, 2.5 or 5 times a power of ten apart), the first
    at or below `low`, the last at or above `high`; a flat or non-finite range still gets
    a span."""
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    low, high = min(low, high), max(low, high)
    if high == low:  # a flat series: in the middle of a span around it (0: at the bottom)
        pad = abs(low) * 0.1
        low, high = (low - pad, high + pad) if pad else (0.0, 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [float(f"{i * step:.12g}") for i in range(first, last + 1)]


def integer_ticks(low: int, high: int, count: int = 10) -> list[int]:
    """Whole-number ticks within [low, high] (epochs), about `count` of them at most."""
    step = next(m * 10 ** p for p in range(12) for m in (1, 2, 5)
                if (high - low) / (m * 10 ** p) <= count)
    found = [t for t in range(low, high + 1) if t % step == 0]
    return found or [low]


def tick_labels(values: Sequence[float]) -> list[str]:
    """The same number of decimals on every label, as few as tell them apart; tiny steps
    (learning rates) in short form: 2e-4 rather than 0.000200."""
    step = min((abs(b - a) for a, b in zip(values, values[1:])), default=1.0) or 1.0
    decimals = next((d for d in range(10) if abs(round(step, d) - step) < step * 1e-6), 10)
    if decimals <= 3:
        return [f"{v or 0.0:.{decimals}f}" for v in values]  # -0.0 or 0.0: no "-0"
    digits = next(k for k in range(1, 13)
                  if all(abs(float(f"{v:.{k}g}") - v) < step * 1e-6 for v in values))
    return [_short(v, digits) for v in values]


def _short(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    return f"{value:.{digits}g}".replace("e-0", "e-").replace("e+0", "e")


# ---------------------------------------------------------------- plot areas

@dataclass
class Plot:
    """A plot area of a drawing: the data ranges mapped onto a box of pixels, y upwards."""

    drawing: Drawing
    left: float
    top: float
    width: float
    height: float
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width

    def x(self, value: float) -> float:
        low, high = self.x_range
        return self.left + (value - low) / ((high - low) or 1.0) * self.width

    def y(self, value: float) -> float:
        low, high = self.y_range
        return self.bottom - (value - low) / ((high - low) or 1.0) * self.height

    def y_axis(self, values: Sequence[float], grid: bool = True,
               title: str | None = None) -> None:
        """Grid lines and labels at `values`; `title` turned along the axis."""
        d, labels = self.drawing, tick_labels(values)
        for value, label in zip(values, labels):
            if grid:
                d.line(self.left, self.y(value), self.right, self.y(value), GRID, 0.8)
            d.text(self.left - 7, self.y(value), label, colour=MUTED, anchor="end", middle=True)
        if title:
            x = self.left - 16 - max(map(text_width, labels), default=0)
            d.text(x, (self.top + self.bottom) / 2, title, anchor="middle", angle=-90)

    def x_axis(self, values: Sequence[float], labels: Sequence[str] | None = None,
               grid: bool = True, title: str | None = None) -> None:
        """Grid lines and tick marks at `values`; labels below when given."""
        d = self.drawing
        for i, value in enumerate(values):
            if grid:
                d.line(self.x(value), self.top, self.x(value), self.bottom, GRID, 0.8)
            d.line(self.x(value), self.bottom, self.x(value), self.bottom + 4, EDGE)
            if labels is not None:
                d.text(self.x(value), self.bottom + 18, labels[i], colour=MUTED,
                       anchor="middle")
        if title:
            d.text((self.left + self.right) / 2, self.bottom + (38 if labels else 20), title,
                   anchor="middle")

    def bar(self, low: float, high: float, value: float, fill: str, stroke: str | None = None,
            tip: str | None = None) -> None:
        """A bar over [low, high] on x, from the bottom edge up to `value`."""
        self.drawing.rect(self.x(low), self.y(value), self.x(high) - self.x(low),
                          self.bottom - self.y(value), fill, stroke=stroke, tip=tip)

    def frame(self) -> None:
        """The left and bottom edges (no box: the grid shows the area)."""
        self.drawing.line(self.left, self.top, self.left, self.bottom, EDGE, class_="frame")
        self.drawing.line(self.left, self.bottom, self.right, self.bottom, EDGE,
                          class_="frame")


def legend(d: Drawing, x: float, y: float, items: Sequence[tuple[str, str, str]],
           column: bool = False, size: float = SIZE) -> None:
    """Keys from (x, y), the middle of the first: (label, colour, kind), kind one of
    "line", "dashed", "dot" or "bar" (a box, its colour given as "fill/edge"). In a row,
    or in a `column` on a white backdrop (it goes inside a plot area)."""
    rows = 18
    d.open("legend")
    if column:
        width = 26 + max(text_width(label, size) for label, _, _ in items)
        d.rect(x - 4, y - 10, width + 8, rows * len(items) + 2, "#fff", opacity=0.85)
    for label, colour, kind in items:
        if kind == "bar":
            fill, edge = colour.split("/")
            d.rect(x + 2, y - 5, 16, 10, fill, stroke=edge)
        elif kind == "dot":
            d.circle(x + 10, y, 3, colour)
        else:
            d.line(x, y, x + 20, y, colour, 2.0 if kind == "line" else 1.2,
                   dash="4 3" if kind == "dashed" else None)
            if kind == "line":
                d.circle(x + 10, y, 3, colour)
        d.text(x + 26, y, label, size=size, middle=True)
        if column:
            y += rows
        else:
            x += 26 + text_width(label, size) + 18
    d.close()
