"""int8 runs (`slotfill quantize`) and int8 ONNX graphs (`slotfill export --quantize
int8`): what is stored, that every command loads it, that it tags as the float model
does, what stays float, and the refusals."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from conftest import CONFIGS, TINY, tiny_overrides, transformer_overrides
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.config import load_config
from slotfill.data.corpus import read_corpus
from slotfill.data.vocab import Vocabs
from slotfill.models import build_model
from slotfill.models.checkpoint import load_checkpoint, save_checkpoint
from slotfill.models.quantization import dequantize_rows, plan, quantize_rows

runner = CliRunner()
CORPUS = read_corpus(TINY, "atis")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def tags_of(run, split="test"):
    from slotfill.analysis.evaluate import SplitScorer

    ckpt = load_checkpoint(run / "best.pt" if run.is_dir() else run)
    found = SplitScorer(CORPUS[split], ckpt.vocabs).predict(ckpt.build_model())
    return [t for row in found.tags for t in row], found.intents


@pytest.fixture(scope="module")
def int8_run(trained_intent_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "joint-int8"
    result = invoke("quantize", trained_intent_run, "--output", out)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_rows_round_trip_and_quantizing_again_changes_nothing():
    w = torch.randn(30, 17) * torch.logspace(-3, 1, 30).unsqueeze(1)  # rows of all scales
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and q.abs().amax(1).eq(127).all()
    back = dequantize_rows(q, scale)
    assert ((back - w).abs() <= scale.unsqueeze(1) / 2 + 1e-7).all()
    again, again_scale = quantize_rows(back)
    assert torch.equal(again, q) and torch.allclose(again_scale, scale)


def test_an_int8_run_is_smaller_loads_weights_only_and_names_what_stayed_float(
        trained_intent_run, int8_run):
    out, printed = int8_run
    assert {"best.pt", "config.yaml", "quantization.json", "metrics.json",
            "status.json"} <= {p.name for p in out.iterdir()}
    assert (out / "best.pt").stat().st_size < (trained_intent_run / "best.pt").stat().st_size
    payload = torch.load(out / "best.pt", weights_only=True)  # plain tensors only
    record = payload["quantization"]
    assert payload["format_version"] == 3
    assert payload["model"]["encoder.layers.0.0.rnn.weight_ih_l0"].dtype == torch.int8
    assert payload["model"]["embedder.words.weight"].dtype == torch.int8
    assert "encoder.layers.0.0.rnn.weight_ih_l0.scale" in payload["model"]
    assert "CRF potentials" in record["float"]["head.transitions"]
    assert "bias" in record["float"]["head.linear.bias"]
    assert "embedder.chars.conv" in record["float_compute"]
    assert {"head.linear", "encoder.layers.0.0.rnn"} <= set(record["int8_compute"])
    assert json.loads((out / "quantization.json").read_text())["int8"] == record["int8"]
    assert "float: head.transitions, head.start, head.end (CRF potentials" in printed
    assert "test int8" in printed


def test_eval_predict_and_load_use_the_int8_run_and_tag_as_the_float_one(
        trained_intent_run, int8_run):
    import slotfill
    from torch.ao.nn.quantized import dynamic as nnqd

    out, _ = int8_run
    float_tags, float_intents = tags_of(trained_intent_run)
    int8_tags, int8_intents = tags_of(out)
    same = sum(a == b for a, b in zip(float_tags, int8_tags)) / len(float_tags)
    assert same >= 0.95
    assert sum(a == b for a, b in zip(float_intents, int8_intents)) >= 0.9 * len(float_intents)

    model = load_checkpoint(out / "best.pt").build_model()  # the int8 kernels run
    assert isinstance(model.head.linear, nnqd.Linear)
    assert isinstance(model.encoder.layers[0][0].rnn, nnqd.LSTM)
    stored = torch.load(out / "best.pt", weights_only=True)["model"]["head.linear.weight"]
    assert torch.equal(model.head.linear.weight().int_repr(), stored)  # the very same int8

    scored = invoke("eval", "--model", out, "--json")
    assert scored.exit_code == 0, scored.output
    f1 = json.loads(scored.output)["f1"]
    float_f1 = json.loads(invoke("eval", "--model", trained_intent_run, "--json").output)["f1"]
    assert abs(f1 - float_f1) <= 0.05
    tagged = invoke("predict", "--model", out, "--json", "arrive boston on monday")
    assert tagged.exit_code == 0 and json.loads(tagged.output)["tags"]
    result = slotfill.load(out).predict(["arrive boston on monday"])[0]
    assert len(result.tags) == 4 and result.intent


def test_int8_runs_are_refused_for_training_ensembles_export_and_requantizing(
        trained_intent_run, int8_run, tmp_path):
    out, _ = int8_run
    init = invoke("train", CONFIGS / "joint.yaml", "--output", tmp_path / "again",
                  *tiny_overrides(), f"train.init={out}")
    assert init.exit_code != 0 and "holds int8 weights" in init.output
    assert str(trained_intent_run / "best.pt") in init.output  # names the float run
    assert not (tmp_path / "again" / "best.pt").exists()
    both = invoke("ensemble", trained_intent_run, out, "--output", tmp_path / "ens")
    assert both.exit_code != 0 and "slotfill ensemble" in both.output
    again = invoke("quantize", out, "--output", tmp_path / "twice")
    assert again.exit_code != 0 and "int8 weights already" in again.output
    over = invoke("quantize", trained_intent_run, "--output", trained_intent_run, "--force")
    assert over.exit_code != 0 and "is the run being quantized" in over.output
    assert (trained_intent_run / "best.pt").is_file() and (trained_intent_run / "last.pt").is_file()
    export = invoke("export", "--model", out, "--output", tmp_path / "m.onnx")
    assert export.exit_code != 0 and "--quantize int8" in export.output
    for result in (init, both, again, over, export):
        assert "Traceback" not in result.output


@pytest.mark.parametrize("kind,extra", [("rnn", []), ("gru", []), ("jordan", []),
                                        ("lstm", ["model.attention_heads=2"]),
                                        ("seq2seq", [])])
def test_every_tagger_type_keeps_its_scores_in_int8(tmp_path, kind, extra):
    """Untrained models with random weights: emissions nearly the float ones."""
    cfg = load_config(CONFIGS / "lstm.yaml", [f"model.type={kind}", "model.hidden_size=16",
                                              "model.embedding_dim=16", f"data.path={TINY}",
                                              "model.char=cnn", *extra])
    vocabs = Vocabs.build(CORPUS["train"], chars=True)
    torch.manual_seed(0)
    model = build_model(cfg.model, vocabs).eval()
    path = tmp_path / "int8.pt"
    save_checkpoint(path, model, cfg, vocabs, {}, quantization=plan(model))
    ckpt = load_checkpoint(path)
    kinds = ckpt.quantization["float_compute"]
    if kind == "rnn":
        assert "Elman" in kinds["encoder.layers.0.0.rnn"]
    from slotfill.data.batching import encode_split, make_batch

    split = encode_split(list(CORPUS["test"]), vocabs)
    batch = make_batch(split, torch.arange(len(split)))
    with torch.inference_mode():
        want, got = model.scores(batch), ckpt.build_model().scores(batch)
    mask = batch.mask if batch.mask is not None else torch.ones(want.shape[:2], dtype=bool)
    if kind == "seq2seq":  # its decoder reads its own greedy choices: compare those
        assert (got.argmax(2) == want.argmax(2))[mask].float().mean() >= 0.8
    else:
        assert (got - want)[mask].abs().max() <= 0.05 * want[mask].abs().max()


def test_a_transformer_tagger_is_quantized(tiny_bert, tmp_path):
    from slotfill.training.run import train

    run = tmp_path / "bert"
    run.mkdir()
    train(load_config(CONFIGS / "minilm.yaml", transformer_overrides(tiny_bert, 2)), run)
    result = invoke("quantize", run, "--output", tmp_path / "bert-int8", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["int8_bytes"] < report["float_bytes"]
    record = load_checkpoint(tmp_path / "bert-int8" / "best.pt").quantization
    assert "embedder.transformer.encoder.layer.0.attention.self.query" in record["int8_compute"]
    assert "embedder.transformer.embeddings.word_embeddings.weight" in record["int8"]
    assert any("LayerNorm" in name for name in record["float"])
    float_tags, _ = tags_of(run)
    int8_tags, _ = tags_of(tmp_path / "bert-int8")
    assert sum(a == b for a, b in zip(float_tags, int8_tags)) >= 0.9 * len(float_tags)
    if importlib.util.find_spec("onnxruntime"):  # and its int8 ONNX graph
        exported = invoke("export", "--model", run, "--quantize", "int8", "--output",
                          tmp_path / "bert-int8.onnx")
        assert exported.exit_code == 0, exported.output
        info = json.loads((tmp_path / "bert-int8.vocab.json").read_text())
        assert info["quantization"]["check_agreement"] >= 0.9


def test_onnx_int8_export_is_checked_by_onnxruntime(trained_intent_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from slotfill.data.batching import encode_split
    from slotfill.serving.export import feeds

    for name, extra in (("float", []), ("int8", ["--quantize", "int8"])):
        result = invoke("export", "--model", trained_intent_run, "--output",
                        tmp_path / f"{name}.onnx", *extra)
        assert result.exit_code == 0, result.output
    float_file, int8_file = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    assert int8_file.stat().st_size < 0.6 * float_file.stat().st_size
    ops = {n.op_type for n in onnx.load(int8_file).graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLSTM"} <= ops
    info = json.loads((tmp_path / "int8.vocab.json").read_text())["quantization"]
    assert info["check_agreement"] >= 0.9
    assert any("Scan loop bodies" in entry for entry in info["float"])

    ckpt = load_checkpoint(trained_intent_run / "best.pt")
    split = encode_split(list(CORPUS["test"]), ckpt.vocabs)
    want, got = (ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
                 .run(None, feeds(split)) for f in (float_file, int8_file))
    real = (torch.arange(split.words.size(1)) < split.lengths.unsqueeze(1)).numpy()
    assert (want[0][real] == got[0][real]).mean() >= 0.95
