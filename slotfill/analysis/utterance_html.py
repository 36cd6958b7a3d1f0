"""The report's list of wrong utterances: each utterance's error kinds and intents, then
its text twice, with the gold and the predicted spans as chips (words over slot type and
confidence), coloured by slot type and bordered by how they were judged; the filters
(report.js) read each item's data attributes."""

from __future__ import annotations

import html
from collections import Counter

from slotfill.analysis.errors import ERROR_KINDS, EXACT, MISSED, ErrorAnalysis, Utterance

e = html.escape


def utterance_list(analysis: ErrorAnalysis, hues: dict[str, int], limit: int
                   ) -> tuple[str, str]:
    """The filters and the `limit` worst wrong utterances as HTML, and the section's
    introduction."""
    wrong = analysis.wrong
    shown = wrong[:limit]
    involved: Counter = Counter()
    kinds: Counter = Counter()
    items = []
    for number, u in enumerate(shown, start=1):
        slots = _involved(u)
        involved.update(slots)
        kinds.update(u.kinds)
        items.append(_utterance(u, number, slots, hues))
    slot_options = "".join(f'<option value="{e(s)}">{e(s)} ({n})</option>'
                           for s, n in sorted(involved.items()))
    kind_options = "".join(f'<option value="{e(k)}">{e(k)} ({kinds[k]})</option>'
                           for k in ERROR_KINDS if kinds[k])
    more = (f"<p class='none'>The {limit:,} worst of {len(wrong):,} are listed; "
            "<code>slotfill eval --errors-file FILE</code> writes them all.</p>"
            if len(wrong) > limit else "")
    any_ = '<option value="">any</option>'
    content = f"""<div class="filters">
<label>slot type <select id="filter-slot">{any_}{slot_options}</select></label>
<label>error <select id="filter-kind">{any_}{kind_options}</select></label>
<label>words <input id="filter-text" type="search" placeholder="search"></label>
<span id="filter-count" class="count">{len(shown):,} of {len(shown):,} shown</span>
</div>
{more}<div id="utterance-list">{''.join(items)}</div>"""
    intro = (f"{len(wrong):,} of {len(analysis.utterances):,} utterances have a wrong tag "
             "or intent, most errors first, then the most confidently wrong. Spans are "
             "coloured by slot type; a red border marks a span that is wrong (missed or "
             "spurious), an amber one a span judged wrong in type or boundary; the number "
             "after a predicted slot is its confidence.")
    return content, intro


def _utterance(u: Utterance, number: int, slots: list[str], hues: dict[str, int]) -> str:
    """One wrong utterance: its error kinds and intents, then the gold and the predicted
    spans in the text."""
    exact = u.right_predictions
    gold_state = ["ok" if kind == EXACT else "bad" if kind == MISSED else "partial"
                  for kind, _ in u.judged]
    predicted_state = ["ok" if i in exact else "bad" if i in u.spurious else "partial"
                       for i in range(len(u.predicted))]
    notes = [f" {p:.2f}" if p is not None else "" for p in u.confidence]
    badges = "".join(f'<span class="badge k-{css_name(k)}">{e(k)}</span>' for k in u.kinds)
    intent = ""
    if u.predicted_intent is not None:
        sure = f" {u.intent_confidence:.2f}" if u.intent_confidence is not None else ""
        verdict = "ok" if u.intent_right else "bad"
        intent = (f'<span class="intent">intent <b>{e(str(u.gold_intent))}</b>'
                  + ("" if u.intent_right else " → ")
                  + f'<span class="{verdict}">{"" if u.intent_right else e(u.predicted_intent)}'
                  f"{sure}</span></span>")
    unseen = (f'<span class="unseen">unseen: {e(", ".join(u.unseen))}</span>'
              if u.unseen else "")
    return (f'<article class="utt" data-slots="{e(" ".join(slots))}" '
            f'data-kinds="{e("|".join(u.kinds))}" data-text="{e(" ".join(u.tokens))}">'
            f'<header><span class="num">{number}</span>'
            f'<span class="idx">utterance {u.index + 1}</span>{badges}{intent}{unseen}</header>'
            f'<div class="line"><span class="who">gold</span>'
            f'{_tokens(u.tokens, u.gold, gold_state, [""] * len(u.gold), hues)}</div>'
            f'<div class="line"><span class="who">predicted</span>'
            f'{_tokens(u.tokens, u.predicted, predicted_state, notes, hues)}</div></article>')


def _tokens(tokens, spans, states, notes, hues: dict[str, int]) -> str:
    out, at = [], 0
    for (kind, start, end), state, note in sorted(zip(spans, states, notes),
                                                  key=lambda x: x[0][1]):
        out += [f"<span class='w'>{e(t)}</span>" for t in tokens[at:start]]
        out.append(f'<span class="chip {state}" style="--h:{hues.get(kind, 0)}">'
                   f'<span class="w">{e(" ".join(tokens[start:end]))}</span>'
                   f'<span class="l">{e(kind)}{e(note)}</span></span>')
        at = end
    out += [f"<span class='w'>{e(t)}</span>" for t in tokens[at:]]
    return f'<div class="toks">{"".join(out)}</div>'


def _involved(u: Utterance) -> list[str]:
    """The slot types of the spans judged wrong in an utterance."""
    exact = u.right_predictions
    found = {s[0] for s, (kind, _) in zip(u.gold, u.judged) if kind != EXACT}
    found |= {s[0] for i, s in enumerate(u.predicted) if i not in exact}
    return sorted(found)


def css_name(name: str) -> str:
    """An error kind as a CSS class suffix: `wrong type` -> `wrong-type`."""
    return name.replace(" ", "-").replace(",", "")
