"""``storytransformer check``: lint story files, for people and for CI."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from .. import baseline
from ..checking import CHECK_FIX, CheckOptions, CheckResult, FileFix, FixPolicy, check
from ..config import CONFIG_FILES, ConfigError, load_config
from ..edits import WriteError, atomic_write
from ..output import (display_path, fixes_listing, summary, to_full, to_github, to_gitlab, to_json, to_junit, to_sarif,
                      to_text, unified_diff)
from ..rules import RULES
from . import model_checks

STDIN = "-"


def register(sub) -> None:
    p = sub.add_parser("check", help="check story files and report problems",
                       description="Check story files (text, Markdown, Gherkin, CSV) against the quality rules.")
    p.add_argument("paths", nargs="*", default=["."],
                   help="files or directories (default: .); - reads the stories from standard input")
    p.add_argument("--config", type=Path, help="configuration file (default: nearest .storytransformer.toml or pyproject.toml)")
    p.add_argument("--format", "--output-format", dest="format", choices=["text", "full", "json", "sarif", "github", "gitlab", "junit"],
                   default="text", help="report format; full: text with each story and its problem underlined; "
                                        "github: workflow annotations for GitHub Actions; gitlab: a GitLab "
                                        "Code Quality report; junit: JUnit XML for CI test views")
    p.add_argument("-o", "--output", type=Path, help="write the report to this file instead of standard output")
    p.add_argument("--fix", action="store_true", help="apply safe fixes in place (with -: print the fixed text)")
    p.add_argument("--diff", action="store_true",
                   help="with --fix, print a unified diff of what would change and write nothing (exit 1 if anything would)")
    p.add_argument("--show-fixes", action="store_true", help="with --fix, list the fixes applied (with --diff, that would be) per file")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="let --fix and -o write through a symbolic link to its target (refused otherwise)")
    p.add_argument("--unsafe-fixes", action="store_true", help="with --fix, also apply fixes that change a story's meaning (splits)")
    p.add_argument("--fix-kinds", metavar="KINDS",
                   help="with --fix, the kinds of fix to apply, comma-separated: safe, unsafe, deletion "
                        f"(default: {CHECK_FIX.describe()}; --unsafe-fixes adds unsafe)")
    p.add_argument("--no-semantic", action="store_true", help="skip semantic duplicates (no embedding model)")
    p.add_argument("--select", help="comma-separated rule codes or prefixes to enable (replaces the configuration)")
    p.add_argument("--extend-select", metavar="CODES",
                   help="comma-separated rule codes or prefixes to enable on top of the selection (e.g. ST104)")
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
    p.add_argument("--show-files", action="store_true",
                   help="list the story files check would read under the paths (and why others are skipped), then exit")
    p.add_argument("-q", "--quiet", action="store_true", help="print findings only, no summary")
    p.add_argument("-w", "--watch", action="store_true",
                   help="check again whenever a story or configuration file under the paths changes (Ctrl+C stops)")
    model_checks.add_arguments(p)
    p.set_defaults(func=run)


def _codes(value: str | None) -> list[str]:
    return [c.strip().upper() for c in (value or "").split(",") if c.strip()]


def run(args: argparse.Namespace) -> int:
    return _watch(args) if getattr(args, "watch", False) else _run_once(args)


def _run_once(args: argparse.Namespace) -> int:
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
        if args.extend_select:
            config.extend_select = config.extend_select + _codes(args.extend_select)
        if args.ignore:
            config.ignore = config.ignore + _codes(args.ignore)
        if args.no_cache:
            config.similarity.cache = False
        for code in config.select + config.extend_select + config.ignore:
            if not any(c.startswith(code.upper()) for c in RULES):
                raise ConfigError(f"--select/--extend-select/--ignore: unknown rule {code!r}")
        if args.model_budget < 1 or args.model_timeout <= 0:
            raise ConfigError("--model-budget and --model-timeout must be positive")
        try:
            args.thresholds = model_checks.thresholds(args.model_threshold)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        accepted = baseline.load(args.baseline) if args.baseline else None
        try:
            args.policy = (FixPolicy.parse(args.fix_kinds) if args.fix_kinds is not None else CHECK_FIX) \
                .with_unsafe(args.unsafe_fixes)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    except (ConfigError, baseline.BaselineError) as e:
        print(f"storytransformer: error: {e}", file=err)
        args.config_used = None
        return 2
    args.config_used = config  # --watch judges which changed files matter by it, without reading it per event

    if args.show_files:
        return _show_files(args, config)

    args.write_failures = []  # files --fix was refused to write (a symbolic link, read-only, a full disk)
    with _progress(err) as progress:
        result = _check(args, config, progress, err)
    findings, problems, n_files, n_stories = result.findings, result.problems, result.files, result.stories
    args.checked = {os.path.abspath(p) for p in result.contents if p != args.stdin_name}  # what --watch watches for
    if args.model_checks and result.workspace is not None:
        findings = sorted(model_checks.run(args, config, list(result.workspace.stories()), _say(err), findings,
                                                   index=result.index),
                          key=lambda f: f.sort_key())
    fixed, contents = result.fixed, result.contents

    in_baseline = 0
    if args.baseline or args.write_baseline:
        entries = baseline.keys(findings, baseline.story_lookup(result.texts(), config))
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
    elif args.format == "gitlab":
        out = to_gitlab(findings, problems)
    elif args.format == "junit":
        out = to_junit(findings, problems)
    elif args.statistics:
        counts = Counter(f.code for f in findings)
        out = "\n".join(f"{n:6d}  {code}  {RULES[code].name if code in RULES else ''}" for code, n in counts.most_common())
    elif args.format == "full":
        out = to_full(findings, problems, result.texts())
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
    if args.format not in ("text", "full"):  # machine output on stdout; problems on stderr
        for p in problems:
            print(p, file=err)
    if stdin_fix:
        _print_stdin(args, fixed, contents)
    if args.show_fixes and args.fix:
        print(fixes_listing({r.path: r.applied for r in fixed}),
              file=to if args.format in ("text", "full") and not args.output else err)
    to.flush()  # findings before the summary when both streams go to one terminal or log
    if not args.quiet and args.format in ("text", "full"):
        print(summary(findings, n_files, n_stories, sum(p.kind == "error" for p in problems), in_baseline), file=err)
    if errors and not n_files:
        return 2
    if args.write_failures:
        return 2
    if args.write_baseline:
        return 0
    return 1 if findings and not args.exit_zero else 0


def _show_files(args: argparse.Namespace, config) -> int:
    """``--show-files``: the files a check would read, one a line, by the same walk; the notices of the walk
    (links out of the tree, files reached twice, unreadable folders) on standard error."""
    from ..workspace import discover

    files, problems = discover([p for p in args.paths if p != STDIN], config)
    for path in files:
        print(display_path(path))
    for p in problems:
        print(p, file=sys.stderr)
    if not args.quiet:
        print(f"{len(files)} story file{'s' if len(files) != 1 else ''}.", file=sys.stderr)
    return 0


# Flags that write or ask a model: on every save of a watched file they would rewrite files an editor has
# open, or spend minutes of model time, so --watch refuses them rather than guessing.
WATCH_REFUSES = (("fix", "--fix"), ("diff", "--diff"), ("output", "-o/--output"),
                 ("write_baseline", "--write-baseline"), ("model_checks", "--model-checks"))


def _watch(args: argparse.Namespace) -> int:
    """``check --watch``: check, then check again after each burst of changes to the files the last
    check read, new story files under the paths, or a configuration file; Ctrl+C stops (exit 0)."""
    err = sys.stderr
    refused = [flag for attr, flag in WATCH_REFUSES if getattr(args, attr, None)]
    if STDIN in args.paths:
        refused.append("- (standard input)")
    if refused:
        print(f"storytransformer: error: --watch checks files again as they change; it does not combine with "
              f"{', '.join(refused)}", file=err)
        return 2
    for path in args.paths:
        if not os.path.exists(path):
            print(f"storytransformer: error: --watch: {path}: no such file or directory", file=err)
            return 2
    from ..watching import WatchUnavailable, change_batches, watching

    from ..workspace import in_tree

    roots = [os.path.abspath(p) for p in args.paths]

    def relevant(path: str) -> bool:
        checked = getattr(args, "checked", ())
        if os.path.basename(path) in CONFIG_FILES or path in checked:
            return True
        if any(c.startswith(path + os.sep) for c in checked):
            return True  # a folder of checked files moved or deleted (a folder moved in reports its files)
        config = getattr(args, "config_used", None)
        if config is None:
            return True  # the last check could not read the configuration: the next one says why again
        return any(path == root or (os.path.isdir(root) and in_tree(path, root, config)) for root in roots)

    try:
        with watching(args.paths) as changes:
            _watch_round(args, err, None)
            for batch in change_batches(changes, relevant):
                _watch_round(args, err, batch)
    except WatchUnavailable as e:
        print(f"storytransformer: error: {e}", file=err)
        return 2
    except KeyboardInterrupt:
        print("Stopped watching.", file=err)
    return 0


def _watch_round(args: argparse.Namespace, err, changed: set[str] | None) -> None:
    """One check of a watch: a clear screen on a terminal (a separating line otherwise), what changed, the
    report as ``check`` prints it, and that it is watching again."""
    if changed is not None:
        if sys.stdout.isatty():
            sys.stdout.write("\033[2J\033[H")
            sys.stdout.flush()
        else:
            print(file=sys.stdout)
        names = sorted(os.path.relpath(p) for p in changed)
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        print(f"[{time.strftime('%H:%M:%S')}] Changed: {', '.join(names[:3])}{more}; checking again.", file=err)
    try:
        _run_once(args)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # a watch outlives one failed check: say it and wait for the next change
        import traceback

        traceback.print_exc(file=err)
        print(f"storytransformer: error: this check failed ({type(e).__name__}: {e}); still watching", file=err)
    sys.stdout.flush()
    print(f"[{time.strftime('%H:%M:%S')}] Watching for changes (Ctrl+C to stop).", file=err, flush=True)


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


def _say(err):
    def say(level: str, message: str) -> None:
        print(message if level == "note" else f"storytransformer: {level}: {message}", file=err)

    return say


def _check(args, config, progress, err) -> CheckResult:
    """The one check entry point (:func:`storytransformer.checking.check`) run with these flags.

    In the result, ``contents`` maps each path to the bytes read (or why it could not be); the
    stories read from standard input are under ``args.stdin_name``.
    """
    texts = {args.stdin_name: sys.stdin.buffer.read()} if STDIN in args.paths else {}
    options = CheckOptions(semantic=not args.no_semantic, use_cache=not args.no_cache,
                           run_cache=not args.model_checks,  # the model checks need the stories, not a cached result
                           keep_index=args.model_checks,  # and ST606 the index's near pairs
                           fix=args.policy if args.fix else None, write=not args.diff,
                           follow_symlinks=getattr(args, "follow_symlinks", False), progress=progress)

    result = check(config, [p for p in args.paths if p != STDIN], texts, options, _say(err))
    args.write_failures = result.write_failures
    return result
