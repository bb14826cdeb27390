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
ROOM = 20  # modules in one folder of the shell


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


def code_map() -> set[str]:
    """The modules the README's code map names, by dotted name."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Code layout") :]
    block = section.split("```")[1]
    found: set[str] = set()
    trail: list[str] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        name = line.split()[0]
        del trail[depth:]
        if name.endswith("/"):
            trail.append(name.removesuffix("/"))
            found.add(".".join(trail))
        else:
            found.add(".".join([*trail, name.removesuffix(".py")]))
    return found


def test_the_code_map_names_every_module_and_no_other() -> None:
    """A module added, moved or removed without its line in the README's map fails here."""
    known = set(modules())
    mapped = code_map()
    assert (sorted(known - mapped), sorted(mapped - known)) == ([], [])


def test_no_folder_of_the_shell_holds_more_than_twenty_modules() -> None:
    """The shell is walked room by room: no folder of it over 20 modules."""
    shell = PACKAGE / "shell"
    crowded = {
        str(folder.relative_to(ROOT)): count
        for folder in (p.parent for p in shell.rglob("__init__.py"))
        if (count := len([p for p in folder.glob("*.py") if p.name != "__init__.py"])) > ROOM
    }
    assert crowded == {}
    assert len(list(shell.rglob("*.py"))) > ROOM  # the rooms are what keeps it so


# What a core module may not do, by the names it calls.
_CLOCK = {("time", n) for n in ("time", "monotonic", "perf_counter", "sleep", "process_time")} | {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
}
_ARGLESS_CLOCK = {"gmtime", "localtime", "ctime", "asctime"}  # the time now when called bare
_FS_READ = {"open", "read_bytes", "read_text", "is_file", "is_dir", "exists", "stat", "lstat"}
_FS_WRITE = {"write_bytes", "write_text", "mkdir", "unlink", "touch", "rmdir", "symlink_to"}
_FS_LIST = {"iterdir", "glob", "rglob", "listdir", "scandir", "walk"}
_OS_CALLS = {"open", "read", "pread", "write", "stat", "lstat", "fstat", "unlink", "remove"}
_WORLD = {"threading", "concurrent", "asyncio", "socket", "subprocess", "shutil", "tempfile"}
_WORLD |= {"sqlite3", "smtplib", "mmap", "signal", "multiprocessing"}


def _act_of_call(node: ast.Call, aliases: dict[str, str]) -> str | None:
    """What one call does beyond values, if anything (``aliases``: names imported as others)."""
    func = node.func
    if isinstance(func, ast.Name):
        return "reads" if func.id == "open" else None
    if not isinstance(func, ast.Attribute):
        return None
    parts = ast.unparse(func.value).split(".")
    owner = aliases.get(parts[-1], parts[-1]) if len(parts) == 1 else parts[-1]
    bare_time = owner == "time" and (
        (func.attr in _ARGLESS_CLOCK and not node.args)
        or (func.attr == "strftime" and len(node.args) < 2)  # no time given: now
    )
    if (owner, func.attr) in _CLOCK or bare_time:
        return "clock"
    if owner == "os":
        if func.attr in _OS_CALLS:
            return "writes" if func.attr in {"write", "unlink", "remove"} else "reads"
        return "lists" if func.attr in _FS_LIST else None
    if func.attr in _FS_WRITE:
        return "writes"
    if func.attr in _FS_LIST:
        return "lists"
    return "reads" if func.attr in _FS_READ else None


def _what_it_does(tree: ast.AST) -> set[str]:
    """What a module's code does beyond values: ``clock``, ``reads``, ``writes``, ``lists``, ``world``."""
    done: set[str] = set()
    aliases = {
        alias.asname: alias.name.split(".")[-1]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if alias.asname
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            if any((n or "").split(".")[0] in _WORLD for n in names):
                done.add("world")
        elif isinstance(node, ast.Call) and (act := _act_of_call(node, aliases)) is not None:
            done.add(act)
    return done


def test_the_core_does_only_what_its_docstring_says() -> None:
    """No clock, no threads, nothing written or listed; the modules that open files named."""
    stated = ast.get_docstring(ast.parse((PACKAGE / "core" / "__init__.py").read_text())) or ""
    sentence = stated[stated.index("Only these modules open files") :]
    readers = {n.strip() for n in sentence.split(":", 1)[1].split(".", 1)[0].split(",")}
    doing = {
        name.rsplit(".", 1)[-1]: _what_it_does(ast.parse(path.read_text()))
        for name, path in modules().items()
        if layer(name) == "core"
    }
    beyond_reading = {name: sorted(done - {"reads"}) for name, done in doing.items()}
    assert {name: done for name, done in beyond_reading.items() if done} == {}
    assert {name for name, done in doing.items() if "reads" in done} == readers
    for name in readers:
        own = ast.get_docstring(ast.parse((PACKAGE / "core" / f"{name}.py").read_text())) or ""
        assert "opens the" in own, f"core/{name}.py opens files and does not say so"


def test_the_checker_of_docstrings_sees_what_it_looks_for() -> None:
    """The check above is not blind: each kind of act is found in code that does it."""
    cases = {
        "import time\ntime.time()": {"clock"},
        "import time as t\nt.monotonic()": {"clock"},
        "from datetime import datetime as d\nd.now()": {"clock"},
        "import time\ntime.strftime('%Y')": {"clock"},
        "import datetime as dt\ndt.datetime.now(dt.UTC)": {"clock"},
        "import time\ntime.gmtime(0)": set(),
        "path.read_bytes()": {"reads"},
        "open('x')": {"reads"},
        "path.write_text('x')": {"writes"},
        "import os\nos.unlink('x')": {"writes"},
        "folder.iterdir()": {"lists"},
        "import threading": {"world"},
        "frame.rename({'a': 'b'}).filter(x)": set(),
    }
    assert {code: _what_it_does(ast.parse(code)) for code in cases} == cases


def _docstring(module: str) -> str:
    return ast.get_docstring(ast.parse(modules()[module].read_text())) or ""


def _calling(fragment: str) -> set[str]:
    """The package's modules whose code (not docstrings) calls something ending in ``fragment``."""
    found = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(fragment):
                found.add(name)
    return found


def test_the_shells_one_place_claims_hold() -> None:
    """Each "the one place" a shell docstring claims is the only place that does it."""
    shell = "watcher.shell"
    assert "the one place the OS watcher is entered" in _docstring(f"{shell}.intake.watching")
    observers = {
        name
        for name, path in modules().items()
        if any(
            isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("watchdog.observers")
            for node in ast.walk(ast.parse(path.read_text()))
        )
    }
    assert observers == {f"{shell}.intake.watching"}

    assert "the only maker of" in _docstring(f"{shell}.running.runtime")
    assert _calling("BatchContext") == {f"{shell}.running.runtime"}

    assert "the one place a batch moves from step to step" in _docstring(
        f"{shell}.pipeline.batches"
    )
    assert _calling("batches.advance") == {f"{shell}.pipeline.batches"}

    assert "the journal's parts never branch" in _docstring(f"{shell}.journal.dialects")
    parts = ("batches", "files", "rows", "users", "messages", "history", "leases")
    branching = set()
    for part in parts:
        tree = ast.parse(modules()[f"{shell}.journal.{part}"].read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            text = (
                node.id
                if isinstance(node, ast.Name)
                else node.attr
                if isinstance(node, ast.Attribute)
                else node.value
                if isinstance(node, ast.Constant) and id(node) not in docstrings
                else ""
            )
            if isinstance(text, str) and ("postgres" in text.lower() or "sqlite" in text.lower()):
                branching.add(part)
    assert branching == set()
