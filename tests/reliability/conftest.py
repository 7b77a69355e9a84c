"""Fixtures for the reliability tests: real daemon processes, as in the daemon's own tests."""

from __future__ import annotations

import pytest

from tests.daemon.conftest import DaemonProcess


@pytest.fixture
def daemon(tmp_path):
    """A running daemon in its own runtime, log and cache directories."""
    d = DaemonProcess(tmp_path / "daemon")
    d.start()
    yield d
    d.stop()
