"""The search form's fields: which criteria it shows and how typed text becomes a value.

One place for the form's vocabulary (SearchPanel builds its boxes from it) and for
reading a box: numbers may carry a unit as astronomers write them (``3 deg``,
``30 arcmin``, ``500 GeV``), converted by :mod:`ctanb.client._units`; a wrong
value is a :class:`~ctanb.CriteriaError` naming the box by its label.
"""

from __future__ import annotations

from typing import Any

from .._errors import CriteriaError
from ..client._units import angle_deg, energy_tev, to_mjd
from ..datamodel import EQUALITY_CRITERIA, OBSCORE_COLUMNS

__all__ = ["ANY", "CRITERION_OF", "FORM_GROUPS", "NUMBERS", "choice_columns", "read_number"]

#: Equality criteria without a choice list: a run identifier has one value per run.
NOT_LISTED = ("obs_id",)
#: The choice lists' column -> criterion, derived from the data model's one table,
#: :data:`ctanb.datamodel.EQUALITY_CRITERIA` (which the form reads when it is built,
#: through :func:`choice_columns` and :func:`~ctanb.datamodel.criterion_of`).
CRITERION_OF = {col: crit for crit, col in EQUALITY_CRITERIA.items() if col not in NOT_LISTED}

#: Form sections, in order: data-model group -> title.
FORM_GROUPS = {
    "obscore": "ObsCore",
    "obscore-optional": "ObsCore",
    "obsconfig": "ObsConfig",
    "provenance": "Provenance",
}
#: Criteria typed as text (empty = not used): name -> (label, tooltip).
NUMBERS = {
    "ra": ("RA", "ICRS right ascension: degrees, or 05h34m31.9s"),
    "dec": ("Dec", "ICRS declination: degrees, or 22d00m52s"),
    "radius": ("Radius", "search radius: degrees, or with a unit (30 arcmin)"),
    "time_start": ("Start", "ISO date/time (UTC) or MJD"),
    "time_end": ("End", "ISO date/time (UTC) or MJD"),
    "energy_min": ("E min", "energy the data must reach down to: TeV, or with a unit (500 GeV)"),
    "energy_max": ("E max", "energy the data must reach up to: TeV, or with a unit (50 TeV)"),
    "max_zenith": ("Max zenith", "largest zenith angle: degrees"),
    "limit": ("Limit", "largest number of rows"),
}
#: Short hints inside the boxes (the tooltips say more).
PLACEHOLDERS = {"ra": "deg or 5h34m32s", "dec": "deg or 22d00m52s", "radius": "deg, 30 arcmin",
                "time_start": "ISO or MJD", "time_end": "ISO or MJD", "energy_min": "TeV, 500 GeV",
                "energy_max": "TeV", "max_zenith": "deg", "limit": "rows"}  # fmt: skip
#: The choice that leaves a list's column out of the query.
ANY = "(any)"

_ANGLES = ("ra", "dec", "radius", "max_zenith")
#: The embedded archive's hard row limit (``ServiceConfig.maxrec_hard``).
MAX_ROWS = 1_000_000
_ENERGIES = ("energy_min", "energy_max")


def choice_columns():
    """The data-model columns shown as choice lists: those an equality criterion selects by."""
    selectable = set(EQUALITY_CRITERIA.values()).difference(NOT_LISTED)
    return [c for c in OBSCORE_COLUMNS if c.name in selectable and c.group in FORM_GROUPS]


def read_number(name: str, text: str) -> Any:
    """The value of box *name* from its *text* (degrees, TeV, row count or time text)."""
    label = NUMBERS[name][0]
    if name in ("time_start", "time_end"):
        try:  # ISO or MJD: Criteria reads both; the message here is in the form's words
            to_mjd(text, name)
        except CriteriaError:
            raise CriteriaError(
                f"{label}: {text!r} is not a time (e.g. 2004-12-04T22:00:00 in UTC, "
                "or an MJD number such as 53343.9)",
                field=name,
            ) from None
        return text
    if name == "limit":
        try:
            rows = int(float(text))
        except (ValueError, OverflowError):
            raise CriteriaError(f"{label}: {text!r} is not a number", field=name) from None
        if not 1 <= rows <= MAX_ROWS:
            # Never a TOP the archive silently cuts: say its limit instead.
            too = "more than the archive sends" if rows > MAX_ROWS else "not a row count"
            raise CriteriaError(
                f"{label}: {text} is {too}; give 1 to {MAX_ROWS:,} rows", field=name
            )
        return rows
    try:
        if name in _ANGLES:
            return angle_deg(text, name)
        if name in _ENERGIES:
            return energy_tev(text, name)
    except CriteriaError:
        pass
    if name in _ANGLES:
        example = "e.g. 83.63 or 05h34m31.9s" if name == "ra" else "e.g. 3, 3 deg or 30 arcmin"
        raise CriteriaError(f"{label}: {text!r} is not an angle ({example})", field=name)
    raise CriteriaError(f"{label}: {text!r} is not an energy (e.g. 0.5 for TeV, or 500 GeV)",
                        field=name)  # fmt: skip


def distinct_values(archive: Any, columns: list[str]) -> dict[str, list[str]]:
    """The values each of *columns* takes in the archive (``SELECT DISTINCT``), sorted.

    Through :meth:`~ctanb.client.Archive.query`: a failure is a
    :class:`~ctanb.CtanbError` in the user's words, and the queries are in the history.
    """
    from ..datamodel import OBSCORE_TABLE

    found = {}
    for column_name in columns:
        adql = f"SELECT DISTINCT {column_name} FROM {OBSCORE_TABLE}"
        raw = archive.query(adql)[column_name]
        found[column_name] = sorted({(v.decode() if isinstance(v, bytes) else str(v))
                                     for v in raw
                                     if v is not None and str(v) not in ("", "--")})  # fmt: skip
    return found


def history_entries(archive: Any) -> list:
    """Every query sent to *archive*, newest first by the time it was sent."""
    return sorted(archive.history.entries(), key=lambda e: e.time, reverse=True)


def history_options(entries: list) -> list[tuple[str, int]]:
    """The history list's options: when, status, rows and the whole query on one line."""
    return [("", -1)] + [
        (f"{e.when}  {e.status:<9}  {e.rows if e.rows is not None else '-':>5} rows  "
         f"{' '.join(e.adql.split())}", i)
        for i, e in enumerate(entries)
    ]  # fmt: skip


def position_text(source: str, target: str, ra: str, dec: str, resolved: dict) -> str:
    """Which position the query uses, in words (the form's "Position used" line)."""
    if source == "coordinates":
        text = f"typed RA {ra or '?'}, Dec {dec or '?'}"
        if target:
            text += f" (the name {target!r} is not used: press Resolve to use it)"
        return text
    if source == "name" and resolved:
        r = resolved
        return f"{r['name']}, resolved to RA {r['ra']:.4f}, Dec {r['dec']:.4f} ({r['source']})"
    if target:
        return f"{target!r} is not resolved yet"
    return "none (the whole sky)"
