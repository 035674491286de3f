"""Pydantic validation errors in the user's words: the one formatter of ctanb.

Every configuration, parameter set and form that ctanb checks with pydantic turns
its :class:`pydantic.ValidationError` into a message through :func:`describe_errors`:
one ``key.path: problem`` per problem, joined with ``"; "``. The problem is said
plainly: pydantic's internal names (union branches such as ``str`` or
``function-after[...]``, the ``Value error,`` prefix, links to pydantic's site)
never reach the user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from difflib import get_close_matches
from typing import Any

__all__ = ["describe_errors", "describe_problem", "problem_parts", "short"]

#: Location entries pydantic adds for the branches of a union, not keys the user wrote.
_BRANCH = re.compile(r"[\w-]+\[.*\]|str|int|float|bool|bytes|none|list|dict|tuple|set|frozenset")

#: Pydantic's own words for some error types, said for a person who edits a file or a form.
_MESSAGES = {
    "extra_forbidden": "unknown setting",
    "missing": "missing (it is required)",
    # "a valid dictionary or instance of DataStoreSelection": a class name the user never wrote
    "model_type": "should be a section of settings (key: value lines), not a single value",
}

#: astropy's parser words for a text that is not an angle (gammapy's angle settings).
_NOT_AN_ANGLE = re.compile(r"Invalid character at col \d+ parsing angle (?P<text>'.*')")


def short(value: Any, limit: int = 60) -> str:
    """*value* as a message shows it: its repr, cut to *limit* characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def problem_parts(
    error: Any,
    *,
    unknown: str = "unknown setting",
    with_input: bool = False,
    known: Iterable[str] = (),
) -> tuple[list[str], str]:
    """The key path and the plain message of one pydantic error.

    Parameters
    ----------
    error : dict
        One item of :meth:`pydantic.ValidationError.errors`.
    unknown : str
        What to call a key that is not allowed (``unknown setting``,
        ``unknown search criterion``, ...).
    with_input : bool
        Add the value given (``(got '83.6 deg')``) when it is a plain value the
        message does not already show.
    known : iterable of str
        The top-level keys there are: an unknown top-level key gets the closest
        one as a hint (``did you mean on_radius_deg?``).

    Returns
    -------
    tuple of (list of str, str)
        The keys from the top (list positions as numbers) and the message.
    """
    where = [
        str(part)
        for part in error.get("loc", ())
        if not (isinstance(part, str) and _BRANCH.fullmatch(part))
    ]
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        message = unknown
        close = get_close_matches(where[-1], list(known), n=1) if len(where) == 1 else []
        if close:
            message += f"; did you mean {close[0]}?"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind]
    else:
        message = str(error.get("msg", "invalid value"))
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        message = re.sub(r"^Input should be\b", "should be", message)
        angle = _NOT_AN_ANGLE.search(message)
        if angle:
            message = f"{angle['text']} is not an angle (give degrees, e.g. '0.02 deg')"
    given = error.get("input")
    if (
        with_input
        and kind not in ("missing", "extra_forbidden")
        and isinstance(given, str | int | float | bool | list | tuple)
        and repr(given) not in message
    ):
        message += f" (got {short(given, 80)})"
    return where, message


def describe_problem(
    error: Any,
    *,
    unknown: str = "unknown setting",
    with_input: bool = False,
    known: Iterable[str] = (),
) -> str:
    """One pydantic error as ``key.path: message`` (just the message at the top level).

    Parameters
    ----------
    error : dict
        One item of :meth:`pydantic.ValidationError.errors`.
    unknown : str
        What to call a key that is not allowed.
    with_input : bool
        Add the value given (see :func:`problem_parts`).
    known : iterable of str
        The top-level keys there are, for a hint on a misspelt one.

    Returns
    -------
    str
        The problem, naming the key.
    """
    where, message = problem_parts(error, unknown=unknown, with_input=with_input, known=known)
    return f"{'.'.join(where)}: {message}" if where else message


def describe_errors(
    exc: Any,
    *,
    unknown: str = "unknown setting",
    with_input: bool = False,
    known: Iterable[str] = (),
) -> str:
    """Every problem of a :class:`pydantic.ValidationError`, joined with ``"; "``.

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error pydantic raised.
    unknown : str
        What to call a key that is not allowed.
    with_input : bool
        Add the value given to each problem (see :func:`problem_parts`).
    known : iterable of str
        The top-level keys there are, for a hint on a misspelt one.

    Returns
    -------
    str
        ``key.path: message; other.key: message`` (each problem once).

    Examples
    --------
    >>> from pydantic import BaseModel, ConfigDict, ValidationError
    >>> class Binning(BaseModel):
    ...     model_config = ConfigDict(extra="forbid")
    ...     nbins: int
    >>> try:
    ...     Binning(nbins="many", colour="red")
    ... except ValidationError as exc:
    ...     print(describe_errors(exc))
    nbins: should be a valid integer, unable to parse string as an integer; colour: unknown setting
    """
    problems = [
        describe_problem(err, unknown=unknown, with_input=with_input, known=known)
        for err in exc.errors()
    ]
    return "; ".join(dict.fromkeys(problems))
