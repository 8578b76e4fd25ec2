"""No import cycles, between modules or between the sub-packages of ``t2po_gym``.

A small AST check instead of a dependency: every ``import`` and ``from ... import`` in the
project's own modules counts, including the lazy ones inside functions (a lazy import only
hides a cycle, it does not remove it). Imports under ``if TYPE_CHECKING:`` are left out: they
never run, they only name types for annotations. Package ``__init__`` files are left out of the
package-level graph, since re-exporting children is what they are for.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("t2po_gym", "optim")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            out[_module_name(path)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that ``name`` imports (``from a import b`` counts ``a.b`` when it is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    type_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            # the deepest project module named by the import
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if colour.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in colour:
                cyc = visit(m)
                if cyc:
                    return cyc
        stack.pop()
        colour[n] = 2
        return None

    for n in sorted(graph):
        if n not in colour:
            cyc = visit(n)
            if cyc:
                return cyc
    return None


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _package_of(mod: str) -> str:
    """``t2po_gym.envs.webshop.env`` -> ``t2po_gym.envs``; ``t2po_gym.agent`` -> itself."""
    parts = mod.split(".")
    return ".".join(parts[:2])


def test_no_module_cycle():
    graph = _graph()
    # a package __init__ importing its own children is not a cycle of logic
    pruned = {}
    for n, deps in graph.items():
        pruned[n] = {d for d in deps if not d.startswith(n + ".")}
    cyc = _find_cycle(pruned)
    assert cyc is None, "import cycle: " + " -> ".join(cyc)


def test_no_package_cycle():
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, deps in _graph().items():
        if mods[name].name == "__init__.py":
            continue
        src = _package_of(name)
        for d in deps:
            dst = _package_of(d)
            if dst != src and dst not in PACKAGES:
                graph.setdefault(src, set()).add(dst)
    cyc = _find_cycle(graph)
    assert cyc is None, "package import cycle: " + " -> ".join(cyc)


def test_checker_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
