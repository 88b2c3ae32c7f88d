"""The package's layout holds: shared modules (``llm/`` included: training uses its client, never the other
way) never import the wings (``serve/``, ``train/``), and nothing imports in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import melscribe

ROOT = Path(melscribe.__file__).parent
WINGS = ("melscribe.serve", "melscribe.train")


def _module(path: Path) -> str:
    parts = ("melscribe",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports (anywhere in it, not only at the top)."""
    modules = {_module(p): p for p in ROOT.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package if node.level else ""
                target = ".".join(x for x in (base, node.module or "") if x)
                found |= {target} | {f"{target}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        edges[name] = {n for n in found if n in modules and n != name}
    return edges


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_shared_modules_never_import_the_wings() -> None:
    wrong = [(m, n) for m, targets in _imports().items() for n in targets
             if m != "melscribe.cli" and not any(_within(m, w) for w in WINGS) and any(_within(n, w) for w in WINGS)]
    # the package root's lazy `recommend` and the CLI's subcommands are the front doors into the wings
    assert [(m, n) for m, n in wrong if m != "melscribe"] == []


def test_no_import_cycle() -> None:
    edges = _imports()
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(edges[m]):
            if _within(m, n):  # a module importing its own package's __init__ is no cycle
                continue
            assert state.get(n) != 1, "import cycle: " + " -> ".join(stack + [m, n])
            if n not in state:
                visit(n, stack + [m])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])


def test_no_test_edits_sys_path() -> None:
    tests = Path(__file__).parent
    editing = [str(p.relative_to(tests)) for p in tests.rglob("*.py")
               if p != Path(__file__) and "sys.path." in p.read_text()]
    assert editing == []  # helpers import through setup.cfg's pytest pythonpath, child processes through PYTHONPATH
