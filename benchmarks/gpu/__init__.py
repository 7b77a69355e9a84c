"""The long-context GPU benchmark of the fast path (docs/gpu.md): the harness that measures
``storytransformer.engine.fastgen`` against the limits of the GPU it runs on.

It lives beside the other benchmarks, not in the package, so that the fast path itself stays a few
readable files. Importing it loads fastgen through the project when the project imports; on a bare
machine that has torch but not the project's other dependencies (a benchmark GPU), fastgen is loaded
on its own: its modules import only torch, triton and each other.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def _ensure_fastgen_importable() -> None:
    if str(REPOSITORY) not in sys.path:
        sys.path.insert(0, str(REPOSITORY))
    try:
        import storytransformer.engine.fastgen  # noqa: F401
    except ImportError as exc:
        # storytransformer.engine's __init__ needs the project's configuration library; fastgen does not.
        print(f"note: project import failed ({exc}); loading fastgen on its own", file=sys.stderr)
        for name in ("storytransformer", "storytransformer.engine", "storytransformer.engine.fastgen"):
            sys.modules.pop(name, None)
        for name, folder in (("storytransformer", "storytransformer"), ("storytransformer.engine", "storytransformer/engine")):
            package = types.ModuleType(name)
            package.__path__ = [str(REPOSITORY / folder)]
            sys.modules[name] = package
        import storytransformer.engine.fastgen  # noqa: F401


_ensure_fastgen_importable()
