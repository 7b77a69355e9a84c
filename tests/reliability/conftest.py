"""Fixtures for the reliability tests: real daemon processes, as in the daemon's own tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.daemon.conftest import DaemonProcess


@pytest.fixture
def daemon(tmp_path):
    """A running daemon in its own runtime, log and cache directories."""
    d = DaemonProcess(tmp_path / "daemon")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def soak():
    """benchmarks/soak_lsp.py as a module: its raw JSON-RPC client drives the real language server."""
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "soak_lsp.py"
    spec = importlib.util.spec_from_file_location("soak_lsp", bench)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
