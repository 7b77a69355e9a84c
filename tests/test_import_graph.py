"""The import graph of both packages, read with ``ast``: no cycles and no import against the layering.

Layers, bottom up: the core ``storytransformer`` (story model, readers, rules, configuration, engine,
similarity); its front-ends ``storytransformer.cli`` and ``storytransformer.report``; the servers
``storytransformer_server``. An import may only go down. Every ``import`` counts, at module level and
inside functions (a deferred import is still a dependency, and a cycle through one breaks as soon as the
call order changes); only imports under ``if TYPE_CHECKING:`` are left out of the cycle check, since they
never run. In the language server, no feature imports ``lsp/server.py`` at all (not even for types): the
features get the shared :class:`~storytransformer_server.lsp.server_context.ServerContext`, and server.py only
wires them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"storytransformer": ROOT / "storytransformer",
            "storytransformer_server": ROOT / "server" / "storytransformer_server"}
FRONT_ENDS = ("storytransformer.cli", "storytransformer.report")
ENTRY_POINTS = ("storytransformer.__main__",)  # `python -m storytransformer`: runs the command line


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: dict[str, int] = field(default_factory=dict)  # module -> first line, code that runs
    type_only: dict[str, int] = field(default_factory=dict)  # under `if TYPE_CHECKING:`


def modules() -> dict[str, Module]:
    out = {}
    for top, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder.parent).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            out[name] = Module(name, path, is_package)
    return out


def _imported_modules(mod: Module, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted module each import statement names (before any name lookup)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = mod.name.split(".")
        if not mod.is_package:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        return [".".join(base + ([node.module] if node.module else []))]
    return [node.module or ""]


def _targets(mod: Module, node: ast.Import | ast.ImportFrom, known: dict[str, Module]) -> list[str]:
    """Our modules that ``node`` imports: ``from pkg import name`` is ``pkg.name`` when that is a module."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        (prefix,) = _imported_modules(mod, node)
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names]
    out = []
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != mod.name:
            out.append(name)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def graph() -> dict[str, Module]:
    known = modules()
    for mod in known.values():
        tree = ast.parse(mod.path.read_text("utf-8"), str(mod.path))
        type_only = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                type_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                into = mod.type_only if id(node) in type_only else mod.imports
                for target in _targets(mod, node, known):
                    into.setdefault(target, node.lineno)
    return known


def cycles(g: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each as a list of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v].imports:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def _in(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_the_graph_is_read():
    g = graph()
    assert "storytransformer.config" in g and "storytransformer_server.lsp.server" in g
    # a deferred (function-level) import is an edge: config reads the rule registry inside a function
    assert "storytransformer.rules" in g["storytransformer.config"].imports
    assert "storytransformer.rules.registry" in g["storytransformer.rules.atomic"].imports


def test_no_import_cycles():
    g = graph()
    found = cycles(g)
    detail = ["  " + " / ".join(f"{m} -> {', '.join(sorted(set(g[m].imports) & set(c)))}" for m in c) for c in found]
    assert not found, "import cycles (each group imports itself through the arrows):\n" + "\n".join(detail)


def test_the_core_imports_no_consumer():
    bad = []
    for name, mod in graph().items():
        for target, line in {**mod.imports, **mod.type_only}.items():
            if _in(name, "storytransformer") and _in(target, "storytransformer_server"):
                bad.append(f"{mod.path.relative_to(ROOT)}:{line}: {name} imports {target}")
            elif (_in(name, "storytransformer") and not _in(name, *FRONT_ENDS, *ENTRY_POINTS)
                  and _in(target, *FRONT_ENDS)):
                bad.append(f"{mod.path.relative_to(ROOT)}:{line}: {name} (core) imports its front-end {target}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_lsp_features_never_import_the_server_module():
    g = graph()
    bad = [f"{m.path.relative_to(ROOT)}:{line}: {m.name} imports lsp.server"
           for m in g.values() if _in(m.name, "storytransformer_server.lsp")
           and m.name not in ("storytransformer_server.lsp", "storytransformer_server.lsp.server")
           for target, line in {**m.imports, **m.type_only}.items() if target == "storytransformer_server.lsp.server"]
    assert not bad, "features must use lsp.server_context, not lsp.server:\n" + "\n".join(bad)


def test_the_checks_catch_what_they_are_for(tmp_path):
    """The cycle finder and the layering check fail on a planted cycle and a planted upward import."""
    a = Module("storytransformer.a", tmp_path / "a.py", False, {"storytransformer.b": 1})
    b = Module("storytransformer.b", tmp_path / "b.py", False, {"storytransformer.a": 3})
    c = Module("storytransformer.c", tmp_path / "c.py", False, {"storytransformer.a": 1})
    assert cycles({"storytransformer.a": a, "storytransformer.b": b, "storytransformer.c": c}) == [
        ["storytransformer.a", "storytransformer.b"]]
    known = {"storytransformer.cli": Module("storytransformer.cli", tmp_path, True),
             "storytransformer.x": Module("storytransformer.x", tmp_path / "x.py", False),
             "storytransformer_server.lsp.server": Module("storytransformer_server.lsp.server", tmp_path, False)}
    node = ast.parse("def f():\n    from .cli import main\n    from storytransformer_server.lsp import server\n")
    imports = [n for n in ast.walk(node) if isinstance(n, ast.ImportFrom)]
    assert _targets(known["storytransformer.x"], imports[0], known) == ["storytransformer.cli"]
    assert _targets(known["storytransformer.x"], imports[1], known) == ["storytransformer_server.lsp.server"]


def test_every_import_of_our_modules_names_one_that_exists():
    """A module renamed or moved leaves no import behind, deferred ones included (they fail only when run)."""
    known = modules()
    stale = []
    for mod in known.values():
        for node in ast.walk(ast.parse(mod.path.read_text("utf-8"), str(mod.path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _imported_modules(mod, node):
                    if name.split(".")[0] in PACKAGES and name not in known:
                        stale.append(f"{mod.path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert not stale, "imports of modules that do not exist:\n" + "\n".join(stale)
