"""Search spaces for `slotfill tune`: a YAML file over any config key, validated before
any work, or the default space of the config's tagger; sampled through an Optuna trial.

A file maps dotted config keys (or sections of keys, as in a config) to a range or a list
of choices:

    train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a float range, log scale
    model.hidden_size: {low: 64, high: 512, step: 64}  # an int range (the key is an int)
    model.head: [softmax, crf]                          # choices
    model:
      embedding_dropout: {low: 0.0, high: 0.5}

No optuna here: `suggest` receives the trial.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slotfill.config import SECTIONS, Config, all_keys, parse_yaml, setting_problem
from slotfill.errors import ConfigError

RANGE_FIELDS = ("low", "high", "step", "log")


@dataclass(frozen=True)
class Param:
    key: str  # dotted config key, also the parameter's name in the study
    low: Any = None  # a range: int or float bounds (inclusive)
    high: Any = None
    step: Any = None
    log: bool = False
    choices: tuple | None = None  # or a list of values

    @property
    def is_int(self) -> bool:
        return self.choices is None and _field_type(self.key) is int

    def ends(self) -> tuple:
        """The values at the two ends of the space (first and last choice)."""
        return (self.choices[0], self.choices[-1]) if self.choices else (self.low, self.high)

    def spec(self) -> Any:
        """As written in a space file."""
        if self.choices is not None:
            return list(self.choices)
        spec = {"low": self.low, "high": self.high}
        if self.step is not None:
            spec["step"] = self.step
        if self.log:
            spec["log"] = True
        return spec

    def describe(self) -> str:
        if self.choices is not None:
            return f"{self.key} in {{{', '.join(_text(c) for c in self.choices)}}}"
        scale = ", log" if self.log else f", step {self.step:g}" if self.step else ""
        return f"{self.key} {self.low:g}..{self.high:g}{scale}"

    def suggest(self, trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.is_int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1,
                                     log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    source: str  # the file, or "the default space of <tagger>"

    def suggest(self, trial) -> dict[str, Any]:
        """One point of the space, sampled by an Optuna trial: {dotted key: value}."""
        return {p.key: p.suggest(trial) for p in self.params}

    def to_dict(self) -> dict[str, Any]:
        return {p.key: p.spec() for p in self.params}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def check_against(self, base: dict, overrides: list[str]) -> None:
        """Problems between the space and the config it varies: a key also set by an
        override, or a config that is invalid at either end of every range."""
        problems = []
        overridden = {item.partition("=")[0].strip() for item in overrides}
        for p in self.params:
            if p.key in overridden:
                problems.append(f"{p.key}: set by an override and searched by the space; "
                                "drop one of them")
        for end, label in ((0, "low ends and first choices"), (1, "high ends and last choices")):
            point = {p.key: p.ends()[end] for p in self.params}
            try:
                Config.from_dict(with_settings(base, point))
            except ConfigError as exc:
                problems.append(f"with the space's {label} the config is invalid:\n"
                                + "\n".join(f"  {line}" for line in exc.detail.splitlines()))
        if problems:
            raise ConfigError(f"Search space {self.source} does not fit the config",
                              "\n".join(problems))


def with_settings(raw: dict, settings: dict[str, Any]) -> dict:
    """A copy of a raw config mapping with dotted keys set."""
    raw = {section: dict(values) if isinstance(values, dict) else values
           for section, values in raw.items()}
    for dotted, value in settings.items():
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})[key] = value
    return raw


# ---------------------------------------------------------------- the default space

def default_space(cfg: Config, fixed: set[str] = frozenset()) -> SearchSpace:
    """What `slotfill tune` searches without --space, for the config's tagger; keys in
    `fixed` (set by overrides) stay as set. Every tagger: the learning rate, hidden size,
    embedding size (unless pretrained vectors fix it), the three dropouts and the batch
    size; Elman and Jordan RNNs also their nonlinearity and context window."""
    model = cfg.model
    spec: dict[str, Any] = {
        "train.lr": {"low": 3.0e-4, "high": 3.0e-3, "log": True},
        "model.hidden_size": {"low": 64, "high": 384, "step": 32},
        "model.embedding_dim": [50, 100, 200],
        "model.embedding_dropout": {"low": 0.0, "high": 0.5},
        "model.output_dropout": {"low": 0.0, "high": 0.5},
        "model.word_dropout": {"low": 0.0, "high": 0.5},
        "train.batch_size": [16, 32, 64],
    }
    if model.embeddings is not None:
        del spec["model.embedding_dim"]  # the vectors file's dimension
    if model.type in ("rnn", "jordan"):
        spec["model.nonlinearity"] = ["tanh", "relu"]
        spec["model.context_window"] = {"low": 0, "high": 4}
    spec = {key: value for key, value in spec.items() if key not in fixed}
    return parse_space(spec, f"the default space for {model.type}")


# ---------------------------------------------------------------- reading a file

def read_space(path: Path) -> SearchSpace:
    """A search space file, validated: every problem in one ConfigError."""
    path = Path(path)
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read search space {path}", exc.strerror or str(exc)) \
            from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"Malformed YAML in {path}{where}",
                          str(getattr(exc, "problem", None) or exc)) from None
    return parse_space(raw, str(path))


def parse_space(raw: Any, source: str) -> SearchSpace:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"Invalid search space {source}",
                          "expected a mapping of config keys to ranges or choices, e.g.\n"
                          "  train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n"
                          "  model.head: [softmax, crf]")
    problems: list[str] = []
    params = []
    for key, spec in _entries(raw):
        param = _param(key, spec, problems)
        if param is not None:
            params.append(param)
    if problems:
        raise ConfigError(f"Invalid search space {source}", "\n".join(problems))
    return SearchSpace(tuple(params), source)


def _entries(raw: dict):
    """(dotted key, spec) pairs; a section's mapping of keys is read as its keys."""
    for key, spec in raw.items():
        key = str(key)
        if key in SECTIONS and isinstance(spec, dict) and not set(spec) & set(RANGE_FIELDS):
            for sub, sub_spec in spec.items():
                yield f"{key}.{sub}", sub_spec
        else:
            yield key, spec


def _param(key: str, spec: Any, problems: list[str]) -> Param | None:
    if key not in all_keys():
        problems.append(setting_problem(key, None))  # unknown, with the nearest valid key
        return None
    if isinstance(spec, list):
        return _choices(key, spec, problems)
    if isinstance(spec, dict):
        return _range(key, spec, problems)
    problems.append(f"{key}: expected a range {{low: ..., high: ...}} or a list of choices, "
                    f"got {spec!r}; a fixed value belongs in the config or an override")
    return None


def _choices(key: str, spec: list, problems: list[str]) -> Param | None:
    before = len(problems)
    if len(spec) < 2:
        problems.append(f"{key}: give two or more choices, got {spec!r}; a fixed value "
                        "belongs in the config or an override")
    for value in spec:
        if value is not None and not isinstance(value, (bool, int, float, str)):
            problems.append(f"{key}: a choice must be a single value, got {value!r}")
        elif (problem := setting_problem(key, value)) is not None:
            problems.append(f"{problem} (a choice)")
    if len({repr(v) for v in spec}) < len(spec):
        problems.append(f"{key}: the choices repeat a value: {spec!r}")
    return Param(key, choices=tuple(spec)) if len(problems) == before else None


def _range(key: str, spec: dict, problems: list[str]) -> Param | None:
    before = len(problems)
    kind = _field_type(key)
    if kind not in (int, float):
        problems.append(f"{key}: a range needs a number-valued key; give a list of choices, "
                        "e.g. [a, b]")
        return None
    for field in spec:
        if field not in RANGE_FIELDS:
            problems.append(f"{key}: unknown field {field!r} in a range (a range has low, "
                            "high, and optionally step or log)")
    if "low" not in spec or "high" not in spec:
        problems.append(f"{key}: a range needs both low and high")
        return None
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    name = "an integer" if kind is int else "a number"
    for field, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and not _is(value, kind):
            problems.append(f"{key}: {field} must be {name}, got {value!r}")
    if not isinstance(log, bool):
        problems.append(f"{key}: log must be true or false, got {log!r}")
    if len(problems) > before:
        return None
    if low >= high:
        problems.append(f"{key}: low ({low}) must be below high ({high})")
    if log and low <= 0:
        problems.append(f"{key}: a log range needs low > 0, got {low}")
    if log and step is not None:
        problems.append(f"{key}: step and log cannot be combined")
    if step is not None:
        if step <= 0:
            problems.append(f"{key}: step must be above 0, got {step}")
        elif not _multiple(high - low, step):
            problems.append(f"{key}: high - low ({high - low:g}) must be a multiple of step "
                            f"({step:g})")
    for field, value in (("low", low), ("high", high)):
        if (problem := setting_problem(key, value)) is not None:
            problems.append(f"{problem} (the range's {field})")
    if len(problems) > before:
        return None
    convert = int if kind is int else float
    return Param(key, convert(low), convert(high), None if step is None else convert(step),
                 log)


def _field_type(key: str) -> type:
    """The type of a config key's values (Optional stripped)."""
    section, _, name = key.partition(".")
    hint = typing.get_type_hints(SECTIONS[section])[name]
    return next((a for a in typing.get_args(hint) if a is not type(None)), hint)


def _is(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind is int else isinstance(value, (int, float))


def _multiple(span: float, step: float) -> bool:
    ratio = span / step
    return math.isclose(ratio, round(ratio), abs_tol=1e-9)


def _text(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) \
        else str(value)
