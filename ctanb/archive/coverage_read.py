"""Reading the stored coverage MOCs with rights applied (see :mod:`ctanb.archive.coverage`)."""

from __future__ import annotations

import sqlite3
from typing import Any

from .._errors import CoverageError
from .coverage import (
    COVERAGE_TABLE,
    Partition,
    check_kind,
    check_order,
    empty_moc,
    moc_class,
    shown,
)
from .db import q

__all__ = ["partitions", "visible_coverage"]


def partitions(conn: sqlite3.Connection) -> list[tuple[Partition, int]]:
    """Every stored partition with its number of datasets."""
    try:
        rows = conn.execute(
            f"SELECT DISTINCT collection, level, access_group, release_date, n_rows "
            f"FROM {q(COVERAGE_TABLE)} ORDER BY collection, level, access_group, release_date"
        ).fetchall()
    except sqlite3.OperationalError:  # an archive built before coverage existed
        return []
    return [(Partition(c, lv, g, r), n) for c, lv, g, r, n in rows]


def _may_see(part: Partition, policy: Any, groups: set[str]) -> bool:
    if not part.access_group or part.access_group in groups:
        return True
    return bool(part.release_date) and policy.is_released(part.release_date)


def visible_coverage(
    conn: sqlite3.Connection,
    policy: Any,
    token: str | None,
    *,
    kind: str,
    collection: str | None = None,
    level: str | None = None,
    order: int | None = None,
    cache: dict | None = None,
) -> Any:
    """The union of the stored coverage of *kind* that *token* may see.

    Parameters
    ----------
    conn : sqlite3.Connection
        The archive database.
    policy : AccessPolicy
        Groups, tokens and release dates.
    token : str or None
        The requester's token (None: anonymous).
    kind : str
        One of :data:`KINDS`.
    collection, level : str, optional
        Restrict to one collection (case-insensitive) and data level (``DL3``).
    order : int, optional
        Degrade a space or time MOC to this order (:func:`check_order`).
    cache : dict, optional
        Parsed MOCs by partition and build time, kept between calls.

    Raises
    ------
    CoverageError
        Unknown kind, collection or level, or an order out of range.
    """
    kind = check_kind(kind)
    order = check_order(kind, order)
    parts = partitions(conn)
    if collection is not None:
        names = {p.collection.lower(): p.collection for p, _ in parts}
        if collection.strip().lower() not in names:
            known = ", ".join(sorted(set(names.values()))) or "none yet"
            raise CoverageError(
                f"no collection {shown(collection)} in this archive (collections: {known})",
                field="collection",
            )
        collection = names[collection.strip().lower()]
    if level is not None:
        levels = {p.level.upper(): p.level for p, _ in parts}
        if str(level).strip().upper() not in levels:
            raise CoverageError(
                f"no data level {shown(level)} in this archive (levels: {', '.join(sorted(levels))})",
                field="level",
            )
        level = levels[str(level).strip().upper()]
    groups = policy.groups_for_token(token) if token else set()
    cls = moc_class(kind)
    result = empty_moc(kind)
    for part, _n in parts:
        if (collection is not None and part.collection != collection) or (
            level is not None and part.level != level
        ):
            continue
        if not _may_see(part, policy, groups):
            continue
        text, built = conn.execute(
            f"SELECT moc, built FROM {q(COVERAGE_TABLE)} WHERE collection = ? AND level = ? "
            "AND access_group = ? AND release_date = ? AND kind = ?",
            (part.collection, part.level, part.access_group, part.release_date, kind),
        ).fetchone()
        key = (part, kind, built)
        moc = cache.get(key) if cache is not None else None
        if moc is None:
            moc = cls.from_string(text, format="ascii")
            if cache is not None:
                if len(cache) > 256:
                    cache.clear()
                cache[key] = moc
        result = result.union(moc)
    if order is not None:
        result = result.degrade_to_order(order)
    return result
