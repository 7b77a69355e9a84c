"""Running a check, in one place: read the stories, lint them, choose and apply fixes under one
fix policy, add the semantic findings.

The command line (``check``), the report, ``suggest`` and the language server's fix-on-save are
adapters over this module, so a story gets the same findings and the same fixes wherever it is
checked. No front-end decides on its own which fixes are safe or how overlapping fixes are
resolved: :class:`FixPolicy` says which kinds of fix (declared on each rule as
:class:`~storytransformer.rules.FixKind`) apply without review, and
:func:`~storytransformer.edits.choose_fixes` keeps the fixes that do not touch each other's lines.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from .config import Config
from .edits import StaleFileError, WriteError, apply_edits, atomic_write, choose_fixes, digest
from .findings import Finding
from .lint import Linter, enabled_rules
from .rules import RULES, FixKind, merge_candidate_codes
from .workspace import FileProblem, Workspace, decode

MAX_FIX_PASSES = 5  # each pass re-checks the fixed text; fixes that overlapped an applied one get their turn
PARALLEL_FROM_FILES = 20  # below this, starting a second process for the parser costs more than it saves


# -- the fix policy ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FixPolicy:
    """Which kinds of fix apply without review (``check --fix``, fix-on-save).

    ``safe`` fixes keep what a story asks for; ``unsafe`` ones change it (a split into several
    stories); ``deletion`` removes a whole story (an exact duplicate). A finding without a fix,
    or whose rule is unknown and offers one, counts as ``none`` / ``safe``.
    """

    kinds: frozenset[FixKind] = frozenset({FixKind.SAFE})

    LEVELS = ("safe", "unsafe", "deletion")

    @classmethod
    def of(cls, *kinds: FixKind | str) -> "FixPolicy":
        return cls(frozenset(FixKind(k) for k in kinds) - {FixKind.NONE})

    @classmethod
    def parse(cls, value: str | Iterable[str], setting: str = "--fix-kinds") -> "FixPolicy":
        """``"safe,deletion"`` (or a list of names) as a policy; ``ValueError`` naming ``setting`` otherwise."""
        names = [n.strip().lower() for n in (value.split(",") if isinstance(value, str) else value)]
        names = [n for n in names if n]
        bad = [n for n in names if n not in cls.LEVELS]
        if bad:
            raise ValueError(f"{setting}: unknown fix kind {bad[0]!r} (expected some of {', '.join(cls.LEVELS)})")
        return cls.of(*names)

    def with_unsafe(self, unsafe: bool = True) -> "FixPolicy":
        return FixPolicy(self.kinds | {FixKind.UNSAFE}) if unsafe else self

    def allows(self, finding: Finding) -> bool:
        """Whether ``finding``'s fix is applied under this policy."""
        return finding.fix is not None and fix_kind_of(finding) in self.kinds

    def choose(self, findings: Iterable[Finding], taken_lines: Iterable[tuple[int, int]] = ()) -> list[Finding]:
        """The findings whose fixes apply together: allowed by the policy, their edits on lines that no
        earlier chosen fix (nor ``taken_lines``, e.g. a model rewrite) touches, first come first served."""
        allowed = [f for f in findings if self.allows(f)]
        kept = {id(fix) for fix in choose_fixes((f.fix for f in allowed), taken_lines)}
        return [f for f in allowed if id(f.fix) in kept]

    def describe(self) -> str:
        return ", ".join(k for k in self.LEVELS if FixKind(k) in self.kinds) or "none"


def fix_kind_of(finding: Finding) -> FixKind:
    """The kind of ``finding``'s fix, as its rule declares it."""
    if finding.fix is None:
        return FixKind.NONE
    rule = RULES.get(finding.code)
    return FixKind.SAFE if rule is None or rule.fix_kind is FixKind.NONE else rule.fix_kind


SAFE_ONLY = FixPolicy.of(FixKind.SAFE)  # what a preview shows (the editor's ghost text of the fixed story)
CHECK_FIX = FixPolicy.of(FixKind.SAFE, FixKind.DELETION)  # `check --fix`: deleting a duplicate is reviewed in the diff
ON_SAVE = SAFE_ONLY  # fix-on-save: a story vanishing or splitting while saving is too surprising


def is_merge_candidate(finding: Finding) -> bool:
    """Whether ``finding`` pairs stories that could be merged into one (declared on its rule)."""
    rule = RULES.get(finding.code)
    return rule is not None and rule.merge_candidate


__all__ = ["CHECK_FIX", "ON_SAVE", "SAFE_ONLY", "CheckOptions", "CheckResult", "FileFix", "FixKind", "FixPolicy", "check",
           "fix_kind_of", "is_merge_candidate", "merge_candidate_codes"]


# -- one check -----------------------------------------------------------------------------------
Say = Callable[[str, str], None]  # (level: "error" | "warning" | "note", message)


def _quiet(level: str, message: str) -> None:
    import logging

    logging.getLogger(__name__).log(logging.ERROR if level == "error" else logging.WARNING, message)


@dataclass
class CheckOptions:
    """What a check does beyond linting; the defaults are what ``check`` does without flags."""

    semantic: bool = True  # semantic duplicates (loads the embedding model) unless the configuration turns them off
    use_cache: bool = True  # the on-disk parse and findings caches
    run_cache: bool = False  # reuse the whole result of an identical earlier run (the CLI; never with fixes)
    fix: FixPolicy | None = None  # None: report only; else apply fixes of these kinds
    write: bool = True  # with ``fix``: write fixed files (False: only compute them, ``--diff``)
    follow_symlinks: bool = False  # with ``fix``: write a link's target instead of refusing
    keep_index: bool = False  # keep the similarity index in the result (the report's clusters)
    progress: Any = None  # a rich Progress or a ``f(done, total)``


@dataclass
class FileFix:
    """What the fixes did (or, with ``write`` false or for given texts, would do) to one file."""

    path: str
    before: str  # the text the fixes were computed on (line breaks as LF for a CR-only file)
    after: str
    payload: str  # ``after`` as it is written: byte-order mark and line breaks of the original
    applied: list[tuple[str, str]] = field(default_factory=list)  # (code, fix title), in order


@dataclass
class CheckResult:
    findings: list[Finding]  # sorted
    problems: list  # FileProblem, sorted by path
    files: int
    stories: int
    fixed: list[FileFix] = field(default_factory=list)
    contents: dict = field(default_factory=dict)  # path -> bytes read (or the FileProblem saying why not)
    write_failures: list[str] = field(default_factory=list)  # files a fix was refused to write
    workspace: Workspace | None = None  # None when the result came from the run cache
    index: Any = None  # the similarity index, with ``keep_index``

    def texts(self) -> dict[str, str]:
        """Every checked file's text as the findings saw it (after the fixes)."""
        texts = {}
        for path, data in self.contents.items():
            if isinstance(data, bytes):
                text = decode(path, data)
                if isinstance(text, str):
                    texts[path] = text
        texts.update({r.path: r.after for r in self.fixed})
        return texts


def check(config: Config, paths: Iterable[str] = (), texts: Mapping[str, bytes | str] | None = None,
          options: CheckOptions | None = None, say: Say = _quiet) -> CheckResult:
    """Check the story files under ``paths`` and the stories in ``texts`` (a name, which gives the format,
    to its content: standard input, an editor's unsaved text; never read from disk or written).

    Returns the findings (deterministic, then semantic unless turned off), the files that could not be
    used, and with ``options.fix`` what the fixes changed. ``say`` receives what does not stop the
    check (a broken embedding model, a file that could not be written).
    """
    from .run_cache import ResultCache, RunCache, content_digest
    from .workspace import discover, read_bytes

    options = options or CheckOptions()
    texts = dict(texts or {})
    files, problems = discover(list(paths), config)
    progress = options.progress if hasattr(options.progress, "add_task") else None
    task = progress.add_task("Reading stories", total=len(files)) if progress and len(files) > 20 else None
    contents: dict[str, bytes | FileProblem] = {}
    for path in files:
        contents[path] = read_bytes(path, config)
        if task is not None:
            progress.advance(task)
    given: dict[str, bytes] = {}
    for name, data in texts.items():
        data = data.encode("utf-8") if isinstance(data, str) else data
        if len(data) > config.max_file_bytes:
            contents[name] = FileProblem(name, f"skipped: {len(data) / 1e6:.1f} MB is larger than max_file_bytes "
                                         f"({config.max_file_bytes / 1e6:.1f} MB)", kind="notice")
        else:
            contents[name] = given[name] = data
    semantic = options.semantic and config.similarity.enabled
    runs = RunCache(enabled=options.run_cache and options.use_cache and options.fix is None and not options.keep_index)
    key = RunCache.key(config, f"semantic={semantic}|root={config.root}", [
        (p, "!" + d.message if isinstance(d, FileProblem) else content_digest(d)) for p, d in contents.items()])
    hit = runs.get(key)
    if hit is not None:
        findings, file_problems, n_files, n_stories = hit
        return CheckResult(sorted(findings, key=Finding.sort_key), _sorted(problems + file_problems), n_files,
                           n_stories, contents=contents)

    background = _start_parser(config, len(contents))
    fixed: list[FileFix] = []
    failures: list[str] = []
    try:
        ws = Workspace(config, ResultCache(config, enabled=options.use_cache))
        for path, data in contents.items():
            text = decode(path, data) if path in given else data
            if isinstance(text, FileProblem):
                ws.problems[path] = text
            elif path in given:  # parsed as its name says, never taken from a cache of the same bytes
                ws.set_text(path, text)
            else:
                ws.load(path, data)
        linter = Linter(ws, use_disk_cache=options.use_cache, background_parser=background)
        if options.fix is not None:
            fixed = fix_files(ws, linter, options.fix, say, given=given, write=options.write,
                              follow_symlinks=options.follow_symlinks, failures=failures)
        findings = linter.check()
    finally:
        if background is not None:
            background.close()
    index = None
    if semantic:
        found, index = _semantic(ws, config, options, say)
        findings += found
    file_problems = list(ws.problems.values())
    runs.put(key, findings, file_problems, len(ws.files), len(ws))
    return CheckResult(sorted(findings, key=Finding.sort_key), _sorted(problems + file_problems), len(ws.files),
                       len(ws), fixed, contents, failures, ws, index)


def check_workspace(ws: Workspace, semantic: bool = True, say: Say = _quiet, use_cache: bool = True) -> list[Finding]:
    """The findings of an already loaded workspace (``suggest``): the same rules and semantic merge as :func:`check`."""
    findings = Linter(ws, use_disk_cache=use_cache).check()
    if semantic and ws.config.similarity.enabled:
        findings += _semantic(ws, ws.config, CheckOptions(), say)[0]
    return sorted(findings, key=Finding.sort_key)


def _sorted(problems: list) -> list:
    return sorted(problems, key=lambda p: p.path)


def _start_parser(config: Config, files: int):
    """Start loading the NLP parser in a second process when the run is big enough to gain from it."""
    if files < PARALLEL_FROM_FILES or "ST201" not in {r.code for r in enabled_rules(config)}:
        return None
    try:
        from .nlp import BackgroundParser

        return BackgroundParser()
    except (OSError, ImportError):
        return None


def _semantic(ws: Workspace, config: Config, options: CheckOptions, say: Say) -> tuple[list[Finding], Any]:
    """The semantic findings of enabled rules (and the index with ``keep_index``); none, with a warning,
    when the embedding model fails: it must not hide the deterministic findings."""
    try:
        from .similarity import semantic_findings
    except ImportError:
        return [], None
    try:
        index = None
        if options.keep_index:
            from .similarity import SimilarityIndex
            from .similarity.workspace_findings import progress_callback

            index = SimilarityIndex.build(ws.stories(), config.similarity, progress=progress_callback(options.progress))
        found = semantic_findings(ws, config, progress=None if index is not None else options.progress, index=index)
    except Exception as e:
        say("warning", f"semantic check skipped: {e}")
        return [], None
    on = {r.code for r in enabled_rules(config)}
    return [f for f in found if f.code in on], index


def fix_text(linter: Linter, path: str, text: str, policy: FixPolicy) -> tuple[str, list[tuple[str, str]]]:
    """``text`` of ``path`` with every fix the policy allows applied, re-checking after each pass (fixes
    that touched the lines of an applied one get the next pass); and the ``(code, title)`` applied."""
    ws = linter.workspace
    new_text = text
    applied: list[tuple[str, str]] = []
    written_twice = _repeated_lines(text)
    for n in range(MAX_FIX_PASSES):
        ws.set_text(path, new_text)
        found = linter.check_file(path)
        if n:  # after a pass, a deletion only removes a story the user wrote twice, never one our fixes repeated
            found = [f for f in found if fix_kind_of(f) is not FixKind.DELETION
                     or _lines_of(new_text, f) in written_twice]
        chosen = policy.choose(found)
        if not chosen:
            break
        applied += [(f.code, f.fix.title) for f in chosen]
        new_text = apply_edits(new_text, [e for f in chosen for e in f.fix.edits])
    return new_text, applied


def _normal(line: str) -> str:
    return " ".join(line.split())


def _repeated_lines(text: str) -> set[str]:
    """The non-blank lines of ``text`` (spacing normalised) that occur more than once."""
    seen: set[str] = set()
    twice: set[str] = set()
    for line in text.splitlines():
        key = _normal(line)
        if key:
            (twice if key in seen else seen).add(key)
    return twice


def _lines_of(text: str, finding: Finding) -> str:
    """The lines ``finding`` covers in ``text``, spacing normalised (a one-line story: its line)."""
    lines = text.splitlines()
    return _normal(" ".join(lines[finding.range.start.line:finding.range.end.line + 1]))


def fix_files(ws: Workspace, linter: Linter, policy: FixPolicy, say: Say = _quiet, *, given: Mapping[str, bytes] = (),
              write: bool = True, follow_symlinks: bool = False, failures: list[str] | None = None) -> list[FileFix]:
    """Apply the policy's fixes file by file; returns what changed in each file.

    A fixed file keeps its byte-order mark and its line endings: CRLF through the edits
    themselves, CR-only by fixing the text with LF line breaks and writing CRs back.
    Files that may not be written (see :func:`~storytransformer.edits.atomic_write`) are named
    and left as they are, and added to ``failures``. With ``write`` false (``--diff``) nothing is
    written; ``given`` texts (standard input, by name) are fixed from these bytes and never written.
    """
    given = dict(given or {})
    results: list[FileFix] = []
    changed_any = False
    for path in list(ws.files):
        if path in given:
            data = given[path]
        else:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as e:
                say("note", f"{path}: cannot read for --fix: {e.strerror or e}")
                continue
        text = decode(path, data)
        if isinstance(text, FileProblem):
            continue
        original_digest = digest(data)
        bom = data.startswith(codecs.BOM_UTF8)
        cr_only = "\r" in text and "\n" not in text
        if cr_only:
            text = text.replace("\r", "\n")
        new_text, applied = fix_text(linter, path, text, policy)
        if new_text == text:
            continue
        changed_any = True
        out = ("\ufeff" if bom else "") + (new_text.replace("\n", "\r") if cr_only else new_text)
        if write and path not in given:
            try:
                atomic_write(path, out, expected_digest=original_digest, follow_symlinks=follow_symlinks)
            except (StaleFileError, OSError) as e:
                if not isinstance(e, (StaleFileError, WriteError)):
                    e = WriteError(path, f"cannot write: {e.strerror or e}")
                say("error", str(e))
                if isinstance(e, WriteError) and failures is not None:
                    failures.append(path)
                ws.load(path)
                continue
        results.append(FileFix(path, text, new_text, out, applied))
    if changed_any:
        linter.refresh_template()
    return results
