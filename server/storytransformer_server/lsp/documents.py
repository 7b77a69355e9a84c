"""The core workspace behind the server, and the one thread that touches it.

The core is synchronous and not thread-safe, so every call into it runs on a
single worker thread (:meth:`CoreState.run`), in submission order; the event
loop stays free to answer the editor. The event loop only reads the immutable
results that come back.

Open documents are overlaid on the files on disk (``overlays``, written by the
event loop, read by the worker when it rebuilds the workspace) so a rescan never
forgets unsaved text.

Each workspace folder has its own configuration (the core's search from that
folder). Folders whose configurations are equal share one :class:`Project` (one
core workspace and linter, so duplicates are found across them); a folder with a
configuration of its own is a project of its own. A document belongs to the
project of the deepest folder that holds it; documents outside every folder to
the first project.
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
from collections.abc import Mapping
from typing import Callable, Iterable, TypeVar

from storytransformer.config import Config, ConfigError, load_config
from storytransformer.findings import Finding
from storytransformer.lint import Linter
from storytransformer.run_cache import ResultCache
from storytransformer.session import EditingSession
from storytransformer.workspace import Workspace

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
    config_error: str | None = None  # the first of config_errors
    config_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stories: int = 0


class Project:
    """The folders that share one configuration: one core :class:`EditingSession` (workspace, overlays,
    versions, template tally, linter), checked into :class:`FileFindings` for the editor."""

    def __init__(self, state: "CoreState", file_config: Config, roots: list[str]) -> None:
        self.state = state
        self.roots = list(roots)
        self.file_config = file_config
        self.config = state._with_overrides(file_config)
        self.session = EditingSession(self.config, self.roots, background_parser=state.parser)
        self._roles: Counter | None = None  # role -> count, rebuilt lazily after changes
        self._spelling: dict[str, str] = {}

    @property
    def workspace(self) -> Workspace:
        return self.session.workspace

    @property
    def linter(self) -> Linter | None:
        return self.session.linter if self.session.has_linter else None

    def load(self) -> None:
        """Read every story file under the roots (parsed files come from the core's on-disk cache)."""
        self.session = EditingSession.load(self.roots, self.config, ResultCache(self.config), self.state.parser)
        self._roles = None

    def finish_load(self) -> None:
        """The editors' texts are in (the session's tally followed them; its linter, built on first
        use, takes the template of every story then)."""
        self._roles = None

    def reconfigure(self) -> list[FileFindings]:
        self.config = self.state._with_overrides(self.file_config)
        self.session.config = self.workspace.config = self.config
        self.workspace.cache = ResultCache(self.config)  # findings cached under the new settings' key
        self.session.new_linter()
        return self.check_all()

    def check_all(self) -> list[FileFindings]:
        return [self._findings(p) for p in self.workspace.files] + self.unreadable()

    def unreadable(self) -> list[FileFindings]:
        return [FileFindings(p.path, None, (), p.message, max((p.line or 1) - 1, 0))
                for p in self.workspace.problems.values() if p.kind == "error"]

    def update(self, path: str, version: int, text: str) -> tuple[FileFindings, list[str]]:
        self._roles = None
        edit = self.session.set_overlay(path, version, text)
        if edit is None:  # an older text than the one held: nothing to show for it
            return FileFindings(path, version, ()), []
        if edit.problem:
            return FileFindings(path, version, (), edit.problem), list(edit.affected)
        return self._findings(path), list(edit.affected)

    def revert(self, path: str) -> tuple[FileFindings, list[str]]:
        self._roles = None
        edit = self.session.revert(path)
        if path in self.workspace.files:
            return self._findings(path), list(edit.affected)
        return FileFindings(path, None, (), edit.problem), list(edit.affected)

    def check_paths(self, paths: list[str], batch: bool = False) -> list[FileFindings]:
        paths = [p for p in paths if p in self.workspace.files]
        if batch:
            try:
                self.session.linter.prepare(s for p in paths for s in self.workspace.files[p].stories)
            except Exception:  # the per-story checks still run (and say what is wrong)
                log.exception("batch preparation failed")
        return [self._findings(p) for p in paths]

    def save_caches(self) -> None:
        if self.session.has_linter:
            try:
                self.session.linter.save_caches()
            except Exception:
                log.exception("saving the caches failed")

    def refresh_template(self) -> list[FileFindings]:
        self.session.linter.refresh_template()
        return self.check_all()

    def roles(self, path: str | None = None) -> list[str]:
        """The roles of ``path`` by frequency, then those of the other files in its folder, then the
        project's other roles by frequency (one spelling per role, case-insensitively)."""
        if self._roles is None:
            counts: Counter[str] = Counter()
            spelling: dict[str, Counter[str]] = {}
            for s in self.workspace.stories():
                text = " ".join(s.role.text.split()) if s.role else ""
                if text:
                    counts[text.lower()] += 1
                    spelling.setdefault(text.lower(), Counter())[text] += 1
            self._roles = counts
            self._spelling = {k: c.most_common(1)[0][0] for k, c in spelling.items()}
        def count(sources) -> Counter[str]:
            c: Counter[str] = Counter()
            for source in sources:
                for s in source.stories:
                    text = " ".join(s.role.text.split()) if s.role else ""
                    if text:
                        c[text.lower()] += 1
            return c

        files = self.workspace.files
        own = count([files[path]] if path in files else [])
        folder = os.path.dirname(path) if path else None
        near = count(src for p, src in files.items() if p != path and os.path.dirname(p) == folder)
        order = [k for k, _ in own.most_common()]
        order += [k for k, _ in near.most_common() if k not in own]
        order += [k for k, _ in self._roles.most_common() if k not in own and k not in near]
        return [self._spelling.get(k, k) for k in order]

    def means_marker(self) -> str:
        """How this backlog introduces the means ("I want to", "I'd like to", ...)."""
        family = self.session.linter.context.template.means
        return {"i want": "I want to", "i'd like": "I'd like to", "i need": "I need to",
                "i can": "I can"}.get(family, "I want to")

    def _findings(self, path: str) -> FileFindings:
        version = self.session.version(path)
        try:
            found = tuple(self.session.check_file(path))
        except Exception as e:  # a rule bug must not take the server down; say where it happened
            log.exception("checking %s failed", path)
            return FileFindings(path, version, (), f"internal error while checking: {e!r}")
        return FileFindings(path, version, found)


class CoreState:
    """The projects of the workspace folders, driven from one worker thread."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storytransformer-core")
        self.roots: list[str] = []
        self.rule_overrides: dict[str, str] = {}
        # spaCy in a second process: it loads while the scan reads files and keeps the parser's
        # memory out of the server (started with the first scan of a workspace).
        self.parser = None
        self.projects: list[Project] = [Project(self, Config(), [])]
        # root -> the configuration file's settings in force for it (kept when a new one is bad)
        self.file_configs: dict[str, Config] = {}
        # path -> (version, text) of open documents; written by the event loop only.
        self.overlays: dict[str, tuple[int, str]] = {}

    # The first project's state, for callers that know only one folder.
    @property
    def config(self) -> Config:
        return self.projects[0].config

    @property
    def file_config(self) -> Config:
        return self.projects[0].file_config

    @property
    def workspace(self) -> Workspace:
        return self.projects[0].workspace

    @property
    def linter(self) -> Linter | None:
        return self.projects[0].linter

    @property
    def core_version(self) -> "VersionView":
        """path -> version whose text the core holds (None: disk); the sessions' record, read-only."""
        return VersionView(self)

    async def run(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.parser is not None:
            self.parser.close()
            self.parser = None

    def _start_parser(self) -> None:
        if self.parser is not None or not self.roots:
            return
        try:
            from storytransformer.nlp import BackgroundParser

            self.parser = BackgroundParser()
        except (OSError, ImportError):  # the parser then runs in this process
            log.exception("could not start the parser process")

    def _with_overrides(self, config: Config) -> Config:
        """The configuration file's settings with the editor's rule severities on top."""
        if not self.rule_overrides:
            return config
        return dataclasses.replace(config, severity={**config.severity, **self.rule_overrides})

    # -- which project a path belongs to (cheap, read-only) ---------------
    def _root_of(self, path: str) -> str | None:
        best = None
        for root in self.roots:
            if within_root(path, root) and (best is None or len(root) > len(best)):
                best = root
        return best

    def project_for(self, path: str | None) -> Project:
        root = self._root_of(path) if path else None
        if root is not None:
            for p in self.projects:
                if root in p.roots:
                    return p
        return self.projects[0]

    def config_for(self, path: str) -> Config:
        return self.project_for(path).config

    def has_file(self, path: str) -> bool:
        return path in self.project_for(path).workspace.files

    # -- questions the event loop may ask (cheap, read-only) --------------
    def is_story_file(self, path: str, text: str | None = None) -> bool:
        """A file we lint (the core's rule, :func:`storytransformer.session.is_story_file`): known to the
        workspace, or matching the configured globs or formats and, for plain text, a backlog
        (``text``: the editor's; None: the file on disk). A file behind a symbolic link out of its root
        is linted from the editor's text, never read from disk (see :meth:`on_disk`)."""
        return self.project_for(path).session.is_story_file(path, text, from_disk=False)

    def under_roots(self, path: str) -> bool:
        return self._root_of(path) is not None

    def on_disk(self, path: str) -> bool:
        """Whether the scan of the roots reads ``path`` from disk."""
        return self.project_for(path).session.on_disk(path)

    # -- worker-thread functions (called through run) ---------------------
    def read_configs(self, roots: list[str], keep_previous: bool) -> tuple[dict[str, Config], list[str]]:
        """Each root's configuration (the core's loader, trust rules included) and the errors met. A root
        whose file is bad gets its previous configuration (``keep_previous``) or the defaults."""
        roots = [os.path.normpath(os.path.abspath(r)) for r in roots] or [os.getcwd()]
        configs: dict[str, Config] = {}
        errors: list[str] = []
        for root in roots:
            try:
                configs[root] = load_config(start=Path(root))
            except ConfigError as e:
                errors.append(str(e))
                previous = self.file_configs.get(root) if keep_previous else None
                configs[root] = previous if previous is not None else Config(root=root)
        return configs, errors

    def configs_differ(self, configs: dict[str, Config]) -> bool:
        return configs != self.file_configs

    def scan(self, roots: list[str], rule_overrides: dict[str, str], check: bool = True,
             configs: dict[str, Config] | None = None) -> ScanResult:
        """Load each folder's configuration (or take ``configs``) and every story file under ``roots``;
        check them all (or, with ``check=False``, leave that to :meth:`check_paths` in batches, so edits
        can come in between)."""
        result = ScanResult()
        self.roots = [os.path.normpath(os.path.abspath(r)) for r in roots]
        self.rule_overrides = dict(rule_overrides)
        if configs is None:
            configs, result.config_errors = self.read_configs(self.roots, keep_previous=False)
            result.config_error = result.config_errors[0] if result.config_errors else None
        self.file_configs = dict(configs)
        self._start_parser()
        projects: list[Project] = []
        for root, cfg in configs.items():
            same = next((p for p in projects if p.file_config == cfg), None)
            if same is None:
                projects.append(Project(self, cfg, [root] if root in self.roots else []))
            elif root in self.roots:
                same.roots.append(root)
        self.projects = projects or [Project(self, Config(), [])]
        for project in self.projects:
            project.load()
        for path, (version, text) in list(self.overlays.items()):
            self.project_for(path).session.set_overlay(path, version, text)
        for project in self.projects:
            project.finish_load()
            ws = project.workspace
            result.problems += [str(p) for p in ws.problems.values() if p.kind == "error"]
            result.stories += len(ws)
            result.paths += list(ws.files)
            result.unreadable += project.unreadable()
        if check:
            result.files = self.check_all()
        return result

    def reconfigure(self, rule_overrides: dict[str, str]) -> list[FileFindings]:
        """New severities from the editor's settings: rebuild the linters and check everything again."""
        self.rule_overrides = dict(rule_overrides)
        return [ff for p in self.projects for ff in p.reconfigure()]

    def check_all(self) -> list[FileFindings]:
        return [ff for p in self.projects for ff in p.check_all()]

    def update(self, path: str, version: int, text: str) -> tuple[FileFindings, list[str]]:
        """Replace one file's text and check it. Also returns the other files whose findings may have
        changed (they hold duplicates of a story that changed or moved), to check next."""
        return self.project_for(path).update(path, version, text)

    def revert(self, path: str) -> tuple[FileFindings, list[str]]:
        """A document was closed or changed on disk: back to the file on disk (or out of the workspace
        when it is no longer a story file of it)."""
        return self.project_for(path).revert(path)

    def check_paths(self, paths: Iterable[str], batch: bool = False) -> list[FileFindings]:
        """Check ``paths``; with ``batch``, the rules' batch hooks (one parser run) go first."""
        groups: dict[int, list[str]] = {}
        for path in paths:
            groups.setdefault(id(self.project_for(path)), []).append(path)
        out: list[FileFindings] = []
        for project in self.projects:
            if id(project) in groups:
                out += project.check_paths(groups[id(project)], batch)
        return out

    def save_caches(self) -> None:
        """Persist what the rules learnt (parses, findings by file digest) for the next start."""
        for p in self.projects:
            p.save_caches()

    def refresh_template(self) -> list[FileFindings]:
        """Recompute the dominant template (it drifts as stories are edited) and re-check everything."""
        return [ff for p in self.projects for ff in p.refresh_template()]

    def roles(self, path: str | None = None) -> list[str]:
        """Roles for a story typed in ``path``: that file's, then its project's, most frequent first."""
        return self.project_for(path).roles(path)

    def means_marker(self, path: str | None = None) -> str:
        return self.project_for(path).means_marker()

    def story_at(self, path: str, line: int):
        source = self.project_for(path).workspace.files.get(path)
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
        source = self.project_for(path).workspace.files.get(path)
        return {s.id: s for s in source.stories} if source else {}


class VersionView(Mapping):
    """The version each project's session holds of a file, as one read-only mapping."""

    def __init__(self, state: CoreState) -> None:
        self._state = state

    def __getitem__(self, path: str) -> int | None:
        versions = self._state.project_for(path).session.versions
        return versions[path]

    def __iter__(self):
        return iter({p for project in self._state.projects for p in project.session.versions})

    def __len__(self) -> int:
        return sum(1 for _ in self)


def within_root(path: str, root: str) -> bool:
    rel = os.path.relpath(path, root)
    return rel != ".." and not rel.startswith(".." + os.sep)
