"""One line-splitting rule (\\n, \\r\\n, \\r, as LSP counts lines) for readers, rules and edits.

Text pasted from PDFs carries U+2028, U+2029, U+0085, VT, FF and \\x1c-\\x1e. ``str.splitlines()``
breaks lines there and an editor does not, so fixes landed on the wrong story.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storytransformer.edits import apply_edits
from storytransformer.lines import line_starts, split_lines, split_lines_keepends

from .helpers import lint_texts

ODD = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]
BREAKS = ["\n", "\r\n", "\r"]


def lsp_lines(text: str) -> list[str]:
    """Reference: lines as the LSP specification defines them, character by character."""
    lines, cur, i = [], "", 0
    while i < len(text):
        c = text[i]
        if c == "\r" and text[i + 1:i + 2] == "\n":
            lines.append(cur)
            cur, i = "", i + 2
            continue
        if c in "\r\n":
            lines.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    lines.append(cur)
    return lines


@given(st.lists(st.sampled_from(list("ab ") + ODD + BREAKS), max_size=40).map("".join))
def test_split_lines_is_the_lsp_rule(text):
    expected = lsp_lines(text)
    assert split_lines_keepends(text) == [] or "".join(split_lines_keepends(text)) == text
    assert len(line_starts(text)) == len(expected)
    ends = expected[:-1] if expected[-1] == "" else expected
    assert split_lines(text) == ends
    for start, line in zip(line_starts(text), expected):
        assert text[start:start + len(line)] == line


@pytest.mark.parametrize("sep", ODD)
def test_odd_separators_stay_inside_the_line(sep):
    assert split_lines(f"a{sep}b\nc") == [f"a{sep}b", "c"]


story_text = st.sampled_from([
    "As a member, I want to see my loans (last two years), so that I remember.",
    "As a member, I want to renew loans, so that I keep books.",
    "As a visitor, I want to read the opening hours (weekdays), so that I come in time.",
])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(story_text, st.sampled_from(ODD), st.integers(1, 30), st.sampled_from(BREAKS)),
                min_size=2, max_size=6))
def test_fixes_edit_the_line_the_editor_means(items):
    """Stories with odd separators inside them: each bracket fix edits its own line and nothing else."""
    lines = []
    for story, sep, at, _ in items:
        at = min(at, len(story) - 1)
        while story[at - 1] == " " or story[at] == " ":
            at += 1
        lines.append(story[:at] + sep + story[at:])
    text = "".join(line + brk for line, (_, _, _, brk) in zip(lines, items))
    _, findings = lint_texts({"b.txt": text})
    for f in findings:
        assert f.range.start.line < len(lines)
        assert lsp_lines(text)[f.range.start.line].startswith(lines[f.range.start.line][:10])
    for f in [f for f in findings if f.code == "ST301" and f.fix]:
        n = f.range.start.line
        out = lsp_lines(apply_edits(text, f.fix.edits))
        before = lsp_lines(text)
        assert out[:n] == before[:n]  # lines above untouched
        assert out[n + 2:] == before[n + 1:]  # lines below untouched (one note line inserted)
        assert "(" not in out[n] and out[n + 1].startswith("# Note: ")


@pytest.mark.parametrize("name, sep", [("b.md", "\u2028"), ("b.feature", "\x0c"), ("b.csv", "\u0085")])
def test_every_reader_counts_lines_the_same_way(name, sep):
    stories = [f"As a member, I want to see{sep}my loans (old), so that I remember.",
               "As a member, I want to renew loans (now), so that I keep books."]
    if name.endswith(".md"):
        text = "".join(f"- {s}\n" for s in stories)
    elif name.endswith(".feature"):
        text = "Feature: Loans\n  " + stories[0] + "\n\nFeature: Renewals\n  " + stories[1] + "\n"
    else:
        text = "Summary\n" + "".join(f"\"{s}\"\n" for s in stories)
    ws, findings = lint_texts({name: text})
    (source,) = ws.files.values()
    assert [s.range.start.line for s in source.stories] == [
        i for i, line in enumerate(lsp_lines(text)) if "I want" in line]
