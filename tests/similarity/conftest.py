"""Fixtures for the similarity tests: a private embedding cache and one real model per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import SUBSET


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory):
    """Every test (and CLI subprocess) uses a temporary embedding cache, never the user's."""
    path = tmp_path_factory.mktemp("st-cache")
    old = os.environ.get("STORYTRANSFORMER_CACHE_DIR")
    os.environ["STORYTRANSFORMER_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("STORYTRANSFORMER_CACHE_DIR", None)
    else:
        os.environ["STORYTRANSFORMER_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def subset_dir(real_backlogs, tmp_path_factory) -> Path:
    """A workspace of four real backlogs (copied at test time; nothing is committed)."""
    d = tmp_path_factory.mktemp("subset")
    for name in SUBSET:
        (d / name).write_text((real_backlogs / name).read_text("utf-8"), "utf-8")
    return d


@pytest.fixture(scope="session")
def embedder(private_cache_dir):
    pytest.importorskip("sentence_transformers")
    from storytransformer.similarity.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def subset_workspace(subset_dir):
    from storytransformer.config import Config
    from storytransformer.workspace import Workspace

    return Workspace.from_paths([str(subset_dir)], Config())


@pytest.fixture(scope="session")
def subset_index(subset_workspace, embedder):
    from storytransformer.config import SimilarityConfig
    from storytransformer.similarity.index import SimilarityIndex

    index = SimilarityIndex.build(subset_workspace.stories(), SimilarityConfig(), embedder=embedder)
    index.save_cache()
    return index
