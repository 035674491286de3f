"""Astropy values as search criteria: angles, energies and positions.

Astronomers pass quantities, coordinates and times (pyvo, astroquery and gammapy
take them); :class:`~ctanb.client.Criteria` keeps plain numbers in fixed units
(degrees, TeV, MJD). These functions turn what a user gives into those numbers,
or raise :class:`~ctanb.CriteriaError` naming the field and the forms accepted.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

from .._errors import CriteriaError

__all__ = ["angle_deg", "energy_tev", "position_criteria", "time_text", "to_mjd"]

#: Two or more sexagesimal parts: 05h34m31.9s, -22d00m52s, 22°00'52", 05:34:31.9.
_SEXAGESIMAL = re.compile(r"^[+-]?\d+(\.\d*)?\s*[hd:°]\s*\d")


def _plain_number(value: Any) -> float | None:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def angle_deg(value: Any, field: str) -> Any:
    """Degrees from a number (degrees), an astropy Quantity/Angle or a text.

    Texts may carry a unit (``"3 deg"``, ``"30 arcmin"``) or be sexagesimal
    (``"05h34m31.9s"``, ``"22d00m52s"``; an ``ra`` with colons, ``"05:34:31.9"``,
    is in hours). ``None`` stays ``None``.
    """
    if value is None:
        return None
    plain = _plain_number(value)
    if plain is not None:
        return plain
    from astropy import units as u
    from astropy.coordinates import Angle

    try:
        if isinstance(value, u.Quantity):
            return float(value.to_value(u.deg))
        if isinstance(value, str):
            text = value.strip()
            try:
                return float(text)
            except ValueError:
                pass
            if _SEXAGESIMAL.match(text):  # 05h34m31.9s, 22d00m52s, 05:34:31.9
                # RA written with colons is in hours, as catalogues write it.
                hours = "h" in text or (field == "ra" and ":" in text)
                return float(Angle(text, unit=u.hourangle if hours else u.deg).deg)
            return float(u.Quantity(text).to_value(u.deg))
    except (TypeError, ValueError, u.UnitsError):
        pass
    raise CriteriaError(
        f"{field}: {value!r} is not an angle (give degrees: 3, '3 deg', 3 * u.deg, "
        "an astropy Angle or '05h34m31.9s')",
        field=field,
    )


def energy_tev(value: Any, field: str) -> Any:
    """TeV from a number (TeV), an astropy Quantity of energy or a text (``"500 GeV"``)."""
    if value is None:
        return None
    plain = _plain_number(value)
    if plain is not None:
        return plain
    from astropy import units as u

    try:
        if isinstance(value, str):
            text = value.strip()
            try:
                return float(text)
            except ValueError:
                value = u.Quantity(text)
        if isinstance(value, u.Quantity):
            return float(value.to_value(u.TeV))
    except (TypeError, ValueError, u.UnitsError):
        pass
    raise CriteriaError(
        f"{field}: {value!r} is not an energy (give TeV: 0.5, '500 GeV', 500 * u.GeV)",
        field=field,
    )


def position_criteria(value: Any, field: str) -> dict[str, Any]:
    """``{"target": name}`` or ``{"ra": deg, "dec": deg}`` of a name or a SkyCoord."""
    if isinstance(value, str):
        return {"target": value}
    try:
        icrs = value.icrs
        return {"ra": float(icrs.ra.deg), "dec": float(icrs.dec.deg)}
    except (AttributeError, TypeError, ValueError):
        raise CriteriaError(
            f"{field}: {value!r} is neither a target name nor an astropy SkyCoord", field=field
        ) from None


def time_text(value: Any) -> str:
    """A time as the user gave it, for messages: ISO text as typed, a number as ``MJD x``."""
    if isinstance(value, str) and not _is_number_text(value):
        return value.strip()
    if hasattr(value, "isot"):
        return f"{value.isot} {str(value.scale).upper()}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return f"MJD {float(value):g}"


def _is_number_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _checked_mjd(number: float, field: str, given: Any) -> float:
    """*number* as an MJD, refused (naming the likely mistake) outside 1900-2100."""
    from ..archive.gti import MJD_RANGE

    if not math.isfinite(number):
        raise CriteriaError(
            f"{field}: {given!r} is not a time (a number must be finite)", field=field
        )
    if not MJD_RANGE[0] <= number <= MJD_RANGE[1]:
        if 1900 <= number <= 2100:
            guess = f"a year? write it as an ISO date, e.g. '{int(number)}-01-01'"
        else:
            guess = "mission seconds or a JD? give an ISO time such as '2004-12-04T22:00:00' (UTC)"
        raise CriteriaError(
            f"{field}: {given!r} is not an MJD (expected days between {MJD_RANGE[0]:g} = 1900 "
            f"and {MJD_RANGE[1]:g} = 2100): {guess}",
            field=field,
        )
    return number


def to_mjd(value: Any, field: str) -> float:
    """An MJD (TT) from a number (MJD), an ISO string (UTC) or an astropy Time.

    Numbers (and numeric text) must be MJDs between 1900 and 2100: anything else is
    almost surely a year, mission seconds or a JD given by mistake and is refused.
    """
    from astropy.time import Time

    try:
        if isinstance(value, Time):
            if not value.isscalar:
                raise ValueError("one time, not an array")
            return float(value.tt.mjd)
        if hasattr(value, "isoformat"):  # a datetime (taken as UTC) or a date
            return float(Time(value, scale="utc").tt.mjd)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return _checked_mjd(float(value), field, value)
        if isinstance(value, str):
            text = value.strip()
            if _is_number_text(text):
                return _checked_mjd(float(text), field, value)
            return float(Time(text, scale="utc").tt.mjd)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, CriteriaError):
            raise
    raise CriteriaError(
        f"{field}: {value!r} is not a time (give an ISO string such as "
        "'2004-12-04T22:00:00' (UTC), an MJD number (TT) or an astropy Time)",
        field=field,
    )
