"""Everything a run needs before its run directory exists: the corpus, read and checked,
the vocabularies, (with `train.init`) the run whose weights it starts from, and (with
`model.embeddings`) the pretrained vectors, whose file's most frequent words extend the
word vocabulary."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from slotfill.config import Config
from slotfill.data.check import soft_problems
from slotfill.data.corpus import Corpus, ReadOptions, read_corpus
from slotfill.data.gazetteer import gather_gazetteers
from slotfill.data.vocab import Vocabs
from slotfill.errors import ConfigError, DataError
from slotfill.models.checkpoint import Checkpoint, load_checkpoint, transfer_weights
from slotfill.models.vectors import Pretrained, read_vectors
from slotfill.training.augment import slot_type
from slotfill.training.loggers import require_tensorboard

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
    vectors: Pretrained | None = None  # model.embeddings
    transformer: dict[str, Any] | None = None  # model.transformer's pretrained weights
    distillation: Any = None  # distill.teachers: their targets (distill.SoftTargets)
    distill_summary: dict[str, Any] | None = None

    def initialise(self, model) -> None:
        """Start a freshly built model from train.init's weights, the vectors or the
        pretrained transformer."""
        if self.initial is not None:
            transfer_weights(model, self.initial.model_state)
        elif self.transformer is not None:
            model.embedder.transformer.load_state_dict(self.transformer)
        if self.vectors is not None:
            ids = self.vectors.vectors | dict(self.vectors.extra)
            model.embedder.load_vectors({self.vocabs.words.index(w): v
                                         for w, v in ids.items()})

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
        if self.distill_summary is not None:
            summary["distill"] = self.distill_summary
        if self.vocabs.subwords is not None:
            subwords = self.vocabs.subwords
            summary["transformer"] = {"source": subwords.source, "sha256": subwords.digest}
        if self.vectors is not None:
            trained = len(self.vocabs.words) - self.vocabs.pretrained_words - 2  # - specials
            summary["embeddings"] = self.vectors.summary(trained)
        return summary


def prepare(cfg: Config) -> Prepared:
    """Read and check the corpus, build vocabularies, load the `train.init` run."""
    if cfg.train.tensorboard:
        require_tensorboard()  # before any work, and before a run directory exists
    corpus = read_corpus(cfg.data.path, cfg.data.format, splits=("train", "valid", "test"),
                         optional=("test",), options=ReadOptions.from_config(cfg.data))
    corpus.warnings += soft_problems(corpus)
    if cfg.model.intent and any(e.intent is None for e in corpus["train"]):
        raise DataError(f"model.intent is true, but the training data in {corpus.path} has "
                        "no intent for every utterance",
                        "add intents (a `label` file per split, or `# intent:` lines), "
                        "or set model.intent=false")
    gazetteers = gather_gazetteers(cfg.data.gazetteers, corpus.gazetteers)

    def build_vocabs(examples) -> Vocabs:
        return Vocabs.build(examples, chars=cfg.model.char != "none", gazetteers=gazetteers)
    prepared = Prepared(corpus, build_vocabs(corpus["train"]))
    if cfg.distill.teachers is not None:
        if cfg.train.init is not None or cfg.model.transformer is not None:
            raise ConfigError("distill.teachers: a student starts from its own random "
                              "weights (or word vectors)", "remove train.init and "
                              "model.transformer from the student's config")
        from slotfill.training.distill import with_teachers

        prepared.vocabs, prepared.distillation, prepared.distill_summary = with_teachers(
            cfg, corpus, prepared.vocabs, build_vocabs)
    vocabs = prepared.vocabs
    if cfg.train.augment:
        types = {slot_type(t[2:]) for t in vocabs.tags.itos if t != "O"}
        if not types & set(gazetteers.names):
            corpus.warnings.append(
                "train.augment: no gazetteer is named after a slot type of this corpus, so "
                f"nothing is substituted (slot types: {', '.join(sorted(types)[:12])} ...)")
    if cfg.model.embeddings is not None:
        m = cfg.model
        prepared.vectors = read_vectors(m.embeddings, vocabs.words.itos[2:], m.embedding_dim,
                                        m.embeddings_max_words, cfg.data.tokenizer)
        prepared.vocabs = vocabs.with_pretrained([w for w, _ in prepared.vectors.extra])
        return prepared
    if cfg.train.init is None:
        if cfg.model.transformer is not None:  # (with init, its weights and sub-words)
            from slotfill.models.transformer import load_pretrained

            vocabs.subwords, prepared.transformer = load_pretrained(cfg.model.transformer)
        return prepared
    initial = load_initial(cfg)
    if initial.vocabs.gazetteers != gazetteers:
        raise ConfigError(f"train.init: {initial.path} has other gazetteers",
                          "starting from its weights needs the same data.gazetteers "
                          "(the same lists: each gives the model features)")
    prepared.vocabs, prepared.added = initial.vocabs.extend(vocabs)
    prepared.initial = initial
    return prepared


def load_initial(cfg: Config) -> Checkpoint:
    """The checkpoint named by train.init, whose architecture must be cfg's."""
    from slotfill.training.rundir import resolve_model

    initial = load_checkpoint(resolve_model(cfg.train.init))
    initial.require_float("train.init", "training continues from float weights, and "
                          "int8 ones have lost the precision it would start from")
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
