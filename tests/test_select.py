"""`slotfill select` and the uncertainty measures it ranks by: least confidence against
brute force, the other measures' definitions, near-duplicates, and the Label Studio and
doccano files it writes (read back by slotfill's own readers)."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.loop.tasks import LabelConfig, LabelConfigError, label_config, utf16
from slotfill.loop.uncertainty import uncertainty
from slotfill.serving.predict import Predictor

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def predictor(trained_intent_run):
    return Predictor(trained_intent_run / "best.pt")


def test_mnlp_is_the_best_sequences_log_probability_per_decision(predictor):
    """Two words: every tag pair enumerated, the intent's own probability added."""
    from slotfill.data.batching import encode_split, make_batch
    from slotfill.data.corpus import Example
    from slotfill.models.crf import sequence_score

    words = ("to", "boston")
    model, vocabs = predictor.model, predictor.vocabs
    batch = make_batch(encode_split([Example(words, ())], vocabs), torch.tensor([0]))
    with torch.no_grad():
        emissions = model.scores(batch).float()  # (1, 2, K)
        trans, start, end = model.head.potentials()
        K = emissions.size(2)
        every = torch.tensor(list(itertools.product(range(K), repeat=2)))  # (K^2, 2)
        scores = sequence_score(emissions.expand(len(every), -1, -1), every, None,
                                trans, start, end)
        best = (scores.max() - torch.logsumexp(scores, 0)).item()
        intent = model.outputs(batch)[1].max().item()
    expected = -(best + math.log(intent)) / 3  # two words and the intent
    assert uncertainty(model, vocabs, [words], "mnlp")[0] == pytest.approx(expected, rel=1e-4)


def test_every_measure_ranks_and_random_is_seeded(predictor):
    pool = [("show", "me", "flights", "from", "boston", "to", "denver"),
            ("zzyzx", "qwv", "to", "blorp"), (), ("to", "boston")]
    for strategy in ("mnlp", "entropy", "margin", "bald"):
        scores = uncertainty(predictor.model, predictor.vocabs, pool, strategy, samples=4)
        assert len(scores) == 4 and scores[2] == 0.0  # an empty utterance
        assert all(s >= -1e-6 for s in scores), strategy
        assert scores[1] > 0, strategy  # unknown words: not sure
    assert uncertainty(predictor.model, predictor.vocabs, pool, "margin")[1] <= 1.0
    first = uncertainty(predictor.model, predictor.vocabs, pool, "random", seed=3)
    assert first == uncertainty(predictor.model, predictor.vocabs, pool, "random", seed=3)
    assert first != uncertainty(predictor.model, predictor.vocabs, pool, "random", seed=4)
    assert not predictor.model.training  # bald's dropout is off again


def test_select_writes_label_studio_tasks_with_predictions(trained_intent_run, tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("show me flights from boston to denver\n\n"
                    "fly to 😀 taipei on nov 2nd\nshow me flights from boston to denver\n"
                    "list flights to dallas\n")
    result = invoke("select", pool, "--model", trained_intent_run, "--top", "2",
                    "--diverse", "--ranking", tmp_path / "rank.tsv",
                    "--write-label-config", tmp_path / "config.xml",
                    "--output", tmp_path / "tasks.json")
    assert result.exit_code == 0, result.output
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    texts = [t["data"]["text"] for t in tasks]
    assert len(texts) == 2 and len(set(texts)) == 2  # the duplicate is not chosen twice
    rows = [line.split("\t") for line in (tmp_path / "rank.tsv").read_text().splitlines()]
    assert rows[0] == ["rank", "line", "mnlp", "text"] and len(rows) == 5
    assert {r[1] for r in rows[1:]} == {"1", "3", "4", "5"}  # lines of the file
    assert [r[3] for r in rows[1:3]] == texts  # the top of the ranking, spread out
    assert rows[3][3] == "show me flights from boston to denver"  # the deferred duplicate
    scores = [float(r[2]) for r in rows[1:3]]
    assert scores == sorted(scores, reverse=True)
    config = LabelConfig.parse((tmp_path / "config.xml").read_text())
    for task in tasks:
        p = task["predictions"][0]
        assert 0 < p["score"] <= 1 and p["model_version"].startswith("slotfill-")
        for item in p["result"]:
            assert item["from_name"] in (config.labels_name, config.choices_name)
            assert item["to_name"] == config.text_name
    # the emoji counts two UTF-16 units, as Label Studio counts; the reader maps it back
    emoji = "fly to 😀 taipei on nov 2nd"
    assert utf16(emoji, emoji.index("taipei")) == emoji.index("taipei") + 1


def test_label_studio_tasks_and_doccano_lines_read_back(trained_intent_run, tmp_path):
    from slotfill.data.example import Issues, ReadOptions
    from slotfill.data.formats import jsonl, labelstudio

    pool = tmp_path / "pool.txt"
    pool.write_text("show me flights from boston to denver\nfly to 😀 taipei\n")
    for fmt, name in (("labelstudio", "tasks.json"), ("doccano", "tasks.jsonl")):
        result = invoke("select", pool, "--model", trained_intent_run, "--format", fmt,
                        "--output", tmp_path / name)
        assert result.exit_code == 0, result.output
    predicted = Predictor(trained_intent_run / "best.pt").predict(pool.read_text().split("\n")[:2])
    doccano = [json.loads(line) for line in (tmp_path / "tasks.jsonl").read_text().splitlines()]
    assert {d["text"] for d in doccano} == {r["text"] for r in predicted}
    # as annotations (predictions accepted as they are), both read back as the model said
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    for task in tasks:
        task["annotations"] = [{"result": task.pop("predictions")[0]["result"]}]
    (tmp_path / "annotated.json").write_text(json.dumps(tasks))
    for path, reader in ((tmp_path / "annotated.json", labelstudio),
                         (tmp_path / "tasks.jsonl", jsonl)):
        by_text = {" ".join(e.tokens): e
                   for e in reader.read_file(path, ReadOptions(), Issues())}
        for r in predicted:
            example = by_text[" ".join(t.lower() for t in r["tokens"])]
            assert list(example.tags) == r["tags"] and example.intent == r["intent"]


def test_a_label_config_that_does_not_fit_is_refused(trained_intent_run, tmp_path):
    (tmp_path / "pool.txt").write_text("fly to boston\n")
    (tmp_path / "config.xml").write_text(
        '<View><Text name="utterance" value="$sentence"/><Labels name="slots" '
        'toName="utterance"><Label value="toloc.city_name"/><Label value="hotel"/></Labels>'
        "</View>")
    result = invoke("select", tmp_path / "pool.txt", "--model", trained_intent_run,
                    "--label-config", tmp_path / "config.xml", "--output", tmp_path / "t.json")
    assert result.exit_code != 0
    assert "does not fit the model" in result.output
    assert "the model does not know: hotel" in result.output
    assert "fromloc.city_name" in result.output  # one it lacks
    assert not (tmp_path / "t.json").exists()
    config = LabelConfig.parse((tmp_path / "config.xml").read_text())
    assert (config.text_name, config.data_key, config.labels_name) == \
        ("utterance", "sentence", "slots")
    with pytest.raises(LabelConfigError, match="no <Labels>"):
        LabelConfig.parse('<View><Text name="t" value="$t"/></View>')
    LabelConfig.parse(label_config(["a", "b"], ["x"])).check(["a", "b"], ["x"])
