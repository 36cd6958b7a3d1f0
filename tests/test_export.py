"""ONNX export: the exported graph, run by onnxruntime alone, tags exactly as PyTorch does,
in padded batches and one utterance at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import torch  # noqa: E402
from conftest import CONFIGS, TINY  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from slotfill.analysis.evaluate import predict  # noqa: E402
from slotfill.cli import app  # noqa: E402
from slotfill.config import load_config  # noqa: E402
from slotfill.data.batching import encode_split, make_batch  # noqa: E402
from slotfill.data.corpus import read_corpus  # noqa: E402
from slotfill.data.tokenize import LOOKALIKES, PUNCTUATION  # noqa: E402
from slotfill.data.vocab import Vocabs  # noqa: E402
from slotfill.errors import SlotfillError  # noqa: E402
from slotfill.models import build_model  # noqa: E402
from slotfill.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from slotfill.serving.export import export_onnx, feeds  # noqa: E402

CORPUS = read_corpus(TINY)

# model.type, model.bidirectional, model.head, further overrides
REQUIRED = [(kind, bi, head, ["model.num_layers=2"] if (kind, bi) == ("lstm", True) else [])
            for kind in ("rnn", "lstm", "gru") for bi in (False, True)
            for head in ("softmax", "crf")]
OPTIONAL = [
    ("gru", True, "crf", ["model.num_layers=3", "model.bias=false"]),
    ("rnn", False, "softmax", ["model.nonlinearity=relu", "model.num_layers=2"]),
    ("jordan", False, "softmax", []),
    ("jordan", True, "crf", ["model.num_layers=2", "model.context_window=1"]),
    ("lstm", True, "crf", ["model.context_window=2", "model.intent=true"]),
    ("lstm", True, "softmax", ["model.char=cnn", "model.char_size=6", "model.char_dim=4"]),
    ("gru", False, "crf", ["model.char=lstm", "model.char_size=6", "model.char_dim=4",
                           "model.intent=true"]),
    ("lstm", True, "crf", ["model.attention_heads=2", "model.intent=true",
                           "model.intent_level=token", "model.intent_to_slots=true"]),
    ("gru", False, "softmax", ["model.attention_heads=4", "model.intent=true",
                               "model.intent_to_slots=true"]),
    ("lstm", True, "crf", ["model.refine=true", "model.char=cnn", "model.char_size=6",
                           "model.char_dim=4", "model.intent=true"]),
    ("jordan", False, "softmax", ["model.refine=true", "model.context_window=1"]),
]


def make_checkpoint(path: Path, kind: str, bi: bool, head: str, extra: list[str]) -> Path:
    """An untrained tiny model with random weights (CRF transitions included, so that
    Viterbi decoding differs from per-token argmax), saved as a checkpoint."""
    cfg = load_config(CONFIGS / "lstm.yaml", [
        f"model.type={kind}", f"model.bidirectional={str(bi).lower()}", f"model.head={head}",
        "model.hidden_size=8", "model.embedding_dim=8", f"data.path={TINY}", *extra])
    vocabs = Vocabs.build(CORPUS["train"], chars=cfg.model.char != "none")
    torch.manual_seed(0)
    model = build_model(cfg.model, vocabs, [e.tags for e in CORPUS["train"]])
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.7)
        model.embedder.words.weight[0] = 0  # padding rows stay zero, as trained ones do
        if model.embedder.chars is not None:
            model.embedder.chars.embedding.weight[0] = 0
    save_checkpoint(path, model, cfg, vocabs, {})
    return path


def run_onnx(session, split) -> tuple[list[list[int]], list[int] | None]:
    """Tag ids per utterance (cut to its length) and intent ids, from one padded batch."""
    outputs = session.run(None, feeds(split))
    lengths = split.lengths.tolist()
    for row, n in zip(outputs[0], lengths):  # padding is marked, not left to chance
        assert (row[n:] == -1).all()
    tags = [row[:n].tolist() for row, n in zip(outputs[0], lengths)]
    return tags, outputs[1].tolist() if len(outputs) > 1 else None


def check_export(checkpoint: Path, output: Path) -> None:
    files = export_onnx(checkpoint, output)
    assert files == [output, output.with_name(output.stem + ".vocab.json")]
    assert all(f.is_file() for f in files)
    ckpt = load_checkpoint(checkpoint)
    model, vocabs = ckpt.build_model(), ckpt.vocabs
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    test = CORPUS["test"]
    split = encode_split(test, vocabs)
    assert split.lengths.min() < split.lengths.max()  # a padded batch

    expected = predict(model, split, vocabs, batch_size=4)  # PyTorch, its own batches
    tags, intents = run_onnx(session, split)  # the whole split as one padded batch
    assert [vocabs.tags.decode(t) for t in tags] == expected.tags
    if ckpt.config.model.intent:
        assert vocabs.intents.decode(intents) == expected.intents
    else:
        assert intents is None

    for i, example in enumerate(test):  # one at a time: the same tags as in the batch
        alone, alone_intents = run_onnx(session, encode_split([example], vocabs))
        assert alone == [tags[i]]
        assert alone_intents == (None if intents is None else [intents[i]])

    if ckpt.config.model.head == "crf":  # the test is only as good as decoding is non-trivial
        with torch.no_grad():
            batch = make_batch(split, torch.arange(len(split)))
            greedy = model.scores(batch).argmax(-1)
            mask = torch.arange(split.words.size(1)) < split.lengths.unsqueeze(1)
            assert (greedy[mask] != model.decode(batch)[0][mask]).any()


@pytest.mark.parametrize("kind,bi,head,extra", REQUIRED + OPTIONAL,
                         ids=lambda v: v if isinstance(v, str) else
                         ("bi" if v else "uni") if isinstance(v, bool) else ",".join(
                             e.split(".")[1] for e in v) or "-")
def test_export_matches_pytorch(tmp_path, kind, bi, head, extra):
    checkpoint = make_checkpoint(tmp_path / "best.pt", kind, bi, head, extra)
    check_export(checkpoint, tmp_path / "out" / "model.onnx")


def test_vocab_file(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "lstm", True, "crf",
                                 ["model.char=cnn", "model.intent=true"])
    export_onnx(checkpoint, tmp_path / "tagger.onnx")
    info = json.loads((tmp_path / "tagger.vocab.json").read_text(encoding="utf-8"))
    vocabs = load_checkpoint(checkpoint).vocabs
    assert info["model_file"] == "tagger.onnx"
    assert info["words"][:2] == ["<pad>", "<unk>"] and info["words"] == vocabs.words.itos
    assert info["tags"] == vocabs.tags.itos and info["intents"] == vocabs.intents.itos
    assert info["char_vocabulary"] == vocabs.chars.itos
    assert set(info["tokenization"]["punctuation"]) == PUNCTUATION
    assert info["tokenization"]["replace"] == LOOKALIKES
    assert "o'clock" in info["tokenization"]["rules"]  # the tokenizer's own docstring
    assert [i["name"] for i in info["inputs"]] == ["word_ids", "lengths", "spellings", "chars"]
    assert [o["name"] for o in info["outputs"]] == ["tag_ids", "intent_ids"]
    assert {"slotfill", "torch", "onnx", "opset"} <= set(info["versions"])
    session = ort.InferenceSession(str(tmp_path / "tagger.onnx"))
    assert [i.name for i in session.get_inputs()] == [i["name"] for i in info["inputs"]]
    assert [o.name for o in session.get_outputs()] == [o["name"] for o in info["outputs"]]

    export_onnx(make_checkpoint(tmp_path / "plain.pt", "gru", False, "softmax", []),
                tmp_path / "plain")
    info = json.loads((tmp_path / "plain.vocab.json").read_text(encoding="utf-8"))
    assert info["intents"] is None and info["char_vocabulary"] is None  # corpus has intents


def test_unsupported_type_is_a_clear_error(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "seq2seq", False, "softmax", [])
    with pytest.raises(SlotfillError, match="cannot export seq2seq .*exportable are"):
        export_onnx(checkpoint, tmp_path / "model.onnx")
    assert not any(tmp_path.glob("model*"))


def test_existing_files_are_not_overwritten_without_force(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "rnn", False, "softmax", [])
    output, vocab = tmp_path / "model.onnx", tmp_path / "model.vocab.json"
    for existing in (output, vocab):
        existing.write_text("keep")
        with pytest.raises(SlotfillError, match="exists already") as error:
            export_onnx(checkpoint, output)
        assert "--force" in error.value.detail
        assert existing.read_text() == "keep" and not (output.exists() and vocab.exists())
        existing.unlink()
    output.write_text("keep")
    assert export_onnx(checkpoint, output, force=True) == [output, vocab]
    ort.InferenceSession(str(output))
    assert json.loads(vocab.read_text())["format"] == "slotfill-onnx"


def test_cli_exports_a_trained_run(trained_run, tmp_path):
    output = tmp_path / "sub" / "model.onnx"
    args = ["export", "--model", str(trained_run), "--output", str(output)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["wrote", str(output), "wrote",
                                     str(output.with_name("model.vocab.json"))]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "exists already" in result.output
    assert "Traceback" not in result.output
    ckpt = load_checkpoint(trained_run / "best.pt")
    split = encode_split(CORPUS["test"], ckpt.vocabs)
    tags, _ = run_onnx(ort.InferenceSession(str(output)), split)
    expected = predict(ckpt.build_model(), split, ckpt.vocabs, batch_size=4)
    assert [ckpt.vocabs.tags.decode(t) for t in tags] == expected.tags


def test_trained_model_agrees_on_the_bundled_test_split(trained_run, tmp_path):
    """The README's promise: exported tags equal PyTorch's on the bundled corpus's test
    split (500 utterances), in padded batches of mixed lengths."""
    ckpt = load_checkpoint(trained_run / "best.pt")
    output = tmp_path / "model.onnx"
    export_onnx(trained_run / "best.pt", output)
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    test = read_corpus("bundled", splits=("test",))["test"]
    assert len(test) == 500
    expected = predict(ckpt.build_model(), encode_split(test, ckpt.vocabs), ckpt.vocabs, 256)
    tags = []
    for start in range(0, len(test), 64):
        ids, _ = run_onnx(session, encode_split(test[start:start + 64], ckpt.vocabs))
        tags += [ckpt.vocabs.tags.decode(row) for row in ids]
    assert tags == expected.tags


def test_export_never_writes_an_unchecked_graph(tmp_path, monkeypatch):
    """Without onnxruntime there is no check against PyTorch, so nothing is written."""
    import sys
    checkpoint = make_checkpoint(tmp_path / "best.pt", "lstm", False, "softmax", [])
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.raises(SlotfillError, match="needs onnxruntime"):
        export_onnx(checkpoint, tmp_path / "model.onnx")
    assert not list(tmp_path.glob("model*"))
