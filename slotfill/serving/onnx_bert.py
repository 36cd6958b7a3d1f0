"""The ONNX graph of a BERT encoder (model.transformer, e.g. all-MiniLM-L6-v2), written
node by node from the weights as the rest of the graph is (onnx_graph.py).

Inputs `pieces` (B, P) sub-word ids, `piece_lengths` (B,) and `first` (B, T), each word's
first piece, as batching.EncodedSplit holds them; the vocab file beside the graph carries
the tokenizer (`subwords.tokenizer`, a `tokenizers` JSON) that makes them. Output: the
word states (T, B, H), zeros past each length, as TransformerEmbedder gives them. Only
BERT's architecture (absolute positions, GELU, post-layer norm) is written; others are
refused before anything is written.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto

from slotfill.errors import SlotfillError
from slotfill.serving.onnx_attention import multi_head

SUPPORTED = {"model_type": ("bert",), "hidden_act": ("gelu",),
             "position_embedding_type": ("absolute", None)}


def check_supported(settings: dict) -> None:
    """Refuse transformer configurations the writer does not cover (settings: the
    transformer's configuration, as Subwords keeps it)."""
    for key, allowed in SUPPORTED.items():
        if settings.get(key) not in allowed:
            raise SlotfillError(
                f"cannot export a transformer with {key} {settings.get(key)!r} to ONNX",
                f"slotfill writes BERT encoders ({key}: {allowed[0]}); use `slotfill "
                "predict`, `serve` or `slotfill quantize` for this model")


def bert_word_states(g, embedder, inp) -> str:
    """TransformerEmbedder's output without the gazetteer features: (T, B, H)."""
    bert = embedder.transformer
    emb = bert.embeddings
    P = g("Gather", g("Shape", "pieces"), g.const(1, np.int64))  # scalar
    positions = g("Range", g.const(0, np.int64), P, g.const(1, np.int64))  # (P,)
    x = g("Add", g("Gather", g.const(emb.word_embeddings.weight), "pieces"),  # (B, P, H)
          g("Gather", g.const(emb.position_embeddings.weight), positions))
    x = g("Add", x, g.const(emb.token_type_embeddings.weight[0]))  # every piece: type 0
    x = _layer_norm(g, emb.LayerNorm, x)
    real = g("Less", g("Unsqueeze", positions, g.ints(0)),
             g("Unsqueeze", "piece_lengths", g.ints(1)))  # (B, P)
    keys = g("Unsqueeze", real, g.ints(1, 2))  # (B, 1, 1, P)
    for layer in bert.encoder.layer:
        x = _bert_layer(g, layer, x, keys, bert.config.num_attention_heads)
    shape = g("Concat", g("Shape", "first"), g.ints(bert.config.hidden_size), axis=0)
    index = g("Expand", g("Unsqueeze", "first", g.ints(2)), shape)  # (B, T, H)
    words = g("GatherElements", x, index, axis=1)  # (B, T, H): each word's first piece
    words = g("Transpose", words, perm=[1, 0, 2])  # (T, B, H)
    return g("Mul", words, g("Cast", inp.mask3, to=TensorProto.FLOAT))


def _layer_norm(g, norm, x: str) -> str:
    return g("LayerNormalization", x, g.const(norm.weight), g.const(norm.bias), axis=-1,
             epsilon=float(norm.eps))


def _bert_layer(g, layer, x: str, keys: str, heads: int) -> str:
    """One BertLayer over (B, P, H): self-attention, then the feed-forward block, each
    added to its input and normalised."""
    attention = layer.attention.self  # (padding scores float32's minimum, as BERT's)
    context = multi_head(g, x, attention.query, attention.key, attention.value, heads, keys,
                         float(np.finfo(np.float32).min))  # (B, P, H)
    out = layer.attention.output
    x = _layer_norm(g, out.LayerNorm, g("Add", g.linear(out.dense, context), x))
    hidden = g.linear(layer.intermediate.dense, x)  # (B, P, I), then exact GELU
    hidden = g("Mul", g("Mul", hidden, g.const(0.5)),
               g("Add", g("Erf", g("Div", hidden, g.const(math.sqrt(2.0)))), g.const(1.0)))
    return _layer_norm(g, layer.output.LayerNorm,
                       g("Add", g.linear(layer.output.dense, hidden), x))
