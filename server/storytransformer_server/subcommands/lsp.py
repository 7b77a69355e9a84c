"""``storytransformer lsp``: the language server, over stdio (what editors start) or TCP (for debugging)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn


def register(subparsers) -> None:
    p = subparsers.add_parser("lsp", help="run the language server (stdio by default)",
                              description="Run the StoryTransformer language server. Editors start it over stdio.")
    p.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    p.add_argument("--tcp", action="store_true", help="listen on a TCP port instead (bound to 127.0.0.1)")
    p.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=2087, help="TCP port for --tcp (default 2087)")
    p.add_argument("--log-file", help="write the server log to this file (default: stderr)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=run)


def run(args) -> int:
    if args.tcp and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"storytransformer lsp: --host {args.host!r} refused: the server only listens on 127.0.0.1",
              file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"storytransformer lsp: --port must be 1-65535, not {args.port}", file=sys.stderr)
        return 2
    handler = logging.FileHandler(args.log_file, encoding="utf-8") if args.log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, args.log_level), handlers=[handler], force=True)
    if args.log_level != "DEBUG":
        logging.getLogger("pygls").setLevel(logging.WARNING)  # it logs every message at INFO
    try:
        from ..lsp.server import serve
    except ImportError as e:
        print(f"storytransformer lsp: the language server needs pygls and lsprotocol "
              f"(pip install 'storytransformer[lsp]'): {e}", file=sys.stderr)
        return 2
    code = serve(tcp=args.tcp, host="127.0.0.1" if args.host == "localhost" else args.host, port=args.port)
    leave(code)


def leave(code: int) -> NoReturn:
    """End the process now, once the logs and standard streams are flushed. The server has already
    shut its pools and the parser process down; what is left is the interpreter's own finalization,
    which with a process pool, a thread blocked on stdin and C extensions loaded can wait forever
    (CPython's ProcessPoolExecutor callback for a collected executor waits on a lock no thread will
    release), and an editor waits for its language server to exit."""
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
