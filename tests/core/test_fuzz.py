"""Readers and rules never raise on arbitrary text, and every range stays inside the text.

The long run (10,000+ inputs, real files mutated) is benchmarks/fuzz_bench.py.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storytransformer.formats import read_source
from storytransformer.lines import split_lines

from .helpers import lint_texts

FRAGMENTS = ["As a ", "As an ", "I want to ", "I'd like ", " so that ", " and ", " or ", "/", "(", ")", "[", "]",
             ". ", "\n", "\r\n", "- ", "* ", "# ", "## US-1: ", "Feature: ", "Scenario: ", "@US-2\n", ",", '"',
             "<!-- storytransformer: ignore -->", "user", "edit", "add", "fast", "é", "👩‍💻", "\t", "  "]
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=40).map("".join)


def check_ranges(source, text):
    lines = split_lines(text)  # lines as the readers and LSP count them
    for s in source.stories:
        for r in [s.range, *(p.range for p in s.parts())]:
            assert 0 <= r.start.line <= r.end.line < max(len(lines), 1)
            assert 0 <= r.start.character <= len(lines[r.start.line]) if lines else True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, st.sampled_from(["b.txt", "b.md", "b.feature", "b.csv"]))
def test_readers_and_rules_never_raise(text, path):
    try:
        source = read_source(path, text)
    except ValueError as e:  # a clear, expected error (a CSV without a story column)
        assert path.endswith(".csv") and "story column" in str(e)
        return
    check_ranges(source, text)
    lint_texts({path: text})
