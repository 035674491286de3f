"""VOSI endpoints: ``/capabilities`` (TAPRegExt), ``/tables`` (VODataService), ``/availability``.

``/availability`` is built with ``vo-models``. The capabilities are not: its
``AccessURL`` is a pydantic ``AnyUrl``, which turns the service root
``http://host:port`` into ``http://host:port/``, and a client appending ``/sync``
to that base would ask for ``//sync``.
"""

from __future__ import annotations

import sqlite3
from xml.sax.saxutils import escape, quoteattr

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from vo_models.vosi.availability import Availability

from .params import ServiceFault
from .state import ArchiveState

__all__ = ["ADQL_GEO_FEATURES", "availability", "capabilities", "tables"]

_XML = "text/xml; charset=utf-8"
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
_XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
_VS = 'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'

#: ADQL geometry functions the translator implements (TAPRegExt adqlgeo features).
ADQL_GEO_FEATURES = ("POINT", "CIRCLE", "POLYGON", "BOX", "CONTAINS", "INTERSECTS", "DISTANCE",
                     "COORD1", "COORD2")  # fmt: skip
#: Other ADQL 2.1 optional features (TAPRegExt feature types) the translator implements.
ADQL_OPTIONAL_FEATURES = (
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-string", ("LOWER", "ILIKE")),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-offset", ("OFFSET",)),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-type", ("CAST",)),
    ("ivo://ivoa.net/std/TAPRegExt#features-adql-sets", ("UNION", "EXCEPT", "INTERSECT")),
)


def _capabilities_xml(base: str, state: ArchiveState) -> str:
    s = state.settings
    geo = "".join(f"<feature><form>{f}</form></feature>" for f in ADQL_GEO_FEATURES)
    optional = "".join(
        f"<languageFeatures type={quoteattr(t)}>"
        + "".join(f"<feature><form>{f}</form></feature>" for f in forms)
        + "</languageFeatures>"
        for t, forms in ADQL_OPTIONAL_FEATURES
    )
    # User-defined functions (TAPRegExt features-udf): the time-MOC intersection.
    from ..adql_tmoc import TMOC_UDF_FORMS

    optional += (
        '<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-udf">'
        + "".join(
            f"<feature><form>{escape(form)}</form><description>{escape(doc)}</description>"
            "</feature>"
            for form, doc in TMOC_UDF_FORMS
        )
        + "</languageFeatures>"
    )

    def simple(std: str, path: str) -> str:
        return (
            f"<capability standardID={quoteattr(std)}>"
            f'<interface xsi:type="vs:ParamHTTP"><accessURL use="full">'
            f"{escape(base + path)}</accessURL></interface></capability>\n"
        )

    return (
        f"{_HEAD}<vosi:capabilities "
        'xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
        'xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
        f'{_VS} xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0" {_XSI}>\n'
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        '<interface xsi:type="vs:ParamHTTP" role="std" version="1.1">'
        f'<accessURL use="base">{escape(base)}</accessURL></interface>'
        '<dataModel ivo-id="ivo://ivoa.net/std/ObsCore#core-1.1">ObsCore-1.1</dataModel>'
        "<language><name>ADQL</name>"
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
        "<description>ADQL 2.1 translated to SQLite; spatial predicates use an R-tree index"
        "</description>"
        '<languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">'
        f"{geo}</languageFeatures>{optional}</language>"
        '<outputFormat ivo-id="ivo://ivoa.net/std/TAPRegExt#output-votable-td">'
        "<mime>application/x-votable+xml</mime><alias>votable</alias></outputFormat>"
        "<outputFormat><mime>text/csv</mime><alias>csv</alias></outputFormat>"
        f"<retentionPeriod><default>{s.retention_s}</default><hard>{s.retention_s}</hard>"
        "</retentionPeriod>"
        f"<executionDuration><default>{s.execution_duration_s}</default>"
        f"<hard>{s.execution_duration_s}</hard></executionDuration>"
        f'<outputLimit><default unit="row">{s.maxrec_default}</default>'
        f'<hard unit="row">{s.maxrec_hard}</hard></outputLimit>'
        "</capability>\n"
        + simple("ivo://ivoa.net/std/VOSI#capabilities", "/capabilities")
        + simple("ivo://ivoa.net/std/VOSI#availability", "/availability")
        + simple("ivo://ivoa.net/std/VOSI#tables-1.1", "/tables")
        + simple("ivo://ivoa.net/std/DataLink#links-1.1", "/datalink")
        + "</vosi:capabilities>\n"
    )


async def capabilities(request: Request) -> Response:
    """VOSI capabilities (TAP 1.1 with TAPRegExt)."""
    state: ArchiveState = request.app.state.archive
    base = state.public_base(str(request.base_url))
    return Response(_capabilities_xml(base, state), media_type=_XML)


def _read_tap_schema(state: ArchiveState) -> tuple[list, list, list, list]:
    conn = state.connection()
    try:
        schemas = conn.execute(
            'SELECT schema_name, description FROM "tap_schema.schemas" '
            "ORDER BY schema_index, schema_name"
        ).fetchall()
        tabs = conn.execute(
            "SELECT schema_name, table_name, table_type, description, utype "
            'FROM "tap_schema.tables" ORDER BY table_index, table_name'
        ).fetchall()
        cols = conn.execute(
            "SELECT table_name, column_name, description, unit, ucd, utype, datatype, "
            'arraysize, xtype, indexed, principal, std FROM "tap_schema.columns" '
            "ORDER BY table_name, column_index"
        ).fetchall()
        keys = conn.execute(
            "SELECT k.key_id, k.from_table, k.target_table, k.description, c.from_column, "
            'c.target_column FROM "tap_schema.keys" AS k JOIN "tap_schema.key_columns" AS c '
            "ON c.key_id = k.key_id ORDER BY k.key_id"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise ServiceFault(f"the archive database cannot be read: {exc}", 503) from None
    return schemas, tabs, cols, keys


def _opt(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>" if value not in (None, "") else ""


def _table_xml(table: tuple, columns: list[tuple], keys: list[tuple], detail: bool) -> str:
    _, name, ttype, desc, utype = table
    out = [f'<table type="{"view" if ttype == "view" else "output"}">', _opt("name", name)]
    out += [_opt("description", desc), _opt("utype", utype)]
    if detail:
        for (
            tname,
            cname,
            cdesc,
            unit,
            ucd,
            cutype,
            datatype,
            arraysize,
            xtype,
            idx,
            prin,
            std,
        ) in columns:
            if tname != name:
                continue
            attrs = f' arraysize="{escape(arraysize)}"' if arraysize else ""
            if xtype:
                attrs += f" extendedType={quoteattr(xtype)}"
            flags = "".join(
                f"<flag>{f}</flag>"
                for f, on in (("indexed", idx), ("principal", prin), ("std", std))
                if on
            )
            out.append(
                "<column>" + _opt("name", cname) + _opt("description", cdesc) + _opt("unit", unit)
                + _opt("ucd", ucd) + _opt("utype", cutype)
                + f'<dataType xsi:type="vs:VOTableType"{attrs}>{escape(datatype or "char")}'
                "</dataType>" + flags + "</column>"
            )  # fmt: skip
        fks: dict[str, list[tuple]] = {}
        for key_id, from_table, *rest in keys:
            if from_table == name:
                fks.setdefault(key_id, []).append(tuple(rest))
        for parts in fks.values():
            target, desc = parts[0][0], parts[0][1]
            pairs = "".join(
                f"<fkColumn>{_opt('fromColumn', fc)}{_opt('targetColumn', tc)}</fkColumn>"
                for _, _, fc, tc in parts
            )
            out.append(
                f"<foreignKey>{_opt('targetTable', target)}{pairs}{_opt('description', desc)}"
                "</foreignKey>"
            )
    out.append("</table>\n")
    return "".join(out)


def tables_xml(state: ArchiveState, *, detail: bool = True, only: str | None = None) -> str:
    """The VOSI tableset (or one table) from TAP_SCHEMA."""
    schemas, tabs, cols, keys = _read_tap_schema(state)
    if only is not None:
        match = [t for t in tabs if t[1].lower() == only.lower()]
        if not match:
            raise ServiceFault(f"no table {only!r} on this service", 404)
        return (
            f'{_HEAD}<vosi:table xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" {_VS} '
            f'{_XSI} type="output">'
            + _table_xml(match[0], cols, keys, True)
            .removeprefix('<table type="output">')
            .removeprefix('<table type="view">')
            .replace("</table>", "</vosi:table>")
        )
    body = []
    for sname, sdesc in schemas:
        body.append("<schema>" + _opt("name", sname) + _opt("description", sdesc))
        body += [_table_xml(t, cols, keys, detail) for t in tabs if t[0] == sname]
        body.append("</schema>\n")
    return (
        f'{_HEAD}<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" {_VS} '
        f"{_XSI}>\n" + "".join(body) + "</vosi:tableset>\n"
    )


async def tables(request: Request) -> Response:
    """VOSI tables 1.1 (``?detail=min`` lists tables only; ``/tables/<name>`` one table)."""
    state: ArchiveState = request.app.state.archive
    only = request.path_params.get("name")
    detail = request.query_params.get("detail", "max").lower() != "min"
    body = await run_in_threadpool(tables_xml, state, detail=detail, only=only)
    return Response(body, media_type=_XML)


async def availability(request: Request) -> Response:
    """VOSI availability: true when the database answers a query."""
    state: ArchiveState = request.app.state.archive

    def probe() -> tuple[bool, str]:
        try:
            state.connection().execute('SELECT count(*) FROM "tap_schema.tables"').fetchone()
        except (sqlite3.Error, ServiceFault) as exc:
            return False, f"the archive database cannot be read: {exc}"
        return True, "the embedded archive is accepting queries"

    up, note = await run_in_threadpool(probe)
    body = Availability(available=up, note=[note]).to_xml(encoding="UTF-8", xml_declaration=True)
    return Response(body, media_type=_XML)
