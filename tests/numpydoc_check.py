"""numpydoc validation of ctanb's user-facing callables (used by tests/test_numpydoc.py).

"User-facing" means every name in the ``__all__`` of ``ctanb`` and of its public
sub-packages, and the public methods those classes define themselves (methods inherited
from ipywidgets, pydantic or the standard library are theirs to document).

Run as a script to print the coverage figures: ``python tests/numpydoc_check.py``.
"""

from __future__ import annotations

import ast
import enum
import inspect
import re
import textwrap
from collections.abc import Iterator
from importlib import import_module

from numpydoc.docscrape import NumpyDocString
from numpydoc.validate import validate

from ctanb import _errors

PACKAGES = (
    "ctanb",
    "ctanb.client",
    "ctanb.analysis",
    "ctanb.analysis.examples",
    "ctanb.archive.service",
    "ctanb.jobs",
    "ctanb.provenance",
    "ctanb.samp",
    "ctanb.widgets",
)

# The numpydoc checks enforced: a docstring exists (GL08), every parameter is documented
# (PR01), no documented parameter is unknown (PR02) and they are in signature order (PR03),
# a value-returning callable has a Returns section (RT01) and a generator a Yields section
# (YD01). numpydoc has no check of the Raises section: ctanb adds RS01, "a ctanb error
# the callable raises itself (a ``raise XError(...)`` in its own body) is not named in
# its Raises section" (see raised_but_undocumented()).
CHECKS = ("GL08", "PR01", "PR02", "PR03", "RT01", "YD01", "RS01")
ERRORS = {name for name in dir(_errors) if name.endswith("Error")}


def _is_ours(obj: object) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("ctanb")


def _methods(cls: type) -> Iterator[tuple[str, object]]:
    """Public methods (and properties) *cls* or one of ctanb's base classes define."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("ctanb"):
            continue
        for name, attr in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            if inspect.isfunction(attr) or isinstance(attr, property):
                yield name, attr


def user_facing() -> dict[str, object]:
    """Import path (``ctanb.client.Archive.search``) -> object, each object once."""
    found: dict[str, object] = {}
    ids: set[int] = set()
    for package in PACKAGES:
        module = import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if id(obj) in ids or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not _is_ours(obj):
                continue
            ids.add(id(obj))
            found[f"{package}.{name}"] = obj
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for meth, attr in _methods(obj):
                    if id(attr) not in ids:
                        ids.add(id(attr))
                        found[f"{package}.{name}.{meth}"] = attr
    return found


def raised_but_undocumented(func: object) -> set[str]:
    """ctanb errors *func* raises in its own body that its Raises section does not name."""
    func = func.fget if isinstance(func, property) else func
    if not inspect.isfunction(func):
        return set()
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func))).body[0]
    except (OSError, TypeError, SyntaxError):
        return set()
    raised: set[str] = set()
    todo = list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # a nested function raises when it is called, not this one
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id in ERRORS:
                raised.add(exc.id)
        todo.extend(ast.iter_child_nodes(node))
    if not raised:
        return set()
    section = NumpyDocString(inspect.getdoc(func) or "")["Raises"]
    named = {word.strip("`~:.") .rsplit(".", 1)[-1] for item in section
             for word in (item.name, item.type) if word}  # fmt: skip
    return raised - named


def _pr01_excused(obj: object, message: str) -> bool:
    """A PR01 about ``_private`` keyword parameters only (internal plumbing, not for
    users), or, for a class, about fields its Attributes section documents (a dataclass
    or pydantic model is built from its attributes)."""
    names = {name.lstrip("*") for name in re.findall(r"'([^']+)'", message)}
    if inspect.isclass(obj):
        for item in NumpyDocString(inspect.getdoc(obj) or "")["Attributes"]:
            names -= {n.strip() for n in item.name.split(",")}
    return all(name.startswith("_") for name in names)


def problems(path: str, obj: object) -> list[tuple[str, str]]:
    """The enforced findings for one object, as (code, message)."""
    if isinstance(obj, property):
        # A property is read like an attribute: it needs a docstring, not sections.
        found = [] if obj.__doc__ else [("GL08", "The object does not have a docstring")]
    elif inspect.isclass(obj) and issubclass(obj, (BaseException, enum.Enum)):
        # Raised with a message, or an enumeration: the signature is Python's, not ctanb's.
        return [] if obj.__doc__ else [("GL08", "The object does not have a docstring")]
    else:
        result = validate(path_for(path, obj))
        found = [
            (code, msg)
            for code, msg in result["errors"]
            if code in CHECKS and not (code == "PR01" and _pr01_excused(obj, msg))
        ]
    missing = raised_but_undocumented(obj)
    if missing:
        found.append(("RS01", f"Raises section does not name {', '.join(sorted(missing))}"))
    return found


def path_for(path: str, obj: object) -> str:
    """The import path numpydoc resolves: where the object is defined."""
    if inspect.isclass(obj) or inspect.isfunction(obj):
        qual = getattr(obj, "__qualname__", "")
        if "<" not in qual:
            return f"{obj.__module__}.{qual}"
    return path


def report() -> tuple[int, int, dict[str, list[tuple[str, str]]]]:
    objects = user_facing()
    failing = {p: errs for p, o in objects.items() if (errs := problems(p, o))}
    return len(objects), len(objects) - len(failing), failing


if __name__ == "__main__":
    total, clean, failing = report()
    counts: dict[str, int] = {}
    for errs in failing.values():
        for code, _ in errs:
            counts[code] = counts.get(code, 0) + 1
    for path, errs in sorted(failing.items()):
        print(path, ";".join(code for code, _ in errs))
    print(f"{clean}/{total} user-facing callables pass {','.join(CHECKS)} ({clean / total:.0%})")
    print("findings per code:", counts)
