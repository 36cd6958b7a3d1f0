"""Whether a predicted intent is right, both ways intent accuracy is reported.

- as a set (`intent_accuracy`, the ATIS convention): right when the predicted label names
  the gold set of atomic intents, so `atis_airfare#atis_flight` for gold
  `atis_flight#atis_airfare` is right (models/intent_sets.py);
- as a string (`intent_string_accuracy`): right only when the labels are identical, the
  stricter count that earlier slotfill results and some papers use.

Overall accuracy (every slot and the intent right) follows each: `overall_accuracy` with
the set, `overall_string_accuracy` with the string.
"""

from __future__ import annotations

from slotfill.models.intent_sets import intent_set


def same_intent(gold: str | None, predicted: str) -> bool:
    """The predicted label names the gold set of intents."""
    return gold is not None and intent_set(gold) == intent_set(predicted)


def same_string(gold: str | None, predicted: str) -> bool:
    """The predicted label is the gold one, character for character."""
    return gold == predicted
