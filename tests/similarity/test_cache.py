"""The on-disk embedding cache: round trip, damage, model changes, atomic writes."""

from __future__ import annotations

import os

import msgpack
import numpy as np
import pytest

from storytransformer.similarity.embedding_cache import ENV_CACHE_DIR, EmbeddingCache, cache_root, text_key
from storytransformer.similarity.embedder import Embedder
from storytransformer.similarity.embedding_model import model_id

DIM = 8


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float16).astype(np.float32)


def filled(path, model="m-1", n=5) -> tuple[EmbeddingCache, list[bytes], np.ndarray]:
    cache = EmbeddingCache(model, DIM, path)
    keys = [text_key(f"story {i}") for i in range(n)]
    vecs = unit_rows(n)
    cache.put(keys, vecs)
    assert cache.save()
    return cache, keys, vecs


def test_round_trip(tmp_path):
    path = tmp_path / "e.msgpack"
    _, keys, vecs = filled(path)
    again = EmbeddingCache("m-1", DIM, path).load()
    found, got = again.lookup(keys + [text_key("unknown")])
    assert found.tolist() == [True] * 5 + [False]
    assert np.array_equal(got, vecs)
    assert again.loaded_from_disk == 5 and again.problem is None


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "sub" / "e.msgpack"
    filled(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["e.msgpack"]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong-shape", "not-a-map"])
def test_damaged_file_is_ignored_then_rebuilt(tmp_path, damage):
    path = tmp_path / "e.msgpack"
    _, keys, vecs = filled(path)
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(256))
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong-shape":
        obj = msgpack.unpackb(data)
        obj["vectors"] = obj["vectors"][:-2]
        path.write_bytes(msgpack.packb(obj))
    else:
        path.write_bytes(msgpack.packb([1, 2, 3]))
    cache = EmbeddingCache("m-1", DIM, path).load()
    assert len(cache) == 0 and cache.problem
    cache.put(keys[:2], vecs[:2])
    assert cache.save()
    again = EmbeddingCache("m-1", DIM, path).load()
    assert again.problem is None and len(again) == 2


def test_another_model_or_format_invalidates(tmp_path):
    path = tmp_path / "e.msgpack"
    _, keys, _ = filled(path, model="m-1")
    other = EmbeddingCache("m-2", DIM, path).load()
    assert len(other) == 0 and "m-1" in other.problem
    obj = msgpack.unpackb(path.read_bytes())
    obj["format"] = 999
    path.write_bytes(msgpack.packb(obj))
    assert len(EmbeddingCache("m-1", DIM, path).load()) == 0


def test_unreadable_directory_is_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = EmbeddingCache("m-1", DIM, blocker / "e.msgpack")  # parent is a file
    cache.put([text_key("a")], unit_rows(1))
    assert cache.load() is cache
    assert cache.save() is False


def test_env_var_overrides_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_CACHE_DIR, str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert EmbeddingCache("m-1", DIM).path.parent == tmp_path / "c" / "embeddings"


def test_model_id_changes_with_the_model_files(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "modules.json").write_text("[]")
    (d / "config.json").write_text('{"hidden_size": 8}')
    first = model_id(d)
    assert model_id(d) == first
    (d / "config.json").write_text('{"hidden_size": 16}')
    assert model_id(d) != first


class CountingModel:
    """A stand-in for SentenceTransformer that counts the texts it embeds."""

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts, **_):
        self.seen.extend(texts)
        return np.stack([unit_rows(1, seed=sum(map(ord, t)))[0] for t in texts])


def fake_embedder(tmp_path, model: CountingModel) -> Embedder:
    d = tmp_path / "model"
    if not d.exists():
        (d / "1_Pooling").mkdir(parents=True)
        (d / "modules.json").write_text('[{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]')
        (d / "1_Pooling" / "config.json").write_text(f'{{"word_embedding_dimension": {DIM}}}')
    emb = Embedder(str(d), cache_path=tmp_path / "cache.msgpack")
    emb._model = model
    return emb


def test_embedder_embeds_each_text_once_and_reads_the_cache_warm(tmp_path):
    cold_model = CountingModel()
    cold = fake_embedder(tmp_path, cold_model)
    texts = ["As a user, I want A", "As a user, I want B", "As a user, I want A", ""]
    first = cold.encode(texts)
    assert cold_model.seen == ["As a user, I want A", "As a user, I want B"]  # de-duplicated, empty skipped
    assert not first[3].any()  # empty text: zero vector
    assert cold.save()
    warm_model = CountingModel()
    warm = fake_embedder(tmp_path, warm_model)
    again = warm.encode(texts)
    assert warm_model.seen == [] and warm.computed == 0
    assert np.array_equal(first, again)  # warm results equal cold ones exactly
