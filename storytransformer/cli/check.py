"""``storytransformer check``: lint story files, for people and for CI."""

from __future__ import annotations

import argparse
import codecs
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import baseline
from ..config import ConfigError, load_config
from ..edits import StaleFileError, WriteError, apply_edits, atomic_write, choose_fixes, digest
from ..findings import Finding
from ..lint import Linter
from ..output import fixes_listing, summary, to_github, to_json, to_sarif, to_text, unified_diff
from ..rules import RULES
from ..workspace import FileProblem, Workspace, decode

MAX_FIX_PASSES = 5
STDIN = "-"


def register(sub) -> None:
    p = sub.add_parser("check", help="check story files and report problems",
                       description="Check story files (text, Markdown, Gherkin, CSV) against the quality rules.")
    p.add_argument("paths", nargs="*", default=["."],
                   help="files or directories (default: .); - reads the stories from standard input")
    p.add_argument("--config", type=Path, help="configuration file (default: nearest .storytransformer.toml or pyproject.toml)")
    p.add_argument("--format", choices=["text", "json", "sarif", "github"], default="text",
                   help="report format; github: workflow annotations for GitHub Actions")
    p.add_argument("-o", "--output", type=Path, help="write the report to this file instead of standard output")
    p.add_argument("--fix", action="store_true", help="apply safe fixes in place (with -: print the fixed text)")
    p.add_argument("--diff", action="store_true",
                   help="with --fix, print a unified diff of what would change and write nothing (exit 1 if anything would)")
    p.add_argument("--show-fixes", action="store_true", help="with --fix, list the fixes applied (with --diff, that would be) per file")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="let --fix and -o write through a symbolic link to its target (refused otherwise)")
    p.add_argument("--unsafe-fixes", action="store_true", help="with --fix, also apply fixes that change a story's meaning (splits)")
    p.add_argument("--no-semantic", action="store_true", help="skip semantic duplicates (no embedding model)")
    p.add_argument("--select", help="comma-separated rule codes or prefixes to enable (replaces the configuration)")
    p.add_argument("--ignore", help="comma-separated rule codes or prefixes to disable")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk caches")
    p.add_argument("--statistics", action="store_true", help="print counts per rule instead of each finding")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    p.add_argument("--baseline", metavar="FILE",
                   help="report (and fail on) only findings that are not in this baseline file")
    p.add_argument("--write-baseline", metavar="FILE",
                   help="write the findings of this run to a baseline file (then exit 0)")
    p.add_argument("--stdin-filename", metavar="NAME",
                   help="the name (and so the format, e.g. backlog.md) of the stories read from - (standard input)")
    p.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")
    p.set_defaults(func=run)


def _codes(value: str | None) -> list[str]:
    return [c.strip().upper() for c in (value or "").split(",") if c.strip()]


def run(args: argparse.Namespace) -> int:
    err = sys.stderr
    if args.diff:
        args.fix = True  # --diff shows what --fix would do
    args.stdin_name = args.stdin_filename or STDIN
    try:
        if args.paths.count(STDIN) > 1:
            raise ConfigError("- (standard input) may be given once")
        if args.stdin_filename and STDIN not in args.paths:
            raise ConfigError("--stdin-filename names the stories read from -; give - among the paths")
        first = args.stdin_name if args.paths and args.paths[0] == STDIN else (args.paths[0] if args.paths else ".")
        start = Path(first)
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
        accepted = baseline.load(args.baseline) if args.baseline else None
    except (ConfigError, baseline.BaselineError) as e:
        print(f"storytransformer: error: {e}", file=err)
        return 2

    args.write_failures = []  # files --fix was refused to write (a symbolic link, read-only, a full disk)
    with _progress(err) as progress:
        findings, problems, n_files, n_stories, fixed, contents = _check(args, config, progress, err)
    findings.sort(key=Finding.sort_key)
    problems = sorted(problems, key=lambda p: p.path)

    in_baseline = 0
    if args.baseline or args.write_baseline:
        entries = baseline.keys(findings, baseline.story_lookup(_texts(contents, fixed), config))
        if args.write_baseline:
            try:
                atomic_write(args.write_baseline, baseline.dumps(entries), follow_symlinks=args.follow_symlinks)
            except OSError as e:
                print(f"storytransformer: error: {e if isinstance(e, WriteError) else f'{args.write_baseline}: {e.strerror or e}'}",
                      file=err)
                return 2
            if not args.quiet:
                print(f"Wrote {len(entries)} findings to the baseline {args.write_baseline}.", file=err)
        if accepted is not None:
            new = baseline.new_findings(findings, entries, accepted)
            in_baseline, findings = len(findings) - len(new), new

    errors = any(p.kind == "error" for p in problems)
    if args.diff:
        return _report_diff(args, fixed, problems, errors and not n_files, err)

    stdin_fix = args.fix and STDIN in args.paths
    to = err if stdin_fix and not args.output else sys.stdout  # with --fix -, stdout carries the fixed text
    if args.format == "json":
        out = to_json(findings, indent=2 if to.isatty() and not args.output else None)
    elif args.format == "sarif":
        from .. import __version__

        out = to_sarif(findings, problems, __version__)
    elif args.format == "github":
        out = to_github(findings, problems)
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
        print(out, file=to)
    if args.format != "text":  # machine output on stdout; problems on stderr
        for p in problems:
            print(p, file=err)
    if stdin_fix:
        _print_stdin(args, fixed, contents)
    if args.show_fixes and args.fix:
        print(fixes_listing({r.path: r.applied for r in fixed}),
              file=to if args.format == "text" and not args.output else err)
    to.flush()  # findings before the summary when both streams go to one terminal or log
    if not args.quiet and args.format == "text":
        print(summary(findings, n_files, n_stories, sum(p.kind == "error" for p in problems), in_baseline), file=err)
    if errors and not n_files:
        return 2
    if args.write_failures:
        return 2
    if args.write_baseline:
        return 0
    return 1 if findings and not args.exit_zero else 0


@dataclass
class FileFix:
    """What --fix did (or, with --diff or for -, would do) to one file."""

    path: str
    before: str  # the text the fixes were computed on (line breaks as LF for a CR-only file)
    after: str
    payload: str  # ``after`` as it is written: byte-order mark and line breaks of the original
    applied: list[tuple[str, str]] = field(default_factory=list)  # (code, fix title), in order


def _texts(contents: dict, fixed: list[FileFix]) -> dict[str, str]:
    """Every checked file's text as the findings saw it (after --fix)."""
    texts = {}
    for path, data in contents.items():
        if isinstance(data, bytes):
            text = decode(path, data)
            if isinstance(text, str):
                texts[path] = text
    texts.update({r.path: r.after for r in fixed})
    return texts


def _print_stdin(args, fixed: list[FileFix], contents: dict) -> None:
    """``--fix -``: the fixed stories (or the input unchanged) on standard output."""
    done = next((r for r in fixed if r.path == args.stdin_name), None)
    sys.stdout.flush()
    if done is not None:
        sys.stdout.buffer.write(done.payload.encode("utf-8"))
    elif isinstance(contents.get(args.stdin_name), bytes):
        sys.stdout.buffer.write(contents[args.stdin_name])
    sys.stdout.buffer.flush()


def _report_diff(args, fixed: list[FileFix], problems, unreadable: bool, err) -> int:
    """``--diff``: the changes --fix would make, as a unified diff; exit 1 when there are any."""
    changed = [r for r in fixed if r.after != r.before]
    diff = "".join(unified_diff(r.path, r.before, r.after) for r in sorted(changed, key=lambda r: r.path))
    sys.stdout.write(diff)
    sys.stdout.flush()
    for p in problems:
        print(p, file=err)
    if args.show_fixes:
        print(fixes_listing({r.path: r.applied for r in fixed}, would=True), file=err)
    if not args.quiet:
        n = sum(len(r.applied) for r in changed)
        print(f"Would fix {n} problem{'s' if n != 1 else ''} in {len(changed)} file{'s' if len(changed) != 1 else ''}."
              if changed else "No fixes would be applied.", file=err)
    if unreadable:
        return 2
    return 1 if changed else 0


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
    """``(findings, problems, files, stories, fixes, contents)``: from the run cache when no input changed, else computed.

    ``contents`` maps each path to the bytes read (or why it could not be); the
    stories read from standard input are under ``args.stdin_name``.
    """
    from ..cache import ResultCache, RunCache, content_digest
    from ..workspace import discover, read_bytes

    files, problems = discover([p for p in args.paths if p != STDIN], config)
    task = progress.add_task("Reading stories", total=len(files)) if progress and len(files) > 20 else None
    contents = {}
    for path in files:
        contents[path] = read_bytes(path, config)
        if task is not None:
            progress.advance(task)
    virtual = {}
    if STDIN in args.paths:
        data = sys.stdin.buffer.read()
        if len(data) > config.max_file_bytes:
            data = FileProblem(args.stdin_name, f"skipped: {len(data) / 1e6:.1f} MB is larger than max_file_bytes "
                               f"({config.max_file_bytes / 1e6:.1f} MB)", kind="notice")
        else:
            virtual[args.stdin_name] = data
        contents[args.stdin_name] = data
    semantic = not args.no_semantic and config.similarity.enabled
    runs = RunCache(enabled=not (args.no_cache or args.fix))
    key = RunCache.key(config, f"semantic={semantic}", [
        (p, "!" + d.message if isinstance(d, FileProblem) else content_digest(d)) for p, d in contents.items()])
    hit = runs.get(key)
    if hit is not None:
        findings, file_problems, n_files, n_stories = hit
        return findings, problems + file_problems, n_files, n_stories, [], contents

    background = _start_parser(config, len(contents))
    fixed: list[FileFix] = []
    try:
        ws = Workspace(config, ResultCache(config, enabled=not args.no_cache))
        for path, data in contents.items():
            text = decode(path, data) if path in virtual else data
            if isinstance(text, FileProblem):
                ws.problems[path] = text
            elif path in virtual:  # parsed as its name says, never taken from a cache of the same bytes
                ws.set_text(path, text)
            else:
                ws.load(path, data)
        linter = Linter(ws, use_disk_cache=not args.no_cache, background_parser=background)
        if args.fix:
            fixed = _fix_all(ws, linter, args.unsafe_fixes, err, follow_symlinks=getattr(args, "follow_symlinks", False),
                             failures=getattr(args, "write_failures", None), write=not args.diff, virtual=virtual)
        findings = linter.check()
    finally:
        if background is not None:
            background.close()
    findings += _semantic(ws, config, args, progress, err)
    file_problems = list(ws.problems.values())
    runs.put(key, findings, file_problems, len(ws.files), len(ws))
    return findings, problems + file_problems, len(ws.files), len(ws), fixed, contents


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
             failures: list | None = None, write: bool = True, virtual: dict[str, bytes] | None = None) -> list[FileFix]:
    """Apply fixes file by file, re-checking after each pass; returns what changed in each file.

    A fixed file keeps its byte-order mark and its line endings: CRLF through the edits
    themselves, CR-only by fixing the text with LF line breaks and writing CRs back.
    Files that may not be written (see :func:`atomic_write`) are named and left as they
    are, and added to ``failures``. With ``write`` false (``--diff``) nothing is written;
    ``virtual`` files (standard input, by name) are fixed from these bytes and never written.
    """
    from ..fixes import applies_automatically  # the fix policy shared with the language server's fix-on-save

    virtual = virtual or {}
    results: list[FileFix] = []
    changed_any = False
    for path in list(ws.files):
        if path in virtual:
            data = virtual[path]
        else:
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
        applied: list[tuple[str, str]] = []
        for _ in range(MAX_FIX_PASSES):
            ws.set_text(path, new_text)
            candidates = [f for f in linter.check_file(path) if applies_automatically(f, unsafe=unsafe)]
            chosen = choose_fixes(f.fix for f in candidates)
            if not chosen:
                break
            code_of = {id(f.fix): f.code for f in candidates}
            applied += [(code_of.get(id(fix), ""), fix.title) for fix in chosen]
            new_text = apply_edits(new_text, [e for fix in chosen for e in fix.edits])
        if new_text == text:
            continue
        changed_any = True
        out = ("\ufeff" if bom else "") + (new_text.replace("\n", "\r") if cr_only else new_text)
        if write and path not in virtual:
            try:
                atomic_write(path, out, expected_digest=original_digest, follow_symlinks=follow_symlinks)
            except (StaleFileError, OSError) as e:
                if not isinstance(e, (StaleFileError, WriteError)):
                    e = WriteError(path, f"cannot write: {e.strerror or e}")
                print(f"storytransformer: error: {e}", file=err)
                if isinstance(e, WriteError) and failures is not None:
                    failures.append(path)
                ws.load(path)
                continue
        results.append(FileFix(path, text, new_text, out, applied))
    if changed_any:
        linter.refresh_template()
    return results
