"""The ONNX graph of a slotfill tagger or ensemble, written node by node (see export.py).

`tagger_outputs` writes one Tagger reading the shared inputs (`Inputs`): embeddings,
characters, gazetteer features, windows, the recurrent layers, self-attention, the intent
head and the tag layer, twice with model.refine (the second pass reads the first pass's
decoded chunk starts); the helpers below write one part each. Time runs along axis 0, as
ONNX recurrences expect.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from onnx import TensorProto, helper, numpy_helper

from slotfill.serving.onnx_attention import multi_head

_GATES = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}  # torch -> ONNX gate order
_OPS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


class Graph:
    """Collects nodes; constants go to the root graph, which subgraphs read by name."""

    def __init__(self, root: Graph | None = None) -> None:
        self.root = root or self
        self.counter = root.counter if root else itertools.count()
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []

    def name(self, hint: str) -> str:
        return f"{hint}_{next(self.counter)}"

    def const(self, value, dtype=np.float32) -> str:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        name = self.name("const")
        self.root.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(list(values), np.int64)

    def __call__(self, op: str, *inputs: str, outputs: int = 1, **attrs):
        names = [self.name(op.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def linear(self, layer: torch.nn.Linear, x: str) -> str:
        y = self("MatMul", x, self.const(layer.weight.T))
        return y if layer.bias is None else self("Add", y, self.const(layer.bias))

    def input(self, hint: str, elem: int) -> str:
        """A new input of this (loop body) graph, of any shape."""
        name = self.name(hint)
        self.inputs.append(helper.make_tensor_value_info(name, elem, None))
        return name

    def body(self, *outputs: tuple[str, int]):
        """This graph as a loop body returning `outputs` (value, element type)."""
        names = [self("Identity", value) for value, _ in outputs]
        return helper.make_graph(self.nodes, self.name("body"), self.inputs, [
            helper.make_tensor_value_info(n, elem, None) for n, (_, elem) in zip(names, outputs)])


@dataclass
class Inputs:
    """Names of the graph's inputs and of what every member derives from them."""
    words: str  # (T, B) word ids
    T: str  # scalar: the padded length
    steps: str  # (T, 1) 0 .. T-1
    lengths: str  # (1, B)
    mask: str  # (T, B) True at real tokens
    mask3: str  # (T, B, 1)
    seq_lens: str  # (B,) int32, for ONNX recurrences


def shared_inputs(g: Graph, words_input: str = "word_ids") -> Inputs:
    """`words_input`: the (B, T) input that gives T: word_ids, or a transformer's first."""
    words = g("Transpose", words_input, perm=[1, 0])  # (T, B)
    T = g("Gather", g("Shape", words_input), g.const(1, np.int64))  # scalar
    steps = g("Unsqueeze", g("Range", g.const(0, np.int64), T, g.const(1, np.int64)),
              g.ints(1))  # (T, 1)
    lengths = g("Unsqueeze", "lengths", g.ints(0))  # (1, B)
    mask = g("Less", steps, lengths)  # (T, B)
    return Inputs(words, T, steps, lengths, mask, g("Unsqueeze", mask, g.ints(2)),
                  g("Cast", "lengths", to=TensorProto.INT32))


def tagger_outputs(g: Graph, model, cfg, inp: Inputs) -> tuple[str, str | None]:
    """One Tagger's tag scores (T, B, K) (emissions, or softmax scores) and its intent
    distribution (B, I), or None without an intent head; of the second pass with
    model.refine, which reads the chunk starts of the first pass's decoded tags."""
    x = _embedded(g, model, inp)
    if model.refine is None:
        return _pass(g, model, cfg, inp, x)
    first, _ = _pass(g, model, cfg, inp, _with_hints(g, model.refine, x, None, inp))
    if cfg.head == "crf":
        tags = viterbi(g, model.head.potentials(), first, inp.steps, inp.lengths)
    else:
        tags = g("ArgMax", first, axis=2, keepdims=0)  # (T, B)
    return _pass(g, model, cfg, inp, _with_hints(g, model.refine, x, tags, inp))


def _with_hints(g: Graph, refine, x: str, tags: str | None, inp: Inputs) -> str:
    """The embedded words (T, B, D) with refine.ChunkStarts' embedding of the chunk
    starts of `tags` (T, B) beside them (`tags` None: the first pass, none yet)."""
    none = g.const(refine.none, np.int64)
    if tags is None:
        hints = g("Expand", none, g("Shape", inp.mask))  # (T, B)
    else:
        kind = g("Gather", g.const(refine.kinds, np.int64), tags)  # (T, B), -1 outside chunks
        K = refine.continues.size(0)
        previous = g("Concat", g("Slice", tags, g.ints(0), g.ints(1), g.ints(0)),
                     g("Slice", tags, g.ints(0), g.ints(-1), g.ints(0)), axis=0)
        pair = g("Add", g("Mul", previous, g.const(K, np.int64)), tags)  # (T, B)
        goes_on = g("Gather", g.const(refine.continues.flatten(), np.bool_), pair)
        first = g("Equal", inp.steps, g.const(0, np.int64))  # (T, 1): nothing before
        begins = g("And", g("GreaterOrEqual", kind, g.const(0, np.int64)),
                   g("Or", first, g("Not", goes_on)))
        hints = g("Where", g("And", begins, inp.mask), kind, none)
    embedded = g("Gather", g.const(refine.embedding.weight), hints)  # (T, B, HINT_SIZE)
    embedded = g("Mul", embedded, g("Cast", inp.mask3, to=TensorProto.FLOAT))
    return g("Concat", x, embedded, axis=2)


def _embedded(g: Graph, model, inp: Inputs) -> str:
    """The embedder's output (T, B, D): words, characters, gazetteer features, window."""
    emb = model.embedder
    if hasattr(emb, "transformer"):  # a pretrained transformer reads the pieces
        from slotfill.serving.onnx_bert import bert_word_states

        x = bert_word_states(g, emb, inp)  # (T, B, H)
        if emb.num_features:
            x = g("Concat", x, g("Transpose", "features", perm=[1, 0, 2]), axis=2)
        return x
    x = g("Gather", g.const(emb.word_table()), inp.words)  # (T, B, E)
    if emb.chars is not None:
        spelled = g("Gather", _chars(g, emb.chars, "chars"),
                    g("Transpose", "spellings", perm=[1, 0]))  # (T, B, C)
        spelled = g("Mul", spelled, g("Cast", inp.mask3, to=TensorProto.FLOAT))
        x = g("Concat", x, spelled, axis=2)
    if emb.num_features:  # gazetteer features (T, B, F)
        x = g("Concat", x, g("Transpose", "features", perm=[1, 0, 2]), axis=2)
    if emb.window:  # words t-k .. t+k, zeros beyond the utterance
        k = emb.window
        padded = g("Pad", x, g.ints(k, 0, 0, k, 0, 0))  # (T + 2k, B, D)
        end = g("Unsqueeze", inp.T, g.ints(0))
        x = g("Concat", *[g("Slice", padded, g.ints(j), g("Add", end, g.ints(j)), g.ints(0))
                          for j in range(2 * k + 1)], axis=2)
    return x


def _pass(g: Graph, model, cfg, inp: Inputs, x: str) -> tuple[str, str | None]:
    """The encoder, self-attention, intent head and tag layer over the encoder's input
    (T, B, D): tag scores (T, B, K) and the intent distribution (B, I) or None."""
    for directions in getattr(model.encoder, "layers", ()):  # none for model.type none
        if cfg.type == "jordan":
            out = [_jordan(g, directions[0], x)]
            if len(directions) == 2:
                index = _reverse_index(g, inp.steps, inp.lengths, x)
                back = _jordan(g, directions[1], g("GatherElements", x, index, axis=0))
                out.append(g("GatherElements", back,
                             _reverse_index(g, inp.steps, inp.lengths, back), axis=0))
            x = out[0] if len(out) == 1 else g("Concat", *out, axis=2)
        else:
            rnn = directions[0].rnn
            x, _ = _recurrence(g, cfg.type, [_weights(d.rnn) for d in directions], x,
                               inp.seq_lens, rnn.hidden_size,
                               getattr(rnn, "nonlinearity", "tanh"))
    if model.attention is not None:
        x = g("Concat", x, _attention(g, model.attention, x, inp.mask), axis=2)

    intents = None
    if model.intent_head is not None:
        head = model.intent_head
        if head.per_token:  # each word's vote, averaged over the real words
            votes = g("Softmax", g.linear(head.linear, x), axis=2)  # (T, B, I)
            real = g("Cast", inp.mask3, to=TensorProto.FLOAT)
            intents = g("Div", g("ReduceSum", g("Mul", votes, real), g.ints(0), keepdims=0),
                        g("ReduceSum", real, g.ints(0), keepdims=0))  # (B, I)
        else:
            pooled = g("ReduceMax", g("Where", inp.mask3, x, g.const(-np.inf)), axes=[0],
                       keepdims=0)
            intents = g("Softmax", g.linear(head.linear, pooled), axis=1)  # (B, I)
        if model.intent_to_slots:  # each word's vote, or the utterance's at every word
            shape = g("Concat", g("Slice", g("Shape", x), g.ints(0), g.ints(2)),
                      g.ints(head.linear.out_features), axis=0)  # (T, B, I)
            seen = votes if head.per_token else g("Expand", g("Unsqueeze", intents,
                                                              g.ints(0)), shape)
            x = g("Concat", x, seen, axis=2)
    return g.linear(model.head.linear, x), intents


def _attention(g: Graph, layer, x: str, mask: str) -> str:
    """SelfAttention over (T, B, D) states; padded positions (mask (T, B) False) are never
    read. Returns (T, B, D)."""
    xb = g("Transpose", x, perm=[1, 0, 2])  # (B, T, D)
    keys = g("Unsqueeze", g("Transpose", mask, perm=[1, 0]), g.ints(1, 2))  # (B, 1, 1, T)
    summary = multi_head(g, xb, layer.query, layer.key, layer.value, layer.heads, keys,
                         -np.inf)
    return g("Transpose", g.linear(layer.out, summary), perm=[1, 0, 2])  # (T, B, D)


def _weights(rnn, suffix: str = "") -> tuple:
    """(W_ih, W_hh, b_ih, b_hh) of one direction of a one-layer torch RNN/LSTM/GRU."""
    return tuple(getattr(rnn, f"{name}_l0{suffix}", None)
                 for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def _recurrence(g: Graph, kind: str, directions: list[tuple], x: str, seq_lens: str,
                hidden: int, activation: str = "tanh") -> tuple[str, str]:
    """One torch RNN/LSTM/GRU layer, weights per direction, as one ONNX node over (T, B, I).
    Returns its states (T, B, D*H), forward then backward, and its final states (D, B, H)."""
    order = _GATES[kind]

    def gates(t: torch.Tensor) -> torch.Tensor:
        chunks = t.chunk(len(order))
        return torch.cat([chunks[i] for i in order])
    W = torch.stack([gates(w_ih) for w_ih, _, _, _ in directions])
    R = torch.stack([gates(w_hh) for _, w_hh, _, _ in directions])
    B = (torch.stack([torch.cat([gates(b_ih), gates(b_hh)]) for _, _, b_ih, b_hh in directions])
         if directions[0][2] is not None else torch.zeros(len(directions), 2 * W.size(1)))
    attrs = {"hidden_size": hidden,
             "direction": "bidirectional" if len(directions) == 2 else "forward"}
    if kind == "rnn":
        attrs["activations"] = [activation.capitalize()] * len(directions)
    if kind == "gru":
        attrs["linear_before_reset"] = 1  # torch applies the reset gate after the product
    y, y_h = g(_OPS[kind], x, g.const(W), g.const(R), g.const(B), seq_lens, outputs=2,
               **attrs)  # y: (T, D, B, H)
    y = g("Transpose", y, perm=[0, 2, 1, 3])
    return g("Reshape", y, g.ints(0, 0, -1)), y_h


def _reverse_index(g: Graph, steps: str, lens: str, x: str) -> str:
    """GatherElements index reversing (T, B, H) `x` within each length (as
    encoders.reverse_padded); steps (T, 1), lens (1, B)."""
    index = g("Where", g("Less", steps, lens),
              g("Sub", g("Sub", lens, g.const(1, np.int64)), steps), steps)  # (T, B)
    return g("Expand", g("Unsqueeze", index, g.ints(2)), g("Shape", x))


def _jordan(g: Graph, layer, x: str) -> str:
    """A JordanLayer over (T, B, I) as a Scan: h_t = act(W x_t + b + U y_{t-1})."""
    inputs = g.linear(layer.input, x)  # (T, B, H)
    K = layer.recurrent.in_features
    batch = g("Slice", g("Shape", x), g.ints(1), g.ints(2))
    y0 = g("ConstantOfShape", g("Concat", batch, g.ints(K), axis=0))  # zeros
    body = Graph(g.root)
    y_prev, inp = body.input("y_prev", TensorProto.FLOAT), body.input("inp", TensorProto.FLOAT)
    h = body("Tanh" if layer.act is torch.tanh else "Relu",
             body("Add", inp, body("MatMul", y_prev, body.const(layer.recurrent.weight.T))))
    y = body("Softmax", body.linear(layer.output, h), axis=-1)
    _, states = g("Scan", y0, inputs, outputs=2, num_scan_inputs=1,
                  body=body.body((y, TensorProto.FLOAT), (h, TensorProto.FLOAT)))
    return states


def viterbi(g: Graph, potentials: tuple, scores: str, steps: str, lengths: str) -> str:
    """crf.viterbi for potentials (transitions [from, to], start, end) as two Scans over
    time: max-plus forward with back-pointers (a
    position past a length carries its score and points to itself), then backtracking.
    Step t reads position t + 1; step T - 1 reads a position past every length, so that
    both loops run at least once (onnxruntime's Scan fails on zero iterations)."""
    transitions, start, end = potentials
    trans = g.const(transitions)  # (K, K) [from, to]
    first = g("Gather", scores, g.const(0, np.int64))  # (B, K)
    best0 = g("Add", g.const(start), first)
    one = g.ints(1)
    rest = g("Concat", g("Slice", scores, one, g.ints(2**62), g.ints(0)),
             g("Unsqueeze", first, g.ints(0)), axis=0)  # (T, B, K), last unread
    keep = g("Unsqueeze", g("Less", g("Add", steps, one), lengths), g.ints(2))

    fwd = Graph(g.root)
    best, emit, keep_t = (fwd.input(n, t) for n, t in (("best", TensorProto.FLOAT), (
        "emit", TensorProto.FLOAT), ("keep", TensorProto.BOOL)))
    cand = fwd("Add", fwd("Unsqueeze", best, fwd.ints(2)), trans)  # (B, K, K)
    value = fwd("Add", fwd("ReduceMax", cand, axes=[1], keepdims=0), emit)
    pointer = fwd("ArgMax", cand, axis=1, keepdims=0)  # the first best, as torch.max
    itself = fwd.const(np.arange(len(end)), np.int64)
    best, pointers = g("Scan", best0, rest, keep, outputs=2, num_scan_inputs=2, body=fwd.body(
        (fwd("Where", keep_t, value, best), TensorProto.FLOAT),
        (fwd("Where", keep_t, pointer, itself), TensorProto.INT64)))
    last = g("ArgMax", g("Add", best, g.const(end)), axis=1, keepdims=0)  # (B,)

    back = Graph(g.root)  # reads pointers t = T-1 .. 1: emits tag_t, carries tag_{t-1}
    tag, ptr = back.input("tag", TensorProto.INT64), back.input("ptr", TensorProto.INT64)
    picked = back("GatherElements", ptr, back("Unsqueeze", tag, back.ints(1)),
                  axis=1)
    tag0, later = g("Scan", last, pointers, outputs=2, num_scan_inputs=1,
                    scan_input_directions=[1], scan_output_directions=[1], body=back.body(
                        (back("Squeeze", picked, back.ints(1)), TensorProto.INT64),
                        (tag, TensorProto.INT64)))
    tags = g("Concat", g("Unsqueeze", tag0, g.ints(0)), later, axis=0)
    return g("Slice", tags, g.ints(0), g.ints(-1))  # (T, B)


def _chars(g: Graph, enc, chars: str) -> str:
    """CharEncoder over the (S, C) spelling table -> (S, size)."""
    x = g("Gather", g.const(enc.embedding.weight), chars)  # (S, C, Dc)
    real = g("Not", g("Equal", chars, g.const(0, np.int64)))  # (S, C)
    if enc.kind == "cnn":
        h = g("Conv", g("Transpose", x, perm=[0, 2, 1]), g.const(enc.conv.weight),
              g.const(enc.conv.bias), kernel_shape=[3], pads=[1, 1])  # (S, size, C)
        h = g("Where", g("Unsqueeze", real, g.ints(1)), h, g.const(-np.inf))
        h = g("ReduceMax", h, axes=[2], keepdims=0)
        some = g("Greater", g("ReduceMax", g("Cast", real, to=TensorProto.FLOAT), axes=[1],
                              keepdims=1), g.const(0.0))  # (S, 1)
        return g("Where", some, h, g.const(0.0))
    lstm = enc.lstm
    lens = g("Max", g("ReduceSum", g("Cast", real, to=TensorProto.INT32), g.ints(1),
                      keepdims=0), g.const(1, np.int32))
    _, h = _recurrence(g, "lstm", [_weights(lstm), _weights(lstm, "_reverse")],
                       g("Transpose", x, perm=[1, 0, 2]), lens, lstm.hidden_size)
    return g("Reshape", g("Transpose", h, perm=[1, 0, 2]), g.ints(0, -1))


