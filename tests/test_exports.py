"""Real annotation exports as they come (tests/fixtures/exports: a Rasa 3.x project and a
Rasa 2.x data folder, doccano, Label Studio JSON and JSON-MIN, SLURP, corpora tagged
BIOES, IOB1 and BILOU): `data check` names what it repaired, `--strict` refuses the same
lines as errors, and each trains one epoch, predicts spans and, with data.strict, is
refused before any work."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, tiny_overrides
from typer.testing import CliRunner

from slotfill.cli import app
from slotfill.models.checkpoint import load_checkpoint

runner = CliRunner()
EXPORTS = ROOT / "tests" / "fixtures" / "exports"
SPLIT = "0.6,0.2,0.2"
NLU = EXPORTS / "rasa-project" / "data" / "nlu.yml"
RESUMES = EXPORTS / "doccano" / "resumes.jsonl"
STUDIO = EXPORTS / "labelstudio" / "project-3-at-2024-05-01-10-00-export.json"
STUDIO_MIN = EXPORTS / "labelstudio" / "project-3-at-2024-05-01-10-00-min.json"

# fixture -> (path, needs data.split, format, scheme, lines data check must print)
FIXTURES = {
    "rasa-project": (EXPORTS / "rasa-project", True, "rasa", "BIO (IOB2)", [
        f"{NLU}:19: span 5-18 'Steven Carter' (name) ends inside the word \"Carter's\"; "
        "repaired by making \"'s\" a token of its own",
        f"{NLU}:24: span 4-9 'Jones' (name) ends inside the word \"Jones'\"; repaired by "
        "making \"'\" a token of its own",
        f"{NLU}:48: span 7-13 'embelm' (credit_card) ends inside the word \"embelm's\"; "
        "repaired by making \"'s\" a token of its own",
        f"{NLU}:39: span 10-12 'LA' (airport) overlaps span 10-12 'LA' (city.destination); "
        "span dropped (a word has one slot: the span that starts first is kept)",
        f"{EXPORTS / 'rasa-project'}: 3 files with an nlu: section read; config.yml, "
        "data/rules.yml, data/stories.yml, domain.yml left out (no nlu: section: rules, "
        "stories, domain and config are not training examples)",
        f"{EXPORTS / 'rasa-project'}: lookup tables used as gazetteers (each word gets "
        "features from their entries): city (6 entries)",
        f"{EXPORTS / 'rasa-project'}: lookup tables naming no entity of the examples "
        "skipped: fruit",
        f"{EXPORTS / 'rasa-project'}: regex tables skipped (patterns, not words to tag): "
        "account_number",
        "6 repairs, each a warning above (data.strict=true refuses a corpus that needs "
        "any)"]),
    "rasa2": (EXPORTS / "rasa2", True, "rasa", "BIO (IOB2)", [
        f"{EXPORTS / 'rasa2' / 'data' / 'nlu' / 'banking.yml'}:5: span 7-13 'embelm' "
        "(credit_card) ends inside the word \"embelm's\"; repaired by making \"'s\" a token "
        "of its own",
        f"{EXPORTS / 'rasa2'}: Rasa 1.x Markdown files not read: data/nlu.md (convert them "
        "with `rasa data convert nlu -f yaml`)"]),
    "doccano": (RESUMES, True, "jsonl", "BIO (IOB2)", [
        f"{RESUMES}:1: span 540-551 (Technical skills) lies outside the text, which has 547 "
        "characters (offsets count characters from 0; end is exclusive); span dropped",
        f"{RESUMES}:3: span 0-0 (Candidate name) is empty; span dropped",
        "labels renamed to slot names (each run of characters other than letters, digits, "
        "'.', '_' and '-' becomes '_', none at either end): 'Candidate name' -> "
        f"'Candidate_name' (first at {RESUMES}:1), 'Technical skills' -> 'Technical_skills' "
        f"(first at {RESUMES}:1), 'College Name' -> 'College_Name' (first at {RESUMES}:1)"]),
    "labelstudio": (STUDIO, True, "labelstudio", "BIO (IOB2)", [
        f"{STUDIO}:306: span 17-23 has 2 labels ['city', 'country']; repaired by keeping the "
        "first",
        f"{STUDIO}:553: span 28-40 (time) lies outside the text, which has 31 characters "
        "(offsets count characters from 0; end is exclusive); span dropped",
        f"{STUDIO}: tasks without an annotation skipped: 1"]),
    "labelstudio-min": (STUDIO_MIN, True, "labelstudio", "BIO (IOB2)", [
        f"{STUDIO_MIN}:94: span 17-23 has 2 labels ['city', 'country']; repaired by "
        "keeping the first"]),
    "slurp": (EXPORTS / "slurp", False, "massive", "BIO (IOB2)", []),
    "bioes-zh": (EXPORTS / "bioes-zh", False, "conll", "BIOES (IOBES)", []),
    "iob1": (EXPORTS / "iob1", False, "conll", "IOB1", []),
    "bilou": (EXPORTS / "bilou", False, "tokens", "BILOU", []),
}
PREDICT = {"bioes-zh": "李明，男，汉族，硕士。", "iob1": "Peter Blackburn in Germany",
           "rasa-project": "I am Steven Carter's assistant"}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def check_lines(result) -> list[str]:
    return [line.split(": ", 1)[1] for line in result.stdout.splitlines()
            if line.startswith(("warning: ", "error: "))]


@pytest.mark.parametrize("name", FIXTURES)
def test_data_check_names_scheme_and_repairs_and_strict_refuses_them(name):
    path, split, fmt, scheme, expected = FIXTURES[name]
    options = ["--split", SPLIT] if split else []
    result = invoke("data", "check", path, *options)
    assert result.exit_code == 0, result.output
    assert f"{path} ({fmt}), tag scheme {scheme}" in result.stdout
    lines = check_lines(result)
    for line in expected:
        assert line in lines, line
    repairs = [line for line in expected if ": span " in line or "renamed" in line]
    strict = invoke("data", "check", path, *options, "--strict")
    if not repairs:
        assert strict.exit_code == 0, strict.output
        return
    assert strict.exit_code == 1
    errors = [line.removeprefix("error: ") for line in strict.stdout.splitlines()
              if line.startswith("error: ")]
    for line in repairs:
        assert line in errors, line
    assert errors[-1].startswith("data.strict=true: ") and " refused (each an error" in errors[-1]


def test_a_rasa_file_of_lookup_tables_alone_says_where_the_intents_are():
    path = EXPORTS / "rasa-project" / "data" / "lookups" / "city.yml"
    result = invoke("data", "check", path, "--split", SPLIT)
    assert result.exit_code == 1
    assert f"{path}: no intent examples (lookup tables: city, fruit); point data.path at " \
        "the directory that holds the intents as well" in check_lines(result)


@pytest.mark.parametrize("name", FIXTURES)
def test_each_export_trains_one_epoch_and_predicts_spans(tmp_path, name):
    path, split, fmt, scheme, expected = FIXTURES[name]
    overrides = [o for o in tiny_overrides() if not o.startswith("data.path")]
    options = [f"data.path={path}", *overrides] + ([f"data.split={SPLIT}"] if split else [])
    run = tmp_path / "run"
    result = invoke("train", "bilstm-crf", *options, "--output", run)
    assert result.exit_code == 0, result.output
    assert f"({fmt})" in result.stdout
    warned = [line.removeprefix("warning: ") for line in result.stderr.splitlines()]
    assert all(line in warned for line in expected)  # training and data check agree
    ckpt = load_checkpoint(run / "best.pt")
    tags = ckpt.vocabs.tags.itos
    if scheme in ("BIOES (IOBES)", "BILOU"):  # the CRF knows that B- never ends a chunk
        ends = ckpt.model_state["head.end_mask"]
        assert all((ends[i] < 0) == (t[0] in "BI") for i, t in enumerate(tags))
    if name == "rasa-project":  # the lookup table came along as a gazetteer
        assert ckpt.vocabs.gazetteers.names == ["city"]
    if name in PREDICT:
        predicted = json.loads(invoke("predict", "--model", run, "--json",
                                      PREDICT[name]).stdout)
        for slot in predicted["slots"]:
            assert predicted["text"][slot["start"]:slot["end"]] == slot["value"]
        if name == "rasa-project":  # the clitic is split off as in training
            assert predicted["tokens"][3:5] == ["Carter", "'s"]
    if expected:
        refused = invoke("train", "bilstm-crf", *options, "data.strict=true", "--output",
                         tmp_path / "strict")
        assert refused.exit_code == 1 and "data.strict=true: " in refused.stderr
        assert not (tmp_path / "strict").exists()


def test_slurp_reads_its_splits_from_file_names():
    result = invoke("data", "check", EXPORTS / "slurp", "--json")
    report = json.loads(result.stdout)
    sizes = {k: v["utterances"] for k, v in report["splits"].items()}
    assert sizes == {"train": 9, "valid": 2, "test": 2}  # train.jsonl + train_synthetic
    assert report["splits"]["train"]["slots"]["time"] == 4


def test_label_studio_offsets_in_utf16_are_converted():
    from slotfill.data.corpus import ReadOptions, read_corpus
    corpus = read_corpus(STUDIO, options=ReadOptions(split=(0.6, 0.2, 0.2)))
    examples = {e.tokens[-1]: e for split in corpus.splits.values() for e in split}
    rome = examples["rome"]  # after the emoji, where UTF-16 counts one more
    assert rome.tags[-1] == "B-arrival_city" and rome.intent == "book_flight"
    assert examples["paulo"].tags[-2:] == ("B-arrival_city", "I-arrival_city")
