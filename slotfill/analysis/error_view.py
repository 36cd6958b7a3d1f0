"""Wrong utterances for the terminal (`slotfill eval --errors N`): the text twice, with
the gold and then the predicted spans bracketed inline, coloured by how they were judged
(rich drops the colours when the output is not a terminal; the brackets stay)."""

from __future__ import annotations

from rich.text import Text

from slotfill.analysis.errors import EXACT, MISSED, ErrorAnalysis, Utterance
from slotfill.data.bio import Span

RIGHT, PARTLY, WRONG = "green", "yellow", "red"


def inline(tokens: tuple[str, ...], spans: list[Span], styles: list[str],
           notes: list[str]) -> Text:
    """`tokens` with each span as `[words: slot note]` in its style."""
    text, at = Text(), 0
    for (kind, start, end), style, note in sorted(zip(spans, styles, notes),
                                                  key=lambda item: item[0][1]):
        text.append(" ".join(tokens[at:start]) + (" " if at < start else ""))
        text.append(f"[{' '.join(tokens[start:end])}: {kind}{note}]", style=style)
        text.append(" " if end < len(tokens) else "")
        at = end
    text.append(" ".join(tokens[at:]))
    return text


def utterance_lines(utterance: Utterance, number: int) -> list[Text]:
    """A numbered heading with the error kinds, then the gold and predicted lines (and
    the intents for intent models)."""
    u = utterance
    exact = u.right_predictions
    head = Text(f"{number}. ", style="bold")
    head.append(f"utterance {u.index + 1}: ", style="bold")
    head.append(", ".join(u.kinds), style=WRONG)
    if u.unseen:
        head.append(f"  (unseen: {', '.join(u.unseen)})", style="dim")
    gold_styles = [RIGHT if kind == EXACT else WRONG if kind == MISSED else PARTLY
                   for kind, _ in u.judged]
    lines = [head,
             Text("  gold       ").append_text(
                 inline(u.tokens, u.gold, gold_styles, [""] * len(u.gold))),
             Text("  predicted  ").append_text(inline(
                 u.tokens, u.predicted,
                 [RIGHT if i in exact else WRONG for i in range(len(u.predicted))],
                 [f" {p:.2f}" if p is not None else "" for p in u.confidence]))]
    if u.predicted_intent is not None:
        sure = f"{u.intent_confidence:.2f}" if u.intent_confidence is not None else ""
        line = Text(f"  intent     {u.gold_intent}")
        if u.intent_right:
            line.append(f" (right{', ' + sure if sure else ''})", style=RIGHT)
        else:
            line.append(", predicted ").append(f"{u.predicted_intent} {sure}".rstrip(),
                                               style=WRONG)
        lines.append(line)
    return lines


def worst_lines(analysis: ErrorAnalysis, n: int) -> list[Text]:
    """The n worst utterances (most errors, then most confidently wrong), blank-separated."""
    wrong = analysis.wrong
    lines = [Text(f"{len(wrong)} of {len(analysis.utterances)} utterances wrong; "
                  f"the {min(n, len(wrong))} worst:", style="bold")]
    for number, utterance in enumerate(wrong[:n], start=1):
        lines += [Text(""), *utterance_lines(utterance, number)]
    return lines
