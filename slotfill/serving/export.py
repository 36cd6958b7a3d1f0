"""`slotfill export`: a trained tagger as an ONNX file that runs without slotfill's code.

The graph is written node by node from the model's weights (onnx.helper), not traced with
torch.onnx.export: in torch 2.13, torch.export fixes the sequence length of nn.LSTM (and of
a Viterbi written with torch's scan) to the example's length, and the TorchScript exporter
is deprecated. Writing the graph keeps it small, exact and independent of torch's version:
recurrences are ONNX RNN/LSTM/GRU nodes with `sequence_lens` (the backward direction then
reverses within each length, as encoders.reverse_padded does), and the Jordan recurrence
and Viterbi decoding are ONNX Scan loops. Every export is checked against PyTorch with
onnxruntime on a padded batch before anything is written.

Inputs: word_ids int64 (B, T), lengths int64 (B,), and for character models spellings
int64 (B, T) and chars int64 (S, C) as in batching.EncodedSplit. Outputs: tag_ids int64
(B, T), -1 past each length, and intent_ids int64 (B,) for intent models. Time runs along
axis 0 inside the graph, as ONNX recurrences expect.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from slotfill import __version__
from slotfill.atomic import atomic_write
from slotfill.data.batching import encode_split, make_batch
from slotfill.data.corpus import Example
from slotfill.data.tokenize import describe as describe_tokenization
from slotfill.errors import SlotfillError
from slotfill.models.checkpoint import load_checkpoint

EXPORTABLE = ("rnn", "lstm", "gru", "jordan")
OPSET, IR_VERSION = 17, 8  # opset 17: onnxruntime >= 1.13
_GATES = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}  # torch -> ONNX gate order
_OPS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
def export_onnx(model_path: Path, output: Path, force: bool = False) -> list[Path]:
    """Write `output` (the ONNX graph) and `<stem>.vocab.json` beside it; return both."""
    ckpt = load_checkpoint(model_path)
    cfg = ckpt.config.model
    if cfg.type not in EXPORTABLE:
        raise SlotfillError(f"cannot export {cfg.type} models to ONNX: exportable are "
                            f"{', '.join(EXPORTABLE)}",
                            "seq2seq decodes greedily, feeding back its own predictions "
                            "through attention; use `slotfill predict` or `serve` for it")
    output = Path(output)
    vocab_path = output.with_name(f"{output.stem}.vocab.json")
    for path in (output, vocab_path):
        if path.is_dir():
            raise SlotfillError(f"{path} is a directory", "pass a file name with --output, "
                                "e.g. --output model.onnx")
        if path.exists() and not force:
            raise SlotfillError(f"{path} exists already",
                                "pass --force to overwrite it, or choose another --output")

    model = ckpt.build_model("cpu")
    proto = build_graph(model, cfg)
    onnx.checker.check_model(proto, full_check=True)
    check_against_torch(proto, model, ckpt.vocabs)
    info = json.dumps(describe(ckpt, output.name), indent=1, ensure_ascii=False).encode()
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, lambda f: f.write(proto.SerializeToString()))
    atomic_write(vocab_path, lambda f: f.write(info))
    return [output, vocab_path]


class _Graph:
    """Collects nodes; constants go to the root graph, which subgraphs read by name."""

    def __init__(self, root: _Graph | None = None) -> None:
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


def build_graph(model, cfg) -> onnx.ModelProto:
    """The ONNX model for an eval-mode slotfill Tagger."""
    g = _Graph()
    words = g("Transpose", "word_ids", perm=[1, 0])  # (T, B)
    T = g("Gather", g("Shape", "word_ids"), g.const(1, np.int64))  # scalar
    steps = g("Unsqueeze", g("Range", g.const(0, np.int64), T, g.const(1, np.int64)),
              g.ints(1))  # (T, 1)
    lengths = g("Unsqueeze", "lengths", g.ints(0))  # (1, B)
    mask = g("Less", steps, lengths)  # (T, B)
    mask3 = g("Unsqueeze", mask, g.ints(2))  # (T, B, 1)
    seq_lens = g("Cast", "lengths", to=TensorProto.INT32)

    emb = model.embedder
    x = g("Gather", g.const(emb.word_table()), words)  # (T, B, E)
    if emb.chars is not None:
        spelled = g("Gather", _chars(g, emb.chars, "chars"),
                    g("Transpose", "spellings", perm=[1, 0]))  # (T, B, C)
        spelled = g("Mul", spelled, g("Cast", mask3, to=TensorProto.FLOAT))
        x = g("Concat", x, spelled, axis=2)
    if emb.window:  # words t-k .. t+k, zeros beyond the utterance
        k = emb.window
        padded = g("Pad", x, g.ints(k, 0, 0, k, 0, 0))  # (T + 2k, B, D)
        end = g("Unsqueeze", T, g.ints(0))
        x = g("Concat", *[g("Slice", padded, g.ints(j), g("Add", end, g.ints(j)), g.ints(0))
                          for j in range(2 * k + 1)], axis=2)

    for directions in model.encoder.layers:
        if cfg.type == "jordan":
            out = [_jordan(g, directions[0], x)]
            if len(directions) == 2:
                index = _reverse_index(g, steps, lengths, x)
                back = _jordan(g, directions[1], g("GatherElements", x, index, axis=0))
                out.append(g("GatherElements", back, _reverse_index(g, steps, lengths, back),
                             axis=0))
            x = out[0] if len(out) == 1 else g("Concat", *out, axis=2)
        else:
            rnn = directions[0].rnn
            x, _ = _recurrence(g, cfg.type, [_weights(d.rnn) for d in directions], x,
                               seq_lens, rnn.hidden_size, getattr(rnn, "nonlinearity", "tanh"))

    scores = g.linear(model.head.linear, x)  # (T, B, K)
    if cfg.head == "crf":
        tags = _viterbi(g, model.head, scores, steps, lengths)
    else:
        tags = g("ArgMax", scores, axis=2, keepdims=0)
    tags = g("Where", mask, tags, g.const(-1, np.int64))  # -1 past each length
    g.nodes.append(helper.make_node("Transpose", [tags], ["tag_ids"], perm=[1, 0]))
    outputs = [helper.make_tensor_value_info("tag_ids", TensorProto.INT64, ["B", "T"])]
    if model.intent_head is not None:
        pooled = g("ReduceMax", g("Where", mask3, x, g.const(-np.inf)), axes=[0], keepdims=0)
        g.nodes.append(helper.make_node("ArgMax", [g.linear(model.intent_head.linear, pooled)],
                                        ["intent_ids"], axis=1, keepdims=0))
        outputs.append(helper.make_tensor_value_info("intent_ids", TensorProto.INT64, ["B"]))
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, shape)
              for name, shape, _ in input_specs(cfg)]
    graph = helper.make_graph(g.nodes, "slotfill_tagger", inputs, outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="slotfill", producer_version=__version__)
    proto.ir_version = IR_VERSION
    return proto


def _weights(rnn, suffix: str = "") -> tuple:
    """(W_ih, W_hh, b_ih, b_hh) of one direction of a one-layer torch RNN/LSTM/GRU."""
    return tuple(getattr(rnn, f"{name}_l0{suffix}", None)
                 for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def _recurrence(g: _Graph, kind: str, directions: list[tuple], x: str, seq_lens: str,
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


def _reverse_index(g: _Graph, steps: str, lens: str, x: str) -> str:
    """GatherElements index reversing (T, B, H) `x` within each length (as
    encoders.reverse_padded); steps (T, 1), lens (1, B)."""
    index = g("Where", g("Less", steps, lens),
              g("Sub", g("Sub", lens, g.const(1, np.int64)), steps), steps)  # (T, B)
    return g("Expand", g("Unsqueeze", index, g.ints(2)), g("Shape", x))


def _jordan(g: _Graph, layer, x: str) -> str:
    """A JordanLayer over (T, B, I) as a Scan: h_t = act(W x_t + b + U y_{t-1})."""
    inputs = g.linear(layer.input, x)  # (T, B, H)
    K = layer.recurrent.in_features
    batch = g("Slice", g("Shape", x), g.ints(1), g.ints(2))
    y0 = g("ConstantOfShape", g("Concat", batch, g.ints(K), axis=0))  # zeros
    body = _Graph(g.root)
    y_prev, inp = body.input("y_prev", TensorProto.FLOAT), body.input("inp", TensorProto.FLOAT)
    h = body("Tanh" if layer.act is torch.tanh else "Relu",
             body("Add", inp, body("MatMul", y_prev, body.const(layer.recurrent.weight.T))))
    y = body("Softmax", body.linear(layer.output, h), axis=-1)
    _, states = g("Scan", y0, inputs, outputs=2, num_scan_inputs=1,
                  body=body.body((y, TensorProto.FLOAT), (h, TensorProto.FLOAT)))
    return states


def _viterbi(g: _Graph, crf, scores: str, steps: str, lengths: str) -> str:
    """CRFHead.decode as two Scans over time: max-plus forward with back-pointers (a
    position past a length carries its score and points to itself), then backtracking.
    Step t reads position t + 1; step T - 1 reads a position past every length, so that
    both loops run at least once (onnxruntime's Scan fails on zero iterations)."""
    trans = g.const(crf.transitions + crf.transition_mask)  # (K, K) [from, to]
    first = g("Gather", scores, g.const(0, np.int64))  # (B, K)
    best0 = g("Add", g.const(crf.start + crf.start_mask), first)
    one = g.ints(1)
    rest = g("Concat", g("Slice", scores, one, g.ints(2**62), g.ints(0)),
             g("Unsqueeze", first, g.ints(0)), axis=0)  # (T, B, K), last unread
    keep = g("Unsqueeze", g("Less", g("Add", steps, one), lengths), g.ints(2))

    fwd = _Graph(g.root)
    best, emit, keep_t = (fwd.input(n, t) for n, t in (("best", TensorProto.FLOAT), (
        "emit", TensorProto.FLOAT), ("keep", TensorProto.BOOL)))
    cand = fwd("Add", fwd("Unsqueeze", best, fwd.ints(2)), trans)  # (B, K, K)
    value = fwd("Add", fwd("ReduceMax", cand, axes=[1], keepdims=0), emit)
    pointer = fwd("ArgMax", cand, axis=1, keepdims=0)  # the first best, as torch.max
    itself = fwd.const(np.arange(len(crf.end)), np.int64)
    best, pointers = g("Scan", best0, rest, keep, outputs=2, num_scan_inputs=2, body=fwd.body(
        (fwd("Where", keep_t, value, best), TensorProto.FLOAT),
        (fwd("Where", keep_t, pointer, itself), TensorProto.INT64)))
    last = g("ArgMax", g("Add", best, g.const(crf.end)), axis=1, keepdims=0)  # (B,)

    back = _Graph(g.root)  # reads pointers t = T-1 .. 1: emits tag_t, carries tag_{t-1}
    tag, ptr = back.input("tag", TensorProto.INT64), back.input("ptr", TensorProto.INT64)
    picked = back("GatherElements", ptr, back("Unsqueeze", tag, back.ints(1)),
                  axis=1)
    tag0, later = g("Scan", last, pointers, outputs=2, num_scan_inputs=1,
                    scan_input_directions=[1], scan_output_directions=[1], body=back.body(
                        (back("Squeeze", picked, back.ints(1)), TensorProto.INT64),
                        (tag, TensorProto.INT64)))
    tags = g("Concat", g("Unsqueeze", tag0, g.ints(0)), later, axis=0)
    return g("Slice", tags, g.ints(0), g.ints(-1))  # (T, B)


def _chars(g: _Graph, enc, chars: str) -> str:
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


def input_specs(cfg) -> list[tuple[str, list[str], str]]:
    specs = [("word_ids", ["B", "T"], "word ids (index in `words`), 0 past each length"),
             ("lengths", ["B"], "number of tokens of each utterance, 1 .. T")]
    if cfg.char != "none":
        specs += [("spellings", ["B", "T"], "row of each token in `chars`, 0 past each length"),
                  ("chars", ["S", "C"], "character ids (index in `char_vocabulary`, 1 if "
                   "absent) of each distinct token, 0-padded; row 0 all zeros")]
    return specs


def describe(ckpt, model_file: str) -> dict:
    """Everything a runtime needs beside the graph: vocabularies, tokenisation, I/O."""
    cfg, vocabs = ckpt.config.model, ckpt.vocabs
    outputs = [{"name": "tag_ids", "dtype": "int64", "shape": ["B", "T"],
                "description": "index in `tags` of each token's best tag (Viterbi for a "
                               "CRF head), -1 past each length"}]
    if cfg.intent:
        outputs.append({"name": "intent_ids", "dtype": "int64", "shape": ["B"],
                        "description": "index in `intents` of each utterance's intent"})
    return {
        "format": "slotfill-onnx", "format_version": 1, "model_file": model_file,
        "model": ckpt.config.to_dict()["model"],
        "words": list(vocabs.words.itos), "padding_id": 0, "unknown_id": 1,
        "tags": list(vocabs.tags.itos),
        "intents": list(vocabs.intents.itos) if cfg.intent else None,
        "char_vocabulary": list(vocabs.chars.itos) if vocabs.chars else None,
        "tokenization": {**describe_tokenization(ckpt.config.data.tokenizer),
                         "then": "map each token to its index in `words`, 1 (<unk>) if "
                                 "absent; pad with 0"},
        "inputs": [{"name": n, "dtype": "int64", "shape": s, "description": d}
                   for n, s, d in input_specs(cfg)],
        "outputs": outputs,
        "versions": {"slotfill": __version__, "torch": str(torch.__version__),
                     "onnx": onnx.__version__, "opset": OPSET,
                     "trained_with": ckpt.versions},
    }


def feeds(split) -> dict[str, np.ndarray]:
    """onnxruntime inputs for an EncodedSplit (padded to its longest utterance)."""
    out = {"word_ids": split.words.numpy(), "lengths": split.lengths.numpy()}
    if split.chars is not None:
        out.update(spellings=split.spellings.numpy(), chars=split.chars.numpy())
    return out


def check_against_torch(proto, model, vocabs, seed: int = 0) -> None:
    """Tag a padded batch of random utterances with onnxruntime and with PyTorch; the tags
    (and intents) must agree. Never skipped: an unchecked graph is not written."""
    try:
        import onnxruntime
    except ImportError:
        raise SlotfillError("Export needs onnxruntime to check the graph against PyTorch",
                            'install the extra: pip install "slotfill[onnx]"') from None
    rng = np.random.default_rng(seed)
    pool = vocabs.words.itos[2:] + ["unseen-word"]
    examples = [Example(tuple(rng.choice(pool, size=n)), ()) for n in (7, 3, 1, 5, 7, 2)]
    split = encode_split(examples, vocabs)
    with torch.inference_mode():
        tags, intents = model.decode(make_batch(split, torch.arange(len(examples))))
    session = onnxruntime.InferenceSession(proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    got = session.run(None, feeds(split))
    real = (torch.arange(split.words.size(1)) < split.lengths.unsqueeze(1)).numpy()
    same = (got[0][real] == tags.numpy()[real]).all()
    if intents is not None:
        same = same and (got[1] == intents.numpy()).all()
    if not same:
        raise SlotfillError("The exported graph tags differently from the PyTorch model",
                            "this is a bug in slotfill's ONNX export; please report it "
                            "with the model's config")
