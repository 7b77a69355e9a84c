"""Every rule's worked examples, linted: generated from the declarations in the registry.

An example is one story, or a small backlog whose last line is the story the example is about;
the rule must flag that line exactly when the example says so. Rules that are off by default are
selected for their own examples.
"""

from __future__ import annotations

import pytest

from storytransformer.config import Config
from storytransformer.rules import RULES

from .helpers import codes_on_line, lint_texts

PATH = "stories.txt"
CASES = [pytest.param(r.code, i, id=f"{r.code}-{i}-{'flagged' if e.flagged else 'clean'}")
         for r in sorted(RULES.values(), key=lambda r: r.code) for i, e in enumerate(r.examples)]


def config_for(code: str) -> Config:
    config = Config()
    if not RULES[code].default_on:
        config.severity[code] = RULES[code].severity.value  # on, at its declared severity
    return config


def flagged_codes(code: str, text: str) -> set[str]:
    """Codes on the last line of ``text`` linted as one file (semantic rules through the similarity index)."""
    last = len(text.split("\n"))
    if RULES[code].scope == "semantic":
        pytest.importorskip("sentence_transformers")
        from storytransformer.similarity import semantic_findings
        from storytransformer.workspace import Workspace

        ws = Workspace(config_for(code))
        ws.set_text(PATH, text)
        findings = semantic_findings(ws, ws.config)
    else:
        _, findings = lint_texts({PATH: text}, config_for(code))
    return codes_on_line(findings, PATH, last)


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path_factory, monkeypatch):
    """The semantic examples embed into a temporary cache, never the user's."""
    monkeypatch.setenv("STORYTRANSFORMER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "st-cache"))


@pytest.mark.parametrize("code, index", CASES)
def test_the_rule_flags_its_example_exactly_when_declared(code, index):
    example = RULES[code].examples[index]
    if RULES[code].needs_model:
        # Declared for the docs; no rule produces it, selected or not: its examples say what a model should find.
        assert RULES[code].check is None and code not in flagged_codes(code, example.text)
        if example.flagged:
            pytest.skip(f"{code} needs a language model, which check does not run")
        return
    got = code in flagged_codes(code, example.text)
    assert got == example.flagged, (f"{code} {'did not flag' if example.flagged else 'flagged'} "
                                    f"the last line of {example.text!r}")


@pytest.mark.parametrize("code", sorted(RULES))
def test_every_rule_declares_a_fix_hint_and_both_kinds_of_example(code):
    r = RULES[code]
    assert r.fix.strip(), f"{code} has no fix hint"
    assert any(e.flagged for e in r.examples), f"{code} has no example it flags"
    assert any(not e.flagged for e in r.examples), f"{code} has no example it leaves alone"
    assert all(e.text.strip() and e.text == e.text.strip("\n") for e in r.examples)
