"""``storytransformer engine status|load|unload``: what model the engine uses, on which device, with
which precision, attention kernel and quantization, and how long it takes to load; ``unload`` asks
the daemon (which holds the resident model) to free it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from storytransformer.config import ConfigError, load_config


def register(sub) -> None:
    p = sub.add_parser("engine", help="show, load or unload the language-model engine",
                       description="Show the engine's model, device, dtype, attention kernel, quantization, "
                                   "memory and cache, load the model to measure it, or ask the daemon to unload its model.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (("status", "show the engine's configuration and plan (with --load: measured after loading)"),
                       ("load", "load the model (converting a GGUF into the cache the first time) and report the time")):
        a = actions.add_parser(name, help=text, description=text)
        a.add_argument("--config", type=Path, help="configuration file (default: nearest one above the current directory)")
        a.add_argument("--format", choices=["text", "json"], default="text")
        if name == "status":
            a.add_argument("--load", action="store_true", help="load the model first, to report memory and load time")
        a.set_defaults(func=run, load=name == "load" or None)
    u = actions.add_parser("unload", help="free the resident model held by the daemon (if one runs)",
                           description="Ask the running daemon to unload its model, freeing its memory. Without a "
                                       "daemon no model is resident (CLI commands load theirs and exit): nothing to do.")
    u.add_argument("--runtime-dir", help="the daemon's runtime directory (default: the user's)")
    u.add_argument("--format", choices=["text", "json"], default="text")
    u.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the daemon (default 30)")
    u.set_defaults(func=run_unload)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def run(args: argparse.Namespace) -> int:
    from storytransformer.engine import EngineError, create_engine

    try:
        config = load_config(args.config, start=Path("."))
    except ConfigError as e:
        print(f"storytransformer: error: {e}", file=sys.stderr)
        return 2
    try:
        engine = create_engine(config)
        status = engine.load() if args.load else engine.status()
    except EngineError as e:
        print(f"storytransformer: error: {e}", file=sys.stderr)
        if args.format == "json":
            print(json.dumps({**_failed(config), "error": str(e)}, indent=2))
        return 2
    data = status.to_dict()
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        print(_text(data))
    return 2 if data.get("error") else 0


def run_unload(args: argparse.Namespace) -> int:
    """Exit 0 when the model is unloaded or none was resident; 2 when the daemon fails to answer properly."""
    try:
        from ..daemon.client import call
        from ..daemon.protocol import DAEMON_NOT_RUNNING, DaemonError
    except ImportError:
        return _nothing_resident(args, "the daemon is not installed")
    try:
        data = call("engine/unload", runtime_dir=args.runtime_dir, timeout=args.timeout)
    except DaemonError as e:
        if e.code == DAEMON_NOT_RUNNING:
            return _nothing_resident(args, "no daemon is running")
        print(f"storytransformer: error: the daemon could not unload the model: {e.message}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps({"daemon": True, "unloaded": True, **(data or {})}, indent=2))
    else:
        print(f"model unloaded by the daemon (engine state: {(data or {}).get('state', 'unloaded')})")
    return 0


def _nothing_resident(args, why: str) -> int:
    if args.format == "json":
        print(json.dumps({"daemon": False, "unloaded": False, "reason": why}))
    else:
        print(f"no resident model is loaded ({why}); nothing to unload")
    return 0


def _failed(config) -> dict:
    from storytransformer.engine.contract import EngineStatus

    return EngineStatus(state="failed", backend="remote" if config.engine.remote_url else "local",
                        quantization=config.engine.quantization).to_dict()


def _mb(n) -> str:
    return "-" if n is None else f"{n / 2**20:.0f} MiB"


def _text(d: dict) -> str:
    rows = [
        ("state", d["state"]), ("backend", d["backend"]), ("model", d["model"]), ("source", d["source"] or "-"),
        ("device", d["device"]), ("dtype", d["dtype"]), ("attention", d["attention"]),
        ("quantization", d["quantization"]), ("weights", d.get("weights") or "-"),
        ("kv cache", (d.get("kv_cache") or "-") + (f" ({_mb(d['kv_cache_bytes'])})" if d.get("kv_cache_bytes") else "")),
        ("memory", _mb(d["memory_bytes"])),
        ("memory saved", _mb(d["memory_saved_bytes"])), ("cache", d["cache_dir"] or "-"),
        ("loaded from", d["loaded_from"] or "-"),
        ("load time", "-" if d["load_seconds"] is None else f"{d['load_seconds']:.2f} s"),
    ]
    rows += [("note", n) for n in d["notes"]]
    if d["error"]:
        rows.append(("error", d["error"]))
    return "\n".join(f"{k:>13}  {v}" for k, v in rows)
