"""int8 weights for a trained tagger (`slotfill quantize`): what is stored, what runs.

The scheme is symmetric and per row: each output row r of a weight matrix W keeps
int8 values q = round(W / s_r), |q| <= 127, with one float32 scale s_r = max|W_r| / 127
(zero point 0). The checkpoint holds q (int8) and s (`<name>.scale`) as plain tensors, so
it loads with weights_only like any other; `plan` records which parameters are int8 and
why each other one stayed float. Re-quantizing dequantized weights gives the same q (the
largest |q| of a row is 127, so its scale comes out the same): loading builds the float
tagger, loads the dequantized weights and runs `use_int8_kernels`, which hands the same
int8 weights to torch's dynamic int8 kernels.

What runs in int8 (benchmarks/results/deploy.md has the measurements behind the choice):
nn.Linear layers (the transformer's included) and LSTM/GRU layers, as torch.ao's
dynamically quantized modules (fbgemm: activations quantized per call, int8 products).
torchao's int8 configs were no faster than float on CPU and ONNX Runtime needs an export;
torch.ao's Python API warns that it is deprecated, so we build its modules directly from
our own int8 weights (the file never depends on it) and fall back to float kernels over
the dequantized weights where torch no longer has them, or on a GPU.
Stored int8 but computed in float: embedding tables (a lookup; the largest share of a
small tagger's file), Elman recurrences (torch has no int8 kernel for them), character
CNNs and LSTMs, and the seq2seq decoder's cell.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import torch
from torch import Tensor, nn

SCHEME = "int8-symmetric-per-row"
DESCRIPTION = ("each weight row r stored as int8 q = round(W_r / s_r), |q| <= 127, "
               "s_r = max|W_r| / 127 (float32, in `<name>.scale`), zero point 0")
CRF_POTENTIALS = ("transitions", "start", "end")
_RECURRENT = (nn.LSTM, nn.GRU)  # the recurrences torch has dynamic int8 kernels for


def quantize_rows(weight: Tensor) -> tuple[Tensor, Tensor]:
    """(R, ...) float -> int8 values (R, ...) and float32 scales (R,)."""
    flat = weight.detach().float().reshape(weight.size(0), -1)  # (R, C)
    scale = flat.abs().amax(1).clamp_min(1e-12) / 127  # (R,)
    q = torch.round(flat / scale.unsqueeze(1)).clamp(-127, 127).to(torch.int8)
    return q.reshape(weight.shape), scale


def dequantize_rows(q: Tensor, scale: Tensor) -> Tensor:
    return (q.float().reshape(q.size(0), -1) * scale.unsqueeze(1)).reshape(q.shape)


def plan(model: nn.Module, source: str = "") -> dict[str, Any]:
    """Which parameters of `model` become int8, which modules run int8 kernels, and why
    each other parameter stays float (plain data, saved in the checkpoint)."""
    from slotfill.models.crf import CRFHead

    int8, kept, compute, float_compute = [], {}, [], {}
    owners = _owners(model)
    for name, param in model.named_parameters():
        module, attr = owners[name]
        if isinstance(module, CRFHead) and attr in CRF_POTENTIALS:
            kept[name] = "CRF potentials: a few KB, which Viterbi sums along the utterance"
        elif param.dim() < 2:
            kept[name] = ("bias: one value per output, added in float by the int8 kernels"
                          if attr.startswith("bias") else
                          "normalisation or scale vector: one value per feature, in float")
        else:
            int8.append(name)
            if not isinstance(module, _LAYERS):  # e.g. the pretrained word vectors
                float_compute[name] = "a matrix used as it is: stored int8, run in float"
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or (isinstance(module, _RECURRENT) and
                                             not _reads_packed(name)):
            compute.append(name)
        elif isinstance(module, _LAYERS) and not isinstance(module, nn.LayerNorm):
            float_compute[name] = _FLOAT_COMPUTE.get(type(module), "no int8 kernel in torch")
    return {"scheme": SCHEME, "description": DESCRIPTION, "source": source,
            "int8": int8, "int8_compute": compute, "float_compute": float_compute,
            "float": kept}


_LAYERS = (nn.Linear, nn.Embedding, nn.RNNBase, nn.RNNCellBase, nn.Conv1d, nn.LayerNorm)
_FLOAT_COMPUTE = {
    nn.Embedding: "a table lookup: stored int8, its rows dequantized when loaded",
    nn.RNN: "torch has no int8 kernel for an Elman recurrence: stored int8, run in float",
    nn.LSTM: "the character LSTM reads packed sequences: stored int8, run in float",
    nn.LSTMCell: "the decoder's cell steps one tag at a time: stored int8, run in float",
    nn.Conv1d: "torch has no dynamic int8 convolution: stored int8, run in float",
}


def _reads_packed(module_name: str) -> bool:
    return module_name.endswith("chars.lstm")  # CharEncoder: packed sequences


def _owners(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    return {f"{prefix}.{attr}" if prefix else attr: (module, attr)
            for prefix, module in model.named_modules()
            for attr, _ in module.named_parameters(recurse=False)}


def quantize_state(state: dict[str, Tensor], quantization: dict) -> dict[str, Tensor]:
    """A float state dict -> the stored one: each int8 parameter as int8 values plus
    `<name>.scale`; everything else as it is."""
    out = dict(state)
    for name in quantization["int8"]:
        out[name], out[f"{name}.scale"] = quantize_rows(state[name])
    return out


def dequantize_state(state: dict[str, Tensor], quantization: dict) -> dict[str, Tensor]:
    """The stored state -> float weights for the float tagger's load_state_dict."""
    out = {k: v for k, v in state.items()
           if not (k.endswith(".scale") and k[:-6] in quantization["int8"])}
    for name in quantization["int8"]:
        out[name] = dequantize_rows(state[name], state[f"{name}.scale"])
    return out


def int8_kernels_available() -> bool:
    """torch's dynamic int8 modules with x86's fast kernels (a torch without them, or an
    ARM build, runs an int8 run's dequantized weights in float)."""
    engines = set(torch.backends.quantized.supported_engines)
    try:
        found = importlib.util.find_spec("torch.ao.nn.quantized.dynamic") is not None
    except ImportError:
        found = False
    return found and bool(engines & {"x86", "fbgemm"})


def use_int8_kernels(model: nn.Module, quantization: dict) -> list[str]:
    """Swap the modules in quantization["int8_compute"] for torch's dynamic int8 ones,
    built from the same int8 values (their float weights must be the dequantized ones).
    Returns the names swapped (none where torch lacks the kernels)."""
    if not int8_kernels_available():
        return []
    from torch.ao.nn.quantized import dynamic as nnqd

    modules = dict(model.named_modules())
    swapped: dict[int, nn.Module] = {}
    with warnings.catch_warnings():
        # quantized tensors are deprecated in torch 2.13; they live only in memory here
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in quantization["int8_compute"]:
            module = modules[name]
            if id(module) in swapped:
                continue
            swapped[id(module)] = (_int8_linear(nnqd, module) if isinstance(module, nn.Linear)
                                   else _int8_recurrence(nnqd, module))
    for parent in model.modules():  # every reference, also a shared tag layer's
        for child_name, child in list(parent.named_children()):
            if id(child) in swapped:
                setattr(parent, child_name, swapped[id(child)])
    return list(quantization["int8_compute"])


def _qint8(weight: Tensor) -> Tensor:
    q, scale = quantize_rows(weight)
    return torch._make_per_channel_quantized_tensor(
        q, scale.double(), torch.zeros(q.size(0), dtype=torch.long), 0)


def _int8_linear(nnqd, layer: nn.Linear) -> nn.Module:
    new = nnqd.Linear(layer.in_features, layer.out_features, bias_=layer.bias is not None,
                      dtype=torch.qint8)
    bias = layer.bias.detach().float() if layer.bias is not None else None
    new.set_weight_bias(_qint8(layer.weight), bias)
    return new


def _int8_recurrence(nnqd, rnn: nn.RNNBase) -> nn.Module:
    kind = nnqd.LSTM if isinstance(rnn, nn.LSTM) else nnqd.GRU
    new = kind(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.bias, rnn.batch_first,
               0.0, rnn.bidirectional, dtype=torch.qint8)
    weights = {}
    for name in rnn._flat_weights_names:
        value = getattr(rnn, name)
        weights[name] = _qint8(value) if name.startswith("weight") else value.detach().float()
    if not rnn.bias:  # torch's int8 cells take zero biases
        for name in [n for n in weights if n.startswith("weight")]:
            weights["bias" + name[6:]] = torch.zeros(weights[name].size(0))
    new.set_weight_bias(weights)
    return new


def summary(quantization: dict, state: dict[str, Tensor]) -> list[str]:
    """Lines for people: what is int8 and what stayed float, with parameter counts."""
    int8 = sum(state[n].numel() for n in quantization["int8"])
    kept = sum(state[n].numel() for n in quantization["float"])
    lines = [f"int8 weights: {len(quantization['int8'])} matrices, {int8:,} values "
             f"({SCHEME})",
             f"int8 kernels: {_listed(quantization['int8_compute'])}"]
    for name, why in quantization["float_compute"].items():
        lines.append(f"float kernel: {name} ({why})")
    reasons: dict[str, list[str]] = {}
    for name, why in quantization["float"].items():
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        lines.append(f"float: {_listed(names)} ({why})")
    lines.append(f"float values: {kept:,} (every name in quantization.json)")
    return lines


def _listed(names: list[str], most: int = 4) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more
