"""A spaCy pipeline component that tags with a trained slotfill model:
`nlp.add_pipe("slotfill", config={"model": "runs/x"})`, registered through the
`spacy_factories` entry point once `slotfill[spacy]` is installed (docs/how-to/spacy.md).

    doc.text ─► Tagger.predict (slotfill's own tokens; nlp.pipe tags a batch at a time)
             ─► slots by character offsets ─► doc.char_span(alignment_mode) ─► spans
             ─► doc.spans[spans_key]: every slot; doc.ents: the slots clear of the
                pipeline's own entities; span._.slot_confidence; the intent ─► doc.cats

The model travels with the pipeline: `to_disk` copies its checkpoint (self-contained:
config, vocabularies, weights) into the component's folder and `from_disk` loads it from
there, so that `spacy.load(dir)` never reads the run the component was made from.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

try:
    from spacy.language import Language
    from spacy.tokens import Doc, Span
    from spacy.util import minibatch
except ImportError:  # only the entry point imports this module, and spaCy has it then
    raise ImportError('the slotfill spaCy component needs spaCy: '
                      'pip install "slotfill[spacy]"') from None

from slotfill.api import Result, Tagger, load
from slotfill.atomic import atomic_write
from slotfill.errors import CheckpointError, ConfigError, RunDirError

FACTORY = "slotfill"
CHECKPOINT = "best.pt"  # the model inside the component's folder of a saved pipeline
ALIGNMENT_MODES = ("strict", "contract", "expand")
CONFIDENCE = "slot_confidence"  # span._.slot_confidence
# nlp.meta["slotfill"]["components"]: the components whose model a saved pipeline holds
META = "slotfill"
_CONFIDENCES = "slotfill.confidence"  # doc.user_data[(this, label, start, end)] = p
_forked = False  # this process is a fork (nlp.pipe's n_process workers, on Linux)


def _note_fork() -> None:
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):  # not on Windows, where nothing forks
    os.register_at_fork(after_in_child=_note_fork)


def _slot_confidence(span: Span) -> float | None:
    """The confidence of the slot with this span's label and offsets (None for a span that
    is no slot, such as another component's entity on the same words)."""
    return span.doc.user_data.get((_CONFIDENCES, span.label_, span.start_char, span.end_char))


if not Span.has_extension(CONFIDENCE):
    # a getter, not a stored value: spaCy keys stored span values by offsets alone, so a
    # pipeline's own entity on a slot's words would share the slot's confidence
    Span.set_extension(CONFIDENCE, getter=_slot_confidence)


class SlotfillComponent:
    """Tags each doc with a slotfill model: every slot as a span in `doc.spans[spans_key]`
    (label: the slot type, `span._.slot_confidence`: its probability), the slots that
    overlap none of the doc's entities also in `doc.ents` (when `annotate_ents`), and the
    intent as `doc.cats[intent] = confidence` (for a model that predicts intents).

    slotfill tokenises `doc.text` as its model was trained to; each slot's character
    offsets become a span by `doc.char_span(..., alignment_mode=alignment_mode)`:
    `expand` (the default) covers every spaCy token the slot touches, so a slot that ends
    inside a spaCy token is still placed; `contract` keeps only the tokens wholly inside
    it and `strict` only slots on token boundaries (the others are left out).
    """

    def __init__(self, name: str, model: str, *, spans_key: str = "slots",
                 annotate_ents: bool = True, alignment_mode: str = "expand",
                 min_confidence: float = 0.0, device: str = "cpu") -> None:
        if alignment_mode not in ALIGNMENT_MODES:
            raise ConfigError(f"slotfill component: unknown alignment_mode {alignment_mode!r}",
                              f"valid: {', '.join(ALIGNMENT_MODES)}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ConfigError(f"slotfill component: min_confidence {min_confidence} is not a "
                              "probability", "expected a number from 0 to 1")
        self.name, self.model, self.device = name, model, device
        self.spans_key, self.annotate_ents = spans_key, annotate_ents
        self.alignment_mode, self.min_confidence = alignment_mode, min_confidence
        self._tagger: Tagger | None = None

    @property
    def tagger(self) -> Tagger:
        """The slotfill model (from the pipeline's folder after `from_disk`, else from
        `model`, loaded on first use)."""
        if self._tagger is None:
            self._tagger = _load(self.model, self.device,
                                 f"spaCy component {self.name!r}: cannot load the slotfill "
                                 f"model {self.model}")
        return self._tagger

    def __call__(self, doc: Doc) -> Doc:
        self._annotate(doc, self._predict([doc.text])[0])
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 256) -> Iterator[Doc]:
        """`nlp.pipe`: one batched prediction per `batch_size` docs."""
        for docs in minibatch(stream, size=batch_size):
            for doc, result in zip(docs, self._predict([doc.text for doc in docs])):
                self._annotate(doc, result)
                yield doc

    def _predict(self, texts: list[str]) -> list[Result]:
        global _forked
        if _forked:
            # OpenMP's thread pool does not survive a fork: a forked copy of a process whose
            # torch has run parallel work hangs at its first parallel region, unless torch
            # keeps to the calling thread (one per worker is their share of the cores)
            import torch
            torch.set_num_threads(1)
            _forked = False
        return self.tagger.predict(texts, self.min_confidence)

    def _annotate(self, doc: Doc, result: Result) -> None:
        spans, seen = [], set()
        for slot in result.slots:
            span = doc.char_span(slot.start, slot.end, label=slot.slot,
                                 alignment_mode=self.alignment_mode)
            if span is None:  # strict or contract, and the slot is inside a spaCy token
                continue
            key = (_CONFIDENCES, span.label_, span.start_char, span.end_char)
            # two slots of one type can expand onto the same tokens: one span, the surer
            doc.user_data[key] = max(slot.confidence, doc.user_data.get(key, 0.0))
            if key not in seen:
                seen.add(key)
                spans.append(span)
        doc.spans[self.spans_key] = spans
        if self.annotate_ents:
            doc.set_ents(_clear_of(doc.ents, spans), default="unmodified")
        if result.intent is not None:
            doc.cats[result.intent] = result.intent_confidence

    def to_disk(self, path: str | Path, *, exclude: Sequence[str] = ()) -> None:
        """Copy the model's checkpoint into the component's folder (`best.pt`)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with open(self.tagger.path, "rb") as source:
            atomic_write(path / CHECKPOINT, lambda f: shutil.copyfileobj(source, f))

    def from_disk(self, path: str | Path, *,
                  exclude: Sequence[str] = ()) -> SlotfillComponent:
        """Load the model that `to_disk` stored in `path`."""
        self._tagger = _load(Path(path) / CHECKPOINT, self.device,
                             f"spaCy component {self.name!r}: the saved pipeline holds no "
                             f"readable slotfill model in {path}")
        return self


@Language.factory(FACTORY, assigns=["doc.ents", "doc.spans", "doc.cats"],
                  default_config={"spans_key": "slots", "annotate_ents": True,
                                  "alignment_mode": "expand", "min_confidence": 0.0,
                                  "device": "cpu"})
def make_slotfill(nlp: Language, name: str, model: str, spans_key: str, annotate_ents: bool,
                  alignment_mode: str, min_confidence: float,
                  device: str) -> SlotfillComponent:
    """The `slotfill` factory. `model` is a run directory (its best.pt) or a checkpoint
    file; a new component loads it at once, so that a path that is no slotfill run fails
    in `add_pipe`. A component that `spacy.load` rebuilds (its name in the saved meta's
    `slotfill` entry) waits for `from_disk`: its `model` may be gone or another run now."""
    component = SlotfillComponent(name, model, spans_key=spans_key,
                                  annotate_ents=annotate_ents, alignment_mode=alignment_mode,
                                  min_confidence=min_confidence, device=device)
    saved = nlp.meta.setdefault(META, {}).setdefault("components", [])
    if name not in saved:
        component.tagger  # loads it now
        saved.append(name)
    return component


def _clear_of(entities: Iterable[Span], spans: list[Span]) -> list[Span]:
    """The spans that overlap none of `entities` and none of each other (the surest first:
    `expand` can make two slots share a token)."""
    taken = {i for ent in entities for i in range(ent.start, ent.end)}
    kept = []
    for span in sorted(spans, key=lambda s: -s._.get(CONFIDENCE)):
        tokens = set(range(span.start, span.end))
        if not tokens & taken:
            kept.append(span)
            taken |= tokens
    return sorted(kept, key=lambda s: s.start)


def _load(path: str | Path, device: str, title: str) -> Tagger:
    """slotfill.load, its error retitled to say which component could not load what."""
    try:
        return load(path, device)
    except (RunDirError, CheckpointError, ConfigError) as exc:
        detail = f"{exc.title}: {exc.detail}" if exc.detail else exc.title
        raise type(exc)(title, detail) from None
