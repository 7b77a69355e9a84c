"""Shared fixtures. The real backlogs live outside the project (never copied into it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_BACKLOGS = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def real_backlogs() -> Path:
    """The directory of the 22 real backlogs, or skip when this checkout has none beside it."""
    if not REAL_BACKLOGS.is_dir():
        pytest.skip(f"real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)")
    return REAL_BACKLOGS


def real_line(backlogs: Path, name: str, line: int) -> str:
    """Line ``line`` (1-based) of a real backlog file, read at test time."""
    return (backlogs / name).read_text("utf-8").splitlines()[line - 1]
