"""The report's SVG charts (analysis/charts.py on analysis/svg.py): well-formed XML, text
escaped, ids unique on a page, the best epoch marked, axes that hold every value drawn."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from slotfill.analysis import charts
from slotfill.analysis.calibration import reliability
from slotfill.analysis.svg import tick_labels, ticks

NS = {"s": "http://www.w3.org/2000/svg"}
NASTY = 'a<b>&"c\''  # a slot name from someone's data


def row(epoch, loss=1.0, p=0.5, r=0.5, f1=0.5, grad=1.0, lr=1e-3):
    return {"epoch": epoch, "train_loss": loss, "dev_precision": p, "dev_recall": r,
            "dev_f1": f1, "grad_norm": grad, "lr": lr, "seconds": 1.0, "best": False}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.removeprefix('<?xml version="1.0" encoding="UTF-8"?>\n'))


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{{{NS['s']}}}text")]


def panels(root: ET.Element) -> list[dict]:
    """Per panel: its box (left, top, right, bottom) from the two frame lines, its dots
    (cx, cy, tooltip), the points of its lines, its y tick labels, where its best-epoch
    marks are (x)."""
    found = []
    for g in root.iterfind("s:g[@class='panel']", NS):
        side, base = [{k: float(v) for k, v in line.attrib.items() if k[0] in "xy"}
                      for line in g.iterfind("s:line[@class='frame']", NS)]
        found.append({
            "box": (side["x1"], side["y1"], base["x2"], base["y1"]),
            "dots": [(float(c.get("cx")), float(c.get("cy")), c.findtext("s:title", "", NS))
                     for c in g.iterfind("s:circle", NS)],
            "points": [tuple(map(float, p.split(","))) for line in g.iterfind("s:polyline", NS)
                       for p in line.get("points").split()],
            "labels": [t.text for t in g.iterfind("s:text[@text-anchor='end']", NS)],
            "marks": [float(m.get("x1")) for m in g.iterfind("s:line[@class='best']", NS)]})
    return found


def inside(box, x, y) -> bool:
    left, top, right, bottom = box
    return left - 0.01 <= x <= right + 0.01 and top - 0.01 <= y <= bottom + 0.01


def test_ticks_cover_the_range_with_round_steps():
    for low, high in [(0.25, 1.43), (62.5, 86.4), (0.0, 1e-3), (3.0, 3.0), (0.0, 0.0),
                      (-2.0, 7.0), (1e-5, 1e-5), (float("nan"), 1.0)]:
        found = ticks(low, high)
        assert len(found) >= 3 and found == sorted(set(found))
        if math.isfinite(low):
            assert found[0] <= low and found[-1] >= high
        assert len(set(tick_labels(found))) == len(found), found  # told apart
    assert ticks(0.25, 1.43) == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    assert tick_labels([0.0, 0.5, 1.0]) == ["0.0", "0.5", "1.0"]
    assert tick_labels([0.0, 2e-4, 4e-4]) == ["0", "0.0002", "0.0004"]
    assert tick_labels([0.0, 2e-5, 4e-5]) == ["0", "2e-5", "4e-5"]


@pytest.mark.parametrize("history", [
    [row(1, loss=0.8), row(2, loss=0.5), row(3, loss=0.3), row(4, loss=0.35)],
    [row(1), row(2), row(3)],  # every series flat
    [row(1, loss=2.0, p=0.1, r=0.2, f1=0.15, grad=4.0, lr=0.0)],  # one epoch, no rate
    [row(1, f1=float("nan")), row(2, p=None, r=None, f1=None, loss=float("inf")),
     row(3, f1=0.9, loss=0.2)],  # scores missing, a loss gone infinite
], ids=["falling", "flat", "one-epoch", "missing"])
def test_every_value_drawn_lies_on_its_axes(history):
    svg = charts.curves(history, best_epoch=history[-1]["epoch"]).inline("curves")
    assert not re.search(r"nan|inf", svg, re.I)
    found = panels(parse(svg))
    assert len(found) == 4
    finite = [[v for r in history for key in keys for v in [r[key]]
               if v is not None and math.isfinite(v)]
              for keys in (["train_loss"], ["dev_precision", "dev_recall", "dev_f1"], ["lr"],
                           ["grad_norm"])]
    for panel, values in zip(found, finite):
        assert len(panel["dots"]) == len(values)  # one per value (under 30 epochs), no gaps
        assert all(inside(panel["box"], x, y) for x, y, _ in panel["dots"])
        assert all(inside(panel["box"], x, y) for x, y in panel["points"])
        shown = [float(label) for label in panel["labels"]]  # from the bottom up
        assert len(set(shown)) == len(shown) >= 3 and shown == sorted(shown)
        scale = 100 if panel is found[1] else 1  # scores in %
        assert shown[0] <= min(values) * scale and shown[-1] >= max(values) * scale
    if history[1:2] and history[1]["train_loss"] == float("inf"):
        assert not found[0]["points"]  # no line joins epochs 1 and 3 through the gap


def test_the_best_epoch_is_marked_on_every_panel():
    history = [row(e, f1=f) for e, f in ((1, 0.5), (2, 0.7), (3, 0.9), (4, 0.8))]
    root = parse(charts.curves(history, best_epoch=3).inline("curves"))
    for panel in panels(root):
        at_best = {x for x, _, tip in panel["dots"] if tip.startswith("epoch 3:")}
        assert len(panel["marks"]) == 1 and at_best == set(panel["marks"]), panel
    assert "dev scores (%): best F1 90.00 at epoch 3" in texts(root)
    unmarked = parse(charts.curves(history, best_epoch=None).inline("curves"))
    assert not any(panel["marks"] for panel in panels(unmarked))
    assert "dev scores (%)" in texts(unmarked)


def test_labels_are_escaped_and_the_heatmap_shows_every_confusion():
    rows, columns = [NASTY, "city"], ["city", NASTY, "(no span)"]
    counts = {(NASTY, "city"): 3, (NASTY, NASTY): 5, ("city", NASTY): 1,
              ("city", "(no span)"): 12}
    svg = charts.heatmap(rows, columns, counts, "gold <slot>", "predicted & type").inline(
        "slot_confusion")
    assert NASTY not in svg and "<slot>" not in svg
    root = parse(svg)
    shown = texts(root)
    assert shown.count(NASTY) == 2 and "gold <slot>" in shown and "predicted & type" in shown
    numbers = sorted(int(t) for t in shown if t.isdigit())
    assert numbers == [1, 3, 12]  # the (NASTY, NASTY) pair is no confusion
    tips = [t.text for t in root.iterfind(".//s:rect/s:title", NS)]
    assert f"gold <slot> {NASTY}, predicted & type city: 3" in tips
    curve = reliability([0.95, 0.9, 0.3, 0.55], [True, False, False, True])
    svg = charts.reliability_diagram({NASTY: curve, "intents": curve}).inline("calibration")
    assert f"{NASTY}: ECE {100 * curve.ece:.2f}%" in texts(parse(svg))
    bars = parse(svg).findall(".//s:g[@class='panel']/s:rect[@fill='#93c5fd']", NS)
    assert len(bars) == 2 * 3  # the filled bins of each panel


def test_ids_are_unique_on_the_report_page(trained_intent_run):
    html = (trained_intent_run / "report.html").read_text()
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    charted = [i for i in ids if i.endswith("-title")]
    assert len(charted) >= 4  # curves, two heatmaps, calibration
    for svg in re.findall(r"<svg\b.*?</svg>", html, re.S):
        root = parse(svg)
        referred = root.get("aria-labelledby")
        assert root.find(f".//s:title[@id='{referred}']", NS) is not None
        assert re.fullmatch(r"width: 100%; max-width: \d+px", root.get("style"))


def test_the_curves_file_is_a_standalone_svg():
    drawing = charts.curves([row(1), row(2, loss=0.5)], best_epoch=2)
    text = drawing.document("curves")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns=')
    root = parse(text)
    assert root.get("width") == str(drawing.width + 24) and root.get("style") is None
    assert root.find("s:rect", NS).get("fill") == "#fff"  # not transparent on a dark viewer
