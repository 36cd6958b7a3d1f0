"""Ensembles: averaged members tag as one model, through every command that takes
--model, and models that cannot be combined are refused with what differs."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from conftest import CONFIGS, TINY, tiny_overrides
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.config import load_config
from slotfill.data.batching import encode_split, make_batch
from slotfill.data.corpus import read_corpus
from slotfill.errors import CheckpointError, ConfigError
from slotfill.models.checkpoint import load_checkpoint
from slotfill.models.crf import viterbi
from slotfill.training.ensemble import build_ensemble
from slotfill.training.run import train

runner = CliRunner()
CORPUS = read_corpus(TINY)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two joint (CRF + intent) runs with different seeds, and one softmax run."""
    root = tmp_path_factory.mktemp("members")
    runs = {}
    for name, config, extra in (("crf1", "joint", ["train.seed=1"]),
                                ("crf2", "joint", ["train.seed=2", "model.char=none",
                                                   "model.char_dim=null",
                                                   "model.char_size=null"]),
                                ("soft", "bilstm", [])):
        cfg = load_config(CONFIGS / f"{config}.yaml", [*tiny_overrides(epochs=2), *extra])
        runs[name] = root / name
        runs[name].mkdir()
        train(cfg, runs[name])
    return runs


def batch_of(vocabs):
    split = encode_split(CORPUS["test"], vocabs)
    return make_batch(split, torch.arange(len(split)))


def test_crf_members_average_emissions_and_potentials(members, tmp_path):
    result = build_ensemble([members["crf1"], members["crf2"]], tmp_path / "ens")
    ensemble = load_checkpoint(tmp_path / "ens" / "best.pt").build_model()
    singles = [load_checkpoint(members[n] / "best.pt").build_model() for n in ("crf1", "crf2")]
    batch = batch_of(load_checkpoint(tmp_path / "ens" / "best.pt").vocabs)
    with torch.no_grad():
        outputs = [m.outputs(batch) for m in singles]
        emissions = (outputs[0][0] + outputs[1][0]) / 2
        potentials = [sum(p) / 2 for p in zip(*(m.head.potentials() for m in singles))]
        tags, intents = ensemble.decode(batch)
        expected = viterbi(emissions, batch.mask, *potentials)
        mask = batch.mask if batch.mask is not None else torch.ones_like(tags, dtype=bool)
        assert torch.equal(tags[mask], expected[mask])
        assert torch.equal(intents, ((outputs[0][1] + outputs[1][1]) / 2).argmax(1))
    assert result.dev is not None and "intent_accuracy" in result.test
    metrics = json.loads((tmp_path / "ens" / "metrics.json").read_text())
    assert metrics["members"] == [str(members[n] / "best.pt") for n in ("crf1", "crf2")]
    assert metrics["test"] == result.test


def test_an_ensemble_of_one_model_twice_tags_like_the_model(members, tmp_path):
    build_ensemble([members["soft"], members["soft"]], tmp_path / "twice")
    single = load_checkpoint(members["soft"] / "best.pt")
    batch = batch_of(single.vocabs)
    with torch.no_grad():
        alone = single.build_model().decode(batch)[0]
        twice_model = load_checkpoint(tmp_path / "twice" / "best.pt").build_model()
        twice = twice_model.decode(batch)[0]
        sure_alone = single.build_model().decode_with_confidence(batch)[2]
        sure_twice = twice_model.decode_with_confidence(batch)[2]
    assert torch.equal(alone, twice)
    # an ensemble's span confidence is its members' mean: here the model's own
    assert any(sure_alone.spans)
    for mine, theirs in zip(sure_alone.spans, sure_twice.spans):
        assert mine.keys() == theirs.keys()
        assert all(abs(mine[k] - theirs[k]) < 1e-6 for k in mine)


def test_the_ensemble_works_wherever_a_model_does(members, tmp_path):
    out = tmp_path / "ens"
    result = runner.invoke(app, ["ensemble", str(members["crf1"]), str(members["crf2"]),
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    evaluated = runner.invoke(app, ["eval", "--model", str(out), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["f1"] == \
        json.loads((out / "metrics.json").read_text())["test"]["f1"]
    predicted = runner.invoke(app, ["predict", "--model", str(out), "--json",
                                    "show flights from boston to denver"])
    assert predicted.exit_code == 0 and "intent" in json.loads(predicted.stdout)
    listed = runner.invoke(app, ["compare", "--no-significance", str(members["crf1"]),
                                 str(out)])
    assert "2 x bilstm" in listed.stdout
    if importlib.util.find_spec("fastapi") is not None:
        from fastapi.testclient import TestClient

        from slotfill.serving.predict import Predictor
        from slotfill.serving.serve import Limits, create_app
        client = TestClient(create_app(Predictor(out / "best.pt"), Limits(8, 64, 1 << 16)))
        served = client.post("/predict", json={"text": "show flights from boston to denver"})
        assert served.status_code == 200 and served.json() == json.loads(predicted.stdout)
    pytest.importorskip("onnxruntime")
    exported = runner.invoke(app, ["export", "--model", str(out), "--output",
                                   str(tmp_path / "ens.onnx")])
    assert exported.exit_code == 0, exported.output
    info = json.loads((tmp_path / "ens.vocab.json").read_text())
    assert len(info["members"]) == 2 and "chars" in [i["name"] for i in info["inputs"]]


def test_models_that_differ_are_refused_with_what_differs(members, tmp_path):
    with pytest.raises(CheckpointError) as info:
        build_ensemble([members["crf1"], members["soft"]], tmp_path / "x")
    assert "head softmax" in info.value.detail
    other = tmp_path / "other"
    other.mkdir()
    cfg = load_config(CONFIGS / "joint.yaml", [*tiny_overrides(), "data.path=bundled"])
    train(cfg, other)
    with pytest.raises(CheckpointError) as info:
        build_ensemble([members["crf1"], other], tmp_path / "y")
    assert "words differ" in info.value.detail and "tags differ" in info.value.detail
    assert not (tmp_path / "y").exists()  # nothing half-written
    result = runner.invoke(app, ["ensemble", str(members["crf1"]), "--output",
                                 str(tmp_path / "z")])
    assert result.exit_code == 1 and "at least two" in result.stderr


def test_ensembles_nest_neither_in_ensembles_nor_in_train_init(members, tmp_path):
    build_ensemble([members["crf1"], members["crf2"]], tmp_path / "ens")
    with pytest.raises(CheckpointError, match="is an ensemble already"):
        build_ensemble([tmp_path / "ens", members["crf1"]], tmp_path / "nested")
    cfg = load_config(CONFIGS / "joint.yaml", [*tiny_overrides(),
                                               f"train.init={tmp_path / 'ens'}"])
    from slotfill.training.prepare import prepare
    with pytest.raises(ConfigError, match="is an ensemble"):
        prepare(cfg)
