"""Token counts with the configured model's tokenizer, cached by text.

The packaged model is a GGUF file, and reading a tokenizer out of a GGUF takes
about ten seconds; so the tokenizer comes from the engine's converted-model cache
when the engine has converted the file already, else from a tokenizer-only cache
written here the first time (keyed by the GGUF's SHA-256, written atomically).
Counts are cached by a hash of the story text, per tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from .. import hf_imports

log = logging.getLogger(__name__)

MARKER = "storytransformer-tokenizer.json"  # written last: the cache entry is whole


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).digest()


class TokenCounter:
    """Counts tokens of story texts with one tokenizer; ``label`` names it in reports."""

    def __init__(self, tokenizer, label: str, model_label: str = "", context_window: int | None = None,
                 cache_file: Path | None = None):
        self.tokenizer = tokenizer
        self.label = label
        self.model_label = model_label or label
        self.context_window = context_window
        self.cache_file = cache_file
        self._counts: dict[bytes, int] = {}
        self._dirty = False
        if cache_file is not None:
            self._read_cache()

    @classmethod
    def for_config(cls, config, use_cache: bool = True) -> "TokenCounter":
        """The tokenizer of ``config.engine.model`` (the packaged SmolLM2 when unset)."""
        directory, label, model_label, context = tokenizer_directory(config)
        tok = _load_tokenizer(directory)
        cache = None
        if use_cache:
            from ..run_cache import cache_root

            cache = cache_root() / "tokens" / (hashlib.blake2b(label.encode(), digest_size=8).hexdigest() + ".msgpack")
        return cls(tok, label, model_label, context, cache)

    def count(self, text: str) -> int:
        return self.count_many([text])[0]

    def count_many(self, texts: Sequence[str]) -> list[int]:
        keys = [_text_key(t) for t in texts]
        todo = {k: t for k, t in zip(keys, texts) if k not in self._counts}
        if todo:
            ids = self.tokenizer(list(todo.values()), add_special_tokens=False)["input_ids"]
            for k, row in zip(todo, ids):
                self._counts[k] = len(row)
            self._dirty = True
        return [self._counts[k] for k in keys]

    def prompt_overhead(self) -> int:
        """Tokens the engine's rewrite prompt adds around one story (chat template included)."""
        from ..engine import prompts

        with_story = prompts.messages("rewrite", ["x"])
        try:
            text = self.tokenizer.apply_chat_template(with_story, tokenize=False, add_generation_prompt=True)
        except (ValueError, AttributeError, TypeError):  # no chat template
            text = prompts.plain(with_story)
        return max(0, len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) - self.count("x"))

    # -- count cache -------------------------------------------------------------
    def _read_cache(self) -> None:
        import msgpack

        try:
            data = msgpack.unpackb(self.cache_file.read_bytes())
            if isinstance(data, dict):
                self._counts = {k: v for k, v in data.items() if isinstance(k, bytes) and isinstance(v, int)}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as e:
            log.info("token count cache %s ignored: %s", self.cache_file, e)

    def save(self) -> None:
        if self.cache_file is None or not self._dirty:
            return
        import msgpack

        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tokens.", dir=self.cache_file.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(msgpack.packb(self._counts))
            os.replace(tmp, self.cache_file)
            self._dirty = False
        except OSError as e:  # a cache that cannot be written only costs time
            log.info("token count cache %s not written: %s", self.cache_file, e)


def tokenizer_directory(config) -> tuple[str, str, str, int | None]:
    """(directory to load, tokenizer label, model label, context window) for the configured model."""
    from ..engine import modelfiles

    spec = config.engine.model
    source = modelfiles.resolve(spec, Path(config.root))
    if source.kind == "gguf":
        gguf = Path(source.location)
        converted = modelfiles.cached_conversion(gguf)
        if modelfiles.is_complete(converted):
            return str(converted), source.label, source.label, _context_of(converted)
        directory = _tokenizer_cache(gguf, converted.name)
        meta = json.loads((directory / MARKER).read_text("utf-8"))
        return str(directory), source.label, source.label, meta.get("context_window")
    if source.kind == "directory":
        return source.location, source.label, source.label, _context_of(Path(source.location))
    return source.location, source.label, source.label, None  # a hub id (online only)


def _load_tokenizer(where: str):
    AutoTokenizer = hf_imports.names("transformers", "AutoTokenizer")

    return AutoTokenizer.from_pretrained(where, trust_remote_code=False)


def _context_of(directory: Path) -> int | None:
    try:
        cfg = json.loads((directory / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    value = cfg.get("max_position_embeddings") or cfg.get("n_positions")
    return int(value) if isinstance(value, int) else None


def _tokenizer_cache(gguf: Path, digest: str) -> Path:
    """A directory holding only the tokenizer of ``gguf`` (built once, atomically)."""
    from ..run_cache import cache_root

    target = cache_root() / "tokenizers" / digest
    if (target / MARKER).is_file():
        return target
    AutoTokenizer = hf_imports.names("transformers", "AutoTokenizer")

    log.info("reading the tokenizer of %s (once)", gguf.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=target.parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tok.save_pretrained(str(tmp))
        (tmp / MARKER).write_text(json.dumps({"gguf": gguf.name, "context_window": gguf_context_window(gguf)}))
        try:
            os.replace(tmp, target)
        except OSError:  # another process wrote it first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def gguf_context_window(gguf: Path) -> int | None:
    """``<architecture>.context_length`` from the GGUF header (memory-mapped, no tensors read)."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(gguf))
        arch = _field(reader, "general.architecture")
        value = _field(reader, f"{arch}.context_length") if arch else None
        return int(value) if value is not None else None
    except Exception as e:  # the figure is informative only
        log.info("no context length in %s: %s", gguf, e)
        return None


def _field(reader, name: str):
    f = reader.fields.get(name)
    return None if f is None else f.contents()
