"""The ADQL translator's modules import one way only, and keep their public names.

Layers, bottom up: ``adql_check`` and ``adql_types`` (tokens, limits, messages; types
and schema), the expression parts ``adql_syntax``, ``adql_spatial``, ``adql_tmoc``,
the ``adql_translate`` Translator that composes them, and the ``adql`` entry points.
A module imports only from lower layers, and only at its top (no import inside a
function or a TYPE_CHECKING block that would hide a cycle).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import ctanb.archive

LAYERS = {
    "adql_check": 0,
    "adql_types": 0,
    "adql_syntax": 1,
    "adql_spatial": 1,
    "adql_tmoc": 1,
    "adql_translate": 2,
    "adql": 3,
}
ARCHIVE = Path(ctanb.archive.__file__).parent

#: Names other modules, tests and benches import: a contract (kept when modules change).
CONTRACT = {
    "adql": ["GEOMETRY_XTYPES", "REGION_XTYPE", "OutputColumn", "TapSchema", "TapTable",
             "TranslatedQuery", "load_schema", "register_functions", "translate"],
    "adql_check": ["LIMITS", "MessageMixin", "QueryLimits", "check_tokens", "check_tree",
                   "describe_text", "flatten_chain", "line_col", "node_span", "query_error",
                   "tokenize"],
    "adql_tmoc": ["TMOC_FUNCTIONS", "TMOC_UDF_FORMS", "TmocMixin", "column_sql"],
    "adql_translate": ["Scope", "Source", "Translator", "Val", "flatten_chain"],
    "adql_spatial": ["GEOMETRY_FUNCTIONS", "Geom", "SpatialMixin", "function_args",
                     "function_name"],
    "adql_syntax": ["ExpressionMixin", "quote_ident", "quote_string"],
}  # fmt: skip


def _adql_imports(tree: ast.Module) -> list[tuple[str, bool, int]]:
    """(module, at top level, line) of each relative import of an adql module."""
    top = {id(n) for n in tree.body}
    return [
        (node.module, id(node) in top, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1
        and (node.module or "").split(".")[0] in LAYERS
    ]  # fmt: skip


def test_every_adql_module_has_a_layer():
    assert {p.stem for p in ARCHIVE.glob("adql*.py")} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_go_down_the_layers_only(module):
    path = ARCHIVE / f"{module}.py"
    tree = ast.parse(path.read_text(), str(path))
    for target, at_top, line in _adql_imports(tree):
        where = f"{path.name}:{line} imports {target}"
        assert at_top, f"{where} inside a function or block: import it at the top"
        assert LAYERS[target] < LAYERS[module], f"{where}, which is not below it"


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_modules_stay_small_and_keep_their_public_names(module):
    assert len((ARCHIVE / f"{module}.py").read_text().splitlines()) <= 500  # no module over 500
    mod = importlib.import_module(f"ctanb.archive.{module}")
    for name in [*getattr(mod, "__all__", ()), *CONTRACT.get(module, ())]:
        assert getattr(mod, name, None) is not None, f"ctanb.archive.{module}.{name} is gone"
