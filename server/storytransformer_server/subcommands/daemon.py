"""``storytransformer daemon start|stop|status|run``: the per-user background daemon.

``run`` stays in the foreground (for a systemd user service); ``start``
detaches one and returns when it answers. Both exit 0 when a daemon already
runs. ``status`` exits 0 when one runs and 3 when none does (like
``systemctl status``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

NOT_RUNNING = 3


def register(subparsers) -> None:
    p = subparsers.add_parser("daemon", help="run or control the background daemon (model, index, file watching)",
                              description=__doc__.replace("``", ""), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="daemon_command", metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--runtime-dir", metavar="DIR",
                        help="directory of the socket and lock (default: $STORYTRANSFORMER_RUNTIME_DIR, "
                             "$XDG_RUNTIME_DIR/storytransformer, or a private temp dir)")
    tuning = argparse.ArgumentParser(add_help=False)
    tuning.add_argument("--idle-unload", type=float, metavar="MINUTES", help="unload the model after this long unused (0 = never)")
    tuning.add_argument("--idle-exit", type=float, metavar="MINUTES", help="exit after this long with no clients (0 = never)")
    tuning.add_argument("--max-message-bytes", type=int, metavar="N", help="largest message accepted (default 16 MiB)")
    tuning.add_argument("--tcp-port", type=int, metavar="PORT", help="also listen on 127.0.0.1:PORT (token required)")
    tuning.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    s = sub.add_parser("start", parents=[common, tuning], help="start the daemon in the background (no-op if running)")
    s.add_argument("--wait", type=float, default=30.0, metavar="SECONDS", help="how long to wait for it to answer")
    s.set_defaults(func=_posix_only(_start))
    r = sub.add_parser("run", parents=[common, tuning], help="run the daemon in the foreground (for systemd)")
    r.add_argument("--quiet", action="store_true", help="log only to the log file, not to stderr")
    r.set_defaults(func=_posix_only(_run))
    st = sub.add_parser("stop", parents=[common], help="ask the running daemon to exit")
    st.add_argument("--wait", type=float, default=15.0, metavar="SECONDS")
    st.set_defaults(func=_posix_only(_stop))
    q = sub.add_parser("status", parents=[common], help="pid, uptime, clients, roots, engine, memory")
    q.add_argument("--json", action="store_true", help="print the status as JSON")
    q.set_defaults(func=_posix_only(_status))
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def _posix_only(fn):
    """The daemon needs Unix sockets and flock: say so instead of a traceback elsewhere."""

    def run(args) -> int:
        try:
            import fcntl  # noqa: F401
        except ImportError:
            _err("the daemon runs on Linux and macOS only; the CLI and the language server work without it")
            return 2
        return fn(args)

    return run


def _settings(args):
    from ..daemon.settings import load_settings

    def minutes(v):
        return None if v is None else v * 60

    return load_settings(idle_unload_s=minutes(args.idle_unload), idle_exit_s=minutes(args.idle_exit),
                         max_message_bytes=args.max_message_bytes, tcp_port=args.tcp_port, log_level=args.log_level)


def _tuning_flags(args) -> list[str]:
    out = []
    for flag, value in (("--idle-unload", args.idle_unload), ("--idle-exit", args.idle_exit),
                        ("--max-message-bytes", args.max_message_bytes), ("--tcp-port", args.tcp_port),
                        ("--log-level", args.log_level)):
        if value is not None:
            out += [flag, str(value)]
    return out


def _err(message: str) -> None:
    print(f"storytransformer daemon: {message}", file=sys.stderr)


def _run(args) -> int:
    from ..daemon.transport import run_foreground
    from ..daemon.settings import SettingsError

    try:
        settings = _settings(args)
    except SettingsError as e:
        _err(str(e))
        return 2
    return run_foreground(settings, args.runtime_dir, log_to_stderr=not args.quiet)


def _ask(args, method: str, timeout: float = 5.0):
    from ..daemon.client import call

    return call(method, runtime_dir=args.runtime_dir, timeout=timeout)


def _start(args) -> int:
    from ..daemon.client import spawn_detached
    from ..daemon.lifecycle import Paths, RuntimeDirError, ensure_private_dir, log_dir
    from ..daemon.protocol import DaemonError
    from ..daemon.settings import SettingsError

    try:
        _settings(args)  # refuse bad flags here, where the user sees the message
        paths = Paths.resolve(args.runtime_dir)
        ensure_private_dir(paths.dir)
    except (SettingsError, RuntimeDirError) as e:
        _err(str(e))
        return 2
    try:
        info = _ask(args, "status", timeout=2.0)
        print(f"storytransformer daemon: already running (pid {info['pid']}, socket {paths.socket})")
        return 0
    except DaemonError:
        pass
    proc = spawn_detached(paths.dir, _tuning_flags(args))
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        try:
            info = _ask(args, "status", timeout=2.0)
            print(f"storytransformer daemon: running (pid {info['pid']}, socket {paths.socket})")
            return 0
        except DaemonError:
            pass
        code = proc.poll()
        if code not in (None, 0):
            tail = _tail(log_dir() / "daemon.stderr")
            _err(f"the daemon exited with code {code}" + (f":\n{tail}" if tail else ""))
            return 2
        time.sleep(0.05)
    _err(f"the daemon did not answer within {args.wait:g} s; see {log_dir() / 'daemon.log'}")
    return 2


def _tail(path, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text("utf-8", errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _stop(args) -> int:
    from ..daemon.lifecycle import InstanceLock, Paths, RuntimeDirError
    from ..daemon.protocol import DaemonError

    try:
        paths = Paths.resolve(args.runtime_dir)
    except RuntimeDirError as e:
        _err(str(e))
        return 2
    try:
        info = _ask(args, "shutdown")
    except DaemonError as e:
        print(f"storytransformer daemon: not running ({e.message})")
        return 0
    lock = InstanceLock(paths.lock)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if not lock.is_held_elsewhere():
            print(f"storytransformer daemon: stopped (pid {info['pid']})")
            return 0
        time.sleep(0.05)
    _err(f"pid {info['pid']} is still running after {args.wait:g} s")
    return 2


def _status(args) -> int:
    from ..daemon.protocol import DaemonError

    try:
        st = _ask(args, "status")
    except DaemonError as e:
        if args.json:
            print(json.dumps({"running": False, "reason": e.message}))
        else:
            print(f"storytransformer daemon: not running ({e.message})")
        return NOT_RUNNING
    if args.json:
        print(json.dumps({"running": True, **st}, indent=2))
        return 0
    eng = st["engine"]
    engine = eng["state"] + (f" ({eng['model']} on {eng['device']})" if eng.get("model") else "")
    if not eng.get("available", True):
        engine += f" - {eng['unavailable_reason']}"
    print(f"pid:      {st['pid']}")
    print(f"uptime:   {_duration(st['uptime_s'])}")
    print(f"socket:   {st['socket']}" + (f"  tcp: {st['tcp'][0]}:{st['tcp'][1]}" if st.get("tcp") else ""))
    print(f"log:      {st.get('log', '?')}")
    print(f"memory:   {st['memory_rss_bytes'] / 2**20:.0f} MiB resident")
    print(f"device:   {st['device']}")
    print(f"engine:   {engine}")
    print(f"clients:  {len(st['clients'])}")
    for c in st["clients"]:
        print(f"  #{c['id']} {c['name'] or '?'} (pid {c['pid']}, {c['transport']}, {c['in_flight']} in flight)")
    print(f"roots:    {len(st['roots'])}")
    for r in st["roots"]:
        print(f"  {r['root']}: {r['files']} files, {r['stories']} stories, {r['clients']} clients")
    return 0


def _duration(seconds: float) -> str:
    s = int(seconds)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"
