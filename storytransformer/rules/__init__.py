"""The rule registry. Each rule module registers small pure functions with :func:`rule`.

A *story rule* sees one story (and the shared :class:`~.context.RuleContext`);
a *workspace rule* sees one story and the whole workspace (duplicates, the
dominant template). Both yield findings; severities and on/off come from the
configuration, applied in :mod:`storytransformer.lint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ..findings import Finding, Severity

DOCS_URL = "https://github.com/storytransformer/storytransformer/blob/main/docs/rules.md#{anchor}"

# A story longer than this gets ST902 and the rules that look at every match (conjunctions,
# brackets, vague terms) look only at its first MAX_STORY_CHARS characters: a 1 MB story
# ("read and read and ...") then costs what a 2,000-character one does.
MAX_STORY_CHARS = 2000


@dataclass(frozen=True)
class Rule:
    code: str
    name: str  # kebab-case, e.g. "missing-role"
    criterion: str  # QUS criterion, e.g. "well-formed"
    severity: Severity
    summary: str
    fixable: bool
    scope: str  # "story" | "workspace" | "semantic"
    default_on: bool
    check: Callable[..., Iterable[Finding]] | None
    unsafe_fix: bool = False  # the fix changes what the story asks for: only with --unsafe-fixes

    @property
    def url(self) -> str:
        return DOCS_URL.format(anchor=f"{self.code.lower()}-{self.name}")


RULES: dict[str, Rule] = {}
# Batch hooks run once per check before the per-story rules (e.g. parse all conjunctions at once).
PREPARE: dict[str, Callable] = {}  # rule code -> hook, run only when the rule is on


def rule(code: str, name: str, criterion: str, severity: Severity, summary: str, *,
         fixable: bool = False, scope: str = "story", default_on: bool = True, unsafe_fix: bool = False):
    """Register the decorated function as rule ``code``."""

    def register(fn):
        RULES[code] = Rule(code, name, criterion, severity, summary, fixable, scope, default_on, fn, unsafe_fix)
        return fn

    return register


def declare(code: str, name: str, criterion: str, severity: Severity, summary: str, *,
            fixable: bool = False, scope: str = "semantic", default_on: bool = True) -> None:
    """Declare a rule whose findings are produced elsewhere (the similarity index, the engine)."""
    RULES[code] = Rule(code, name, criterion, severity, summary, fixable, scope, default_on, None)


def _load_all() -> None:
    from . import atomic, estimatable, full_sentence, minimal, problem_oriented, unambiguous, uniform, unique, well_formed  # noqa: F401

    # Rules whose findings come from the similarity index and the engine; declaring them is cheap.
    import importlib

    for module in ("storytransformer.similarity.rules", "storytransformer.engine.rules"):
        try:
            importlib.import_module(module)
        except ImportError:
            pass


_load_all()
