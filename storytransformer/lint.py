"""Run the rules over a workspace: select rules, apply severities and suppressions.

This is the one entry point the CLI, the language server and the daemon use
for deterministic findings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from .config import Config
from .file_ignores import without_ignored
from .findings import Finding, Severity, shifted
from .rules import PREPARE, RULES, Rule
from .rules.context import RuleContext, Template
from .story import SourceFile, Story
from .workspace import Workspace


MEMO_SIZE = 50_000  # remembered stories per linter (an edit storm on a large file stays bounded)


def enabled_rules(config: Config) -> list[Rule]:
    """The rules this configuration turns on, in code order."""
    chosen = []
    for code, r in sorted(RULES.items()):
        on = r.default_on
        if config.select:
            on = any(code.startswith(s.upper()) for s in config.select)
        if any(code.startswith(s.upper()) for s in config.extend_select):
            on = True
        if any(code.startswith(s.upper()) for s in config.ignore):
            on = False
        if config.severity.get(code) == "off":
            on = False
        elif code in config.severity:
            on = True
        if on:
            chosen.append(r)
    return chosen


def severity_of(r: Rule, config: Config) -> Severity:
    sev = config.severity.get(r.code)
    return Severity(sev) if sev and sev != "off" else r.severity


class Linter:
    """Holds the per-run state (template, compiled word lists) so one-file re-checks are cheap."""

    def __init__(self, workspace: Workspace, use_disk_cache: bool = True, background_parser=None):
        self.workspace = workspace
        self.config = workspace.config
        self.rules = enabled_rules(self.config)
        self._memo: dict[tuple, tuple[int, list[Finding]]] = {}
        self.context = RuleContext(self.config, Template.of(workspace.stories()), workspace, use_disk_cache,
                                   background_parser)

    def refresh_template(self) -> None:
        self.context.template = Template.of(self.workspace.stories())

    def check_story(self, story: Story, source: SourceFile | None = None, scope: str | None = None) -> list[Finding]:
        """Findings for one story, from every rule (or only rules of ``scope``: "story" or "workspace")."""
        return without_ignored(self._check_story(story, source, scope), self.config)

    def _check_story(self, story: Story, source: SourceFile | None, scope: str | None) -> list[Finding]:
        """:meth:`check_story` before per-file-ignores: what the caches keep (they are keyed by content, and
        two files with one text may sit under different globs)."""
        out: list[Finding] = []
        file_sup = source.suppressed if source else frozenset()
        for r in self.rules:
            if r.check is None or story.is_suppressed(r.code) or r.code in file_sup or "*" in file_sup:
                continue
            if scope is not None and r.scope != scope:
                continue
            args = (story, self.context, self.workspace) if r.scope == "workspace" else (story, self.context)
            for f in r.check(*args):
                sev = severity_of(r, self.config)
                out.append(f if f.severity == sev else replace(f, severity=sev))
        return out

    def _story_findings(self, story: Story, source: SourceFile) -> list[Finding]:
        """Story-scope findings, remembered per story so an edit re-checks only the stories it changed.

        Keyed by the story's text and shape, not its line: a story moved by lines inserted above
        it gets its remembered findings moved with it.
        """
        r = story.range
        shape = (r.end.line - r.start.line, r.start.character, r.start.utf16, r.end.character)
        key = (story.file, shape, story.text, story.id, story.suppressed, source.suppressed)
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) > MEMO_SIZE:
                self._memo.clear()
            found = self._check_story(story, source, "story")
            self._memo[key] = (r.start.line, found)
            return found
        line, found = hit
        return found if line == r.start.line else [shifted(f, r.start.line - line) for f in found]

    def check_file(self, path: str) -> list[Finding]:
        source = self.workspace.files.get(path)
        if source is None:
            return []
        cache = self.workspace.cache
        cached = cache.findings(source.digest, path) if cache is not None and source.digest else None
        if cached is None:
            cached = [f for s in source.stories for f in self._story_findings(s, source)]
            if cache is not None and source.digest:
                cache.put_findings(source.digest, cached)
        out = list(cached)
        for s in source.stories:
            out.extend(self._check_story(s, source, "workspace"))
        return sorted(without_ignored(out, self.config), key=Finding.sort_key)

    def check(self, paths: Iterable[str] | None = None) -> list[Finding]:
        targets = list(paths) if paths is not None else list(self.workspace.files)
        self.prepare(s for p in targets if p in self.workspace.files and not self._cached(p)
                     for s in self.workspace.files[p].stories)
        out: list[Finding] = []
        for path in targets:
            out.extend(self.check_file(path))
        self.save_caches()
        return out

    def _cached(self, path: str) -> bool:
        cache, source = self.workspace.cache, self.workspace.files[path]
        return cache is not None and bool(source.digest) and cache.has_findings(source.digest)

    def prepare(self, stories: Iterable[Story]) -> None:
        """Run the rules' batch hooks (one parser batch for the whole run)."""
        stories = list(stories)
        for r in self.rules:
            if r.code in PREPARE:
                PREPARE[r.code](stories, self.context)

    def save_caches(self) -> None:
        if "conjunctions" in self.context.__dict__:
            self.context.conjunctions.save()
        if self.workspace.cache is not None:
            self.workspace.cache.save()


def check(workspace: Workspace, paths: Iterable[str] | None = None) -> list[Finding]:
    """All deterministic findings for ``paths`` (default: every file) of ``workspace``."""
    return Linter(workspace).check(paths)
