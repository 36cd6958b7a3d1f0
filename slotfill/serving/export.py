"""`slotfill export`: a trained tagger as an ONNX file that runs without slotfill's code.

The graph is written node by node from the model's weights (onnx.helper), not traced with
torch.onnx.export: in torch 2.13, torch.export fixes the sequence length of nn.LSTM (and of
a Viterbi written with torch's scan) to the example's length, and the TorchScript exporter
is deprecated. Writing the graph keeps it small, exact and independent of torch's version:
recurrences are ONNX RNN/LSTM/GRU nodes with `sequence_lens` (the backward direction then
reverses within each length, as encoders.reverse_padded does), and the Jordan recurrence
and Viterbi decoding are ONNX Scan loops. Every export is checked against PyTorch with
onnxruntime on a padded batch before anything is written.

Inputs: word_ids int64 (B, T) (for a BERT encoder instead pieces (B, P), piece_lengths
(B,) and first (B, T): onnx_bert.py), lengths int64 (B,), for character models spellings
int64 (B, T) and chars int64 (S, C), and for models with gazetteers features float
(B, T, F), as in batching.EncodedSplit (the vocab file lists the gazetteers and how to compute their
features). Outputs: tag_ids int64 (B, T), -1 past each length, and intent_ids int64 (B,)
for intent models. An ensemble is one graph: its members' outputs are averaged inside.
The graph itself is written by onnx_graph.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from slotfill import __version__
from slotfill.atomic import atomic_write
from slotfill.data.batching import encode_split, make_batch
from slotfill.data.corpus import Example
from slotfill.data.tokenize import describe as describe_tokenization
from slotfill.errors import SlotfillError
from slotfill.models.checkpoint import load_checkpoint
from slotfill.serving.onnx_graph import Graph, shared_inputs, tagger_outputs, viterbi

EXPORTABLE = ("rnn", "lstm", "gru", "jordan", "none")
NOT_IN_GRAPHS = ("multi_intent", "intent_reads_slots")  # model keys the graphs lack yet
OPSET, IR_VERSION = 17, 8  # opset 17: onnxruntime >= 1.13


def export_onnx(model_path: Path, output: Path, force: bool = False,
                quantize: str | None = None) -> list[Path]:
    """Write `output` (the ONNX graph) and `<stem>.vocab.json` beside it; return both.
    `quantize="int8"`: the graph's weights int8 through ONNX Runtime (onnx_int8.py)."""
    ckpt = load_checkpoint(model_path)
    if ckpt.quantization is not None:
        raise SlotfillError(f"{ckpt.path} holds int8 weights (slotfill quantize)",
                            "export the float run it came from, with --quantize int8 for "
                            f"an int8 graph: {ckpt.quantization.get('source')}")
    configs = [c.model for c in ckpt.members or [ckpt.config]]
    if ckpt.vocabs.subwords is not None:
        from slotfill.serving.onnx_bert import check_supported

        check_supported(ckpt.vocabs.subwords.model_config)
    for cfg in configs:
        if cfg.type not in EXPORTABLE:
            raise SlotfillError(f"cannot export {cfg.type} models to ONNX: exportable are "
                                f"{', '.join(EXPORTABLE)}",
                                "seq2seq decodes greedily, feeding back its own predictions "
                                "through attention; use `slotfill predict` or `serve` for it")
        for key in NOT_IN_GRAPHS:
            if getattr(cfg, key):
                raise SlotfillError(f"cannot export models with model.{key} to ONNX yet",
                                    "the graph writer does not cover it; use `slotfill "
                                    "predict` or `serve` for this model")
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
    proto = build_graph(model, configs)
    onnx.checker.check_model(proto, full_check=True)
    checked = check_against_torch(proto, model, ckpt.vocabs)
    info = describe(ckpt, output.name, model)
    if quantize == "int8":
        from slotfill.serving.onnx_int8 import check_int8, float_initializers, quantize_graph

        proto = quantize_graph(proto)
        agreement = check_int8(proto, *checked)
        info["quantization"] = {
            "scheme": "int8 weights (per output channel), activations quantized as each "
                      "node runs: onnxruntime.quantization.quantize_dynamic",
            "check_agreement": round(agreement, 4), "float": float_initializers(proto)}
    info = json.dumps(info, indent=1, ensure_ascii=False).encode()
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, lambda f: f.write(proto.SerializeToString()))
    atomic_write(vocab_path, lambda f: f.write(info))
    return [output, vocab_path]


def build_graph(model, configs: list) -> onnx.ModelProto:
    """The ONNX model for an eval-mode slotfill Tagger, or an Ensemble (`configs`: the
    model configs of its members, or of the tagger alone)."""
    g = Graph()
    members = list(getattr(model, "members", [model]))
    inp = shared_inputs(g, "first" if _reads_pieces(members) else "word_ids")
    outs = [tagger_outputs(g, m, c, inp) for m, c in zip(members, configs)]
    crf = configs[0].head == "crf"
    if len(outs) == 1:
        scores = outs[0][0]  # (T, B, K)
    elif crf:  # the members' mean emissions
        scores = g("Mul", g("Sum", *[s for s, _ in outs]), g.const(1 / len(outs)))
    else:  # the members' summed tag probabilities (argmax as of their mean)
        scores = g("Sum", *[g("Softmax", s, axis=2) for s, _ in outs])
    if crf:
        potentials = model.potentials() if len(members) > 1 else model.head.potentials()
        tags = viterbi(g, potentials, scores, inp.steps, inp.lengths)
    else:
        tags = g("ArgMax", scores, axis=2, keepdims=0)
    tags = g("Where", inp.mask, tags, g.const(-1, np.int64))  # -1 past each length
    g.nodes.append(helper.make_node("Transpose", [tags], ["tag_ids"], perm=[1, 0]))
    outputs = [helper.make_tensor_value_info("tag_ids", TensorProto.INT64, ["B", "T"])]
    intents = [i for _, i in outs if i is not None]
    if intents:
        mean = intents[0] if len(intents) == 1 else g("Sum", *intents)
        g.nodes.append(helper.make_node("ArgMax", [mean], ["intent_ids"], axis=1, keepdims=0))
        outputs.append(helper.make_tensor_value_info("intent_ids", TensorProto.INT64, ["B"]))
    inputs = [helper.make_tensor_value_info(name, dtype, shape)
              for name, dtype, shape, _ in input_specs(model)]
    graph = helper.make_graph(g.nodes, "slotfill_tagger", inputs, outputs, g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="slotfill", producer_version=__version__)
    proto.ir_version = IR_VERSION
    return proto


def input_specs(model) -> list[tuple[str, int, list[str], str]]:
    """(name, element type, shape, description) of the graph's inputs for this model."""
    members = list(getattr(model, "members", [model]))
    int64 = TensorProto.INT64
    if _reads_pieces(members):
        specs = [("pieces", int64, ["B", "P"], "sub-word ids of each utterance, framed by "
                  "the special pieces, as `subwords.tokenizer` encodes the words; 0 past "
                  "each utterance's pieces"),
                 ("piece_lengths", int64, ["B"], "number of pieces of each utterance"),
                 ("first", int64, ["B", "T"], "index in `pieces` of each word's first "
                  "piece, 0 past each length")]
    else:
        specs = [("word_ids", int64, ["B", "T"],
                  "word ids (index in `words`), 0 past each length")]
    specs.append(("lengths", int64, ["B"], "number of tokens of each utterance, 1 .. T"))
    if any(getattr(m.embedder, "chars", None) is not None for m in members):
        specs += [("spellings", int64, ["B", "T"], "row of each token in `chars`, 0 past "
                   "each length"),
                  ("chars", int64, ["S", "C"], "character ids (index in `char_vocabulary`, "
                   "1 if absent) of each distinct token, 0-padded; row 0 all zeros")]
    if any(m.embedder.num_features for m in members):
        specs.append(("features", TensorProto.FLOAT, ["B", "T", "F"],
                      "gazetteer features: for each gazetteer in `gazetteers`, in order, "
                      "1.0 at B if an entry starts at the token, 1.0 at I if an entry "
                      "continues there, else 0.0; 0 past each length"))
    return specs


def _reads_pieces(members) -> bool:
    return any(hasattr(m.embedder, "transformer") for m in members)


def describe(ckpt, model_file: str, model) -> dict:
    """Everything a runtime needs beside the graph: vocabularies, gazetteers,
    tokenisation, I/O."""
    vocabs = ckpt.vocabs
    outputs = [{"name": "tag_ids", "dtype": "int64", "shape": ["B", "T"],
                "description": "index in `tags` of each token's best tag (Viterbi for a "
                               "CRF head), -1 past each length"}]
    if ckpt.predicts_intents:
        outputs.append({"name": "intent_ids", "dtype": "int64", "shape": ["B"],
                        "description": "index in `intents` of each utterance's intent"})
    gazetteers = vocabs.gazetteers
    return {
        "format": "slotfill-onnx", "format_version": 1, "model_file": model_file,
        "model": ckpt.config.to_dict()["model"],
        **({"members": [c.to_dict()["model"] for c in ckpt.members]} if ckpt.members else {}),
        "words": list(vocabs.words.itos), "padding_id": 0, "unknown_id": 1,
        "tags": list(vocabs.tags.itos),
        "intents": list(vocabs.intents.itos) if ckpt.predicts_intents else None,
        "char_vocabulary": list(vocabs.chars.itos) if vocabs.chars else None,
        "subwords": {"tokenizer": vocabs.subwords.tokenizer_json,
                     "encoding": "the words, already split, encoded as pre-tokenized input "
                                 "(special pieces added); `first`: each word's first piece"}
        if vocabs.subwords else None,
        "gazetteers": gazetteers.to_dict() if gazetteers else None,
        "gazetteer_matching": "an entry matches a run of tokens when each token, lowercased "
                              "and without trailing dots, equals the entry's word"
                              if gazetteers else None,
        "tokenization": {**describe_tokenization(ckpt.config.data.tokenizer),
                         "then": "map each token to its index in `words`, 1 (<unk>) if "
                                 "absent; pad with 0"},
        "inputs": [{"name": n, "dtype": "int64" if t == TensorProto.INT64 else "float32",
                    "shape": s, "description": d} for n, t, s, d in input_specs(model)],
        "outputs": outputs,
        "versions": {"slotfill": __version__, "torch": str(torch.__version__),
                     "onnx": onnx.__version__, "opset": OPSET,
                     "trained_with": ckpt.versions},
    }


def feeds(split) -> dict[str, np.ndarray]:
    """onnxruntime inputs for an EncodedSplit (padded to its longest utterance)."""
    out = {"word_ids": split.words.numpy(), "lengths": split.lengths.numpy()}
    if split.pieces is not None:  # a transformer reads pieces instead of word ids
        del out["word_ids"]
        out.update(pieces=split.pieces.numpy(), piece_lengths=split.piece_lengths.numpy(),
                   first=split.first.numpy())
    if split.chars is not None:
        out.update(spellings=split.spellings.numpy(), chars=split.chars.numpy())
    if split.features is not None:
        out["features"] = split.features.numpy()
    return out


def check_against_torch(proto, model, vocabs, seed: int = 0):
    """Tag a padded batch of random utterances with onnxruntime and with PyTorch; the tags
    (and intents) must agree. Never skipped: an unchecked graph is not written. Returns
    the graph's outputs, its inputs and the real tokens' mask (B, T)."""
    try:
        import onnxruntime
    except ImportError:
        raise SlotfillError("Export needs onnxruntime to check the graph against PyTorch",
                            'install the extra: pip install "slotfill[onnx]"') from None
    rng = np.random.default_rng(seed)
    pool = vocabs.words.itos[2:] + ["unseen-word"]
    examples = [Example(tuple(rng.choice(pool, size=n)), ()) for n in (7, 3, 1, 5, 7, 2)]
    for entries in (vocabs.gazetteers.lists.values() if vocabs.gazetteers else ()):
        examples.append(Example(("to", *entries[0], "on", *entries[-1]), ()))
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
    return got, feeds(split), real
