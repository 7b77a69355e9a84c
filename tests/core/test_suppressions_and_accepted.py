"""The suppression comments the language server's code actions write, and accepted words."""

from __future__ import annotations

import pytest

from storytransformer.config import Config, ConfigError, from_table
from tests.core.helpers import lint_texts

STORY = "As a user, I want fast and easy search, so that I find books.\n"


def vague(findings) -> list[str]:
    return sorted(f.data["term"].lower() for f in findings if f.code == "ST701")


@pytest.mark.parametrize("name, comment", [
    ("b.txt", "# storytransformer: ignore-file ST701\n"),
    ("b.md", "<!-- storytransformer: ignore-file ST701 -->\n"),
    ("b.feature", "# storytransformer: ignore-file ST701\n"),
])
def test_a_file_level_comment_silences_a_code_in_the_whole_file(name, comment):
    body = {"b.txt": STORY + STORY.replace("user", "member"),
            "b.md": "- " + STORY + "- " + STORY.replace("user", "member"),
            "b.feature": "Feature: search\n  " + STORY}[name]
    _, before = lint_texts({name: body})
    assert vague(before)
    ws, after = lint_texts({name: comment + body})
    assert vague(after) == [] and len(ws) == len(lint_texts({name: body})[0])  # the stories are still read


@pytest.mark.parametrize("name, body", [
    ("b.txt", "# storytransformer: ignore ST701\n" + STORY + STORY.replace("user", "member")),
    ("b.md", "<!-- storytransformer: ignore ST701 -->\n- " + STORY + "- " + STORY.replace("user", "member")),
])
def test_a_story_level_comment_silences_only_the_next_story(name, body):
    _, findings = lint_texts({name: body})
    lines = {f.range.start.line for f in findings if f.code == "ST701"}
    assert lines == {2}


def test_accepted_words_are_no_longer_vague():
    _, findings = lint_texts({"b.txt": STORY})
    assert vague(findings) == ["easy", "fast"]
    _, findings = lint_texts({"b.txt": STORY}, Config(accepted_words=["Fast"]))
    assert vague(findings) == ["easy"]
    # accepted words win over extend-vague-words too
    cfg = from_table({"extend-vague-words": ["blazing"], "accepted-words": ["blazing", "easy"]})
    _, findings = lint_texts({"b.txt": STORY.replace("fast", "blazing")}, cfg)
    assert vague(findings) == []


def test_accepted_words_must_be_a_list_of_strings():
    with pytest.raises(ConfigError, match="accepted-words"):
        from_table({"accepted-words": "fast"}, "pyproject.toml")
