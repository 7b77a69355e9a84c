"""The rule registry: the Rule type and the table every rule module registers into with :func:`rule`.

Kept apart from the package so that rule modules (and the similarity and engine rules) import the
registry without importing the package that loads them: no import cycle.

A *story rule* sees one story (and the shared :class:`~.context.RuleContext`);
a *workspace rule* sees one story and the whole workspace (duplicates, the
dominant template). Both yield findings; severities and on/off come from the
configuration, applied in :mod:`storytransformer.lint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterable, Sequence

from ..findings import Finding, Severity

DOCS_URL = "https://github.com/storytransformer/storytransformer/blob/main/docs/rules.md#{anchor}"

# A story longer than this gets ST902 and the rules that look at every match (conjunctions,
# brackets, vague terms) look only at its first MAX_STORY_CHARS characters: a 1 MB story
# ("read and read and ...") then costs what a 2,000-character one does.
MAX_STORY_CHARS = 2000


@dataclass(frozen=True)
class Example:
    """A worked example of a rule: a story (or, for rules that compare stories, a small backlog whose
    LAST line is the story the example is about) and whether the rule flags that story."""

    text: str
    flagged: bool

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    def shown(self, limit: int = 160) -> str:
        """One line for a hover: the backlog's lines joined with ' / ' (a long backlog as a count of the
        stories before the last), a long story cut short."""
        lines = [f"{line[:limit].rstrip()}… ({len(line):,} characters)" if len(line) > limit else line
                 for line in self.lines]
        if len(lines) > 2:
            lines = [f"[{len(lines) - 1} other stories]", lines[-1]]
        return " / ".join(lines)


class FixKind(str, Enum):
    """What applying a rule's fix does to a backlog: the levels a fix policy turns on
    (:class:`storytransformer.checking.FixPolicy`), declared once on the rule."""

    NONE = "none"  # the rule offers no fix
    SAFE = "safe"  # rewrites a story and keeps what it asks for (move a note out, join sentences)
    UNSAFE = "unsafe"  # changes what the story asks for (a split into several stories)
    DELETION = "deletion"  # removes a whole story (an exact duplicate)


@dataclass(frozen=True)
class Rule:
    code: str
    name: str  # kebab-case, e.g. "missing-role"
    criterion: str  # QUS criterion, e.g. "well-formed"
    severity: Severity
    summary: str
    fixable: bool
    scope: str  # "story" | "workspace" | "semantic" | "model" (MODEL_SCOPE: needs a language model: check --model-checks)
    default_on: bool
    check: Callable[..., Iterable[Finding]] | None
    unsafe_fix: bool = False  # the fix changes what the story asks for: only with --unsafe-fixes
    fix: str = ""  # how to fix a finding, in one sentence (hover, docs, `storytransformer rules CODE`)
    examples: tuple[Example, ...] = ()  # at least one flagged and one unflagged; tests lint each
    fix_kind: FixKind | None = None  # None: derived from ``fixable`` and ``unsafe_fix``
    merge_candidate: bool = False  # its findings name stories that could be merged ("Merge with", suggest)

    def __post_init__(self):
        kind = self.fix_kind
        if kind is None:
            kind = FixKind.NONE if not self.fixable else FixKind.UNSAFE if self.unsafe_fix else FixKind.SAFE
        kind = FixKind(kind)
        object.__setattr__(self, "fix_kind", kind)
        object.__setattr__(self, "fixable", kind is not FixKind.NONE)
        object.__setattr__(self, "unsafe_fix", kind is FixKind.UNSAFE)

    @property
    def before(self) -> Example | None:
        """The first example the rule flags."""
        return next((e for e in self.examples if e.flagged), None)

    @property
    def after(self) -> Example | None:
        """The first example the rule does not flag."""
        return next((e for e in self.examples if not e.flagged), None)

    @property
    def needs_model(self) -> bool:
        """A criterion only a capable language model judges: no rule of words produces its findings
        (docs/benchmarks/rules.md); the engine's judge (:mod:`storytransformer.engine.judge`) asks the model
        when ``check --model-checks`` is given (docs/benchmarks/model_checks.md)."""
        return self.scope == MODEL_SCOPE

    @property
    def url(self) -> str:
        return DOCS_URL.format(anchor=f"{self.code.lower()}-{self.name}")


MODEL_SCOPE = "model"
RULES: dict[str, Rule] = {}
# Batch hooks run once per check before the per-story rules (e.g. parse all conjunctions at once).
PREPARE: dict[str, Callable] = {}  # rule code -> hook, run only when the rule is on


def rule(code: str, name: str, criterion: str, severity: Severity, summary: str, *,
         fixable: bool = False, scope: str = "story", default_on: bool = True, unsafe_fix: bool = False,
         fix: str = "", examples: Sequence[Example] = (), fix_kind: FixKind | None = None,
         merge_candidate: bool = False):
    """Register the decorated function as rule ``code``, with its fix hint and worked examples.

    ``fix_kind`` is needed only where ``fixable`` / ``unsafe_fix`` do not say it (a deletion)."""

    def register(fn):
        RULES[code] = Rule(code, name, criterion, severity, summary, fixable, scope, default_on, fn, unsafe_fix,
                           fix, tuple(examples), fix_kind, merge_candidate)
        return fn

    return register


def declare(code: str, name: str, criterion: str, severity: Severity, summary: str, *,
            fixable: bool = False, scope: str = "semantic", default_on: bool = True,
            fix: str = "", examples: Sequence[Example] = (), merge_candidate: bool = False) -> None:
    """Declare a rule whose findings are produced elsewhere (the similarity index, the engine), or, with
    ``scope=MODEL_SCOPE``, a check that needs a language model, run only by ``check --model-checks``."""
    RULES[code] = Rule(code, name, criterion, severity, summary, fixable, scope, default_on, None,
                       fix=fix, examples=tuple(examples), merge_candidate=merge_candidate)


def merge_candidate_codes() -> frozenset[str]:
    """The codes whose findings pair stories that could be merged into one."""
    return frozenset(code for code, r in RULES.items() if r.merge_candidate)
