"""The daemon loads the embedding model (its preload) and the language model (an editor's request) on
two threads; transformers' loading state is process-wide, so the two must not overlap. Before the lock
the language model failed with "Cannot copy out of meta tensor" or "cannot import name ..."."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BOTH = """
import sys, threading
from pathlib import Path
from storytransformer.config import Config, EngineConfig
from storytransformer.engine.local import LocalEngine
from storytransformer.similarity.embedding_model import load_model, resolve_model_dir
barrier, errors = threading.Barrier(2), []
def embedder():
    barrier.wait()
    try:
        load_model(resolve_model_dir(""))
    except Exception as e:
        errors.append(f"embedder: {type(e).__name__}: {e}")
def language_model():
    barrier.wait()
    try:
        LocalEngine(Config(engine=EngineConfig(generate=False, fast_path="off")), cache_root=Path(sys.argv[1])).load()
    except Exception as e:
        errors.append(f"model: {type(e).__name__}: {e}")
threads = [threading.Thread(target=embedder), threading.Thread(target=language_model)]
for t in threads: t.start()
for t in threads: t.join()
print("\\n".join(errors) or "ok")
"""


@pytest.mark.slow
def test_the_embedder_and_the_language_model_load_at_the_same_time(model_cache, cold_engine):
    pytest.importorskip("sentence_transformers")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", BOTH, str(model_cache)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "ok", r.stdout
