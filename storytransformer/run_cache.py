"""On-disk cache of parsed files and their per-story findings, keyed by file content.

A warm ``check`` re-reads every file (to hash it) but re-parses and re-checks
only the files whose content changed. Workspace-wide rules (duplicates, the
dominant template) always run, since they depend on the other files.
Entries are msgpack, written atomically, versioned; a corrupt entry is
ignored and rebuilt. Safe to delete at any time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from .findings import FileProblem, Finding, Fix, Related, Severity, TextEdit
from .story import Part, Position, Range, SourceFile, Story
from .user_dirs import cache_root  # noqa: F401 (re-exported)

CACHE_VERSION = 3


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Changes whenever a module of the package changes (editable installs included)."""
    from . import __version__

    h = hashlib.blake2b(f"{__version__}|{CACHE_VERSION}".encode(), digest_size=8)
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        st = path.stat()
        h.update(f"{path.relative_to(package)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def config_fingerprint(config) -> str:
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name not in ("source", "root")}
    return hashlib.blake2b(f"{code_fingerprint()}|{fields!r}".encode(), digest_size=8).hexdigest()


# -- compact encoding -------------------------------------------------------
def _r(r: Range) -> list:
    return [r.start.line, r.start.character, r.start.utf16, r.end.line, r.end.character, r.end.utf16]


def _R(v) -> Range:
    return Range(Position(v[0], v[1], v[2]), Position(v[3], v[4], v[5]))


def _p(p: Part | None):
    return None if p is None else [p.kind, p.text, _r(p.range), p.marker, _r(p.marker_range)]


def _P(v) -> Part | None:
    return None if v is None else Part(v[0], v[1], _R(v[2]), v[3], _R(v[4]))


def encode_source(src: SourceFile) -> list:
    stories = [[s.id, s.text, _r(s.range), _p(s.role), _p(s.means), _p(s.ends), _p(s.trailing), s.explicit_id,
                list(s.acceptance_criteria), sorted(s.suppressed)] for s in src.stories]
    return [src.format, sorted(src.suppressed), src.lines, stories]


def decode_source(path: str, v) -> SourceFile:
    fmt, suppressed, lines, stories = v
    src = SourceFile(path, lines, format=fmt, suppressed=frozenset(suppressed))
    src.stories = [Story(s[0], path, s[1], _R(s[2]), _P(s[3]), _P(s[4]), _P(s[5]), _P(s[6]), s[7], fmt,
                         tuple(s[8]), frozenset(s[9])) for s in stories]
    return src


def encode_findings(findings: list[Finding]) -> list:
    return [[f.code, f.criterion, f.severity.value, f.message, _r(f.range), f.story_id,
             [[x.file, _r(x.range), x.story_id, x.message] for x in f.related],
             None if f.fix is None else [f.fix.title, [[_r(e.range), e.new_text] for e in f.fix.edits]],
             f.data] for f in findings]


def decode_findings(path: str, v) -> list[Finding]:
    return [Finding(f[0], f[1], Severity(f[2]), f[3], path, _R(f[4]), f[5],
                    tuple(Related(x[0], _R(x[1]), x[2], x[3]) for x in f[6]),
                    None if f[7] is None else Fix(f[7][0], tuple(TextEdit(_R(e[0]), e[1]) for e in f[7][1])),
                    f[8] or {}) for f in v]


class ResultCache:
    """Parsed files and story-rule findings by content digest (and configuration, for findings)."""

    def __init__(self, config, root: Path | None = None, enabled: bool = True):
        self.enabled = enabled
        self.dir = (root or cache_root()) / "results" / f"v{CACHE_VERSION}"
        self.fingerprint = config_fingerprint(config)
        self.entries: dict[str, dict] = {}
        self.dirty: set[str] = set()

    def _load(self, digest: str) -> dict:
        if digest in self.entries:
            return self.entries[digest]
        entry: dict = {}
        if self.enabled:
            import msgpack

            try:
                entry = msgpack.unpackb((self.dir / digest[:2] / f"{digest}.msgpack").read_bytes(), raw=False,
                                        strict_map_key=False)
                if not isinstance(entry, dict) or entry.get("code") != code_fingerprint():
                    entry = {}  # written by another version of the parser or rules
            except (OSError, ValueError, msgpack.UnpackException):
                entry = {}
        entry["code"] = code_fingerprint()
        self.entries[digest] = entry
        return entry

    def source(self, digest: str, path: str) -> SourceFile | None:
        v = self._load(digest).get("source")
        try:
            return None if v is None else decode_source(path, v)
        except (TypeError, ValueError, IndexError):
            return None

    def put_source(self, digest: str, src: SourceFile) -> None:
        self._load(digest)["source"] = encode_source(src)
        self.dirty.add(digest)

    def findings(self, digest: str, path: str) -> list[Finding] | None:
        v = self._load(digest).get("findings", {}).get(self.fingerprint)
        try:
            return None if v is None else decode_findings(path, v)
        except (TypeError, ValueError, IndexError, KeyError):
            return None

    def has_findings(self, digest: str) -> bool:
        return self.fingerprint in self._load(digest).get("findings", {})

    def put_findings(self, digest: str, findings: list[Finding]) -> None:
        entry = self._load(digest)
        entry["findings"] = {self.fingerprint: encode_findings(findings)}
        self.dirty.add(digest)

    def save(self) -> None:
        """Write the entries changed in this run (atomically, one file each); errors only cost time."""
        if not self.enabled:
            return
        import msgpack

        for digest in list(self.dirty):
            target = self.dir / digest[:2] / f"{digest}.msgpack"
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
                with os.fdopen(fd, "wb") as f:
                    f.write(msgpack.packb(self.entries[digest], use_bin_type=True))
                os.replace(tmp, target)
            except OSError:
                continue
            self.dirty.discard(digest)
        # What is on disk need not stay in memory (a language server lives for days).
        for digest in [d for d in self.entries if d not in self.dirty]:
            del self.entries[digest]


class RunCache:
    """The whole result of a ``check`` whose inputs (file contents, configuration) are unchanged.

    Keyed by the configuration, the options that change the result, and every
    file's path and content digest, so any edit anywhere misses it.
    """

    def __init__(self, root: Path | None = None, enabled: bool = True):
        self.enabled = enabled
        self.dir = (root or cache_root()) / "runs" / f"v{CACHE_VERSION}"

    @staticmethod
    def key(config, options: str, digests: list[tuple[str, str]]) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{config_fingerprint(config)}|{options}".encode())
        for path, digest in digests:
            h.update(f"\0{path}\0{digest}".encode())
        return h.hexdigest()

    def get(self, key: str):
        """``(findings, problems, files, stories)`` or None."""
        if not self.enabled:
            return None
        import msgpack


        try:
            v = msgpack.unpackb((self.dir / f"{key}.msgpack").read_bytes(), raw=False)
            findings = [f for path, enc in v["findings"] for f in decode_findings(path, enc)]
            problems = [FileProblem(*p) for p in v["problems"]]
            return findings, problems, v["files"], v["stories"]
        except (OSError, ValueError, TypeError, KeyError, IndexError, msgpack.UnpackException):
            return None

    def put(self, key: str, findings: list[Finding], problems, files: int, stories: int) -> None:
        if not self.enabled:
            return
        import msgpack

        by_file: dict[str, list[Finding]] = {}
        for f in findings:
            by_file.setdefault(f.file, []).append(f)
        payload = {"findings": [[p, encode_findings(fs)] for p, fs in by_file.items()],
                   "problems": [[p.path, p.message, p.line, p.kind] for p in problems],
                   "files": files, "stories": stories}
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            for old in sorted(self.dir.glob("*.msgpack"), key=lambda p: p.stat().st_mtime)[:-32]:
                old.unlink(missing_ok=True)  # keep the 32 most recent runs
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(msgpack.packb(payload, use_bin_type=True))
            os.replace(tmp, self.dir / f"{key}.msgpack")
        except OSError:
            pass
