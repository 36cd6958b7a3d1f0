"""The spaCy component with a real spaCy (a blank `en` pipeline, no downloaded model):
found by name through the entry point, slots in doc.spans and doc.ents with their
offsets and confidences, the intent in doc.cats, the pipeline's own entities kept, slots
aligned to spaCy's tokens by characters, nlp.pipe batched, to_disk / spacy.load with the
model inside, and a clear message for a model that is no slotfill run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from conftest import ROOT

spacy = pytest.importorskip("spacy")

from spacy.tokenizer import Tokenizer  # noqa: E402

import slotfill  # noqa: E402
from slotfill.errors import CheckpointError, ConfigError, RunDirError  # noqa: E402
from slotfill.integrations.spacy import CONFIDENCE  # noqa: E402

TEXT = "arrive Taipei on Nov 2nd"


def pipeline(model, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("slotfill", config={"model": str(model), **config})
    return nlp


def slots_of(spans) -> list[tuple]:
    return [(s.label_, s.start_char, s.end_char, s._.get(CONFIDENCE)) for s in spans]


def expected(result) -> list[tuple]:
    return [(s.slot, s.start, s.end, s.confidence) for s in result.slots]


def test_the_factory_is_found_through_the_entry_point(trained_intent_run):
    """What a user gets after `pip install "slotfill[spacy]"`: spaCy imports the module
    by itself, on `add_pipe("slotfill")`; and nlp.pipe's worker processes (forked, on
    Linux) tag as the main process does. A process of its own, with a time limit: a
    forked copy of a process whose torch has run parallel work hangs at its first
    parallel region (here the component after slotfill's) unless torch keeps to one
    thread there."""
    code = f"""
import sys, spacy, torch
from spacy.language import Language

@Language.component("torch_work")
def torch_work(doc):
    torch.ones(10**6).sin_()  # parallel over torch's threads
    doc.user_data["threads"] = torch.get_num_threads()
    return doc

nlp = spacy.blank('en')
nlp.add_pipe('slotfill', config={{'model': {str(trained_intent_run)!r}}})
assert 'slotfill.integrations.spacy' in sys.modules
nlp.add_pipe('torch_work')
texts = [{TEXT!r}, 'leave boston', 'fly to denver'] * 4
torch.ones(10**7).sin_()
def seen(doc):
    return doc.cats, [(s.label_, s.start_char) for s in doc.ents], doc.user_data["threads"]
alone = [seen(doc)[:2] for doc in nlp.pipe(texts)]
forked = [seen(doc) for doc in nlp.pipe(texts, n_process=2, batch_size=3)]
assert [f[:2] for f in forked] == alone, (forked, alone)
assert {{f[2] for f in forked}} == {{1}}
print(alone[0][0])
"""
    # a session of its own, so that a hang ends with spaCy's workers too
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("nlp.pipe(n_process=2) hung")
    assert process.returncode == 0, err
    assert "atis_" in out


def test_slots_land_in_the_doc_with_offsets_and_confidences(trained_intent_run):
    result = slotfill.load(trained_intent_run).predict([TEXT])[0]
    assert result.slots, "the tiny joint model finds slots in this utterance"
    doc = pipeline(trained_intent_run)(TEXT)
    assert slots_of(doc.spans["slots"]) == expected(result)
    assert slots_of(doc.ents) == expected(result)  # nothing else claims these words
    assert all(span.text == slot.value for span, slot in zip(doc.ents, result.slots))
    assert all(0 < s._.get(CONFIDENCE) <= 1 for s in doc.ents)
    assert doc.cats == {result.intent: result.intent_confidence}
    assert result.intent in slotfill.load(trained_intent_run).intents
    # the confidences live in doc.user_data: a DocBin that stores it keeps them
    stored = spacy.tokens.DocBin(store_user_data=True, docs=[doc]).to_bytes()
    back = next(spacy.tokens.DocBin().from_bytes(stored).get_docs(doc.vocab))
    assert slots_of(back.spans["slots"]) == slots_of(back.ents) == expected(result)
    empty = pipeline(trained_intent_run)("")
    assert list(empty.spans["slots"]) == [] and empty.cats == {}


def test_slots_on_the_pipelines_own_entities_go_to_spans_only(trained_intent_run):
    result = slotfill.load(trained_intent_run).predict([TEXT])[0]
    taken = result.slots[0]  # the ruler claims the words of the first slot
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "GPE", "pattern": taken.value}])
    nlp.add_pipe("slotfill", config={"model": str(trained_intent_run), "spans_key": "sf"})
    doc = nlp(TEXT)
    assert "slots" not in doc.spans and slots_of(doc.spans["sf"]) == expected(result)
    gpe = [ent for ent in doc.ents if ent.label_ == "GPE"]
    assert [(e.text, e.start_char) for e in gpe] == [(taken.value, taken.start)]  # kept
    assert gpe[0]._.get(CONFIDENCE) is None  # the ruler's entity is no slot
    assert slots_of(e for e in doc.ents if e.label_ != "GPE") == expected(result)[1:]

    no_ents = pipeline(trained_intent_run, annotate_ents=False)(TEXT)
    assert list(no_ents.ents) == [] and slots_of(no_ents.spans["slots"]) == expected(result)


def test_a_slot_inside_a_spacy_token_is_placed_by_alignment_mode(trained_intent_run,
                                                                 monkeypatch):
    """slotfill splits the final full stop off `2nd.`; a tokenizer that splits only at
    spaces keeps it, so the slot `2nd` (21-24) ends inside the spaCy token `2nd.`."""
    text = TEXT + "."
    slots = [slotfill.Slot("toloc.city_name", "Taipei", 7, 13, 0.8),
             slotfill.Slot("arrive_date.day_number", "2nd", 21, 24, 0.9)]
    result = slotfill.Result(text, ["arrive", "Taipei", "on", "Nov", "2nd", "."],
                             ["O", "B-toloc.city_name", "O", "O",
                              "B-arrive_date.day_number", "O"], slots)
    placed = {}
    for mode in ("expand", "contract", "strict"):
        nlp = pipeline(trained_intent_run, alignment_mode=mode)
        nlp.tokenizer = Tokenizer(nlp.vocab)  # whitespace only
        monkeypatch.setattr(nlp.get_pipe("slotfill").tagger, "predict",
                            lambda texts, min_confidence: [result for _ in texts])
        doc = nlp(text)
        assert doc[-1].text == "2nd."
        placed[mode] = [(s.text, s.label_, s._.get(CONFIDENCE)) for s in doc.spans["slots"]]
        assert [(e.text, e.label_) for e in doc.ents] == [p[:2] for p in placed[mode]]
    assert placed["expand"] == [("Taipei", "toloc.city_name", 0.8),
                                ("2nd.", "arrive_date.day_number", 0.9)]
    assert placed["contract"] == placed["strict"] == [("Taipei", "toloc.city_name", 0.8)]
    with pytest.raises(ConfigError, match="valid: strict, contract, expand"):
        pipeline(trained_intent_run, alignment_mode="nearest")


def test_nlp_pipe_tags_a_batch_at_a_time(trained_intent_run, monkeypatch):
    texts = [TEXT, "leave boston", "fly to denver tomorrow", "", "arrive Taipei"]
    nlp = pipeline(trained_intent_run)
    one_by_one = [(slots_of(d.spans["slots"]), d.cats) for d in map(nlp, texts)]
    tagger = nlp.get_pipe("slotfill").tagger
    calls, predict = [], tagger.predict
    monkeypatch.setattr(tagger, "predict", lambda batch, min_confidence:
                        calls.append(len(batch)) or predict(batch, min_confidence))
    docs = list(nlp.pipe(texts, batch_size=2))
    assert calls == [2, 2, 1]
    assert [(slots_of(d.spans["slots"]), d.cats) for d in docs] == one_by_one


def test_to_disk_and_spacy_load_carry_the_model(trained_intent_run, tmp_path):
    run = shutil.copytree(trained_intent_run, tmp_path / "run")
    nlp = pipeline(run, spans_key="sf", min_confidence=0.05)
    before = nlp(TEXT)
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "slotfill" / "best.pt").is_file()
    shutil.rmtree(run)  # spacy.load must not need the run any more

    loaded = spacy.load(tmp_path / "pipeline")
    after = loaded(TEXT)
    assert slots_of(after.spans["sf"]) == slots_of(before.spans["sf"])
    assert slots_of(after.ents) == slots_of(before.ents) and after.cats == before.cats
    component = loaded.get_pipe("slotfill")
    assert (component.spans_key, component.min_confidence) == ("sf", 0.05)
    # a loaded pipeline saves again, from the model it holds
    loaded.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")(TEXT)
    assert slots_of(again.spans["sf"]) == slots_of(before.spans["sf"])

    (tmp_path / "pipeline" / "slotfill" / "best.pt").write_text("not a model")
    with pytest.raises(CheckpointError, match="holds no readable slotfill model"):
        spacy.load(tmp_path / "pipeline")


def test_a_model_that_is_no_slotfill_run_is_refused_clearly(tmp_path):
    spacy.blank("en").to_disk(tmp_path / "a-spacy-pipeline")  # a directory, but no run
    with pytest.raises(RunDirError) as refused:
        pipeline(tmp_path / "a-spacy-pipeline")
    assert str(refused.value).splitlines() == [
        f"spaCy component 'slotfill': cannot load the slotfill model "
        f"{tmp_path / 'a-spacy-pipeline'}",
        f"No best.pt in {tmp_path / 'a-spacy-pipeline'}: pass a run directory whose "
        "training finished at least one epoch, or a checkpoint file"]
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt is not a slotfill checkpoint"):
        pipeline(tmp_path / "notes.txt")
    with pytest.raises(RunDirError, match="Model not found"):
        pipeline(tmp_path / "nowhere")
