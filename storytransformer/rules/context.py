"""What rules share during one run: the configuration, compiled word lists, the dominant template."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Iterable

from ..lines import split_lines
from ..story import Story

if TYPE_CHECKING:  # the configuration is passed in; importing it would close config -> rules -> config
    from ..config import Config


def word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """One case-insensitive regex matching any of ``words`` as whole words or phrases."""
    alts = sorted({re.escape(w.strip()).replace(r"\ ", r"\s+") for w in words if w.strip()}, key=len, reverse=True)
    if not alts:
        return re.compile(r"(?!x)x")
    return re.compile(r"(?<![\w-])(?:" + "|".join(alts) + r")(?![\w-])", re.IGNORECASE)


def role_family(marker: str) -> str:
    m = marker.lower().split()
    return "as a" if len(m) > 1 and m[1] in ("a", "an") else ("as the" if len(m) > 1 else "as")


MEANS_FAMILIES = (
    ("i want", re.compile(r"^(i|we) (?:(?:only|also|really|just|still|always|mainly) )?(want|wish)", re.I)),
    ("i'd like", re.compile(r"^(i|we) (would like|['’]d like)", re.I)),
    ("i need", re.compile(r"^(i|we) need", re.I)),
    ("i can", re.compile(r"^(i|we) (can|could|am able|['’]m able|.*be able)", re.I)),
    ("i don't want", re.compile(r"^(i|we) (do not|don['’]t) want", re.I)),
)


def means_family(marker: str) -> str:
    for name, pat in MEANS_FAMILIES:
        if pat.match(marker):
            return name
    return marker.lower()


def ends_family(marker: str) -> str:
    m = " ".join(marker.lower().split())
    return "so that" if m in ("so that", "so") else m


@dataclass
class Template:
    """The backlog's dominant way of writing a story, counted over all its stories."""

    role: str = "as a"
    means: str = "i want"
    ends: str = "so that"
    role_share: float = 0.0
    means_share: float = 0.0
    counted: int = 0  # stories with a role and a means: those the template is counted over
    with_means: int = 0  # stories with a means, with or without a role
    lines: int = 0  # every story, those with no template at all (a heading, a fragment) included

    @staticmethod
    def of(stories: Iterable[Story]) -> "Template":
        roles: Counter[str] = Counter()
        means: Counter[str] = Counter()
        n = with_means = lines = 0
        for s in stories:
            lines += 1
            with_means += s.means is not None
            if s.role and s.means:
                n += 1
                roles[role_family(s.role.marker)] += 1
                means[means_family(s.means.marker)] += 1
        if not n:
            return Template(with_means=with_means, lines=lines)
        (r, rc), (m, mc) = roles.most_common(1)[0], means.most_common(1)[0]
        return Template(r, m, "so that", rc / n, mc / n, n, with_means, lines)


@dataclass
class RuleContext:
    config: Config
    template: Template = field(default_factory=Template)
    workspace: object | None = None  # the Workspace, for rules that need other stories or the file's lines
    use_disk_cache: bool = True
    background_parser: object | None = None  # an nlp.BackgroundParser started early by the caller

    @cached_property
    def conjunctions(self):
        from ..nlp import ConjunctionAnalyser

        return ConjunctionAnalyser(use_disk_cache=self.use_disk_cache, background=self.background_parser)

    def lines_of(self, story: Story) -> list[str]:
        files = getattr(self.workspace, "files", {})
        source = files.get(story.file)
        return source.lines if source is not None else split_lines(story.text)

    @cached_property
    def vague(self) -> re.Pattern[str]:
        return word_pattern(self.config.all_vague_words)

    @cached_property
    def accepted(self) -> frozenset[str]:
        """Words the project accepts (``accepted-words``): never reported as vague or a catch-all."""
        return frozenset(w.strip().lower() for w in self.config.accepted_words)

    @cached_property
    def solution(self) -> re.Pattern[str]:
        return word_pattern(self.config.all_solution_words)
