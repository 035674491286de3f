"""Search criteria over the CTA ObsCore data model, and the ADQL they become.

:class:`Criteria` is a strict pydantic model (unknown names are refused) whose
fields are the questions users ask of an IACT archive; :func:`build_adql` turns
a validated :class:`Criteria` into one ADQL query. The builder never parses or
rewrites ADQL: it only joins fixed fragments, column names taken from
:data:`ctanb.datamodel.COLUMNS_BY_NAME` and literals escaped by
:func:`adql_string` / :func:`adql_number`, so no value can change the query's
structure.

Criterion -> ObsCore column
---------------------------
=========================  ==========================================================
``target``                 resolved to ``ra``/``dec`` by the archive's name resolver
``ra``, ``dec``            ``CONTAINS(POINT(ra, dec), s_region)`` (no ``radius``)
``radius``                 ``INTERSECTS(CIRCLE(ra, dec, radius), s_region)``; with
                           ``spatial="pointing"``: ``CONTAINS(POINT(s_ra, s_dec), CIRCLE)``
``time_start/time_end``    overlap with ``[t_min, t_max]`` (ISO is UTC, numbers are MJD)
``energy_min`` (TeV)       ``em_min <= hc / E`` (the data reach up to E or above)
``energy_max`` (TeV)       ``em_max >= hc / E`` (the data reach down to E or below)
``data_level``             ``dataproduct_subtype LIKE 'DL3%'``
``sub_array_includes``     ``sub_array_name LIKE '%LST%'`` for each telescope type
``exclude_pointing_mode``  ``pointing_mode IS NULL OR pointing_mode NOT IN (...)``
``max_zenith``             ``zen_pnt <= value``
``collection``, ...        the column :data:`ctanb.datamodel.EQUALITY_CRITERIA` names
                           (``obs_collection``, ...) equals the value or one of a list
=========================  ==========================================================

Product searches (``product_kind``, ``derived_from_run``, ``software``, ``step``,
``parameter``) are conditions over ObsCore and the ``provenance`` (ProvTAP) tables:
see :mod:`ctanb.client._product_criteria`.
"""

from __future__ import annotations

import math
import re
from difflib import get_close_matches
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .._errors import CriteriaError
from ..datamodel import (
    CHOICES,
    COLUMNS_BY_NAME,
    DATA_LEVELS,
    EQUALITY_CRITERIA,
    HC_TEV_M,
    OBSCORE_TABLE,
)
from ._product_criteria import check_product_criteria, parse_parameter, product_conditions
from ._units import angle_deg, energy_tev, position_criteria, time_text, to_mjd

__all__ = ["Criteria", "adql_number", "adql_string", "build_adql", "to_mjd"]

StrOrList = str | list[str] | None

_TELESCOPE_TYPE = re.compile(r"^[A-Za-z0-9]{1,16}$")

#: Largest ``limit`` (ADQL ``TOP``): more rows than any result ctanb holds in memory.
MAX_LIMIT = 10_000_000


def adql_string(value: str) -> str:
    """An ADQL character literal: single-quoted, inner quotes doubled.

    Control characters (including NUL) are refused: they have no business in a
    search value and some back ends end a string at NUL.
    """
    if any(ord(ch) < 32 for ch in value):
        raise CriteriaError(f"value {value!r} contains a control character")
    return "'" + value.replace("'", "''") + "'"


def adql_number(value: float) -> str:
    """An ADQL numeric literal of a finite float (repr keeps every digit)."""
    value = float(value)
    if not math.isfinite(value):
        raise CriteriaError(f"number {value!r} is not finite")
    return repr(value)


class Criteria(BaseModel):
    """What to search for in an ObsCore archive of IACT data.

    Every field is optional; the ones given are combined with AND. String
    criteria accept one value or a list (any of them). Invalid values raise
    :class:`~ctanb.CriteriaError` naming the field. ``position`` is accepted for
    ``target`` (the astroquery/pyvo name) and ``time`` for ``time_start``/``time_end``.

    Parameters
    ----------
    target : str or SkyCoord
        Target name, resolved to coordinates (Sesame, cache, bundled TeV sources,
        archive names); a SkyCoord stands for its position.
    ra, dec : float, Quantity, Angle or str
        ICRS position in degrees (instead of ``target``): ``83.63``,
        ``83.63 * u.deg``, ``"05h34m31.9s"``.
    radius : float, Quantity, Angle or str
        Search radius in degrees (``3``, ``3 * u.deg``, ``"3 deg"``, ``"30 arcmin"``).
        Without it the position must be inside the footprint (``s_region``).
    spatial : {"footprint", "pointing"}
        With ``radius``: match footprints that overlap the circle (default) or
        pointings inside it.
    time_start, time_end : str, float or astropy.time.Time
        Time range (ISO strings are UTC, numbers MJD); ``time=(start, end)`` is
        accepted as a shortcut, ``time="2004-12-04"`` means that day.
    energy_min, energy_max : float, Quantity or str
        Energies that the data must reach (translated to ``em_min`` / ``em_max``):
        numbers are TeV, quantities any energy unit (``500 * u.GeV``, ``"50 TeV"``).
    data_level : str
        CTA data level, ``"DL3"`` etc. (prefix of ``dataproduct_subtype``).
    calib_level : int or list of int
        ObsCore calibration level(s).
    sub_array_includes : str or list of str
        Telescope types the sub-array must contain, e.g. ``"LST"``.
    exclude_pointing_mode : str or list of str
        Pointing modes to leave out (rows without a pointing mode are kept).
    max_zenith : float, Quantity, Angle or str
        Largest mean zenith angle (numbers are degrees).
    limit : int
        Largest number of rows (``TOP``).
    target_name, obs_id, collection, facility, instrument : str or list of str
        ObsCore ``target_name``, ``obs_id``, ``obs_collection``, ``facility_name``,
        ``instrument_name``: one value or any of a list.
    site, sub_array : str or list of str
        CTA extension: site and sub-array name.
    dataproduct_type, dataproduct_subtype : str or list of str
        ObsCore product type (``"event"``) and the CTA subtype (``"DL3-events"``).
    pointing_mode, obs_mode, obs_type : str or list of str
        CTA extension: pointing mode (e.g. ``"divergent"``), observation mode
        (e.g. ``"wobble"``) and type (e.g. ``"science"``).
    proposal_id, data_rights, target_class : str or list of str
        Proposal, ``"public"`` or ``"proprietary"``, and source class (``"blazar"``).
    calib_version, reco_version, reco_method, applied_cuts, data_quality : str or list of str
        Pipeline versions, reconstruction method, cuts (``"loose"``...) and data
        quality of the CTA extension.
    product_kind : str or list of str
        Kind of published product (``counts``, ``flux_points``...): the end of
        ``dataproduct_subtype`` (with ``data_level`` DL4 or DL5, else both).
    derived_from_run : str, int or list
        Products with this run (``obs_id``) anywhere in their lineage.
    software, software_version : str
        Products with an activity run with this software (``gammapy``, ``2.1``)
        anywhere in their lineage.
    step, step_version : str
        Products with this step (``counts-map``) and version (``1.0``) anywhere in
        their lineage (the step that made them or one that made their inputs).
    parameter : str or dict
        ``"radius_deg = 0.1"`` (``;`` between several) or ``{"radius_deg": 0.1}``:
        a parameter value of an activity anywhere in the product's lineage.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)

    target: str | None = None
    ra: float | None = None
    dec: float | None = None
    radius: float | None = None
    spatial: Literal["footprint", "pointing"] = "footprint"
    time_start: float | None = None
    time_end: float | None = None
    energy_min: float | None = None
    energy_max: float | None = None
    data_level: str | None = None
    calib_level: int | list[int] | None = None
    sub_array_includes: StrOrList = None
    exclude_pointing_mode: StrOrList = None
    max_zenith: float | None = None
    limit: int | None = None
    target_name: StrOrList = None
    obs_id: StrOrList = None
    collection: StrOrList = None
    facility: StrOrList = None
    instrument: StrOrList = None
    site: StrOrList = None
    sub_array: StrOrList = None
    dataproduct_type: StrOrList = None
    dataproduct_subtype: StrOrList = None
    pointing_mode: StrOrList = None
    obs_mode: StrOrList = None
    obs_type: StrOrList = None
    proposal_id: StrOrList = None
    data_rights: StrOrList = None
    target_class: StrOrList = None
    calib_version: StrOrList = None
    reco_version: StrOrList = None
    reco_method: StrOrList = None
    applied_cuts: StrOrList = None
    data_quality: StrOrList = None
    # Published products (DL4/DL5) and their provenance (ctanb.client._product_criteria).
    product_kind: StrOrList = None
    derived_from_run: StrOrList = None
    software: str | None = None
    software_version: str | None = None
    step: str | None = None
    step_version: str | None = None
    parameter: dict[str, str] | None = None

    def __init__(self, **data: Any) -> None:
        shortcuts = ("time", "position")
        unknown = [k for k in data if k not in type(self).model_fields and k not in shortcuts]
        if unknown:
            name = unknown[0]
            close = get_close_matches(name, [*type(self).model_fields, *shortcuts], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CriteriaError(f"unknown search criterion {name!r}{hint}", field=name)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _criteria_error(exc) from None

    def __setattr__(self, name: str, value: Any) -> None:
        # Frozen (a search can be repeated from its criteria): said in the user's words.
        raise CriteriaError(
            f"{name}: criteria cannot be changed once made; make new ones, e.g. "
            f"Criteria(**{{**criteria.given(), {name!r}: ...}})",
            field=name,
        )

    # --- value checks -------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _expand_shortcuts(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, value in data.items():
            # An empty list (often an empty selection) would drop the criterion and match
            # the whole archive; "no rows" would hide the mistake: refused, so it is seen.
            if isinstance(value, list | tuple | set | frozenset) and not value:
                raise CriteriaError(
                    f"{key}: the list is empty; give at least one value, or leave {key} out "
                    "to search without it",
                    field=key,
                )
        if "time" in data:
            separate = [k for k in ("time_start", "time_end") if data.get(k) is not None]
            if separate and data["time"] is not None:
                raise CriteriaError(
                    f"time: give time=(start, end) or {' and '.join(separate)}, not both",
                    field="time",
                )
            value = data.pop("time")
            if getattr(value, "isscalar", True) is False:  # an astropy Time of [start, end]
                value = list(value)
            if isinstance(value, tuple | list):
                if len(value) != 2:
                    raise CriteriaError("time: give (start, end)", field="time")
                for item in value:  # a bad time is named as the user wrote it: time
                    to_mjd(item, "time")
                data.setdefault("time_start", value[0])
                data.setdefault("time_end", value[1])
            elif value is not None:
                data.setdefault("time_start", value)
                # A bare date means the whole day.
                to_mjd(value, "time")
                if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
                    data.setdefault("time_end", to_mjd(value, "time") + 1.0)
                else:
                    data.setdefault("time_end", value)
        given = {k: data[k] for k in ("time_start", "time_end") if data.get(k) is not None}
        for key, value in given.items():
            data[key] = to_mjd(value, key)
        if len(given) == 2 and data["time_end"] < data["time_start"]:
            raise CriteriaError(
                f"time_end ({time_text(given['time_end'])}) is before time_start "
                f"({time_text(given['time_start'])}): swap them",
                field="time_end",
            )
        for key in ("position", "target"):
            value = data.pop(key, None)
            if value is not None:
                # A name is resolved later; a SkyCoord stands for its position.
                for name, found in position_criteria(value, key).items():
                    if data.get(name) is not None:
                        raise CriteriaError(
                            f"{key}: give one position (a name, a SkyCoord or ra/dec)", field=key
                        )
                    data[name] = found
        for key in ("ra", "dec", "radius", "max_zenith"):
            data[key] = angle_deg(data.get(key), key)
        for key in ("energy_min", "energy_max"):
            data[key] = energy_tev(data.get(key), key)
        data["parameter"] = parse_parameter(data.get("parameter"))
        return {k: v for k, v in data.items() if v is not None}

    @field_validator("obs_id", "proposal_id", "derived_from_run", mode="before")
    @classmethod
    def _ids_as_text(cls, v: Any) -> Any:
        # Run numbers are often typed as integers; the column holds text.
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        if isinstance(v, list | tuple):
            return [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
        return v

    @field_validator("ra")
    @classmethod
    def _check_ra(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0.0 <= v <= 360.0):
            raise ValueError(f"must be in [0, 360] degrees, got {v}")
        return v

    @field_validator("dec")
    @classmethod
    def _check_dec(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and -90.0 <= v <= 90.0):
            raise ValueError(f"must be in [-90, 90] degrees, got {v}")
        return v

    @field_validator("radius")
    @classmethod
    def _check_radius(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0.0 < v <= 180.0):
            raise ValueError(f"must be in (0, 180] degrees, got {v}")
        return v

    @field_validator("energy_min", "energy_max")
    @classmethod
    def _check_energy(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and v > 0.0):
            raise ValueError(f"must be a positive number of TeV, got {v}")
        return v

    @field_validator("max_zenith")
    @classmethod
    def _check_zenith(cls, v: float | None) -> float | None:
        if v is not None and not (math.isfinite(v) and 0.0 <= v <= 90.0):
            raise ValueError(f"must be in [0, 90] degrees, got {v}")
        return v

    @field_validator("limit")
    @classmethod
    def _check_limit(cls, v: int | None) -> int | None:
        if v is not None and not 1 <= v <= MAX_LIMIT:
            raise ValueError(f"must be from 1 to {MAX_LIMIT:,}, got {v}")
        return v

    @field_validator("data_level")
    @classmethod
    def _check_level(cls, v: str | None) -> str | None:
        if v is not None and v.upper() not in DATA_LEVELS:
            raise ValueError(f"data level must be one of {', '.join(DATA_LEVELS)}, got {v!r}")
        return v.upper() if v is not None else v

    @field_validator("sub_array_includes")
    @classmethod
    def _check_telescopes(cls, v: StrOrList) -> StrOrList:
        for item in _as_list(v):
            if not _TELESCOPE_TYPE.match(item):
                raise ValueError(f"telescope type must be letters/digits like 'LST', got {item!r}")
        return v

    @model_validator(mode="after")
    def _check_combinations(self) -> Criteria:
        for name, column_name in EQUALITY_CRITERIA.items():
            allowed = CHOICES.get(column_name)
            for item in _as_list(getattr(self, name)):
                if allowed and item not in allowed:
                    raise CriteriaError(
                        f"{name}: {item!r} is not one of {', '.join(allowed)}", field=name
                    )
        for item in _as_list(self.exclude_pointing_mode):
            if item not in CHOICES["pointing_mode"]:
                raise CriteriaError(
                    f"exclude_pointing_mode: {item!r} is not one of "
                    f"{', '.join(CHOICES['pointing_mode'])}",
                    field="exclude_pointing_mode",
                )
        check_product_criteria(self.__dict__)
        if (self.ra is None) != (self.dec is None):
            field = "dec" if self.dec is None else "ra"
            raise CriteriaError(f"{field}: give both ra and dec", field=field)
        if self.target is not None and self.ra is not None:
            raise CriteriaError("target: give a target name or ra/dec, not both", field="target")
        if self.target is not None and not self.target.strip():
            raise CriteriaError("target: the name is empty", field="target")
        if self.radius is not None and self.target is None and self.ra is None:
            raise CriteriaError("radius: give a target or ra/dec as well", field="radius")
        if self.spatial == "pointing" and self.radius is None:
            raise CriteriaError("spatial='pointing' needs a radius", field="radius")
        if (
            self.time_start is not None
            and self.time_end is not None
            and self.time_end < self.time_start
        ):
            raise CriteriaError(
                f"time_end (MJD {self.time_end}) is before time_start (MJD {self.time_start})",
                field="time_end",
            )
        if (
            self.energy_min is not None
            and self.energy_max is not None
            and self.energy_max < self.energy_min
        ):
            raise CriteriaError(
                f"energy_max ({self.energy_max} TeV) is below energy_min ({self.energy_min} TeV)",
                field="energy_max",
            )
        return self

    # --- helpers ------------------------------------------------------------------
    @property
    def needs_resolution(self) -> bool:
        """True when a target name must be resolved to coordinates."""
        return self.target is not None

    def given(self) -> dict[str, Any]:
        """The criteria that were set (for display and history).

        Returns
        -------
        dict
            Name -> value of every criterion given (defaults left out).
        """
        return self.model_dump(exclude_defaults=True)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _criteria_error(exc: ValidationError) -> CriteriaError:
    from .._validation import problem_parts  # needed only for a bad criterion

    first = exc.errors()[0]
    original = (first.get("ctx") or {}).get("error")
    if isinstance(original, CriteriaError):
        # Raised by one of our validators with the field already named.
        return original
    loc, msg = problem_parts(first, unknown="unknown search criterion")
    field = next((x for x in loc if not x.isdigit()), None)
    given = first.get("input")
    prefix = f"{field}: " if field else ""
    detail = f" (got {given!r})" if field and not isinstance(given, dict) else ""
    if detail and repr(given) in msg:
        detail = ""
    return CriteriaError(f"{prefix}{msg}{detail}", field=field)


def _col(name: str) -> str:
    # Only whitelisted data-model columns reach the query text.
    if name not in COLUMNS_BY_NAME:
        raise CriteriaError(f"ivoa.obscore has no column {name!r}")
    return name


def _in(column_name: str, values: list) -> str:
    col = _col(column_name)
    lits = [adql_number(v) if isinstance(v, int | float) else adql_string(str(v)) for v in values]
    if len(lits) == 1:
        return f"{col} = {lits[0]}"
    return f"{col} IN ({', '.join(lits)})"


def build_adql(
    criteria: Criteria,
    *,
    position: tuple[float, float] | None = None,
    columns: list[str] | None = None,
) -> str:
    """The ADQL query for *criteria*.

    Parameters
    ----------
    criteria : Criteria
        Validated criteria.
    position : tuple of float, optional
        ``(ra, dec)`` in degrees of the resolved ``target`` (required when
        ``criteria.target`` is set).
    columns : list of str, optional
        Columns to select (default: all).

    Returns
    -------
    str
        One ``SELECT`` over ``ivoa.obscore``, ordered by ``t_min``.
    """
    where: list[str] = []
    if criteria.ra is not None and criteria.dec is not None:
        position = (criteria.ra, criteria.dec)
    elif criteria.target is not None and position is None:
        raise CriteriaError("target: the name was not resolved to a position", field="target")
    if position is not None:
        ra, dec = (adql_number(x) for x in position)
        point = f"POINT('ICRS', {ra}, {dec})"
        if criteria.radius is None:
            where.append(f"CONTAINS({point}, {_col('s_region')}) = 1")
        else:
            circle = f"CIRCLE('ICRS', {ra}, {dec}, {adql_number(criteria.radius)})"
            if criteria.spatial == "pointing":
                pnt = f"POINT('ICRS', {_col('s_ra')}, {_col('s_dec')})"
                where.append(f"CONTAINS({pnt}, {circle}) = 1")
            else:
                where.append(f"INTERSECTS({circle}, {_col('s_region')}) = 1")
    if criteria.time_start is not None:
        where.append(f"{_col('t_max')} >= {adql_number(criteria.time_start)}")
    if criteria.time_end is not None:
        where.append(f"{_col('t_min')} <= {adql_number(criteria.time_end)}")
    if criteria.energy_min is not None:
        where.append(f"{_col('em_min')} <= {adql_number(HC_TEV_M / criteria.energy_min)}")
    if criteria.energy_max is not None:
        where.append(f"{_col('em_max')} >= {adql_number(HC_TEV_M / criteria.energy_max)}")
    if criteria.data_level is not None:
        where.append(f"{_col('dataproduct_subtype')} LIKE {adql_string(criteria.data_level + '%')}")
    if criteria.calib_level is not None:
        where.append(_in("calib_level", [int(x) for x in _as_list(criteria.calib_level)]))
    for telescope in _as_list(criteria.sub_array_includes):
        # Validated to letters and digits, so no LIKE wildcard can sneak in.
        where.append(f"{_col('sub_array_name')} LIKE {adql_string('%' + telescope + '%')}")
    excluded = _as_list(criteria.exclude_pointing_mode)
    if excluded:
        col = _col("pointing_mode")
        lits = ", ".join(adql_string(x) for x in excluded)
        where.append(f"({col} IS NULL OR {col} NOT IN ({lits}))")
    if criteria.max_zenith is not None:
        where.append(f"{_col('zen_pnt')} <= {adql_number(criteria.max_zenith)}")
    for name, column_name in EQUALITY_CRITERIA.items():
        values = _as_list(getattr(criteria, name))
        if values:
            where.append(_in(column_name, values))
    where += product_conditions(criteria, adql_string)
    select = ", ".join(_col(c) for c in columns) if columns else "*"
    top = f"TOP {int(criteria.limit)} " if criteria.limit else ""
    text = f"SELECT {top}{select} FROM {OBSCORE_TABLE}"
    if where:
        text += "\nWHERE " + "\n  AND ".join(where)
    return text + "\nORDER BY t_min"
