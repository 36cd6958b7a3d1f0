"""`slotfill export --quantize int8`: the checked float graph through ONNX Runtime's dynamic
quantization (onnxruntime.quantization.quantize_dynamic).

Weights of MatMul (the linear layers), Gather (embedding tables), LSTM/GRU and Conv nodes
become int8 (per output channel where ONNX Runtime allows it), activations are quantized
as each node runs. The Scan loops (Viterbi, Jordan recurrences) keep their float bodies,
and so does every small constant: `float_initializers` names what stayed float, and the
vocab file beside the graph records it. The int8 graph is run by onnxruntime on the same
padded batch as the float one before anything is written; its tags may differ from the
float graph's only on a few tokens (`MIN_AGREEMENT`).
"""

from __future__ import annotations

import logging
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from slotfill.errors import SlotfillError

MIN_AGREEMENT = 0.9  # share of the check batch's real tokens tagged as by the float graph
OP_TYPES = ["MatMul", "Gather", "LSTM", "GRU", "Conv"]


def quantize_graph(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The int8 version of a checked float graph."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        source.write_bytes(proto.SerializeToString())
        root.setLevel(logging.ERROR)  # its advice to run its pre-processing script first
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=OP_TYPES,
                             extra_options={"MatMulConstBOnly": True})
        finally:
            root.setLevel(level)
        quantized = onnx.load(target)
    onnx.checker.check_model(quantized, full_check=True)
    return quantized


def float_initializers(proto: onnx.ModelProto, smallest: int = 64) -> list[str]:
    """What stayed float: each float constant of at least `smallest` values, named by the
    nodes that read it and its shape, and the loop bodies, which are not quantized."""
    readers = defaultdict(set)
    for node in proto.graph.node:
        for name in node.input:
            readers[name].add(node.op_type)
    kept = []
    for tensor in proto.graph.initializer:
        size = int(np.prod(tensor.dims)) if tensor.dims else 1
        quantization_parameter = tensor.name.endswith(("_scale", "_zero_point"))
        if tensor.data_type == TensorProto.FLOAT and size >= smallest \
                and not quantization_parameter:
            shape = "x".join(map(str, tensor.dims))
            read_by = ", ".join(sorted(readers[tensor.name])) or "loop bodies"
            kept.append(f"{tensor.name} ({shape}, read by {read_by})")
    loops = sum(node.op_type == "Scan" for node in proto.graph.node)
    if loops:
        kept.append(f"{loops} Scan loop bodies (Viterbi decoding, Jordan recurrences): "
                    "ONNX Runtime quantizes no subgraph")
    return kept


def check_int8(quantized: onnx.ModelProto, float_outputs: list[np.ndarray],
               inputs: dict[str, np.ndarray], real: np.ndarray) -> float:
    """Run the int8 graph on the float graph's check batch; the share of real tokens it
    tags as the float graph did (it must be at least MIN_AGREEMENT)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(quantized.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    got = session.run(None, inputs)
    agreement = float((got[0][real] == float_outputs[0][real]).mean())
    if agreement < MIN_AGREEMENT or any(g.shape != f.shape for g, f in zip(got, float_outputs)):
        raise SlotfillError("The int8 graph tags too differently from the float one",
                            f"it agrees on {agreement:.0%} of the check batch's tokens "
                            f"(at least {MIN_AGREEMENT:.0%} expected); export without "
                            "--quantize, or use `slotfill quantize` for int8 in PyTorch")
    return agreement
