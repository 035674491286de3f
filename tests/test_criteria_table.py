"""The column <-> criterion table is kept once, in ctanb.datamodel.EQUALITY_CRITERIA.

Criteria's conditions and the search form's choice lists are derived from it: the
tests check that both cover exactly its entries, that changing it changes both, and
that no module keeps a second copy of it (either way round).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import ctanb
from ctanb import Criteria, CriteriaError
from ctanb.client import Archive
from ctanb.client.criteria import adql_string, build_adql
from ctanb.datamodel import CHOICES, COLUMNS_BY_NAME, EQUALITY_CRITERIA, criterion_of
from ctanb.widgets import SearchPanel

#: The one equality criterion the form has no choice list for: one value per run.
TYPED_NOT_LISTED = {"obs_id"}


def _value(column: str) -> str:
    """A value Criteria accepts for *column* (enumerated columns take their choices only)."""
    return (CHOICES.get(column) or (f"v-{column}",))[0]


def _equalities(adql: str, value: str) -> set[str]:
    """The columns a top-level ``column = 'value'`` condition of *adql* selects by."""
    lit = re.escape(adql_string(value))
    return set(re.findall(rf"^(?:WHERE|  AND) (\w+) = {lit}$", adql, re.MULTILINE))


def _offline_panel() -> SearchPanel:
    # The form builds its ADQL locally (Archive.adql, no target): nothing is sent.
    archive = Archive("http://127.0.0.1:9/tap", offline=True, progress=False,
                      record_history=False)  # fmt: skip
    return SearchPanel(archive)


def test_every_criterion_of_the_table_selects_by_its_data_model_column():
    assert len(EQUALITY_CRITERIA) >= 20
    for criterion, column in EQUALITY_CRITERIA.items():
        assert column in COLUMNS_BY_NAME, f"{criterion} -> {column}: not an ObsCore column"
        assert criterion in Criteria.model_fields, f"{criterion} is not a Criteria field"
        assert criterion_of(column) == criterion  # the inverse is consistent
        value = _value(column)
        assert _equalities(build_adql(Criteria(**{criterion: value})), value) == {column}
    assert len(set(EQUALITY_CRITERIA.values())) == len(EQUALITY_CRITERIA)  # one-to-one


def test_criteria_filter_by_equality_exactly_the_tables_entries_and_ignore_none():
    """Every Criteria field that becomes ``column = value`` is in the table, with that
    column, and every field a value is accepted for changes the query."""
    empty = build_adql(Criteria())
    candidates = [None, *(values[0] for values in CHOICES.values())]
    found: dict[str, str] = {}
    for name in Criteria.model_fields:
        for value in candidates:
            value = value or f"v-{name}"
            try:
                adql = build_adql(Criteria(**{name: value}))
            except CriteriaError:
                continue  # not a value of this field (a number, a level, ...)
            assert adql != empty, f"Criteria({name}={value!r}) changes nothing in the query"
            columns = _equalities(adql, value)
            if columns:
                (found[name],) = columns
            break
    assert found == EQUALITY_CRITERIA


def test_the_form_lists_exactly_the_tables_columns_and_each_selects_its_own():
    panel = _offline_panel()
    assert set(panel.choices) == set(EQUALITY_CRITERIA.values()) - TYPED_NOT_LISTED
    for column in panel.choices:
        value = _value(column)
        panel.set(**{column: value})
        assert panel.error == ""
        assert panel.criteria == {criterion_of(column): value}
        assert _equalities(panel.adql, value) == {column}
        panel.set(**{column: None})
    assert panel.criteria == {}


def test_the_form_and_the_criteria_follow_a_change_of_the_one_table(monkeypatch):
    """Point ``collection`` at another column: the query and the form both follow."""
    monkeypatch.setitem(EQUALITY_CRITERIA, "collection", "obs_title")
    assert _equalities(build_adql(Criteria(collection="x")), "x") == {"obs_title"}
    panel = _offline_panel()
    assert "obs_title" in panel.choices and "obs_collection" not in panel.choices
    panel.set(obs_title="x")
    assert panel.criteria == {"collection": "x"}
    assert _equalities(panel.adql, "x") == {"obs_title"}


def _literal_pairs(node: ast.AST) -> list[tuple[object, object]]:
    if isinstance(node, ast.Dict):
        return [(k.value, v.value) for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)]  # fmt: skip
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "dict":
        return [(k.arg, k.value.value) for k in node.keywords
                if k.arg and isinstance(k.value, ast.Constant)]  # fmt: skip
    return []


def test_no_module_keeps_a_second_column_criterion_table():
    renamed = {(c, col) for c, col in EQUALITY_CRITERIA.items() if c != col}
    inverse = {(col, c) for c, col in renamed}
    assert len(renamed) >= 3  # (collection, obs_collection), (facility, facility_name), ...
    package = Path(ctanb.__file__).parent
    copies = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "datamodel.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            pairs = set(_literal_pairs(node))
            if len(pairs & renamed) >= 2 or len(pairs & inverse) >= 2:
                copies.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    assert copies == [], (
        f"a second column<->criterion table in {copies}: derive it from "
        "ctanb.datamodel.EQUALITY_CRITERIA / criterion_of"
    )


@pytest.mark.parametrize("column", ["obs_collection", "facility_name", "site"])
def test_criterion_of_a_column(column):
    assert EQUALITY_CRITERIA[criterion_of(column)] == column
    assert criterion_of("s_region") is None
