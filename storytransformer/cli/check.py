"""``storytransformer check``: lint story files, for people and for CI."""

from __future__ import annotations

import argparse
import codecs
import sys
from collections import Counter
from pathlib import Path

from ..config import ConfigError, load_config
from ..edits import StaleFileError, WriteError, apply_edits, atomic_write, choose_fixes, digest
from ..findings import Finding
from ..lint import Linter
from ..output import summary, to_json, to_sarif, to_text
from ..rules import RULES
from ..workspace import FileProblem, Workspace, decode

MAX_FIX_PASSES = 5


def register(sub) -> None:
    p = sub.add_parser("check", help="check story files and report problems",
                       description="Check story files (text, Markdown, Gherkin, CSV) against the quality rules.")
    p.add_argument("paths", nargs="*", default=["."], help="files or directories (default: .)")
    p.add_argument("--config", type=Path, help="configuration file (default: nearest .storytransformer.toml or pyproject.toml)")
    p.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    p.add_argument("-o", "--output", type=Path, help="write the report to this file instead of standard output")
    p.add_argument("--fix", action="store_true", help="apply safe fixes in place")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="let --fix and -o write through a symbolic link to its target (refused otherwise)")
    p.add_argument("--unsafe-fixes", action="store_true", help="with --fix, also apply fixes that change a story's meaning (splits)")
    p.add_argument("--no-semantic", action="store_true", help="skip semantic duplicates (no embedding model)")
    p.add_argument("--select", help="comma-separated rule codes or prefixes to enable (replaces the configuration)")
    p.add_argument("--ignore", help="comma-separated rule codes or prefixes to disable")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk caches")
    p.add_argument("--statistics", action="store_true", help="print counts per rule instead of each finding")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    p.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")
    p.set_defaults(func=run)


def _codes(value: str | None) -> list[str]:
    return [c.strip().upper() for c in (value or "").split(",") if c.strip()]


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    try:
        start = Path(args.paths[0]) if args.paths else Path(".")
        config = load_config(args.config, start=start if start.exists() else Path("."))
        if args.select:
            config.select = _codes(args.select)
        if args.ignore:
            config.ignore = config.ignore + _codes(args.ignore)
        if args.no_cache:
            config.similarity.cache = False
        for code in config.select + config.ignore:
            if not any(c.startswith(code) for c in RULES):
                raise ConfigError(f"--select/--ignore: unknown rule {code!r}")
    except ConfigError as e:
        print(f"storytransformer: error: {e}", file=err)
        return 2

    args.write_failures = []  # files --fix was refused to write (a symbolic link, read-only, a full disk)
    with _progress(err) as progress:
        findings, problems, n_files, n_stories = _check(args, config, progress, err)
    findings.sort(key=Finding.sort_key)
    problems = sorted(problems, key=lambda p: p.path)

    if args.format == "json":
        out = to_json(findings, indent=2 if sys.stdout.isatty() and not args.output else None)
    elif args.format == "sarif":
        from .. import __version__

        out = to_sarif(findings, problems, __version__)
    elif args.statistics:
        counts = Counter(f.code for f in findings)
        out = "\n".join(f"{n:6d}  {code}  {RULES[code].name if code in RULES else ''}" for code, n in counts.most_common())
    else:
        out = to_text(findings, problems)
    if args.output:
        try:
            atomic_write(str(args.output), out + "\n", follow_symlinks=getattr(args, "follow_symlinks", False))
        except OSError as e:  # WriteError names the file; nothing was written
            print(f"storytransformer: error: {e if isinstance(e, WriteError) else f'{args.output}: {e.strerror or e}'}",
                  file=err)
            return 2
    elif out:
        print(out)
    if args.format != "text":  # machine output on stdout; problems on stderr
        for p in problems:
            print(p, file=err)
    sys.stdout.flush()  # findings before the summary when both streams go to one terminal or log
    if not args.quiet and args.format == "text":
        print(summary(findings, n_files, n_stories, sum(p.kind == "error" for p in problems)), file=err)
    if any(p.kind == "error" for p in problems) and not n_files:
        return 2
    if args.write_failures:
        return 2
    return 1 if findings and not args.exit_zero else 0


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress(err):
    """A progress bar on stderr when it is a terminal (rich); nothing otherwise."""
    if not err.isatty():
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.console import Console

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(file=err), transient=True)


def _check(args, config, progress, err):
    """``(findings, problems, files, stories)``: from the run cache when no input changed, else computed."""
    from ..cache import ResultCache, RunCache, content_digest
    from ..workspace import discover, read_bytes

    files, problems = discover(args.paths, config)
    task = progress.add_task("Reading stories", total=len(files)) if progress and len(files) > 20 else None
    contents = {}
    for path in files:
        contents[path] = read_bytes(path, config)
        if task is not None:
            progress.advance(task)
    semantic = not args.no_semantic and config.similarity.enabled
    runs = RunCache(enabled=not (args.no_cache or args.fix))
    key = RunCache.key(config, f"semantic={semantic}", [
        (p, "!" + d.message if isinstance(d, FileProblem) else content_digest(d)) for p, d in contents.items()])
    hit = runs.get(key)
    if hit is not None:
        findings, file_problems, n_files, n_stories = hit
        return findings, problems + file_problems, n_files, n_stories

    background = _start_parser(config, len(contents))
    try:
        ws = Workspace(config, ResultCache(config, enabled=not args.no_cache))
        for path, data in contents.items():
            if isinstance(data, FileProblem):
                ws.problems[path] = data
            else:
                ws.load(path, data)
        linter = Linter(ws, use_disk_cache=not args.no_cache, background_parser=background)
        if args.fix:
            _fix_all(ws, linter, args.unsafe_fixes, err, follow_symlinks=getattr(args, "follow_symlinks", False),
                     failures=getattr(args, "write_failures", None))
        findings = linter.check()
    finally:
        if background is not None:
            background.close()
    findings += _semantic(ws, config, args, progress, err)
    file_problems = list(ws.problems.values())
    runs.put(key, findings, file_problems, len(ws.files), len(ws))
    return findings, problems + file_problems, len(ws.files), len(ws)


PARALLEL_FROM_FILES = 20  # below this, starting a second process costs more than it saves


def _start_parser(config, files: int):
    """Start loading the NLP parser in a second process when the run is big enough to gain from it."""
    from ..lint import enabled_rules

    if files < PARALLEL_FROM_FILES or "ST201" not in {r.code for r in enabled_rules(config)}:
        return None
    try:
        from ..nlp import BackgroundParser

        return BackgroundParser()
    except (OSError, ImportError):
        return None


def _semantic(ws, config, args, progress, err) -> list[Finding]:
    if args.no_semantic or not config.similarity.enabled:
        return []
    try:
        from ..similarity import semantic_findings
    except ImportError:
        return []
    try:
        found = semantic_findings(ws, config, progress=progress)
    except Exception as e:  # a broken model must not hide the deterministic findings
        print(f"storytransformer: warning: semantic check skipped: {e}", file=err)
        return []
    from ..lint import enabled_rules

    on = {r.code for r in enabled_rules(config)}
    return [f for f in found if f.code in on]


def _fix_all(ws: Workspace, linter: Linter, unsafe: bool, err, follow_symlinks: bool = False,
             failures: list | None = None) -> int:
    """Apply fixes file by file, re-checking after each pass; returns the number applied.

    A fixed file keeps its byte-order mark and its line endings: CRLF through the edits
    themselves, CR-only by fixing the text with LF line breaks and writing CRs back.
    Files that may not be written (see :func:`atomic_write`) are named and left as they
    are, and added to ``failures``.
    """
    from ..fixes import applies_automatically  # the fix policy shared with the language server's fix-on-save

    applied = 0
    for path in list(ws.files):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            print(f"{path}: cannot read for --fix: {e.strerror or e}", file=err)
            continue
        text = decode(path, data)
        if isinstance(text, FileProblem):
            continue
        original_digest = digest(data)
        bom = data.startswith(codecs.BOM_UTF8)
        cr_only = "\r" in text and "\n" not in text
        if cr_only:
            text = text.replace("\r", "\n")
        new_text = text
        for _ in range(MAX_FIX_PASSES):
            ws.set_text(path, new_text)
            fixes = [f.fix for f in linter.check_file(path) if applies_automatically(f, unsafe=unsafe)]
            chosen = choose_fixes(fixes)
            if not chosen:
                break
            new_text = apply_edits(new_text, [e for fix in chosen for e in fix.edits])
            applied += len(chosen)
        if new_text != text:
            try:
                out = new_text.replace("\n", "\r") if cr_only else new_text
                atomic_write(path, ("\ufeff" if bom else "") + out, expected_digest=original_digest,
                             follow_symlinks=follow_symlinks)
            except (StaleFileError, OSError) as e:
                if not isinstance(e, (StaleFileError, WriteError)):
                    e = WriteError(path, f"cannot write: {e.strerror or e}")
                print(f"storytransformer: error: {e}", file=err)
                if isinstance(e, WriteError) and failures is not None:
                    failures.append(path)
                ws.load(path)
    if applied:
        linter.refresh_template()
    return applied
