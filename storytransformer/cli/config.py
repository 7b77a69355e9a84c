"""``storytransformer config``: which configuration file applies, and trusting a project's remote-engine settings.

* ``config find [PATH]``: the user configuration, the project file used for PATH, and files ignored on the way.
* ``config trust PATH``: allow a project file's ``engine.remote_url`` / ``engine.remote_api_key_env``
  (exactly their current values: a changed value must be trusted again).
* ``config untrust PATH`` and ``config trusted``: take a consent back, list them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("config", help="show where settings come from; trust a project's remote model settings",
                       description="Show which configuration files apply, and trust (or stop trusting) the "
                                   "remote-engine settings of a project file.")
    cmds = p.add_subparsers(dest="config_command", metavar="ACTION")
    f = cmds.add_parser("find", help="the configuration files that apply to PATH (default: .)")
    f.add_argument("path", nargs="?", default=".", type=Path)
    f.set_defaults(func=run_find)
    t = cmds.add_parser("trust", help="use the remote model settings of a project file (or a directory's file)")
    t.add_argument("path", type=Path, help="a pyproject.toml or .storytransformer.toml, or a directory")
    t.set_defaults(func=run_trust)
    u = cmds.add_parser("untrust", help="stop trusting a project file's remote model settings")
    u.add_argument("path", type=Path)
    u.set_defaults(func=run_untrust)
    ls = cmds.add_parser("trusted", help="list the trusted project files")
    ls.set_defaults(func=run_list)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def _project_file(path: Path, err) -> Path | None:
    from ..config import search_config

    if path.is_dir():
        found, notes = search_config(path)
        for n in notes:
            print(f"storytransformer config: {n}", file=err)
        if found is None:
            print(f"storytransformer config: error: no usable configuration file for {path}", file=err)
        return found
    if not path.is_file():
        print(f"storytransformer config: error: {path}: no such file or directory", file=err)
        return None
    return path


def run_find(args: argparse.Namespace) -> int:
    from .. import trust
    from ..config import ConfigError, search_config

    out, err = sys.stdout, sys.stderr
    if not args.path.exists():
        print(f"storytransformer config: error: {args.path}: no such file or directory", file=err)
        return 2
    user = trust.user_config_file()
    reason = trust.unsafe_reason(user) if user.is_file() else None
    state = "not present" if not user.is_file() else (f"ignored: {reason}" if reason else "used")
    print(f"user settings:  {user} ({state})", file=out)
    try:
        found, notes = search_config(args.path)
    except ConfigError as e:
        print(f"storytransformer config: error: {e}", file=err)
        return 2
    print(f"project file:   {found if found else '(none: defaults)'}", file=out)
    for n in notes:
        print(f"ignored:        {n}", file=out)
    return 0


def run_trust(args: argparse.Namespace) -> int:
    from .. import trust
    from ..config import ConfigError, load_project_file

    out, err = sys.stdout, sys.stderr
    path = _project_file(args.path, err)
    if path is None:
        return 2
    reason = trust.unsafe_reason(path)
    if reason:
        print(f"storytransformer config: error: {path}: {reason}; fix its owner or permissions first", file=err)
        return 2
    trust.set_policy(remote="quiet")
    try:
        cfg = load_project_file(path)
    except ConfigError as e:
        print(f"storytransformer config: error: {e}", file=err)
        return 2
    origin = cfg.remote_origin
    if origin is None:
        print(f"{path}: sets no remote model settings of its own; nothing to trust", file=out)
        return 0
    where = trust.add(origin)
    print(f"trusted {origin.config}:\n{origin.describe()}\n(recorded in {where}; a change to these values asks again)",
          file=out)
    return 0


def run_untrust(args: argparse.Namespace) -> int:
    from .. import trust

    target = args.path.resolve()
    if target.is_dir():
        entries = [p for p in trust.trusted_entries() if Path(p).parent == target]
    else:
        entries = [str(target)]
    removed = [p for p in entries if trust.remove(p)]
    for p in removed:
        print(f"no longer trusted: {p}", file=sys.stdout)
    if not removed:
        print(f"{args.path}: was not trusted", file=sys.stdout)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from .. import trust

    entries = trust.trusted_entries()
    if not entries:
        print(f"no trusted project files (list: {trust.trust_file()})", file=sys.stdout)
    for path, e in sorted(entries.items()):
        print(f"{path}\n  engine.remote_url = {e.get('remote_url', '')!r}\n"
              f"  engine.remote_api_key_env = {e.get('remote_api_key_env', '')!r}\n  since {e.get('trusted_at', '?')}",
              file=sys.stdout)
    return 0
