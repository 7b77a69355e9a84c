"""Programmatic dependent launch: where it is used, and that every kernel launched with it waits first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from storytransformer.engine.fastgen import pdl  # noqa: E402

FASTGEN = Path(pdl.__file__).parent


@pytest.fixture
def compiled(monkeypatch):
    """As on a machine that compiles the kernels (not the interpreter), whatever this one does."""
    monkeypatch.setattr(pdl, "INTERPRETED", False)
    monkeypatch.setattr(pdl, "ENABLED", True)
    pdl._hardware.cache_clear()
    yield
    pdl._hardware.cache_clear()


def test_only_on_cuda_from_hopper_on(compiled, monkeypatch):
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (9, 0))
    assert pdl.enabled("cuda:0") and pdl.launch(True) == {"launch_pdl": True}
    pdl._hardware.cache_clear()
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (8, 9))
    assert not pdl.enabled("cuda:0") and pdl.launch(False) == {}
    assert not pdl.enabled("cpu")


def test_never_on_rocm_nor_when_switched_off(compiled, monkeypatch):
    monkeypatch.setattr(torch.version, "hip", "6.2.41133")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: (9, 4))  # MI300 answers 9.4
    assert not pdl.enabled("cuda:0")
    pdl._hardware.cache_clear()
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(pdl, "ENABLED", False)
    assert not pdl.enabled("cuda:0")


def _kernels_with_pdl() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted(FASTGEN.glob("triton_*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(a.arg == "PDL" for a in node.args.args):
                found.append((f"{path.name}:{node.name}", node))
    return found


def test_every_kernel_launched_with_pdl_waits_before_anything_else():
    """A kernel that loads before griddepcontrol.wait could read what the previous kernel has not written yet."""
    kernels = _kernels_with_pdl()
    assert len(kernels) >= 7  # the decoding step's kernels: products, their sum, norms, rotary, SwiGLU, attention
    for name, fn in kernels:
        body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        first = ast.unparse(body[0])
        assert first == "pdl.gate(PDL)", f"{name} starts with {first!r}"


def test_every_launch_with_pdl_passes_the_same_switch_to_the_kernel():
    for path in sorted(FASTGEN.glob("triton_*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Call) and any(ast.unparse(k.value).startswith("pdl.launch(") for k in node.keywords
                                                  if k.arg is None):
                given = {k.arg: ast.unparse(k.value) for k in node.keywords if k.arg}
                launch = next(ast.unparse(k.value) for k in node.keywords
                              if k.arg is None and ast.unparse(k.value).startswith("pdl.launch("))
                assert f"pdl.launch({given.get('PDL')})" == launch, f"{path.name}:{node.lineno}"
