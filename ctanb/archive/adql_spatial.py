"""Geometry part of the ADQL translator: shapes, geometry functions, R-tree lookups.

:class:`SpatialPart` is one of the parts the
:class:`~ctanb.archive.adql_translate.Translator` is composed of. A geometry
expression is compiled to a :class:`~ctanb.archive.adql_types.Geom`: its kind and
either the SQL of its numbers (``POINT(s_ra, s_dec)``, constant shapes) or the SQL
of a DALI text (``s_region``). User functions in :mod:`ctanb.archive.sqlfunctions`
receive it as a tag followed by those values. Shapes whose numbers are all
constants are evaluated here, so a constant ``CIRCLE`` costs nothing per row.
"""

from __future__ import annotations

import math

from sqlglot import exp

from .adql_check import LIMITS
from .adql_types import (
    STORED_GEOMETRY_KINDS,
    Geom,
    OutputColumn,
    Scope,
    Translating,
    Val,
    function_args,
    function_name,
    geometry_meta,
    sql_literal,
)
from .geometry import (
    angular_distance,
    area,
    box_polygon,
    cap_bbox,
    contains,
    enclosing_cap,
    intersects,
    unit_vector,
)
from .sqlfunctions import dali_text

__all__ = ["GEOMETRY_FUNCTIONS", "Geom", "SpatialMixin", "SpatialPart", "function_args",
           "function_name", "geometry_meta", "sql_literal"]  # fmt: skip

GEOMETRY_FUNCTIONS = frozenset(
    {"POINT", "CIRCLE", "POLYGON", "BOX", "CONTAINS", "INTERSECTS", "DISTANCE", "AREA",
     "COORD1", "COORD2", "COORDSYS"}
)  # fmt: skip


class SpatialPart:
    """Geometry functions and R-tree-assisted spatial conditions, for the translator *tr*."""

    def __init__(self, tr: Translating):
        self.tr = tr

    def call(self, node: exp.Expression, scope: Scope) -> Val:
        """A call of an ADQL geometry function (``POINT``, ``CONTAINS``, ...)."""
        name = function_name(node)
        if name not in GEOMETRY_FUNCTIONS:
            raise self.tr.error(f"unknown function '{node.name}'", node)
        return getattr(self, f"geo_{name}")(node, function_args(node), scope)

    # --- compiling shapes -------------------------------------------------------------
    def _coordsys_args(self, node: exp.Expression, args: list[exp.Expression]) -> list:
        if args and isinstance(args[0], exp.Literal) and args[0].is_string:
            frame = str(args[0].this).strip()
            if frame and frame.split()[0].upper() != "ICRS":
                raise self.tr.error(
                    f"coordinate system '{frame}' is not supported: this service uses ICRS "
                    "(give 'ICRS' or leave it out)",
                    args[0],
                )
            return args[1:]
        return args

    def _numbers(self, nodes: list[exp.Expression], scope: Scope, what: str) -> list[Val]:
        vals = [self.tr.expr(n, scope) for n in nodes]
        for n, v in zip(nodes, vals, strict=True):
            if v.geom is not None or v.meta.datatype in ("char", "unicodeChar"):
                raise self.tr.error(f"{what} expects numbers, got '{self.tr.source_text(n)}'", n)
        return vals

    def geom_of(self, node: exp.Expression, scope: Scope) -> Geom:
        """Compile *node*, which must be a geometry, to a :class:`Geom`."""
        v = self.tr.expr(node, scope)
        if v.geom is not None:
            return v.geom
        kind = STORED_GEOMETRY_KINDS.get(v.meta.xtype or "")
        if kind is not None:
            return Geom(kind, text=v.sql)
        raise self.tr.error(
            f"'{self.tr.source_text(node)}' is not a geometry (expected POINT, CIRCLE, POLYGON, BOX "
            "or a geometry column such as s_region)",
            node,
        )

    def _geom_from_numbers(self, kind: str, vals: list[Val], node=None) -> Geom:
        consts = [v.const for v in vals]
        if all(c is not None for c in consts):
            nums = [float(c) for c in consts]  # type: ignore[arg-type]
            self._check_domain(kind, nums, node)
            return Geom(kind, values=[sql_literal(c) for c in nums], consts=nums)
        return Geom(kind, values=[f"({v.sql})" for v in vals])

    def _check_domain(self, kind: str, nums: list[float], node) -> None:
        """Refuse constant shapes outside the sphere: |dec| > 90, radius outside 0..180."""
        name = kind.upper()
        for x in nums:
            if not math.isfinite(x):
                raise self.tr.error(f"{name} needs finite numbers, got {x}", node)
        for dec in nums[1::2] if kind == "polygon" else nums[1:2]:
            if abs(dec) > 90:
                raise self.tr.error(f"{name}: declination {dec:g} is outside -90..90 degrees", node)
        if kind == "circle" and not 0 <= nums[2] <= 180:
            raise self.tr.error(f"CIRCLE radius {nums[2]:g} is outside 0..180 degrees", node)

    def geom_val(self, geom: Geom, meta: OutputColumn | None = None) -> Val:
        """*geom* as a result value: constant shapes as DALI text literals."""
        shape = geom.shape()
        if shape is not None:
            sql = "'" + dali_text(shape) + "'"
        elif geom.text is not None:
            sql = geom.text
        else:
            sql = f"adql_dali({geom.tagged()})"
        return Val(sql, meta or geometry_meta(geom.kind), geom=geom)

    def _point_of(self, xs: list[Val], node=None) -> Geom:
        geom = self._geom_from_numbers("point", xs, node)
        a, b = xs[0].column, xs[1].column
        if a and b and a[0] is b[0] and (a[1], b[1]) == ("s_ra", "s_dec"):
            table = a[0].table
            if table is not None and table.point_index:
                geom.rowid, geom.index, geom.index_kind = (
                    f"{a[0].alias}.rowid", table.point_index, "point")  # fmt: skip
        return geom

    def geo_POINT(self, node: exp.Expression, args: list, scope: Scope) -> Val:
        args = self._coordsys_args(node, args)
        if len(args) != 2:
            raise self.tr.error("POINT takes a coordinate system (optional), ra and dec", node)
        return self.geom_val(self._point_of(self._numbers(args, scope, "POINT"), node))

    def _center_and_rest(self, name: str, node, args: list, scope: Scope, rest: int):
        """Split ``(point, x...)`` or ``(ra, dec, x...)`` arguments."""
        args = self._coordsys_args(node, args)
        if len(args) == rest + 1:
            center = self.geom_of(args[0], scope)
            if center.kind != "point":
                raise self.tr.error(f"{name} expects a POINT as centre", args[0])
            if center.values is None:
                raise self.tr.error(f"{name} needs a POINT(...) or two numbers as centre", args[0])
            xs = [
                Val(center.values[k], OutputColumn("", "double"),
                              const=None if center.consts is None else center.consts[k])
                for k in range(2)
            ]  # fmt: skip
            return xs + self._numbers(args[1:], scope, name)
        if len(args) == rest + 2:
            return self._numbers(args, scope, name)
        raise self.tr.error(f"wrong number of arguments to {name}", node)

    def geo_CIRCLE(self, node, args, scope) -> Val:
        vals = self._center_and_rest("CIRCLE", node, args, scope, 1)
        radius = vals[2].const
        if radius is not None and not 0 <= radius <= 180:
            raise self.tr.error(f"CIRCLE radius {radius:g} is outside 0..180 degrees", node)
        return self.geom_val(self._geom_from_numbers("circle", vals, node))

    def geo_BOX(self, node, args, scope) -> Val:
        vals = self._center_and_rest("BOX", node, args, scope, 2)
        for v, what in zip(vals[2:], ("width", "height"), strict=True):
            if v.const is not None and not 0 <= v.const <= 180:
                raise self.tr.error(f"BOX {what} {v.const:g} is outside 0..180 degrees", node)
        if all(v.const is not None for v in vals):
            self._check_domain("point", [float(v.const) for v in vals[:2]], node)  # type: ignore[arg-type]
            corners = box_polygon(*(float(v.const) for v in vals))  # type: ignore[arg-type]
            flat = [x for c in corners for x in c]
            return self.geom_val(
                Geom("polygon", values=[sql_literal(x) for x in flat], consts=flat)
            )
        text = "adql_box(" + ", ".join(f"({v.sql})" for v in vals) + ")"
        return self.geom_val(Geom("polygon", text=text))

    def geo_POLYGON(self, node, args, scope) -> Val:
        args = self._coordsys_args(node, args)
        vals: list[Val] = []
        for a in args:
            v = self.tr.expr(a, scope)
            if v.geom is not None:
                if v.geom.kind != "point" or v.geom.values is None:
                    raise self.tr.error("POLYGON vertices must be POINT(...) or numbers", a)
                for k in range(2):
                    c = None if v.geom.consts is None else v.geom.consts[k]
                    vals.append(Val(v.geom.values[k], OutputColumn("", "double"),
                                              const=c))  # fmt: skip
            else:
                vals.extend(self._numbers([a], scope, "POLYGON"))
        if len(vals) < 6 or len(vals) % 2:
            raise self.tr.error("POLYGON needs at least 3 vertices (ra, dec pairs)", node)
        if len(vals) > 2 * LIMITS.polygon_vertices:
            raise self.tr.error(f"POLYGON has more than {LIMITS.polygon_vertices} vertices "
                             "(the limit of this service)", node)  # fmt: skip
        return self.geom_val(self._geom_from_numbers("polygon", vals, node))

    # --- functions of shapes ------------------------------------------------------------
    def _predicate(self, name: str, node, args, scope) -> tuple[Geom, Geom, str]:
        if len(args) != 2:
            raise self.tr.error(f"{name} takes two geometries", node)
        a, b = self.geom_of(args[0], scope), self.geom_of(args[1], scope)
        sa, sb = a.shape(), b.shape()
        if sa is not None and sb is not None:
            test = contains if name == "CONTAINS" else intersects
            return a, b, str(int(test(sa, sb)))
        return a, b, f"adql_{name.lower()}({a.tagged()}, {b.tagged()})"

    def geo_CONTAINS(self, node, args, scope) -> Val:
        return Val(self._predicate("CONTAINS", node, args, scope)[2],
                             OutputColumn("", "int"))  # fmt: skip

    def geo_INTERSECTS(self, node, args, scope) -> Val:
        return Val(self._predicate("INTERSECTS", node, args, scope)[2],
                             OutputColumn("", "int"))  # fmt: skip

    def _distance_points(self, node, args, scope) -> tuple[Geom, Geom]:
        if len(args) == 4:
            vals = self._numbers(args, scope, "DISTANCE")
            return self._point_of(vals[:2], node), self._point_of(vals[2:], node)
        if len(args) != 2:
            raise self.tr.error("DISTANCE takes two POINTs or four numbers", node)
        pts = [self.geom_of(a, scope) for a in args]
        for a, p in zip(args, pts, strict=True):
            if p.kind != "point":
                raise self.tr.error("DISTANCE is defined between POINTs only", a)
        return pts[0], pts[1]

    def geo_DISTANCE(self, node, args, scope) -> Val:
        p, q = self._distance_points(node, args, scope)
        meta = OutputColumn("", "double", "deg", "pos.angDistance")
        if p.consts is not None and q.consts is not None:
            d = angular_distance(*p.consts, *q.consts)
            return Val(sql_literal(d), meta, const=d)
        coords = ", ".join(g.coord_sql(k) for g in (p, q) for k in (1, 2))
        return Val(f"adql_distance({coords})", meta)

    def geo_AREA(self, node, args, scope) -> Val:
        if len(args) != 1:
            raise self.tr.error("AREA takes one geometry", node)
        g = self.geom_of(args[0], scope)
        meta = OutputColumn("", "double", "deg**2", "phys.angArea")
        shape = g.shape()
        if shape is not None:
            return Val(sql_literal(area(shape)), meta, const=area(shape))
        return Val(f"adql_area({g.tagged()})", meta)

    def _coord(self, k: int, node, args, scope) -> Val:
        if len(args) != 1:
            raise self.tr.error(f"COORD{k} takes one POINT", node)
        g = self.geom_of(args[0], scope)
        if g.kind != "point":
            raise self.tr.error(f"COORD{k} is defined for POINTs only", args[0])
        meta = OutputColumn("", "double", "deg", "pos.eq.ra" if k == 1 else "pos.eq.dec")
        const = None if g.consts is None else g.consts[k - 1]
        return Val(g.coord_sql(k), meta, const=const)

    def geo_COORD1(self, node, args, scope) -> Val:
        return self._coord(1, node, args, scope)

    def geo_COORD2(self, node, args, scope) -> Val:
        return self._coord(2, node, args, scope)

    def geo_COORDSYS(self, node, args, scope) -> Val:
        if len(args) != 1:
            raise self.tr.error("COORDSYS takes one geometry", node)
        self.geom_of(args[0], scope)
        return Val("'ICRS'", OutputColumn("", "char", arraysize="*"))

    # --- index-assisted conditions ------------------------------------------------------
    def condition(self, node: exp.Expression, scope: Scope) -> str | None:
        """SQL for a spatial condition answered from an R-tree, or None if not one."""
        pred = None
        if isinstance(node, exp.EQ):
            for a, b in ((node.this, node.expression), (node.expression, node.this)):
                if function_name(a) in ("CONTAINS", "INTERSECTS") and _is_one(b):
                    pred = a
        elif function_name(node) in ("CONTAINS", "INTERSECTS"):
            pred = node
        if pred is not None:
            name = function_name(pred)
            a, b, sql = self._predicate(name, pred, function_args(pred), scope)
            exact = f"({sql} = 1)"
            for point, circle in ((a, b), (b, a)):
                if name == "INTERSECTS" or point is a:  # CONTAINS(point, circle) only
                    exact = _point_in_circle_sql(point, circle, "<=") or exact
            return self._with_index(a, b, exact)
        if isinstance(node, (exp.LT, exp.LTE, exp.GT, exp.GTE)):
            dist, limit, op = node.this, node.expression, node.key
            if isinstance(node, (exp.GT, exp.GTE)):
                dist, limit, op = limit, dist, {"gt": "lt", "gte": "lte"}[node.key]
            if function_name(dist) != "DISTANCE":
                return None
            r = self.tr.expr(limit, scope)
            if r.const is None:
                return None
            p, q = self._distance_points(dist, function_args(dist), scope)
            d = self.geo_DISTANCE(dist, function_args(dist), scope)
            exact = f"({d.sql} {'<' if op == 'lt' else '<='} {r.sql})"
            circle = None
            if p.index and q.consts is not None:
                p, circle = p, Geom("circle", consts=[*q.consts, float(r.const)])
            elif q.index and p.consts is not None:
                p, circle = q, Geom("circle", consts=[*p.consts, float(r.const)])
            if circle is None:
                return exact
            fast = _point_in_circle_sql(p, circle, "<" if op == "lt" else "<=")
            return self._with_index(p, circle, fast or exact)
        return None

    def _with_index(self, a: Geom, b: Geom, exact: str) -> str:
        indexed, other = (a, b) if a.index and b.consts is not None else (b, a)
        if not indexed.index or other.consts is None or indexed is other:
            return exact
        cap = enclosing_cap(other.shape())  # type: ignore[arg-type]
        if cap is None:  # a shape larger than a hemisphere: scan
            return exact
        box = cap_bbox(*cap)
        terms = [
            f"{axis}max >= {sql_literal(box[2 * i])} AND {axis}min <= {sql_literal(box[2 * i + 1])}"
            for i, axis in enumerate("xyz")
        ]
        if indexed.index_kind == "point":
            # Stored points are float32 boxes (error < 1e-7): drop most of the box's
            # corners with a margin far above that error; the exact test follows.
            cx, cy, cz = unit_vector(cap[0], cap[1])
            cosr = math.cos(math.radians(min(cap[2], 180.0))) - 1e-6
            terms.append(
                f"xmin * {sql_literal(cx)} + ymin * {sql_literal(cy)} + zmin * {sql_literal(cz)}"
                f" >= {sql_literal(cosr)}"
            )
        index = '"' + indexed.index.replace('"', '""') + '"'
        lookup = f"{indexed.rowid} IN (SELECT id FROM {index} WHERE {' AND '.join(terms)})"
        return f"({lookup} AND {exact})"


def _point_in_circle_sql(point: Geom, circle: Geom, op: str) -> str | None:
    """Exact point-in-cap test as plain SQL (haversine, no Python call per row).

    Only for an indexed point against a constant circle: comparing haversines,
    hav(d) = sin^2(ddec/2) + cos(dec1) cos(dec2) sin^2(dra/2), keeps full double
    precision at small distances and needs no RA wrap handling.
    """
    if point.kind != "point" or point.values is None or not point.index:
        return None
    if circle.kind != "circle" or circle.consts is None:
        return None
    ra0, dec0, r = circle.consts
    if r < 0:
        return "0"
    h = math.sin(math.radians(min(r, 180.0)) / 2) ** 2
    ra, dec = point.values
    return (
        f"(pow(sin(radians({dec} - {sql_literal(dec0)}) / 2), 2) + cos(radians({dec})) * "
        f"{sql_literal(math.cos(math.radians(dec0)))} * "
        f"pow(sin(radians({ra} - {sql_literal(ra0)}) / 2), 2) {op} {sql_literal(h)})"
    )


def _is_one(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string and str(node.this) in ("1", "1.0")


#: Former name (the part was a mixin of the translator); kept, as names are a contract.
SpatialMixin = SpatialPart
