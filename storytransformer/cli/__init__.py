"""The ``storytransformer`` command. Each subcommand lives in its own module with a
``register(subparsers)`` function; add a module name to ``COMMANDS`` to add one.

Exit codes: 0 clean, 1 findings, 2 usage, configuration or I/O errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = [
    "check",
    "rules",
    "daemon",
    "engine",
    "lsp",
    "similar",
    "clusters",
    "suggest",
    "report", "estimate",
    "bench",
    "eval",
    "config",
]
# Commands that may send stories to the model: a project's untrusted remote-engine settings are
# confirmed on a terminal, refused (exit 2) otherwise. Every other command (no model) drops them quietly.
ENGINE_COMMANDS = {"suggest", "engine", "eval", "report"}
SERVER_COMMANDS = {"lsp", "daemon"}  # the configuration search never leaves the workspace folder


# Subcommands that start or talk to the servers live with them (storytransformer_server.subcommands): the
# core never imports the servers; these are looked up by name, and reported unavailable when absent.
SERVER_COMMAND_MODULES = {name: f"storytransformer_server.subcommands.{name}" for name in ("daemon", "engine", "lsp")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storytransformer",
        description="Find and fix problems in backlogs of user stories.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = SERVER_COMMAND_MODULES.get(name) or f"{__name__}.{name.replace('-', '_')}"
            importlib.import_module(module).register(sub)
        except ImportError as e:  # one broken command (a missing optional dependency) must not break the others
            _unavailable(sub, name, e)
    return parser


def _unavailable(sub, name: str, error: ImportError) -> None:
    def run(_args) -> int:
        print(f"storytransformer: error: '{name}' is unavailable: {error}", file=sys.stderr)
        return 2

    p = sub.add_parser(name, help=f"(unavailable: {error})", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)


def _version() -> str:
    from .. import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    _config_policy(args.command, uses_engine=getattr(args, "model_checks", False))  # check --model-checks does
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _config_policy(command: str, uses_engine: bool = False) -> None:
    from .. import trust

    if command in SERVER_COMMANDS:
        trust.set_policy(remote="drop", walk="workspace")  # notices go to the server's log
        return
    trust.set_policy(remote="confirm" if command in ENGINE_COMMANDS or uses_engine else "quiet", walk="cli",
                     notice=lambda message: print(f"storytransformer: warning: {message}", file=sys.stderr))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
