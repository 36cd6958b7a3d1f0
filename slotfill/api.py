"""The public Python API behind `slotfill.load`, `slotfill.train` and `slotfill.evaluate`:
typed results over the same functions the command line uses.

`import slotfill` stays cheap: this module imports torch only inside the functions that
need a model, so that `slotfill --help` and `import slotfill` never start it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slotfill.config import Config
from slotfill.training.events import TrainResult

if TYPE_CHECKING:
    from slotfill.analysis.evaluate import EvalResult
    from slotfill.serving.predict import Predictor

__all__ = ["Alternative", "Evaluation", "Result", "Slot", "Tagger", "TrainResult", "evaluate",
           "load", "train"]


@dataclass(frozen=True)
class Slot:
    """One slot found in an utterance: `value == text[start:end]`, in the text's own
    casing; `confidence` is the probability the model gives this span (0 to 1).

    Examples:
        >>> from slotfill import Slot
        >>> slot = Slot("toloc.city_name", "Taipei", 7, 13, 0.98)
        >>> slot.to_dict()["value"]
        'Taipei'
    """

    slot: str  # the slot type, e.g. toloc.city_name
    value: str
    start: int  # character offsets into the text; end is exclusive
    end: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """The slot as `slotfill predict --json` writes it."""
        return {"slot": self.slot, "value": self.value, "start": self.start,
                "end": self.end, "confidence": self.confidence}


@dataclass(frozen=True)
class Alternative:
    """One of an utterance's most probable tag sequences (`Tagger.predict(...,
    n_best=K)`): its `probability`, a tag per token, and its slots. A CRF's probability
    is exact; a softmax head's is the product of the words' tag probabilities, an
    approximation (the words' choices are not independent). A slot's `confidence` is
    what the answer's slots carry, so the same span has the same confidence in every
    alternative of a CRF.

    Examples:
        >>> from slotfill import Alternative, Slot
        >>> alternative = Alternative(0.81, ["O", "B-toloc.city_name"],
        ...                           [Slot("toloc.city_name", "Taipei", 7, 13, 0.98)])
        >>> alternative.to_dict()["probability"]
        0.81
    """

    probability: float
    tags: list[str]
    slots: list[Slot]

    def to_dict(self) -> dict[str, Any]:
        """The alternative as `slotfill predict --json --n-best K` writes it."""
        return {"probability": self.probability, "tags": list(self.tags),
                "slots": [slot.to_dict() for slot in self.slots]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Alternative:
        return cls(raw["probability"], list(raw["tags"]), [Slot(**s) for s in raw["slots"]])


@dataclass(frozen=True)
class Result:
    """What a tagger found in one utterance. `tokens` are the words as written in `text`,
    `tags` one BIO tag per token; `intent_confidence` is the model's probability of
    `intent` (for a `model.multi_intent` model, of exactly that set of intents, `intents`).
    Both are None for a model that predicts no intents (and for an utterance without words).
    `n_best` (with `Tagger.predict(..., n_best=K)`, else None) lists the K most probable
    tag sequences, most probable first, each an `Alternative`; the first is the answer
    (`tags` and `slots`) unless `min_confidence` dropped slots from it. The intent is no
    part of the list: it stays the utterance's one answer.

    Examples:
        >>> from slotfill import Result, Slot
        >>> result = Result("fly to Taipei", ["fly", "to", "Taipei"],
        ...                 ["O", "O", "B-toloc.city_name"],
        ...                 [Slot("toloc.city_name", "Taipei", 7, 13, 0.98)])
        >>> result.to_dict()["slots"][0]["slot"]
        'toloc.city_name'
        >>> result.slot_values()
        {'toloc.city_name': 'Taipei'}
    """

    text: str
    tokens: list[str]
    tags: list[str]
    slots: list[Slot]
    intent: str | None = None
    intent_confidence: float | None = None
    with_intent: bool = field(default=False, repr=False)  # the model predicts intents
    n_best: list[Alternative] | None = None

    @property
    def intents(self) -> list[str]:
        """The intents `intent` names: a label that joins several with `#` (ATIS's
        `atis_flight#atis_airfare`, or any set a `model.multi_intent` model predicts)
        as a list of them, one intent as a list of one, no intent as `[]`.

        Examples:
            >>> from slotfill import Result
            >>> Result("fares and flights", ["fares", "and", "flights"], ["O"] * 3, [],
            ...        "atis_flight#atis_airfare", 0.9, with_intent=True).intents
            ['atis_flight', 'atis_airfare']
        """
        return [part.strip() for part in (self.intent or "").split("#") if part.strip()]

    def slot_values(self) -> dict[str, str]:
        """`{slot type: value}`; where a type occurs twice, its first value."""
        values: dict[str, str] = {}
        for slot in self.slots:
            values.setdefault(slot.slot, slot.value)
        return values

    def to_dict(self) -> dict[str, Any]:
        """The object `slotfill predict --json` prints for this utterance (and
        `POST /predict` answers)."""
        out: dict[str, Any] = {"text": self.text, "tokens": list(self.tokens),
                               "tags": list(self.tags),
                               "slots": [slot.to_dict() for slot in self.slots]}
        if self.with_intent:
            out["intent"] = self.intent
            out["intent_confidence"] = self.intent_confidence
        if self.n_best is not None:
            out["n_best"] = [alternative.to_dict() for alternative in self.n_best]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Result:
        """The inverse of `to_dict`."""
        n_best = raw.get("n_best")
        return cls(raw["text"], list(raw["tokens"]), list(raw["tags"]),
                   [Slot(**slot) for slot in raw["slots"]], raw.get("intent"),
                   raw.get("intent_confidence"), with_intent="intent" in raw,
                   n_best=None if n_best is None else [Alternative.from_dict(a)
                                                       for a in n_best])


class Tagger:
    """A trained model, loaded once, that tags raw text. Make one with `slotfill.load`.

    Examples:
        >>> import slotfill
        >>> model = slotfill.load("runs/example")   # the run `slotfill.train` wrote
        >>> tags = model.tag(["arrive", "Taipei", "on", "Nov", "2nd"])
        >>> len(tags), set(tags) <= set(model.tags)
        (5, True)
        >>> "toloc.city_name" in model.slot_types
        True
    """

    def __init__(self, predictor: Predictor, path: Path) -> None:
        self._predictor = predictor
        self.path = path  # the checkpoint file

    def __repr__(self) -> str:
        return f"Tagger({str(self.path)!r}, device={str(self.device)!r})"

    @property
    def config(self) -> Config:
        """The resolved config the model was trained with."""
        return self._predictor.config

    @property
    def device(self) -> str:
        """Where the model runs: `cpu` or `cuda` (`cuda:N`)."""
        return str(self._predictor.device)

    @property
    def predicts_intents(self) -> bool:
        """Whether each `Result` carries an intent."""
        return bool(self._predictor.predicts_intents)

    @property
    def tags(self) -> list[str]:
        """Every tag the model can give (BIO tags such as `B-toloc.city_name`, and `O`)."""
        return [tag for tag in self._predictor.vocabs.tags.itos if not tag.startswith("<")]

    @property
    def slot_types(self) -> list[str]:
        """The slot types the model knows, sorted (`toloc.city_name`, ...)."""
        return sorted({tag.split("-", 1)[1] for tag in self.tags if "-" in tag})

    @property
    def intents(self) -> list[str]:
        """The intent labels of the model's training data (empty for a model without
        intents); a `model.multi_intent` model also predicts other sets of the intents
        these labels join with `#`."""
        if not self.predicts_intents:
            return []
        return [i for i in self._predictor.vocabs.intents.itos if not i.startswith("<")]

    def predict(self, texts: str | Iterable[str], min_confidence: float = 0.0, *,
                workers: int = 1, n_best: int | None = None
                ) -> list[Result] | Iterator[Result]:
        """Tag raw utterances, one `Result` per text, in order (a text without words gets
        a `Result` without tokens). Text is tokenised as the model's training data was;
        slots whose confidence is below `min_confidence` are dropped and their tags
        become `O`.

        `n_best=K` also lists each utterance's K most probable tag sequences in
        `Result.n_best` (`Alternative`s, most probable first, distinct; fewer where
        fewer are possible, as for a one-word utterance; the one sequence of an
        utterance without words): a CRF's by k-best Viterbi, exact; a softmax head's
        the K best products of the words' tag probabilities. `min_confidence` leaves
        them as the model ranks them. A seq2seq model has no n-best (a UsageError).

        A single string is one utterance, and a list or tuple gives a list (indexable:
        `predict([text])[0]`). Any other iterable (a generator, an open file: each line
        keeps its newline in `text`) gives an iterator that reads it lazily, 256 texts at
        a time, and yields each batch's results as they are ready: memory stays flat
        however long the input. `workers` > 1 tags the batches in that many processes,
        each with its own copy of the model and its share of the cores; each costs a
        model load, so it pays for inputs of many thousands of texts.

        Examples:
            >>> import slotfill
            >>> model = slotfill.load("runs/example")
            >>> result = model.predict(["arrive Taipei on Nov 2nd"])[0]
            >>> result.tokens
            ['arrive', 'Taipei', 'on', 'Nov', '2nd']
            >>> all(result.text[s.start:s.end] == s.value for s in result.slots)
            True
            >>> lines = (f"fly to {city}" for city in ["Boston", "Denver"])
            >>> [r.tokens[-1] for r in model.predict(lines)]
            ['Boston', 'Denver']
            >>> result = model.predict("arrive Taipei on Nov 2nd", n_best=3)[0]
            >>> result.n_best[0].tags == result.tags
            True
            >>> ranked = [a.probability for a in result.n_best]
            >>> ranked == sorted(ranked, reverse=True) and sum(ranked) <= 1
            True
        """
        if isinstance(texts, str):
            texts = [texts]
        if n_best is not None:  # refused at once, not when the first result is due
            self._predictor.check_n_best(n_best)
        results = self._stream(texts, min_confidence, workers, n_best)
        return list(results) if isinstance(texts, Sequence) else results

    def _stream(self, texts: Iterable[str], min_confidence: float,
                workers: int, n_best: int | None) -> Iterator[Result]:
        from slotfill.serving.predict import drop_unsure
        from slotfill.serving.stream import tag_stream

        for raw in tag_stream(self._predictor, texts, workers=workers, n_best=n_best):
            yield Result.from_dict(drop_unsure(raw, min_confidence))

    def tag(self, tokens: Sequence[str]) -> list[str]:
        """BIO tags for one utterance that is already split into words (each word is
        normalised as in training: case folding, NFKC).

        Examples:
            >>> import slotfill
            >>> model = slotfill.load("runs/example")
            >>> len(model.tag(["leave", "Boston", "tomorrow"]))
            3
        """
        from slotfill.data.tokenize import normalise

        if isinstance(tokens, str):
            raise TypeError("tag() takes a list of words; predict() takes raw text")
        words = [normalise(token) for token in tokens]
        return self._predictor.tag([words]).tags[0]


def load(path: str | Path, device: str = "cpu") -> Tagger:
    """Load a trained model: a run directory (its `best.pt`) or a checkpoint file.
    `device` is `cpu`, `cuda` or `auto` (cuda when available).

    Examples:
        >>> import slotfill
        >>> model = slotfill.load("runs/example")
        >>> model.predict("leave Boston")[0].tokens
        ['leave', 'Boston']
    """
    from slotfill.runtime import resolve_device
    from slotfill.serving.predict import Predictor
    from slotfill.training.rundir import resolve_model

    checkpoint = resolve_model(path)
    return Tagger(Predictor(checkpoint, device=str(resolve_device(device))), checkpoint)


def train(config: str | Path | Config | None = None,
          overrides: Mapping[str, Any] | Sequence[str] = (),
          output: str | Path | None = None, *, force: bool = False, quiet: bool = False,
          loggers: Sequence[Any] = ()) -> TrainResult:
    """Train a tagger into a new run directory and return its scores. `config` is a YAML
    file, the name of a bundled config (`bilstm`, `joint`, ...; None: `bilstm`) or a
    `Config`; `overrides` maps dotted keys to values (`{"train.epochs": 3}`) or is a list
    of `key=value` strings as on the command line. `output` is the run directory (None:
    `runs/<config>-<timestamp>/`; an existing non-empty one only with `force`, and only
    if it is a run directory). It prints what `slotfill train` prints (the corpus and
    model, a progress bar on a terminal, one line per epoch, why it stopped early, the
    final scores) unless `quiet`; `loggers` (see `slotfill.training.events.TrainingLogger`)
    receive the run's progress too. The result's repr is one line of headline scores, and
    `result.stopped_early` says why a run ended before `train.epochs` (None if it did not).

    Examples:
        >>> import slotfill
        >>> result = slotfill.train("bilstm", output="runs/example", force=True, quiet=True,
        ...     overrides={"train.epochs": 1, "model.hidden_size": 16, "train.report": False})
        >>> result.run_dir.name, result.best_epoch, result.stopped_early
        ('example', 1, None)
        >>> result                                     # doctest: +ELLIPSIS
        TrainResult(run_dir='runs/example', best_epoch=1 of 1 trained (train.epochs 1), ...)
        >>> 0 <= result.test["f1"] <= 1
        True
    """
    from slotfill.threads import set_waiting

    set_waiting("active")  # as `slotfill train`, when torch is not imported yet (threads.py)
    from slotfill.training import run as training
    from slotfill.training.rundir import RunDir, check_output

    if isinstance(config, Config):
        cfg, name = config.override(overrides) if overrides else config, "run"
    else:
        cfg = Config.load(config, overrides)
        name = Path(config).stem if config is not None else "bilstm"
    if output is not None:
        check_output(Path(output), force)
    prepared = training.prepare(cfg)  # corpus problems fail before a directory exists
    run_dir = RunDir.create(name, Path(output) if output is not None else None, force).path
    if not quiet:  # the CLI's display, so that a script sees what `slotfill train` shows
        from slotfill.training.console import TrainDisplay
        loggers = [TrainDisplay(), *loggers]
    return training.train(cfg, run_dir, prepared, loggers=loggers)


@dataclass(frozen=True)
class Evaluation:
    """The scores of a model on a corpus split, as `slotfill eval` reports them: span
    precision, recall and F1 (conlleval-exact, micro-averaged), token and sentence
    accuracy, per-slot rows, and for intent models intent and overall accuracy (the
    intent right when it names the gold set of intents; `intent_string_accuracy` and
    `overall_string_accuracy` when it is the same string); fractions in [0, 1].

    Examples:
        >>> import slotfill
        >>> scores = slotfill.evaluate("runs/example", split="valid")
        >>> scores.to_dict()["model"]
        'runs/example/best.pt'
        >>> scores.f1 == scores.to_dict()["f1"]
        True
    """

    model: Path  # the checkpoint scored
    corpus: Path
    split: str
    scores: dict[str, Any]
    _details: EvalResult | None = field(default=None, repr=False, compare=False)

    @property
    def f1(self) -> float:
        return self.scores["f1"]

    @property
    def precision(self) -> float:
        return self.scores["precision"]

    @property
    def recall(self) -> float:
        return self.scores["recall"]

    @property
    def intent_accuracy(self) -> float | None:
        return self.scores.get("intent_accuracy")

    def to_dict(self) -> dict[str, Any]:
        """The object `slotfill eval --json` prints."""
        return {"model": str(self.model), **self.scores}


def evaluate(model: Tagger | str | Path, data: str | Path | None = None,
             split: str = "test", *, device: str = "cpu",
             confidence: bool = False) -> Evaluation:
    """Score a model (a `Tagger`, a run directory or a checkpoint file) on a split
    (`train`, `valid` or `test`) of its own corpus, or of the corpus at `data`. Tags and
    intents the model never saw count as misses. `confidence` also computes span and
    intent confidences, which an error analysis reads.

    Examples:
        >>> import slotfill
        >>> scores = slotfill.evaluate(slotfill.load("runs/example"), split="test")
        >>> scores.split, 0 <= scores.f1 <= 1
        ('test', True)
    """
    from slotfill.analysis.evaluate import evaluate_checkpoint
    from slotfill.runtime import resolve_device
    from slotfill.training.rundir import resolve_model

    if split not in ("train", "valid", "test"):
        from slotfill.errors import UsageError
        raise UsageError(f"Unknown split {split!r}", "valid: train, valid, test")
    if isinstance(model, Tagger):
        path, device = model.path, model.device
    else:
        path = resolve_model(model)
    result = evaluate_checkpoint(path, None if data is None else str(data), split,
                                 device=resolve_device(device), confidence=confidence)
    return Evaluation(result.checkpoint, result.corpus, result.split, result.scores, result)
