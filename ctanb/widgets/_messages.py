"""Error messages in the words of the person at the panel.

The client's messages are written for Python users (``ra=``, ``CTANB_TOKEN``,
``ctanb.connect(token=...)``) and a service's ADQL errors may carry its parser's
internals. A panel shows neither: :func:`panel_message` rewrites a
:class:`~ctanb.CtanbError` in the form's own words, and :func:`adql_problem`
turns a rejected query into the line, the column, the offending text and a hint.
"""

from __future__ import annotations

import re

from .._errors import CriteriaError, CtanbError, QueryError

__all__ = ["FIELD_LABELS", "adql_problem", "panel_message"]

#: Criterion -> the label of its box in the search form.
FIELD_LABELS = {
    "target": "Target", "ra": "RA", "dec": "Dec", "radius": "Radius", "time_start": "Start",
    "time_end": "End", "energy_min": "E min", "energy_max": "E max", "max_zenith": "Max zenith",
    "limit": "Limit", "time": "Start/End",
}  # fmt: skip

#: Python and HTTP words -> what the panel offers instead.
_REWRITES = [
    (re.compile(r"\s*Give ra=/dec= in degrees instead\.?"), " Or type RA and Dec (degrees)."),
    (re.compile(r"give a target or ra/dec as well"), "needs a position: a Target or RA and Dec"),
    (re.compile(r"give a target name or ra/dec, not both"), "use a Target or RA and Dec, not both"),
    (re.compile(r"give both ra and dec"), "type both RA and Dec"),
    (re.compile(r"ctanb\.connect\(token=\.\.\.\) or set CTANB_TOKEN"), "log in with your token"),
    (
        re.compile(r"send '?Authorization: (?:Bearer|Basic)[^'.;)]*'?( with a token)?", re.I),
        "log in with a token",
    ),
    (re.compile(r"\bra=|\bdec=|\bradius="), ""),
]

#: Marks of a parser's internals in a server message.
_INTERNALS = re.compile(
    r"<class '|Required keyword|sqlglot|Traceback|Error tokenizing|\bExpression\b"
)


def panel_message(exc: CtanbError) -> str:
    """The message of *exc* as the panel shows it (form labels, no code or headers)."""
    if isinstance(exc, QueryError) and exc.query and _about_the_text(exc):
        return adql_problem(exc)
    message = exc.message
    field = getattr(exc, "field", None)
    if isinstance(exc, CriteriaError) and field in FIELD_LABELS:
        message = re.sub(rf"^{re.escape(field)}:", f"{FIELD_LABELS[field]}:", message)
    for pattern, replacement in _REWRITES:
        message = pattern.sub(replacement, message)
    return message


def _about_the_text(exc: QueryError) -> bool:
    """True when the service found something wrong in the query's text (not, e.g., an abort)."""
    message = exc.message
    return bool(
        exc.position
        or _position_in(message)
        or re.search(r"syntax|unknown (table|column)|unsupported|near '|tokeniz", message, re.I)
    )


def adql_problem(exc: QueryError) -> str:
    """Line, column, the offending text and a hint for a rejected query."""
    query = exc.query or ""
    message = exc.message
    position = exc.position or _position_in(message)
    near = _near(message)
    if position is None and near:
        index = query.find(near)
        if index >= 0:
            before = query[:index]
            position = (before.count("\n") + 1, index - before.rfind("\n"))
    line_text = ""
    if position is not None:
        lines = query.splitlines() or [""]
        line_no = min(max(position[0], 1), len(lines))
        line_text = lines[line_no - 1]
        if not near:
            near = _token_at(line_text, position[1])
    problem = _problem(message)
    where = f" at line {position[0]}, column {position[1]}" if position else ""
    shown = f' near "{near}"' if near else ""
    text = f"The ADQL cannot be run{where}{shown}: {problem}"
    if line_text and position:
        caret = " " * max(position[1] - 1, 0) + "^"
        text += f"\n    {line_text}\n    {caret}"
    return text + f"\nHint: {_hint(message, query, near)}"


def _position_in(message: str) -> tuple[int, int] | None:
    found = re.search(r"line (\d+), column (\d+)", message)
    return (int(found.group(1)), int(found.group(2))) if found else None


def _near(message: str) -> str:
    found = re.search(r"near '([^']{1,40})'", message)
    return found.group(1) if found else ""


def _token_at(line: str, column: int) -> str:
    found = re.match(r"\s*(\S{1,30})", line[max(column - 1, 0) :])
    return found.group(1) if found else ""


def _problem(message: str) -> str:
    text = re.sub(
        r"^ADQL syntax error( at line \d+, column \d+)?( near '[^']*')?:?\s*", "", message
    )
    text = re.sub(r"\s*\(at line \d+, column \d+\)", "", text)
    if "unterminated" in text:
        return "a quoted text or name is not closed"
    if not text or _INTERNALS.search(text):
        return "this is not valid ADQL here"
    return text.rstrip(".")


def _hint(message: str, query: str, near: str) -> str:
    first = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
    if "unterminated" in message or query.count("'") % 2:
        return "close every quoted text with a single quote ('), e.g. target_name = 'Crab'"
    if first != "SELECT":
        return "an ADQL query starts with SELECT, e.g. SELECT TOP 10 * FROM ivoa.obscore"
    if "unknown table" in message:
        return "the observations are in ivoa.obscore"
    if "unknown column" in message:
        return (
            "the columns of ivoa.obscore are listed in the table's Columns menu (e.g. obs_id, s_ra)"
        )
    if re.search(r"\bTOP\s+(?!\d)", query, re.I):
        return "TOP needs a whole number, e.g. SELECT TOP 10 * FROM ivoa.obscore"
    if near and re.fullmatch(r"[-+*/<>=!]+|FROM|WHERE|AND|OR|ORDER|GROUP", near, re.I):
        return f'something is missing before "{near}": an operator needs a value on each side'
    return "check the spelling and the ADQL syntax at this point (press Rebuild ADQL to start again from the form)"
