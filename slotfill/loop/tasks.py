"""Pre-annotations in the annotation tools' formats: Label Studio predictions (for its
import and its ML backend) and doccano JSON Lines, from slotfill's predict results.

A Label Studio project labels slots with a `<Labels>` and the intent with a `<Choices>`
on the same `<Text>`; their `name`s are each result's `from_name`, the text's `name` its
`to_name`, and the text's `value` (`$text`) names the task's data field. `LabelConfig`
reads them from the project's XML (`label_config` below writes one for a model), and
refuses a config whose labels the model does not know, or that lacks the model's.
Offsets are counted in UTF-16 code units, as Label Studio's browser counts them (the
same as Python's for text without emoji); slotfill's reader takes them back.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from slotfill.errors import SlotfillError


class LabelConfigError(SlotfillError):
    """A Label Studio label config that does not fit the model."""


@dataclass(frozen=True)
class LabelConfig:
    """Where slotfill's answers go in a Label Studio project."""

    text_name: str = "text"  # the <Text>'s name: to_name
    data_key: str = "text"  # the task's data field the <Text> shows
    labels_name: str = "label"  # the <Labels>' name: from_name of slots
    choices_name: str | None = "intent"  # the <Choices>' name, if any
    labels: tuple[str, ...] = ()  # the <Labels>' values, as written
    choices: tuple[str, ...] = ()

    @classmethod
    def parse(cls, xml: str) -> LabelConfig:
        try:
            root = ElementTree.fromstring(xml)
        except ElementTree.ParseError as exc:
            raise LabelConfigError("The Label Studio label config is not valid XML",
                                   str(exc)) from None
        texts = {t.get("name"): t for t in root.iter() if t.tag == "Text"}
        labels = [t for t in root.iter() if t.tag == "Labels" and t.get("toName") in texts]
        if not labels:
            raise LabelConfigError(
                "The Label Studio label config has no <Labels> on a <Text>",
                "slotfill fills slots: give the project a <Labels name=\"label\" "
                "toName=\"text\"> with one <Label value=\"SLOT\"/> per slot type beside "
                "its <Text name=\"text\" value=\"$text\"/>")
        spans = labels[0]
        text = texts[spans.get("toName")]
        choices = [t for t in root.iter() if t.tag == "Choices"
                   and t.get("toName") == spans.get("toName")]
        return cls(text.get("name"), (text.get("value") or "$text").lstrip("$"),
                   spans.get("name"), choices[0].get("name") if choices else None,
                   tuple(v.get("value") for v in spans if v.get("value")),
                   tuple(v.get("value") for v in choices[0] if v.get("value"))
                   if choices else ())

    def check(self, slots: Sequence[str], intents: Sequence[str] | None) -> None:
        """The config must offer every slot type (and intent) the model predicts, and
        name none it cannot."""
        problems = []
        for kind, offered, known in (("<Labels>", self.labels, slots),
                                     ("<Choices>", self.choices, intents or ())):
            if kind == "<Choices>" and (self.choices_name is None or not intents):
                continue
            missing = [s for s in known if s not in offered]
            unknown = [s for s in offered if s not in known]
            if missing:
                problems.append(f"{kind} lacks {len(missing)} the model predicts: "
                                f"{', '.join(missing[:8])}")
            if unknown:
                problems.append(f"{kind} has {len(unknown)} the model does not know: "
                                f"{', '.join(unknown[:8])}")
        if problems:
            raise LabelConfigError("The Label Studio label config does not fit the model",
                                   "\n".join(problems) + "\n`slotfill select "
                                   "--write-label-config FILE` writes one that fits")


def label_config(slots: Sequence[str], intents: Sequence[str] | None) -> str:
    """A Label Studio label config for a model's slot types and intents."""
    lines = ["<View>", '  <Labels name="label" toName="text">']
    lines += [f"    <Label value={quoteattr(s)}/>" for s in slots]
    lines += ["  </Labels>", '  <Text name="text" value="$text"/>']
    if intents:
        lines += ['  <Choices name="intent" toName="text" choice="single" '
                  'showInLine="true">']
        lines += [f"    <Choice value={quoteattr(i)}/>" for i in intents]
        lines.append("  </Choices>")
    return "\n".join(lines + ["</View>"]) + "\n"


def utf16(text: str, offset: int) -> int:
    """A Python offset into `text` in UTF-16 code units."""
    return offset + sum(1 for c in text[:offset] if ord(c) >= 0x10000)


def prediction(result: dict, config: LabelConfig, score: float, model_version: str) -> dict:
    """A Label Studio prediction from a predict result (serving/predict.py): its slots
    as `labels` results, its intent as a `choices` result."""
    text = result["text"]
    items = [{"id": uuid.uuid4().hex[:10], "from_name": config.labels_name,
              "to_name": config.text_name, "type": "labels",
              "value": {"start": utf16(text, s["start"]), "end": utf16(text, s["end"]),
                        "text": s["value"], "labels": [s["slot"]]},
              "score": s["confidence"]} for s in result["slots"]]
    if result.get("intent") and config.choices_name is not None:
        items.append({"id": uuid.uuid4().hex[:10], "from_name": config.choices_name,
                      "to_name": config.text_name, "type": "choices",
                      "value": {"choices": [result["intent"]]},
                      "score": result.get("intent_confidence")})
    return {"model_version": model_version, "score": score, "result": items}


def doccano_line(result: dict) -> dict:
    """A doccano import line: spans as `label`: [[start, end, slot], ...], and the
    intent's parts as `cats` (doccano's intent detection and slot filling projects);
    slotfill's jsonl reader reads it back."""
    line = {"text": result["text"],
            "label": [[s["start"], s["end"], s["slot"]] for s in result["slots"]]}
    if result.get("intent") is not None:
        line["cats"] = result["intent"].split("#")
    return line


def model_version(checkpoint) -> str:
    """A served model's version for Label Studio: its run's name and the first digits
    of its checkpoint's sha256, so that a retrained model has another."""
    import hashlib
    from pathlib import Path

    path = Path(checkpoint)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    name = path.parent.name if path.suffix == ".pt" else path.name
    return f"slotfill-{name}-{digest}"
