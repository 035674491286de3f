"""ResultsTable: the archive results as a paged, sortable table with row checkboxes.

An anywidget (``ctanb/static/ctanb_table.js``, source in ``widgets/table/``). The
kernel keeps the state (page, page size, sort, visible columns, selected rows)
in traitlets and sends only the rows of the current page, pre-formatted, so a
page of 1000 rows is one message and one ``innerHTML``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import anywidget
import numpy as np
import traitlets as t

from .._errors import CtanbError
from ..datamodel import COLUMNS_BY_NAME
from ._base import CommandMixin, static_file
from ._errors import ErrorDisplay

__all__ = ["ResultsTable", "write_table"]

#: Export formats: name -> astropy writer; file suffix -> name.
_EXPORT_FORMATS = {"votable": "votable", "fits": "fits", "csv": "ascii.csv", "ecsv": "ascii.ecsv"}
_EXPORT_SUFFIXES = {".vot": "votable", ".xml": "votable", ".votable": "votable",
                    ".fits": "fits", ".fit": "fits", ".csv": "csv", ".ecsv": "ecsv"}  # fmt: skip

#: Page sizes offered in the table's toolbar.
PAGE_SIZES = (10, 25, 100, 1000)


def _is_obscore(colnames: list[str]) -> bool:
    """ObsCore rows (``SELECT *`` of the obscore table), where the principal columns show."""
    return "obs_publisher_did" in colnames and all(c in COLUMNS_BY_NAME for c in colnames)


def _principal(colnames: list[str]) -> list[str]:
    shown = [c for c in colnames if c in COLUMNS_BY_NAME and COLUMNS_BY_NAME[c].principal]
    shown = [c for c in shown if c not in ("access_url", "obs_publisher_did")]
    return shown or list(colnames)


#: Float columns whose values need more than 6 digits: MJD times (1 s is 1e-5 day).
_FLOAT_FORMATS = {"t_min": "{:.5f}", "t_max": "{:.5f}"}
#: MJD columns shown with their UTC date and time beside the number.
_MJD_COLUMNS = ("t_min", "t_max")


def _iso_dates(mjd: Any) -> list[str]:
    """``YYYY-MM-DD hh:mm:ss`` (UTC) of MJD (TT) values; "" for masked or invalid ones."""
    from astropy.time import Time

    data = np.ma.filled(np.ma.asanyarray(mjd, dtype=float), np.nan)
    good = np.isfinite(data)
    out = [""] * len(data)
    if good.any():
        texts = Time(data[good], format="mjd", scale="tt").utc.iso
        for index, text in zip(np.flatnonzero(good).tolist(), np.atleast_1d(texts), strict=True):
            out[index] = str(text)[:19]
    return out


def column_info(table: Any) -> dict[str, str]:
    """Per column: unit, UCD and description (the table's, else the data model's)."""
    info = {}
    for name in table.colnames:
        col = table[name]
        model = COLUMNS_BY_NAME.get(name)
        unit = str(col.unit) if getattr(col, "unit", None) else (model.unit if model else "")
        ucd = col.meta.get("ucd") or (model.ucd if model else "")
        text = getattr(col, "description", None) or (model.description if model else "")
        parts = [f"unit: {unit}" if unit else "", f"UCD: {ucd}" if ucd else "", text or ""]
        if name in _MJD_COLUMNS:
            parts.append("shown as MJD and UTC date")
        info[name] = " · ".join(p for p in parts if p)
    return info


def _format_column(values: Any, name: str = "") -> list[str]:
    """Cell texts of one column (masked -> "")."""
    data = np.ma.asanyarray(values)
    mask = np.ma.getmaskarray(data)
    if data.ndim > 1:  # array cells (polygons): show the number of values
        return [f"[{data.shape[1]}]"] * len(data)
    if data.dtype.kind == "f":
        form = _FLOAT_FORMATS.get(name, "{:.6g}")
        texts = [form.format(x) for x in np.ma.filled(data, np.nan).tolist()]
    elif data.dtype.kind in "SO":
        texts = [x.decode() if isinstance(x, bytes) else str(x) for x in data.filled("").tolist()]
    else:
        texts = [str(x) for x in np.ma.filled(data, 0).tolist()]
    if name in _MJD_COLUMNS and data.dtype.kind in "fi":
        texts = [f"{t}  ({d})" if d else t for t, d in zip(texts, _iso_dates(data), strict=True)]
    if mask.any():
        texts = ["" if m else s for s, m in zip(texts, mask.tolist(), strict=True)]
    return texts


def write_table(table: Any, path: str | Path, format: str | None = None) -> Path:
    """Write *table* as VOTable, FITS, CSV or ECSV (format from *format*, else the suffix).

    The one writer behind the table's and the basket's Export buttons.
    """
    if table is None or not len(table.colnames):
        raise CtanbError("nothing to export: run a search first")
    path = Path(path)
    format = format or _EXPORT_SUFFIXES.get(path.suffix.lower())
    if format not in _EXPORT_FORMATS:
        raise CtanbError(
            f"cannot export to {path.name!r}: choose VOTable (.vot), FITS (.fits) or CSV (.csv)"
        )
    try:  # missing folders are made, as for downloads (dest=) and step products (out=)
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CtanbError(f"cannot export to {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise CtanbError(f"cannot export to {path}: it is a folder; give a file name")
    out = table.copy(copy_data=True)
    for name in out.colnames:  # FITS and CSV keep no Python objects: text them
        column = out[name]
        if column.dtype.kind == "O" or (format == "csv" and column.ndim > 1):
            out[name] = [("" if v is None else " ".join(map(str, np.ravel(v)))
                          if np.ndim(v) else str(v)) for v in column]  # fmt: skip
    try:
        out.write(path, format=_EXPORT_FORMATS[format], overwrite=True)
    except OSError as exc:
        raise CtanbError(f"cannot export to {path}: {exc.strerror or exc}") from None
    return path


def _index(value: Any, what: str) -> int:
    """*value* as a row or page number (a whole number), else a CtanbError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise CtanbError(f"{what}: give a whole number (counted from 0), not {value!r}")
    return int(value)


class ResultsTable(CommandMixin, anywidget.AnyWidget):
    """Paged, sortable results table with a column chooser and row checkboxes.

    Parameters
    ----------
    results : Results or astropy.table.Table, optional
        What to show at once.
    **kwargs
        Passed to the ipywidgets base class (``layout``, ...).

    Attributes
    ----------
    selected_rows : list of int
        Indices (in :attr:`table`) of the checked rows; linked to the sky view.
    selected : astropy.table.Table
        The checked rows as a table.

    Examples
    --------
    >>> table = ResultsTable()
    >>> table.set_results(archive.search(target="Crab", radius=3))
    >>> table.sort("obs_id"); table.select([0, 1]); len(table.selected)
    2
    """

    _esm = static_file("ctanb_table.js")
    _css = static_file("ctanb_table.css")
    _commands: ClassVar[dict[str, str]] = {
        "sort": "sort",
        "select_page": "select_page",
        "clear_page": "clear_page",
        "toggle": "toggle",
        "go_to": "go_to",
    }

    columns = t.List(t.Unicode()).tag(sync=True)
    visible_columns = t.List(t.Unicode()).tag(sync=True)
    row_count = t.Int(0).tag(sync=True)
    page = t.Int(0).tag(sync=True)
    page_size = t.Int(100).tag(sync=True)
    page_sizes = t.List(t.Int(), default_value=list(PAGE_SIZES)).tag(sync=True)
    sort_by = t.Unicode("").tag(sync=True)
    sort_ascending = t.Bool(True).tag(sync=True)
    selected_rows = t.List(t.Int()).tag(sync=True)
    #: The current page: ``{"index": [row indices], "cells": [[texts of a column], ...]}``.
    page_data = t.Dict().tag(sync=True)
    #: The row last pointed at elsewhere (a footprint clicked on the sky): shown,
    #: scrolled to and highlighted; -1 for none.
    focus_row = t.Int(-1).tag(sync=True)
    #: Column name -> "unit: … · UCD: … · description" (the header's tooltip).
    column_info = t.Dict().tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    results = t.Any(None, allow_none=True)

    def __init__(self, results: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error_display = ErrorDisplay()
        self._order = np.arange(0)
        self.on_msg(self._handle_command)
        if results is not None:
            self.set_results(results)

    # --- public methods (the front end's commands map onto these) ---------------------------
    @property
    def table(self):
        """The astropy Table of the results (None before a search)."""
        return None if self.results is None else getattr(self.results, "table", self.results)

    @property
    def selected(self):
        """The checked rows as an astropy Table (empty, with the columns, when none)."""
        table = self.table
        if table is None:
            from astropy.table import Table

            return Table()
        return table[sorted(self.selected_rows)]

    def set_results(self, results: Any) -> None:
        """Show new results.

        Parameters
        ----------
        results : Results or astropy.table.Table
            The rows.
        """
        table = getattr(results, "table", results)
        self.results = results
        # No row of the old results may be looked up in the new ones (a COUNT has 1 row)
        # while the traits below change and re-render.
        self._order = np.arange(0)
        with self.hold_sync():
            self.selected_rows = []
            self.focus_row = -1
            self.column_info = column_info(table)
            was_obscore = _is_obscore(self.columns)
            self.columns = list(table.colnames)
            if _is_obscore(table.colnames):
                # The user's choice of columns carries over from ObsCore rows only.
                keep = (
                    [c for c in self.visible_columns if c in table.colnames] if was_obscore else []
                )
                self.visible_columns = keep or _principal(table.colnames)
            else:  # a COUNT, a GROUP BY, another table: the user asked for every column
                self.visible_columns = list(table.colnames)
            if self.sort_by not in table.colnames:
                self.sort_by = ""
            self.row_count = len(table)
            self.page = 0
            self._update_order()
            self._render_page()

    def sort(self, column: str, ascending: bool | None = None) -> None:
        """Sort by *column*.

        Parameters
        ----------
        column : str
            The column name.
        ascending : bool, optional
            Without it, a second sort on the same column reverses the order.

        Raises
        ------
        CtanbError
            No such column.
        """
        if column not in self.columns:
            raise CtanbError(f"cannot sort: no column {column!r} in the results")
        if ascending is None:
            ascending = not self.sort_ascending if column == self.sort_by else True
        with self.hold_sync():
            self.sort_by, self.sort_ascending = column, bool(ascending)

    def go_to(self, page: int) -> None:
        """Show page *page*.

        Parameters
        ----------
        page : int
            0-based, clipped to the pages there are.
        """
        self.page = int(min(max(_index(page, "page"), 0), max(self.page_count - 1, 0)))

    def next_page(self) -> None:
        """Show the next page."""
        self.go_to(self.page + 1)

    def previous_page(self) -> None:
        """Show the previous page."""
        self.go_to(self.page - 1)

    @property
    def page_count(self) -> int:
        """Number of pages."""
        return max(1, -(-self.row_count // max(self.page_size, 1)))

    @property
    def page_rows(self) -> list[int]:
        """Row indices (in :attr:`table`) of the current page, in display order."""
        start = self.page * self.page_size
        return [int(i) for i in self._order[start : start + self.page_size]]

    def show_row(self, row: int) -> None:
        """Go to the page of *row*, scroll to it and highlight it.

        Parameters
        ----------
        row : int
            Index in :attr:`table`.

        Raises
        ------
        CtanbError
            No such row.
        """
        row = _index(row, "row")
        if not 0 <= row < self.row_count:
            raise CtanbError(f"no row {row}: the results have {self.row_count} rows")
        position = int(np.flatnonzero(self._order == row)[0])
        with self.hold_sync():
            self.page = position // max(self.page_size, 1)
            self.focus_row = row

    def select(self, rows: list[int]) -> None:
        """Check exactly *rows*.

        Parameters
        ----------
        rows : list of int
            Indices in :attr:`table`.

        Raises
        ------
        CtanbError
            A row that the results do not have.
        """
        if isinstance(rows, int | np.integer):
            rows = [rows]
        rows = [_index(r, "row") for r in rows]
        bad = [r for r in rows if not 0 <= r < self.row_count]
        if bad:
            raise CtanbError(f"cannot select rows {bad}: the results have {self.row_count} rows")
        self.selected_rows = sorted({int(r) for r in rows})

    def toggle(self, row: int) -> None:
        """Check *row* if unchecked, else uncheck it.

        Parameters
        ----------
        row : int
            Index in :attr:`table`.
        """
        current = set(self.selected_rows)
        current.symmetric_difference_update({_index(row, "row")})
        self.select(sorted(current))

    def select_page(self) -> None:
        """Check every row of the current page (select-all on a page)."""
        self.select(sorted(set(self.selected_rows) | set(self.page_rows)))

    def clear_page(self) -> None:
        """Uncheck every row of the current page."""
        self.select(sorted(set(self.selected_rows) - set(self.page_rows)))

    def show_columns(self, columns: list[str]) -> None:
        """Show these columns, in this order (the column chooser).

        Parameters
        ----------
        columns : list of str
            Column names.

        Raises
        ------
        CtanbError
            A column the results do not have.
        """
        unknown = [c for c in columns if c not in self.columns]
        if unknown:
            raise CtanbError(f"no column(s) {', '.join(unknown)} in the results")
        self.visible_columns = list(columns)

    def export(self, path: str | Path, format: str | None = None, *, selected: bool = False):
        """Write the table (or the checked rows) as VOTable, FITS or CSV; returns the path.

        Parameters
        ----------
        path : path
            The file; its suffix (``.vot``/``.xml``, ``.fits``, ``.csv``, ``.ecsv``) gives
            the format unless *format* (``"votable"``, ``"fits"``, ``"csv"``, ``"ecsv"``)
            is given.
        format : str, optional
            The format, whatever the suffix.
        selected : bool
            Only the checked rows.

        Returns
        -------
        Path
            The file written (missing folders are made, as for downloads and products).

        Raises
        ------
        CtanbError
            No results yet, an unknown format, or the file cannot be written there.
        """
        return write_table(self.selected if selected else self.table, path, format)

    # --- plumbing ----------------------------------------------------------------------------
    def _update_order(self) -> None:
        table = self.table
        if table is None:
            self._order = np.arange(0)
            return
        if not self.sort_by:
            self._order = np.arange(len(table))
            return
        column = table[self.sort_by]
        if getattr(column, "ndim", 1) > 1:
            raise CtanbError(f"cannot sort by {self.sort_by!r}: it holds arrays")
        order = np.argsort(np.ma.asanyarray(column), kind="stable")
        self._order = order if self.sort_ascending else order[::-1]

    def _render_page(self) -> None:
        table = self.table
        rows = self.page_rows
        if table is None:
            self.page_data = {"index": [], "cells": []}
            return
        part = table[rows] if rows else table[:0]
        cells = [_format_column(part[c], c) for c in self.visible_columns]
        self.page_data = {"index": rows, "cells": cells}

    @t.observe("sort_by", "sort_ascending")
    def _on_sort(self, _change: dict) -> None:
        self._update_order()
        self._render_page()

    @t.observe("page", "page_size", "visible_columns")
    def _on_view(self, change: dict) -> None:
        if change["name"] == "page_size" and self.page >= self.page_count:
            self.page = self.page_count - 1  # re-renders through this observer
            return
        self._render_page()
