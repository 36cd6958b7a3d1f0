"""The package's shape: no import circles, `import slotfill` starts no torch, and every
module's first line says what it is for."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import ROOT

PACKAGE = ROOT / "slotfill"


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def _imports(name: str, tree: ast.Module, modules: set[str]) -> set[str]:
    """The slotfill modules `name` imports anywhere (lazy and type-checking imports too)."""
    package = name if name in {m.rpartition(".")[0] for m in modules} else \
        name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            for alias in node.names:  # a submodule, else a name defined in `base`
                full = f"{base}.{alias.name}"
                targets.add(full if full in modules else base)
    return {t for t in targets if t in modules and t != name and t != "slotfill"}


def test_no_module_imports_itself_through_others():
    modules = _modules()
    graph = {name: _imports(name, tree, set(modules)) for name, tree in modules.items()}

    def reaches(start: str, goal: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == goal:
                    return path + [nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    circles = [reaches(name, name) for name in graph]
    assert not [c for c in circles if c], [" -> ".join(c) for c in circles if c]


def test_every_module_says_what_it_is_for():
    for name, tree in _modules().items():
        if not tree.body:
            continue  # an empty __init__.py
        doc = ast.get_docstring(tree)
        assert doc and len(doc.splitlines()[0]) > 20, name


def test_import_slotfill_starts_no_torch():
    code = ("import sys, slotfill; slotfill.Config; slotfill.Tagger; "
            "assert 'torch' not in sys.modules, 'torch imported'; "
            "assert set(slotfill.__all__) <= set(dir(slotfill))")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
