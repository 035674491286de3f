"""Query results: an astropy Table with the service's column metadata, row records,
DataLink links and sky footprints."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import QueryError
from ..datamodel import COLUMNS_BY_NAME

if TYPE_CHECKING:  # pragma: no cover
    from astropy.table import Table

    from .archive import Archive

__all__ = ["DataLinks", "Link", "Record", "Results", "parse_polygon"]


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)", re.I)
# STC-S: the shape, then optional frame, reference position and flavour words.
_STCS_HEAD = re.compile(r"^\s*([A-Za-z]+)((?:\s+[A-Za-z][A-Za-z0-9_]*)*)\s*")


def parse_polygon(value: Any) -> list[tuple[float, float]]:
    """Vertices ``[(ra, dec), ...]`` of an ``s_region`` value, in degrees.

    Reads both forms archives serve: ObsCore 1.1 STC-S text (``"POLYGON ICRS
    ra1 dec1 ..."``, any case, frame optional; ctanb's archive and DaCHS) and the
    DALI polygon (a float array, or its text ``"ra1 dec1 ..."``). NULL gives ``[]``.

    Raises
    ------
    ctanb.QueryError
        The value is neither: another STC-S shape, or text that is not numbers.
    """
    if value is None or (np.ma.is_masked(value)):
        return []
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        numbers = _polygon_numbers(value)
    else:
        numbers = [float(x) for x in np.ravel(np.ma.filled(np.asarray(value, dtype=float), np.nan))]
    numbers = [x for x in numbers if math.isfinite(x)]
    return list(zip(numbers[0::2], numbers[1::2], strict=False))


def _polygon_numbers(text: str) -> list[float]:
    body = text.replace(",", " ").replace("(", " ").replace(")", " ")
    head = _STCS_HEAD.match(body)
    if head is not None and not _NUMBER.fullmatch(head.group(1)):
        if head.group(1).upper() != "POLYGON":
            raise QueryError(
                f"s_region {text[:60]!r} is a {head.group(1)}, not a POLYGON: "
                "cannot draw it as a footprint"
            )
        body = body[head.end() :]
    tokens = body.split()
    bad = [t for t in tokens if not _NUMBER.fullmatch(t)]
    if bad:
        raise QueryError(f"s_region {text[:60]!r} is not a polygon: unexpected {bad[0]!r}")
    return [float(t) for t in tokens]


@dataclass(frozen=True)
class Link:
    """One row of a DataLink answer.

    Attributes
    ----------
    id : str
        The dataset identifier the link belongs to.
    semantics : str
        ``#this`` (the dataset), ``#calibration`` (its IRFs), ...
    access_url : str
        Where to download it ("" for an error row).
    content_type : str
        MIME type.
    content_length : int or None
        Size in bytes, when known.
    description : str
        Human-readable description.
    error_message : str
        Why the link is unavailable ("" when it is fine).
    """

    id: str
    semantics: str
    access_url: str
    content_type: str = ""
    content_length: int | None = None
    description: str = ""
    error_message: str = ""


class DataLinks(list):
    """The links of one or more datasets (a list of :class:`Link`)."""

    def by_semantics(self, semantics: str) -> list[Link]:
        """The links whose semantics is *semantics* (``"#this"``, ``"#calibration"``)."""
        want = semantics if semantics.startswith("#") else "#" + semantics
        return [link for link in self if link.semantics == want]

    def __repr__(self) -> str:
        lines = [f"<DataLinks: {len(self)} link(s)>"]
        lines += [f"  {x.semantics:<13} {x.access_url or x.error_message}" for x in self]
        return "\n".join(lines)


class Record:
    """One dataset of a :class:`Results`, with attribute access to its columns.

    ``record.obs_id``, ``record["s_ra"]``; masked values are ``None``.
    """

    def __init__(self, results: Results, index: int) -> None:
        self._results = results
        self._index = index

    @property
    def row(self):
        """The astropy Row."""
        return self._results.table[self._index]

    def keys(self) -> list[str]:
        """Column names."""
        return list(self._results.table.colnames)

    def __getitem__(self, name: str) -> Any:
        if name not in self._results.table.colnames:
            raise KeyError(f"no column {name!r} in the results")
        return _python_value(self._results.table[name][self._index])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no column {name!r} in the results") from None

    def as_dict(self) -> dict[str, Any]:
        """Column values as a dict."""
        return {name: self[name] for name in self.keys()}

    def datalink(self) -> DataLinks:
        """The DataLink links of this dataset (``#this``, ``#calibration``, ...)."""
        return self._results._archive_required().datalink(self)

    def footprint(self):
        """The ``s_region`` footprint as a regions.PolygonSkyRegion (None if empty)."""
        return _polygon_region(self["s_region"]) if "s_region" in self.keys() else None

    def __repr__(self) -> str:
        parts = [f"{k}={self[k]!r}" for k in ("obs_collection", "obs_id", "target_name")
                 if k in self.keys()]  # fmt: skip
        return f"<Record {' '.join(parts)}>"


class Results:
    """The answer of a query: an astropy Table plus what the service said about it.

    Parameters
    ----------
    table : astropy.table.Table
        The rows, with units, UCDs and descriptions from the VOTable fields.
    query : str
        The ADQL that produced it.
    url : str
        The TAP root URL.
    archive : Archive, optional
        The archive it came from (needed for DataLink and downloads).
    datalink_url : str, optional
        The DataLink endpoint advertised in the VOTable's service descriptor.
    overflow : bool
        True when the service truncated the answer at MAXREC.
    """

    def __init__(
        self,
        table: Table,
        *,
        query: str = "",
        url: str = "",
        archive: Archive | None = None,
        datalink_url: str | None = None,
        overflow: bool = False,
    ) -> None:
        self.table = table
        self.query = query
        self.url = url
        self.archive = archive
        self.datalink_url = datalink_url
        self.overflow = overflow

    # --- table-like ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __getitem__(self, key):
        if isinstance(key, int | np.integer):
            n = len(self.table)
            index = int(key) + n if key < 0 else int(key)
            if not 0 <= index < n:
                raise IndexError(f"record {key} out of range ({n} rows)")
            return Record(self, index)
        if isinstance(key, str):
            return self.table[key]
        return Results(
            self.table[key],
            query=self.query,
            url=self.url,
            archive=self.archive,
            datalink_url=self.datalink_url,
        )

    @property
    def colnames(self) -> list[str]:
        """Column names."""
        return list(self.table.colnames)

    @property
    def records(self) -> list[Record]:
        """One :class:`Record` per row."""
        return [Record(self, i) for i in range(len(self.table))]

    def to_table(self) -> Table:
        """The astropy Table (the same object as :attr:`table`).

        Returns
        -------
        astropy.table.Table
            The rows, with the columns' units and UCDs.
        """
        return self.table

    def footprints(self) -> list:
        """The footprints (``s_region``) as regions, one per row.

        Returns
        -------
        list of regions.PolygonSkyRegion
            Empty when the results have no ``s_region`` column.
        """
        if "s_region" not in self.table.colnames:
            return []
        return [_polygon_region(v) for v in self.table["s_region"]]

    def datalinks(self) -> list[DataLinks]:
        """The DataLink links of every dataset.

        Returns
        -------
        list of DataLinks
            One per row, in row order.
        """
        archive = self._archive_required()
        return [archive.datalink(r) for r in self.records]

    def _archive_required(self) -> Archive:
        if self.archive is None:
            from .._errors import ConfigError

            raise ConfigError("these results are not attached to an archive (Results.archive)")
        return self.archive

    # --- display ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<Results: {len(self)} dataset(s) from {self.url}>\n{self.table!r}"

    def _repr_html_(self) -> str:
        shown = [c for c in self.table.colnames
                 if COLUMNS_BY_NAME.get(c) is not None and COLUMNS_BY_NAME[c].principal]  # fmt: skip
        table = self.table[shown] if shown else self.table
        note = " (truncated at MAXREC)" if self.overflow else ""
        head = (
            f"<p><b>{len(self)} dataset(s)</b>{note} from <code>{html.escape(self.url)}</code>"
            f"<br><code style='white-space:pre-wrap'>{html.escape(self.query)}</code></p>"
        )
        return head + table._repr_html_()


def _python_value(value: Any) -> Any:
    if value is np.ma.masked or np.ma.is_masked(value):
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _polygon_region(value: Any):
    from astropy.coordinates import SkyCoord
    from regions import PolygonSkyRegion

    vertices = parse_polygon(value)
    if len(vertices) < 3:
        return None
    ra, dec = zip(*vertices, strict=True)
    return PolygonSkyRegion(vertices=SkyCoord(list(ra), list(dec), unit="deg", frame="icrs"))
