"""Multi-head scaled dot-product attention as ONNX nodes, for the graphs of slotfill's
attention layer (onnx_graph.py) and of BERT encoders (onnx_bert.py)."""

from __future__ import annotations

import math


def multi_head(g, x: str, query, key, value, heads: int, keys: str,
               fill: float) -> str:
    """Scaled dot-product attention of `heads` heads over (B, T, D) states `x`, with the
    linear layers `query`, `key` and `value`; key positions where `keys` (B, 1, 1, T) is
    False score `fill`. Returns the heads' contexts joined again, (B, T, D)."""
    D = query.in_features
    d = D // heads

    def split(linear, perm):  # (B, T, D) -> (B, h, T, d), or for keys (B, h, d, T)
        return g("Transpose", g("Reshape", g.linear(linear, x), g.ints(0, 0, heads, d)),
                 perm=perm)
    q, k, v = split(query, [0, 2, 1, 3]), split(key, [0, 2, 3, 1]), split(value, [0, 2, 1, 3])
    scores = g("Div", g("MatMul", q, k), g.const(math.sqrt(d)))  # (B, h, T, T)
    scores = g("Where", keys, scores, g.const(fill))
    context = g("MatMul", g("Softmax", scores, axis=3), v)  # (B, h, T, d)
    return g("Reshape", g("Transpose", context, perm=[0, 2, 1, 3]), g.ints(0, 0, D))
