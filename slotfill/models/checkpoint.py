"""One self-contained checkpoint file: config, vocabularies, weights, format and versions.

Loading uses `torch.load(weights_only=True)`, which unpickles only tensors and plain
containers, so a crafted file cannot run code. Writes are atomic: a temporary file in
the same directory, flushed and fsynced, then renamed over the target.
"""

from __future__ import annotations

import ctypes
import hashlib
import pickle
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slotfill import __version__
from slotfill.atomic import atomic_write
from slotfill.config import Config
from slotfill.data.vocab import Vocabs
from slotfill.errors import CheckpointError, ConfigError
from slotfill.models import build_model
from slotfill.models.quantization import dequantize_state, quantize_state, use_int8_kernels

FORMAT = "slotfill-checkpoint"
FORMAT_VERSION = 3  # 2: ensembles (`members`); 3: int8 weights (`quantization`)
FLOAT_VERSION = 2  # what a float checkpoint is written as: older slotfill reads it
_SEQ2SEQ_DECODER = ("tag_embedding.", "init.", "cell.", "attention.", "out.")


@dataclass
class Checkpoint:
    config: Config
    vocabs: Vocabs
    model_state: dict[str, torch.Tensor]
    meta: dict[str, Any]  # epoch, dev scores, ...
    training_state: dict[str, Any] | None  # optimiser etc., in last.pt only
    versions: dict[str, str]
    path: Path
    members: list[Config] | None = None  # an ensemble's member configs
    quantization: dict[str, Any] | None = None  # int8 weights: quantization.plan

    @property
    def predicts_intents(self) -> bool:
        return any(c.model.intent for c in self.members or [self.config])

    def require_float(self, use: str, detail: str) -> None:
        """Refuse int8 weights (`slotfill quantize`) where training needs float ones."""
        if self.quantization is not None:
            source = self.quantization.get("source") or "the float run it came from"
            raise CheckpointError(f"{use}: {self.path} holds int8 weights (slotfill "
                                  f"quantize)", f"{detail}; use the float run it was "
                                  f"quantized from instead: {source}")

    def build_model(self, device: torch.device | str = "cpu") -> torch.nn.Module:
        """The tagger (an Ensemble for an ensemble's file) with its weights, in eval mode."""
        from slotfill.models.ensemble import Ensemble

        model = (Ensemble(self.members, self.vocabs) if self.members
                 else build_model(self.config.model, self.vocabs))
        state = self.model_state
        if self.quantization is not None:
            state = dequantize_state(state, self.quantization)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"Checkpoint {self.path} does not match its config",
                                  str(exc).splitlines()[0]) from None
        model = model.to(device).eval()
        if self.quantization is not None and torch.device(device).type == "cpu":
            use_int8_kernels(model, self.quantization)  # (a GPU runs the float weights)
        return model


def save_checkpoint(path: Path, model: torch.nn.Module, config: Config, vocabs: Vocabs,
                    meta: dict[str, Any], training_state: dict[str, Any] | None = None,
                    quantization: dict[str, Any] | None = None) -> None:
    """`quantization` (quantization.plan of `model`): store its weights as int8."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if quantization is not None:
        state = quantize_state(state, quantization)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION if quantization is not None else FLOAT_VERSION,
        "versions": {"slotfill": __version__, "torch": str(torch.__version__),
                     "python": platform.python_version()},
        "config": config.to_dict(),
        "vocabs": vocabs.to_dict(),
        "model": state,
        "weights_checksum": fingerprint(state),
        "meta": meta,
        "training": training_state,
    }
    if quantization is not None:
        payload["quantization"] = quantization
    configs = getattr(model, "configs", None)  # an Ensemble's members
    if configs is not None:
        payload["members"] = [c.to_dict() for c in configs]
    atomic_write(path, lambda f: torch.save(payload, f))


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the weights' names, shapes, types and bytes: torch.load does not notice
    bytes damaged inside a tensor, so load_checkpoint compares this."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        # the tensor's memory as bytes, one copy, without NumPy
        digest.update(ctypes.string_at(tensor.data_ptr(), tensor.numel() * tensor.element_size()))
    return digest.hexdigest()


def transfer_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Start `model` from another model's weights (`train.init`). Its vocabularies extend
    the other's (same ids, new entries appended), so each parameter is either the same
    shape, copied whole, or larger along the vocabulary axes: the old entries are copied
    into its leading block and the new rows keep their fresh initialisation. Buffers (the
    CRF's transition masks) follow this model's own tags."""
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            if name in params:
                params[name][tuple(slice(0, n) for n in value.shape)].copy_(value)


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint not found: {path}",
                              "pass a checkpoint file or a run directory with --model")
    not_ours = CheckpointError(f"{path} is not a slotfill checkpoint",
                               "expected a best.pt or last.pt written by `slotfill train`")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # torch.save's zip container
            raise not_ours
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = next((line.strip() for line in str(exc).splitlines()
                       if "Unsupported" in line), "")
        raise CheckpointError(
            f"Refused to load {path}: it contains objects other than tensors and plain data",
            "slotfill never runs code from a checkpoint; a file written by `slotfill train` "
            f"holds only tensors and plain data. {reason[:300]}".strip()) from None
    except Exception as exc:  # any failure to parse untrusted bytes: a damaged file
        raise CheckpointError(f"Cannot read checkpoint {path}: the file is truncated or "
                              "corrupted", f"{type(exc).__name__}: {str(exc)[:300]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise not_ours
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}; this slotfill "
            f"({__version__}) reads format {FORMAT_VERSION} and older",
            "upgrade slotfill to load it")
    try:
        config = Config.from_dict(payload["config"])
        vocabs = Vocabs.from_dict(payload["vocabs"])
        model_state = payload["model"]
        members = ([Config.from_dict(c) for c in payload["members"]]
                   if payload.get("members") else None)
    except ConfigError as exc:
        raise CheckpointError(f"Checkpoint {path} holds an invalid config", exc.detail) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"Checkpoint {path} is incomplete",
                              f"missing or malformed entry: {exc}") from None
    expected = payload.get("weights_checksum")  # absent in files before 0.2
    if expected is not None and fingerprint(model_state) != expected:
        raise CheckpointError(f"Cannot read checkpoint {path}: the file is truncated or "
                              "corrupted", "its weights do not match the checksum written "
                              "with them")
    if config.model.type == "seq2seq" and not any(k.startswith("head.") for k in model_state):
        # before 0.2 the decoder's weights sat at the top
        model_state = {("head." + k if k.startswith(_SEQ2SEQ_DECODER) else k): v
                       for k, v in model_state.items()}
    return Checkpoint(config, vocabs, model_state, payload.get("meta") or {},
                      payload.get("training"), payload.get("versions") or {}, path, members,
                      payload.get("quantization"))
