"""The package's layout holds: layers, no import cycles, stated public surfaces, small modules."""

from __future__ import annotations

import ast
import importlib
from typing import TYPE_CHECKING

from tests.support import ROOT

if TYPE_CHECKING:
    from pathlib import Path

PACKAGE = ROOT / "watcher"
# Which layers each layer may import from (its own included).
ALLOWED = {
    "core": {"core"},
    "config": {"core", "config"},
    "shell": {"core", "config", "shell"},
    "cli": {"core", "config", "shell", "cli"},
}
LONGEST_MODULE = 350
LONGEST_CLASS = 250


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in (
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    )


def imports(path: Path, *, typing_too: bool) -> set[str]:
    """The package's modules ``path`` imports, at any depth (lazy imports too)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    if not typing_too:
        for node in ast.walk(tree):
            if _type_checking_only(node):
                skipped.update(id(inner) for inner in ast.walk(node))
    known = modules()
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("watcher"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("watcher"):
            module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in known else module)
    return found


def layer(module: str) -> str | None:
    """The layer of a dotted module name (None for the package's top-level modules)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_each_layer_imports_only_the_layers_below_it() -> None:
    """The core imports no shell, configuration or command line, even for type hints."""
    wrong = {
        name: sorted(
            other
            for other in imports(path, typing_too=True)
            if (theirs := layer(other)) is not None and theirs not in ALLOWED[mine]
        )
        for name, path in modules().items()
        if (mine := layer(name)) is not None
    }
    assert {name: found for name, found in wrong.items() if found} == {}


def test_no_module_imports_itself_through_others() -> None:
    """The modules' run-time imports form no cycle."""
    graph = {name: imports(path, typing_too=False) - {name} for name, path in modules().items()}
    cycles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append([*trail[trail.index(name) :], name])
            return
        for other in sorted(graph.get(name, ())):
            visit(other, [*trail, name])

    for name in graph:
        visit(name, [])
    assert cycles == []


def test_every_module_states_its_public_surface() -> None:
    """``__all__`` lists exactly the public names each module defines (or a package re-exports)."""
    wrong = {}
    for name, path in modules().items():
        if name == "watcher.__main__":  # an entry point: importing it runs the command line
            continue
        module = importlib.import_module(name)
        tree = ast.parse(path.read_text())
        defined = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined.add(node.target.id)
        public = {n for n in defined if not n.startswith("_")}
        stated = set(getattr(module, "__all__", ()))
        if path.name == "__init__.py":
            public |= stated  # a package's surface is also what it re-exports
        if stated != public or not all(hasattr(module, n) for n in stated):
            wrong[name] = (sorted(stated - public), sorted(public - stated))
    assert wrong == {}


def test_shell_modules_and_classes_stay_small() -> None:
    """No module of the shell or the command line over 350 lines, no class over 250."""
    long_modules = {}
    long_classes = {}
    for name, path in modules().items():
        text = path.read_text()
        if layer(name) in ("shell", "cli") and len(text.splitlines()) > LONGEST_MODULE:
            long_modules[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_CLASS:
                    long_classes[f"{name}.{node.name}"] = lines
    assert (long_modules, long_classes) == ({}, {})
