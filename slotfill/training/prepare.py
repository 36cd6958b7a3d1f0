"""Everything a run needs before its run directory exists: the corpus, read and checked,
the vocabularies, and (with `train.init`) the run whose weights it starts from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from slotfill.config import Config
from slotfill.data.check import soft_problems
from slotfill.data.corpus import Corpus, read_corpus
from slotfill.data.gazetteer import load_gazetteers
from slotfill.data.vocab import Vocabs
from slotfill.errors import ConfigError, DataError
from slotfill.models.checkpoint import Checkpoint, load_checkpoint
from slotfill.training.augment import slot_type

# model keys that change no weight's shape or meaning: a fine-tuned run may change them
REGULARISERS = ("dropout", "embedding_dropout", "output_dropout", "word_dropout",
                "locked_dropout")


@dataclass
class Prepared:
    """The corpus and vocabularies, read and validated before a run directory exists."""

    corpus: Corpus
    vocabs: Vocabs
    initial: Checkpoint | None = None  # train.init: the weights to start from
    added: dict[str, list[str]] = field(default_factory=dict)  # vocabulary beyond init's

    def summary(self) -> dict[str, Any]:
        summary = {"corpus": str(self.corpus.path), "format": self.corpus.format,
                   "sizes": {name: len(split) for name, split in self.corpus.splits.items()},
                   "words": len(self.vocabs.words), "tags": len(self.vocabs.tags),
                   "warnings": self.corpus.warnings}
        if self.vocabs.gazetteers is not None:
            summary["gazetteers"] = {name: len(entries) for name, entries in
                                     self.vocabs.gazetteers.lists.items()}
        if self.initial is not None:
            summary["init"] = {"from": str(self.initial.path),
                               "added": {k: len(v) for k, v in self.added.items()}}
        return summary


def prepare(cfg: Config) -> Prepared:
    """Read and check the corpus, build vocabularies, load the `train.init` run."""
    corpus = read_corpus(cfg.data.path, cfg.data.format, splits=("train", "valid", "test"),
                         optional=("test",))
    corpus.warnings += soft_problems(corpus)
    if cfg.model.intent and any(e.intent is None for e in corpus["train"]):
        raise DataError(f"model.intent is true, but the training data in {corpus.path} has "
                        "no intent for every utterance",
                        "add intents (a `label` file per split, or `# intent:` lines), "
                        "or set model.intent=false")
    gazetteers = load_gazetteers(cfg.data.gazetteers) if cfg.data.gazetteers else None
    vocabs = Vocabs.build(corpus["train"], chars=cfg.model.char != "none",
                          gazetteers=gazetteers)
    if cfg.train.augment:
        types = {slot_type(t[2:]) for t in vocabs.tags.itos if t != "O"}
        if not types & set(gazetteers.names):
            corpus.warnings.append(
                "train.augment: no gazetteer is named after a slot type of this corpus, so "
                f"nothing is substituted (slot types: {', '.join(sorted(types)[:12])} ...)")
    if cfg.train.init is None:
        return Prepared(corpus, vocabs)
    initial = load_initial(cfg)
    if initial.vocabs.gazetteers != gazetteers:
        raise ConfigError(f"train.init: {initial.path} has other gazetteers",
                          "starting from its weights needs the same data.gazetteers "
                          "(the same lists: each gives the model features)")
    merged, added = initial.vocabs.extend(vocabs)
    return Prepared(corpus, merged, initial, added)


def load_initial(cfg: Config) -> Checkpoint:
    """The checkpoint named by train.init, whose architecture must be cfg's."""
    from slotfill.training.rundir import resolve_model

    initial = load_checkpoint(resolve_model(cfg.train.init))
    if initial.members:
        raise ConfigError(f"train.init: {initial.path} is an ensemble",
                          "start from one of its members' run directories")
    mine, theirs = dataclasses.asdict(cfg.model), dataclasses.asdict(initial.config.model)
    differ = [f"model.{k}: {theirs[k]!r} in the init run, {mine[k]!r} here"
              for k in mine if k not in REGULARISERS and mine[k] != theirs.get(k)]
    if differ:
        raise ConfigError(f"train.init: {initial.path} has another architecture",
                          "\n".join(differ) + "\nstarting from its weights needs the same "
                          "model settings (dropouts may differ)")
    return initial
