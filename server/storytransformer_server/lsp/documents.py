"""The core workspace behind the server, and the one thread that touches it.

The core is synchronous and not thread-safe, so every call into it runs on a
single worker thread (:meth:`CoreState.run`), in submission order; the event
loop stays free to answer the editor. The event loop only reads the immutable
results that come back.

Open documents are overlaid on the files on disk (``overlays``, written by the
event loop, read by the worker when it rebuilds the workspace) so a rescan never
forgets unsaved text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from storytransformer.config import Config, ConfigError, load_config
from storytransformer.findings import Finding
from storytransformer.formats import detect_format
from storytransformer.formats.base import normalise
from storytransformer.lint import Linter
from storytransformer.cache import ResultCache
from storytransformer.workspace import Workspace, in_tree

from .template import TemplateTally, verdict

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class FileFindings:
    """Findings for one file as it was at ``version`` (None: the file on disk)."""

    path: str
    version: int | None
    findings: tuple[Finding, ...]
    problem: str | None = None  # the file could not be read at all (shown as one diagnostic)
    problem_line: int = 0


@dataclass
class ScanResult:
    files: list[FileFindings] = field(default_factory=list)  # checked files (empty when not checked yet)
    paths: list[str] = field(default_factory=list)  # every story file read
    unreadable: list[FileFindings] = field(default_factory=list)  # files that could not be read
    config_error: str | None = None
    problems: list[str] = field(default_factory=list)
    stories: int = 0


class CoreState:
    """One core :class:`Workspace` and :class:`Linter` per server, driven from one worker thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storytransformer-core")
        self.config = Config()
        self.file_config = self.config
        self.workspace = Workspace(self.config)
        self.linter: Linter | None = None
        self.roots: list[str] = []
        self.rule_overrides: dict[str, str] = {}
        # path -> (version, text) of open documents; written by the event loop only.
        self.overlays: dict[str, tuple[int, str]] = {}
        # path -> version whose text the core workspace holds (None: disk); written by the worker.
        self.core_version: dict[str, int | None] = {}
        self._roles: list[str] | None = None  # roles by frequency, rebuilt lazily after changes
        self.tally = TemplateTally()  # the dominant template's counts, kept current per edit
        # spaCy in a second process: it loads while the scan reads files and keeps the parser's
        # memory out of the server (started with the first scan of a workspace).
        self.parser = None

    async def run(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.parser is not None:
            self.parser.close()
            self.parser = None

    def _new_linter(self, ws: Workspace) -> Linter:
        return Linter(ws, background_parser=self.parser)

    def _start_parser(self) -> None:
        if self.parser is not None or not self.roots:
            return
        try:
            from storytransformer.nlp import BackgroundParser

            self.parser = BackgroundParser()
        except (OSError, ImportError):  # the parser then runs in this process
            log.exception("could not start the parser process")

    # -- questions the event loop may ask (cheap, read-only) --------------
    def is_story_file(self, path: str) -> bool:
        """A file we lint: known to the workspace, or matching the configured globs or formats."""
        if path in self.workspace.files:
            return True
        if detect_format(path, self.config) is None:
            return False
        for root in self.roots:
            rel = os.path.relpath(path, root)
            if not rel.startswith(".."):
                # the walk's rule, links not resolved: a file behind a link out of the root is linted
                # from the editor's text, never read from disk (see on_disk)
                return in_tree(path, root, self.config, resolve=False)
        return True  # a story file opened from outside the workspace: lint it on its own

    def under_roots(self, path: str) -> bool:
        return any(not os.path.relpath(path, r).startswith("..") for r in self.roots)

    def on_disk(self, path: str) -> bool:
        """Whether the scan of the roots reads ``path`` from disk (the core's one rule: symbolic links
        out of a root are not followed)."""
        return any(in_tree(path, r, self.config) for r in self.roots) and os.path.isfile(path)

    # -- worker-thread functions (called through run) ---------------------
    def scan(self, roots: list[str], rule_overrides: dict[str, str], check: bool = True) -> ScanResult:
        """Load the configuration and every story file under ``roots``; check them all (or, with
        ``check=False``, leave that to :meth:`check_paths` in batches, so edits can come in between)."""
        result = ScanResult()
        self.roots = [os.path.normpath(os.path.abspath(r)) for r in roots]
        self.rule_overrides = dict(rule_overrides)
        start = Path(self.roots[0]) if self.roots else Path.cwd()
        try:
            config = load_config(start=start)
        except ConfigError as e:
            result.config_error = str(e)
            config = Config(root=str(start))
        self.file_config = config
        self.config = self._with_overrides(config)
        self._start_parser()
        # Parsed files and their findings come from the core's on-disk cache when unchanged.
        cache = ResultCache(self.config)
        ws = Workspace.from_paths(self.roots, self.config, cache) if self.roots else Workspace(self.config)
        self.core_version = {p: None for p in ws.files}
        for path, (version, text) in list(self.overlays.items()):
            self._set_text(ws, path, text)
            self.core_version[path] = version
        self.workspace = ws
        self.linter = self._new_linter(ws)
        self.tally = TemplateTally.of(ws)
        self._roles = None
        result.problems = [str(p) for p in ws.problems.values() if p.kind == "error"]
        result.stories = len(ws)
        result.paths = list(ws.files)
        result.unreadable = self._unreadable()
        if check:
            result.files = self.check_all()
        return result

    def reconfigure(self, rule_overrides: dict[str, str]) -> list[FileFindings]:
        """New severities from the editor's settings: rebuild the linter and check everything again."""
        self.rule_overrides = dict(rule_overrides)
        self.config = self._with_overrides(self.file_config)
        self.workspace.config = self.config
        self.workspace.cache = ResultCache(self.config)  # findings cached under the new settings' key
        self.linter = self._new_linter(self.workspace)
        return self.check_all()

    def _with_overrides(self, config: Config) -> Config:
        """The configuration file's settings with the editor's rule severities on top."""
        if not self.rule_overrides:
            return config
        return dataclasses.replace(config, severity={**config.severity, **self.rule_overrides})

    def check_all(self) -> list[FileFindings]:
        return [self._findings(p) for p in self.workspace.files] + self._unreadable()

    def _unreadable(self) -> list[FileFindings]:
        return [FileFindings(p.path, None, (), p.message, max((p.line or 1) - 1, 0))
                for p in self.workspace.problems.values() if p.kind == "error"]

    def update(self, path: str, version: int, text: str) -> tuple[FileFindings, list[str]]:
        """Replace one file's text and check it. Also returns the other files whose findings may have
        changed (they hold duplicates of a story that changed or moved), to check next."""
        ws = self.workspace
        self._roles = None
        before = self._story_keys(path)
        problem = self._set_text(ws, path, text)
        self.core_version[path] = version
        affected = self._all_but(path) if self._template_moved(path) else self._affected(path, before)
        if problem:
            return FileFindings(path, version, (), problem), affected
        return self._findings(path), affected

    def revert(self, path: str) -> tuple[FileFindings, list[str]]:
        """A document was closed or changed on disk: back to the file on disk (or out of the workspace
        when it is no longer a story file of it)."""
        ws = self.workspace
        self._roles = None
        before = self._story_keys(path)
        if self.on_disk(path):
            loaded = ws.load(path)
            self.core_version[path] = None
            first = self._findings(path) if path in ws.files else FileFindings(path, None, (), getattr(loaded, "message", None))
        else:
            ws.remove(path)
            self.core_version.pop(path, None)
            first = FileFindings(path, None, ())
        if self._template_moved(path):
            return (self._findings(path) if path in ws.files else first), self._all_but(path)
        return first, self._affected(path, before)

    def _template_moved(self, path: str) -> bool:
        """Count ``path``'s stories again; when the uniformity verdicts change, take the new template.

        Without this a backlog judged against the template of an earlier text (a large
        file since closed, stories since rewritten) would keep stale ST501 findings.
        """
        self.tally.update(path, self.workspace.files.get(path))
        if self.linter is None:
            return False
        current = self.linter.context.template
        if self.tally.verdict() == verdict(current):
            return False
        self.linter.refresh_template()
        return verdict(self.linter.context.template) != verdict(current)

    def _all_but(self, path: str) -> list[str]:
        return sorted(p for p in self.workspace.files if p != path)

    def check_paths(self, paths: Iterable[str], batch: bool = False) -> list[FileFindings]:
        """Check ``paths``; with ``batch``, the rules' batch hooks (one parser run) go first."""
        paths = [p for p in paths if p in self.workspace.files]
        if batch and self.linter is not None:
            try:
                self.linter.prepare(s for p in paths for s in self.workspace.files[p].stories)
            except Exception:  # the per-story checks still run (and say what is wrong)
                log.exception("batch preparation failed")
        return [self._findings(p) for p in paths]

    def save_caches(self) -> None:
        """Persist what the rules learnt (parses, findings by file digest) for the next start."""
        if self.linter is not None:
            try:
                self.linter.save_caches()
            except Exception:
                log.exception("saving the caches failed")

    def refresh_template(self) -> list[FileFindings]:
        """Recompute the dominant template (it drifts as stories are edited) and re-check everything."""
        if self.linter is None:
            self.linter = self._new_linter(self.workspace)
        self.linter.refresh_template()
        return self.check_all()

    def roles(self) -> list[str]:
        """The workspace's roles, most frequent first (one spelling per role, case-insensitively)."""
        if self._roles is None:
            counts: Counter[str] = Counter()
            spelling: dict[str, Counter[str]] = {}
            for s in self.workspace.stories():
                text = " ".join(s.role.text.split()) if s.role else ""
                if text:
                    counts[text.lower()] += 1
                    spelling.setdefault(text.lower(), Counter())[text] += 1
            self._roles = [spelling[k].most_common(1)[0][0] for k, _ in counts.most_common()]
        return self._roles

    def means_marker(self) -> str:
        """How this backlog introduces the means ("I want to", "I'd like to", ...)."""
        family = self.linter.context.template.means if self.linter else "i want"
        return {"i want": "I want to", "i'd like": "I'd like to", "i need": "I need to",
                "i can": "I can"}.get(family, "I want to")

    # -- helpers (worker thread) ------------------------------------------
    def _set_text(self, ws: Workspace, path: str, text: str) -> str | None:
        limit = self.config.max_file_bytes
        if len(text) > limit and len(text.encode("utf-8")) > limit:
            ws.remove(path)
            return (f"not checked: {len(text.encode('utf-8')) / 1e6:.1f} MB is larger than max_file_bytes "
                    f"({limit / 1e6:.1f} MB)")
        try:
            ws.set_text(path, text)
            return None
        except ValueError as e:  # e.g. a CSV without a story column
            ws.remove(path)
            return str(e)

    def _story_keys(self, path: str) -> Counter:
        source = self.workspace.files.get(path)
        if source is None:
            return Counter()
        return Counter((normalise(st.text), st.range.start.line, st.range.end.line) for st in source.stories)

    def _affected(self, path: str, before: Counter) -> list[str]:
        """Files holding a duplicate of a story of ``path`` that appeared, vanished or moved."""
        after = self._story_keys(path)
        texts = {key[0] for key in (before - after) + (after - before)}
        files = {st.file for t in texts for st in self.workspace.by_text.get(t, {}).values()}
        files.discard(path)
        return sorted(f for f in files if f in self.workspace.files)

    def _findings(self, path: str) -> FileFindings:
        if self.linter is None:
            self.linter = self._new_linter(self.workspace)
        try:
            found = tuple(self.linter.check_file(path))
        except Exception as e:  # a rule bug must not take the server down; say where it happened
            log.exception("checking %s failed", path)
            return FileFindings(path, self.core_version.get(path), (), f"internal error while checking: {e!r}")
        return FileFindings(path, self.core_version.get(path), found)

    def story_at(self, path: str, line: int):
        source = self.workspace.files.get(path)
        if source is None:
            return None
        for s in source.stories:
            if s.range.contains_line(line):
                return s
        return None

    def find_story(self, path: str, story_id: str, version: int | None | str):
        """Story ``story_id`` of ``path`` if the core holds ``version`` of the file ("any": whatever it holds)."""
        if version != "any" and self.core_version.get(path) != version:
            return None
        return self.stories_by_id(path).get(story_id)

    def stories_at(self, path: str, lines: list[int]) -> list:
        found = []
        for line in lines:
            s = self.story_at(path, line)
            if s is not None and s not in found:
                found.append(s)
        return found

    def stories_by_id(self, path: str) -> dict:
        source = self.workspace.files.get(path)
        return {s.id: s for s in source.stories} if source else {}

