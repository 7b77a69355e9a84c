"""The daemon loads the embedding model and the language model on two threads at once; their first
imports of transformers must not see each other's half-built modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RACE = """
import threading
from storytransformer import hf_imports
barrier = threading.Barrier(3)
errors = []
def grab(module, *names):
    barrier.wait()
    try:
        hf_imports.names(module, *names)
    except Exception as e:
        errors.append(f"{module}: {type(e).__name__}: {e}")
threads = [threading.Thread(target=grab, args=a) for a in [
    ("sentence_transformers", "SentenceTransformer"),
    ("transformers", "AutoModelForCausalLM", "AutoTokenizer"),
    ("transformers", "LogitsProcessorList", "StoppingCriteria")]]
for t in threads: t.start()
for t in threads: t.join()
print("\\n".join(errors) or "ok")
"""


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_first_imports_of_transformers_all_succeed(attempt):
    pytest.importorskip("sentence_transformers")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", RACE], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "ok", r.stdout


def test_a_missing_name_is_an_import_error():
    from storytransformer import hf_imports

    with pytest.raises(ImportError, match="json"):
        hf_imports.names("json", "no_such_name")
