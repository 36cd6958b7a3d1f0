"""`slotfill predict` on files and streams: one record per input line in order, whatever
the line (blank, wordless, not UTF-8), results written as they are ready, every output
format, --output written atomically, --workers giving the single process's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from itertools import islice

import pytest
from typer.testing import CliRunner

import slotfill
from slotfill.cli import app

runner = CliRunner()
# blank, whitespace, punctuation only, not UTF-8, CRLF, a tab, a long line, a NUL byte
LINES = [b"fly to boston", b"", b"   ", b"?!...", b"to M\xfcnchen", b"leave denver\r",
         b"from\tdenver to boston", b"to boston " * 400, b"to\x00 boston"]


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture
def lines_file(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    return path


def test_one_record_per_line_in_order_with_blank_and_bad_lines(trained_run, lines_file):
    result = invoke("predict", "--model", trained_run, "--file", lines_file, "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(LINES)
    expected = [line.decode("utf-8", errors="replace").removesuffix("\r") for line in LINES]
    assert [r["text"] for r in records] == expected
    for i in (1, 2, 3):  # no words: an empty record, not a missing one
        assert records[i]["tokens"] == records[i]["tags"] == records[i]["slots"] == []
    assert records[4]["tokens"] == ["to", "M\ufffdnchen"]
    assert len(records[7]["tags"]) == 800
    assert f"{lines_file}:5: not UTF-8" in result.stderr  # repaired, and named


def test_formats_stay_line_aligned(trained_run, lines_file):
    jsonl = [json.loads(x) for x in invoke("predict", "-m", trained_run, "-f", lines_file,
                                           "--format", "jsonl").stdout.splitlines()]
    tsv = invoke("predict", "-m", trained_run, "-f", lines_file, "--format", "tsv").stdout
    rows = [row.split("\t") for row in tsv.split("\n")[:-1]]
    assert len(rows) == len(LINES) and {len(row) for row in rows} == {3}
    for row, record in zip(rows, jsonl):
        assert row[0] == record["text"].replace("\t", " ")
        assert row[1].split() == record["tags"]
        assert row[2] == "; ".join(f"{s['slot']}={s['value']}" for s in record["slots"])
    conll = invoke("predict", "-m", trained_run, "-f", lines_file, "--format", "conll").stdout
    records, rows = [], []
    for line in conll.split("\n")[:-1]:  # a blank line ends each input line's record
        if line:
            rows.append(tuple(line.split("\t")))
        else:
            records.append(rows)
            rows = []
    assert rows == [] and len(records) == len(LINES)
    assert records == [list(zip(r["tokens"], r["tags"])) for r in jsonl]
    assert invoke("predict", "-m", trained_run, "-f", lines_file, "--json", "--format",
                  "tsv").exit_code == 2


def test_output_file_is_written_atomically(trained_run, lines_file, tmp_path, monkeypatch):
    target = tmp_path / "out.jsonl"
    result = invoke("predict", "-m", trained_run, "-f", lines_file, "--output", target)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert len(target.read_text(encoding="utf-8").splitlines()) == len(LINES)  # jsonl
    # a failure half-way leaves the old file and no temporary one
    from slotfill.serving import stream

    def broken(predictor, texts, batch_size=stream.BATCH, workers=1):
        yield from predictor.predict(list(islice(texts, 2)))
        raise RuntimeError("broken model")
    monkeypatch.setattr(stream, "tag_stream", broken)
    before = target.read_bytes()
    result = invoke("predict", "-m", trained_run, "-f", lines_file, "--output", target)
    assert result.exit_code != 0
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]


def test_several_files_and_missing_ones(trained_run, lines_file, tmp_path):
    second = tmp_path / "second.txt"
    second.write_text("leave Boston\n")
    result = invoke("predict", "-m", trained_run, "-f", lines_file, "-f", second, "--json")
    texts = [json.loads(x)["text"] for x in result.stdout.splitlines()]
    assert len(texts) == len(LINES) + 1 and texts[-1] == "leave Boston"
    result = invoke("predict", "-m", trained_run, "-f", tmp_path / "nope.txt")
    assert result.exit_code == 1 and "Cannot read" in result.stderr
    assert "Traceback" not in result.output


def test_workers_give_the_single_process_output(trained_run, lines_file, tmp_path):
    many = tmp_path / "many.txt"
    many.write_bytes((b"\n".join(LINES) + b"\n") * 60)  # several batches of 256 lines
    one = invoke("predict", "-m", trained_run, "-f", many, "--format", "tsv")
    two = invoke("predict", "-m", trained_run, "-f", many, "--format", "tsv", "--workers", "2")
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    assert two.stdout == one.stdout and len(one.stdout.splitlines()) == 60 * len(LINES)


def test_results_are_written_before_the_input_ends(trained_run):
    """A pipe that stays open: the first batch's records come out while more input may
    follow (nothing waits for the end of the input)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "slotfill", "predict", "-m",
                             str(trained_run), "--json", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        proc.stdin.write(b"fly to boston\n" * 256)  # one batch
        proc.stdin.flush()
        first = proc.stdout.readline()  # would block for ever if predict read to the end
        assert json.loads(first)["tokens"] == ["fly", "to", "boston"]
    finally:
        proc.kill()
        proc.wait()


def test_api_predict_is_lazy_over_iterables_and_a_list_stays_a_list(trained_run):
    model = slotfill.load(trained_run)
    listed = model.predict(["fly to boston", "", "leave denver"])
    assert isinstance(listed, list) and listed[1].tokens == []

    def endless():
        while True:
            yield "fly to boston"
    first = list(islice(model.predict(endless()), 3))  # an endless input still answers
    assert [r.tokens for r in first] == [["fly", "to", "boston"]] * 3
    assert [r.to_dict() for r in model.predict(iter(["fly to boston", "", "leave denver"]))
            ] == [r.to_dict() for r in listed]
