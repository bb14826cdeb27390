"""Every public exception lives in watcher.errors, under the project's base."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import watcher
from watcher import errors


def public_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class a module of the package defines without a leading underscore."""
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(watcher.__path__, "watcher."):
        if module_info.name == "watcher.__main__":
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module_info.name
                and not name.startswith("_")
            ):
                found[f"{module_info.name}.{name}"] = value
    return found


def test_public_exceptions_are_defined_in_errors_under_the_base() -> None:
    """No module but watcher.errors defines a public exception, and each is a WatcherError."""
    found = public_exceptions()
    assert {name.rpartition(".")[0] for name in found} == {"watcher.errors"}
    assert all(issubclass(cls, errors.WatcherError) for cls in found.values())


def test_the_tree_in_the_docstring_names_every_exception() -> None:
    """The module docstring's tree and __all__ list the same exceptions as the module holds."""
    names = {name.rpartition(".")[2] for name in public_exceptions()}
    assert set(errors.__all__) == names
    tree = errors.__doc__ or ""
    assert all(f"── {name} " in tree or f"    {name} " in tree for name in names)
