"""One editing session: a workspace as the editors see it, kept current edit by edit.

The language server and the daemon both hold a workspace that editors change
with unsaved text. What that takes is written here once, for both:

* which files are story files (:func:`is_story_file`);
* unsaved-editor overlays and the version of the text the workspace holds;
* the dominant template's counts, updated with the edited file only
  (:class:`TemplateTally`), so a keystroke never recounts the workspace;
* which other files an edit may change (duplicates that appeared or vanished);
* per-document linting through the core's :class:`~storytransformer.lint.Linter`,
  created on first use (the daemon, which lints nothing, never builds one).

Pure and synchronous: no editor protocol, no wire format, no event loop. The
callers decide on which thread it runs and serialise access to it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from .config import Config
from .findings import Finding
from .formats import detect_format
from .formats.base import normalise
from .lint import Linter
from .rules.context import Template, means_family, role_family
from .rules.uniform import MIN_SHARE, MIN_STORIES
from .workspace import Workspace, in_tree, is_backlog

log = logging.getLogger(__name__)


# -- which files are story files --------------------------------------------------------------
def is_story_file(path: str, config: Config, root: str | None, text: str | None = None,
                  from_disk: bool = True) -> bool:
    """The one rule for "is this a story file?" outside a walk (the walk, :func:`~.workspace.discover`,
    applies the same globs and :func:`~.workspace.is_backlog` as it goes, through :func:`~.workspace.in_tree`).

    ``root``: the workspace folder holding ``path`` (None: a file opened from outside every folder,
    a story file when its format is known and, for plain text, ``text`` reads as a backlog).
    ``text``: the editor's text (None: judge the file on disk). ``from_disk``: the file is to be
    read from disk, so a symbolic link out of ``root`` disqualifies it; an editor's document is
    linted from its text (``from_disk=False``) even behind such a link.
    """
    if root is None:
        return detect_format(path, config) is not None and (text is None or is_backlog(path, text, config))
    if not from_disk and detect_format(path, config) is None:
        return False
    return in_tree(path, root, config, resolve=from_disk, text=text)


# -- the dominant template, counted incrementally ---------------------------------------------
def verdict(t: Template) -> tuple:
    """What ST501 decides from a template (its shares only matter against the threshold)."""
    if t.counted < MIN_STORIES:
        return (False,)
    return (True, t.role if t.role_share >= MIN_SHARE else None, t.means if t.means_share >= MIN_SHARE else None)


class TemplateTally:
    """Role and means marker families counted per file, summed over the workspace.

    The uniformity rule (ST501) judges each story against the template most stories use;
    recounting every story on each keystroke costs tens of milliseconds on a large workspace,
    so the counts are kept per file and updated with the edited file only.
    """

    def __init__(self) -> None:
        self.per_file: dict[str, tuple[Counter, Counter]] = {}
        self.roles: Counter = Counter()
        self.means: Counter = Counter()

    @classmethod
    def of(cls, workspace) -> "TemplateTally":
        tally = cls()
        for path, source in workspace.files.items():
            tally.update(path, source)
        return tally

    def update(self, path: str, source) -> None:
        """``path`` now holds ``source`` (None: no longer in the workspace)."""
        old = self.per_file.pop(path, None)
        if old is not None:
            self.roles -= old[0]
            self.means -= old[1]
        if source is None:
            return
        roles, means = Counter(), Counter()
        for s in source.stories:
            if s.role and s.means:
                roles[role_family(s.role.marker)] += 1
                means[means_family(s.means.marker)] += 1
        self.per_file[path] = (roles, means)
        self.roles += roles
        self.means += means

    def verdict(self) -> tuple | None:
        """The rule's verdict from the counts; None when a tie makes the winner depend on story order."""
        n = sum(self.roles.values())
        if n < MIN_STORIES:
            return (False,)
        top_roles, top_means = self.roles.most_common(2), self.means.most_common(2)
        if any(len(top) == 2 and top[0][1] == top[1][1] for top in (top_roles, top_means)):
            return None
        (r, rc), (m, mc) = top_roles[0], top_means[0]
        return (True, r if rc / n >= MIN_SHARE else None, m if mc / n >= MIN_SHARE else None)


# -- the session ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Overlay:
    """An editor's unsaved text of one file; ``owner`` tells editors apart where several share a session."""

    version: int
    text: str
    owner: int | None = None


@dataclass(frozen=True)
class Edit:
    """What one change of a file did to the session."""

    path: str
    version: int | None  # the version the workspace now holds (None: the file on disk)
    problem: str | None = None  # the text could not be read as stories (shown instead of findings)
    affected: tuple[str, ...] = ()  # other files whose findings may have changed
    template_moved: bool = False  # the dominant template changed: every file may have changed


@dataclass
class EditingSession:
    """A workspace with one configuration, its overlays and versions, kept current per edit."""

    config: Config
    roots: list[str] = field(default_factory=list)
    workspace: Workspace | None = None
    background_parser: object = None
    overlays: dict[str, Overlay] = field(default_factory=dict)
    versions: dict[str, int | None] = field(default_factory=dict)  # path -> version held (None: disk)
    tally: TemplateTally = field(default_factory=TemplateTally)
    _linter: Linter | None = None

    def __post_init__(self) -> None:
        if self.workspace is None:
            self.workspace = Workspace(self.config)
        self.roots = [os.path.normpath(os.path.abspath(r)) for r in self.roots]

    # -- building -------------------------------------------------------------------------
    @classmethod
    def load(cls, roots: Iterable[str], config: Config, cache=None, background_parser=None) -> "EditingSession":
        """Every story file under ``roots`` read from disk (parsed files from ``cache`` where it has them)."""
        roots = list(roots)
        ws = Workspace.from_paths(roots, config, cache) if roots else Workspace(config, cache)
        session = cls(config, roots, ws, background_parser)
        session.versions = {p: None for p in ws.files}
        session.tally = TemplateTally.of(ws)
        return session

    def adopt_overlays(self, other: "EditingSession") -> None:
        """Take ``other``'s unsaved texts (a rebuilt session must not forget what the editors typed)."""
        for path, ov in other.overlays.items():
            self.set_overlay(path, ov.version, ov.text, ov.owner)

    # -- linting --------------------------------------------------------------------------
    @property
    def linter(self) -> Linter:
        if self._linter is None:
            self._linter = Linter(self.workspace, background_parser=self.background_parser)
        return self._linter

    @property
    def has_linter(self) -> bool:
        return self._linter is not None

    def new_linter(self) -> Linter:
        """Settings changed: a linter built afresh (rules, severities, template)."""
        self._linter = None
        return self.linter

    def check_file(self, path: str) -> list[Finding]:
        """The deterministic findings of one file as the session holds it (the core's lint)."""
        return self.linter.check_file(path)

    def refresh_template(self) -> None:
        """Take the template from every story again (after a rebuild, or when told to)."""
        self.tally = TemplateTally.of(self.workspace)
        if self._linter is not None:
            self._linter.refresh_template()

    # -- questions ------------------------------------------------------------------------
    def root_of(self, path: str) -> str | None:
        """The deepest root holding ``path``."""
        best = None
        for root in self.roots:
            rel = os.path.relpath(path, root)
            if rel != ".." and not rel.startswith(".." + os.sep) and (best is None or len(root) > len(best)):
                best = root
        return best

    def is_story_file(self, path: str, text: str | None = None, from_disk: bool = True) -> bool:
        """A file this session lints: already in its workspace, or a story file by :func:`is_story_file`."""
        if path in self.workspace.files:
            return True
        return is_story_file(path, self.config, self.root_of(path), text, from_disk)

    def on_disk(self, path: str) -> bool:
        """Whether a walk of the roots reads ``path`` from disk (symbolic links out of a root are not followed)."""
        root = self.root_of(path)
        return root is not None and os.path.isfile(path) and is_story_file(path, self.config, root)

    def version(self, path: str) -> int | None:
        return self.versions.get(path)

    # -- edits ----------------------------------------------------------------------------
    def set_overlay(self, path: str, version: int, text: str, owner: int | None = None) -> Edit | None:
        """The editor's unsaved text replaces the file's stories. None: ``version`` is older than what
        the same owner gave before (a late message), nothing changed."""
        cur = self.overlays.get(path)
        if cur is not None and cur.owner == owner and version < cur.version:
            return None
        before = self._story_keys(path)
        self.overlays[path] = Overlay(version, text, owner)
        problem = self._set_text(path, text)
        self.versions[path] = version
        return self._edited(path, version, before, problem)

    def close_overlay(self, path: str, owner: int | None = None) -> Edit | None:
        """The editor closed the document: back to the file on disk. None: no overlay (of ``owner``)."""
        cur = self.overlays.get(path)
        if cur is None or (owner is not None and cur.owner != owner):
            return None
        return self.revert(path)

    def drop_owner(self, owner: int) -> list[str]:
        """An editor went away: each of its documents goes back to the file on disk."""
        paths = [p for p, o in self.overlays.items() if o.owner == owner]
        for p in paths:
            self.revert(p)
        return paths

    def revert(self, path: str) -> Edit:
        """Back to the file on disk (or out of the workspace when it is no story file on disk)."""
        self.overlays.pop(path, None)
        before = self._story_keys(path)
        problem = None
        if self.on_disk(path):
            loaded = self.workspace.load(path)
            self.versions[path] = None
            if path not in self.workspace.files:
                problem = getattr(loaded, "message", None)
        else:
            self.workspace.remove(path)
            self.versions.pop(path, None)
        return self._edited(path, None, before, problem)

    def remove(self, path: str) -> Edit:
        """The file is gone (and no editor has it)."""
        before = self._story_keys(path)
        self.overlays.pop(path, None)
        self.workspace.remove(path)
        self.versions.pop(path, None)
        return self._edited(path, None, before, None)

    def _set_text(self, path: str, text: str) -> str | None:
        ws, limit = self.workspace, self.config.max_file_bytes
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

    def _edited(self, path: str, version: int | None, before: Counter, problem: str | None) -> Edit:
        if self._template_moved(path):
            affected = tuple(sorted(p for p in self.workspace.files if p != path))
            return Edit(path, version, problem, affected, True)
        return Edit(path, version, problem, self._affected(path, before))

    def _template_moved(self, path: str) -> bool:
        """Count ``path``'s stories again; when the uniformity verdicts change, take the new template.

        Without this a backlog judged against the template of an earlier text (a large
        file since closed, stories since rewritten) would keep stale ST501 findings.
        """
        self.tally.update(path, self.workspace.files.get(path))
        if self._linter is None:
            return False
        current = self._linter.context.template
        if self.tally.verdict() == verdict(current):
            return False
        self._linter.refresh_template()
        return verdict(self._linter.context.template) != verdict(current)

    def _story_keys(self, path: str) -> Counter:
        source = self.workspace.files.get(path)
        if source is None:
            return Counter()
        return Counter((normalise(st.text), st.range.start.line, st.range.end.line) for st in source.stories)

    def _affected(self, path: str, before: Counter) -> tuple[str, ...]:
        """Files holding a duplicate of a story of ``path`` that appeared, vanished or moved."""
        after = self._story_keys(path)
        texts = {key[0] for key in (before - after) + (after - before)}
        files = {st.file for t in texts for st in self.workspace.by_text.get(t, {}).values()}
        files.discard(path)
        return tuple(sorted(f for f in files if f in self.workspace.files))
