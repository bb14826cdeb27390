"""Finding every log event the package emits, by reading its source."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "watcher"
LEVELS = ("debug", "info", "warning", "error", "critical")


def emitted() -> dict[str, tuple[set[str], set[str]]]:
    """Each event name with the levels and the field names it is logged with.

    A call counts when it is ``<something>.<level>("a.name", ...)``: a dotted
    literal first argument, as every event of this package is written.
    """
    found: dict[str, tuple[set[str], set[str]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
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
            fields.update(k.arg for k in node.keywords if k.arg is not None)
    return found
