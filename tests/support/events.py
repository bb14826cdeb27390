"""Finding every log event the package emits, by reading its source."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "watcher"
LEVELS = ("debug", "info", "warning", "error", "critical")


def emitted() -> dict[str, tuple[set[str], set[str]]]:
    """Each event name with the levels and the field names it is logged with.

    A call counts when it is ``<something>.<level>("a.name", ...)``: a dotted
    literal first argument, as every event of this package is written.
    """
    found: dict[str, tuple[set[str], set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                _calls(function, _dict_literals(function), found)
    return found


def _dict_literals(function: ast.AST) -> dict[str, set[str]]:
    """The keys of each name a function assigns a dict literal with constant keys."""
    literals: dict[str, set[str]] = {}
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Dict)
            and all(
                isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.value.keys
            )
        ):
            literals[node.targets[0].id] = {k.value for k in node.value.keys}  # type: ignore[union-attr]
    return literals


def _calls(
    function: ast.AST, literals: dict[str, set[str]], found: dict[str, tuple[set[str], set[str]]]
) -> None:
    """Record the log calls in ``function``, with the keys of any ``**name`` it passes.

    A ``**`` argument that is not a dict literal of the same function cannot be
    read, so its call is recorded with a field that no catalogue documents.
    """
    for node in ast.walk(function):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVELS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and "." in node.args[0].value
        ):
            continue
        levels, fields = found.setdefault(node.args[0].value, (set(), set()))
        levels.add(node.func.attr)
        for keyword in node.keywords:
            if keyword.arg is not None:
                fields.add(keyword.arg)
            elif isinstance(keyword.value, ast.Name) and keyword.value.id in literals:
                fields.update(literals[keyword.value.id])
            else:
                fields.add("<unreadable **argument>")
