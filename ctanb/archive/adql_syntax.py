"""Non-geometry expressions of the ADQL translator: operators, predicates, functions.

:class:`ExpressionPart` is one of the parts the
:class:`~ctanb.archive.adql_translate.Translator` is composed of: it translates the
node types it has an ``x_<NodeType>`` method for, and the operators of
:meth:`ExpressionPart.operator`; every other node is refused by the translator,
which is what keeps non-ADQL out of the database. Sub-expressions go back to the
translator (:class:`~ctanb.archive.adql_types.Translating`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from sqlglot import exp

from .adql_check import flatten_chain
from .adql_types import (
    BOOLEAN,
    CHAR,
    DOUBLE,
    INT,
    INT64_MAX,
    LONG,
    OutputColumn,
    Scope,
    Translating,
    Val,
    quote_ident,
    quote_string,
)

__all__ = ["BOOLEAN", "CHAR", "DOUBLE", "INT", "LONG", "ExpressionMixin", "ExpressionPart",
           "quote_ident", "quote_string"]  # fmt: skip

_INTEGERS = ("short", "int", "long", "boolean")
_NUMBERS = (*_INTEGERS, "float", "double", "unsignedByte")

# ADQL math functions with a SQLite built-in of the same meaning: node -> (sql, args).
_MATH = {
    exp.Abs: "abs", exp.Ceil: "ceil", exp.Floor: "floor", exp.Degrees: "degrees",
    exp.Radians: "radians", exp.Exp: "exp", exp.Sqrt: "sqrt", exp.Sin: "sin", exp.Cos: "cos",
    exp.Tan: "tan", exp.Asin: "asin", exp.Acos: "acos", exp.Atan2: "atan2", exp.Pow: "pow",
    exp.Mod: "mod",
}  # fmt: skip
_COMPARISONS = {exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}
_ARITHMETIC = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/"}
_CASTS = {
    exp.DataType.Type.SMALLINT: ("INTEGER", "short"),
    exp.DataType.Type.INT: ("INTEGER", "int"),
    exp.DataType.Type.BIGINT: ("INTEGER", "long"),
    exp.DataType.Type.FLOAT: ("REAL", "float"),
    exp.DataType.Type.DOUBLE: ("REAL", "double"),
    exp.DataType.Type.CHAR: ("TEXT", "char"),
    exp.DataType.Type.VARCHAR: ("TEXT", "char"),
}


def _fold(op: str, a, b, ints: bool):
    """The value of a constant operation; None for a division by zero (NULL in SQL).

    Raises OverflowError when the result is beyond the range of a double.
    """
    if op == "/" and b == 0:
        return None
    if op == "/" and ints:
        q = abs(a) // abs(b)
        value = q if (a >= 0) == (b >= 0) else -q
    elif op == "/":
        value = a / b
    else:
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
    if isinstance(value, int) and abs(value) > INT64_MAX:
        value = float(value)  # SQLite turns an integer overflow into a double too
    if isinstance(value, float) and not math.isfinite(value):
        raise OverflowError(value)
    return value


def _like_to_glob(pattern: str, escape: str | None) -> str:
    """A LIKE pattern as the equivalent (case-sensitive) GLOB pattern."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if escape and ch == escape and i + 1 < len(pattern):
            ch, literal = pattern[i + 1], True
            i += 2
        else:
            literal = False
            i += 1
        if not literal and ch == "%":
            out.append("*")
        elif not literal and ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


class ExpressionPart:
    """Operators, predicates, functions and aggregates, for the translator *tr*."""

    def __init__(self, tr: Translating):
        self.tr = tr

    def operator(self, node: exp.Expression, scope: Scope) -> Val | None:
        """A comparison, arithmetic or math function node; None for any other node."""
        for cls, op in _COMPARISONS.items():
            if isinstance(node, cls):
                return self._binary(node, scope, op, BOOLEAN)
        for cls, op in _ARITHMETIC.items():
            if isinstance(node, cls):
                return self._arithmetic(node, scope, op)
        for cls, name in _MATH.items():
            if type(node) is cls:
                return self._math(node, scope, name)
        return None

    def _args(self, node, scope, *keys) -> list[Val]:
        return [self.tr.expr(node.args[k], scope) for k in keys if node.args.get(k) is not None]

    # --- literals and operators ----------------------------------------------------------
    def x_Literal(self, node: exp.Literal, scope: Scope) -> Val:
        text = str(node.this)
        if node.is_string:
            return Val(quote_string(text), CHAR)
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is not None and abs(value) <= INT64_MAX:
            return Val(text, LONG, const=value)
        number = float(text)  # beyond 64 bits an integer is a double, as in SQLite
        if not math.isfinite(number):
            raise self.tr.error(f"the number {text} is out of range (beyond ±1.8e308)", node)
        return Val(repr(number), DOUBLE, const=number)

    def x_Boolean(self, node, scope) -> Val:
        return Val("1" if node.this else "0", BOOLEAN)

    def x_Null(self, node, scope) -> Val:
        return Val("NULL", CHAR)

    def x_Paren(self, node, scope) -> Val:
        v = self.tr.expr(node.this, scope)
        return replace(v, sql=f"({v.sql})", column=None)

    def x_Neg(self, node, scope) -> Val:
        v = self.tr.expr(node.this, scope)
        self._number_only(v, node.this, "negated")
        const = -v.const if v.const is not None else None
        return Val(f"(-{v.sql})", replace(v.meta, ucd=""), const=const)

    def _binary(self, node, scope, op: str, meta: OutputColumn) -> Val:
        a, b = self.tr.expr(node.this, scope), self.tr.expr(node.expression, scope)
        for v, n in ((a, node.this), (b, node.expression)):
            if v.geom is not None and v.column is None:
                raise self.tr.error(f"a geometry cannot be compared: '{self.tr.source_text(n)}'", n)
        return Val(f"({a.sql} {op} {b.sql})", meta)

    def _number_only(self, v: Val, node, what: str) -> None:
        """Only numbers take part in arithmetic (a region or text would reach the output
        typed as what it was)."""
        if v.geom is not None or v.meta.datatype not in _NUMBERS or v.meta.arraysize:
            raise self.tr.error(f"only numbers can be {what}: '{self.tr.source_text(node)}'", node)

    def _arithmetic(self, node, scope, op: str) -> Val:
        a, b = self.tr.expr(node.this, scope), self.tr.expr(node.expression, scope)
        for v, n in ((a, node.this), (b, node.expression)):
            self._number_only(v, n, "used in arithmetic")
        ints = a.meta.datatype in _INTEGERS and b.meta.datatype in _INTEGERS
        const = None
        if a.const is not None and b.const is not None:
            try:
                const = _fold(op, a.const, b.const, ints)
            except OverflowError:
                raise self.tr.error("the result of this calculation is out of range "
                                 "(beyond ±1.8e308)", node) from None  # fmt: skip
            if ints and isinstance(const, float):  # _fold gave up on 64 bits
                raise self.tr.error("the result of this integer calculation is out of range "
                                 "(beyond ±9.2e18; write a number with a decimal point "
                                 "to compute in floating point)", node)  # fmt: skip
        unit = a.meta.unit if op in "+-" and a.meta.unit == b.meta.unit else ""
        meta = OutputColumn("", "long" if ints else "double", unit)
        return Val(f"({a.sql} {op} {b.sql})", meta, const=const)

    def x_DPipe(self, node, scope) -> Val:
        a, b = self.tr.expr(node.this, scope), self.tr.expr(node.expression, scope)
        return Val(f"({a.sql} || {b.sql})", CHAR)

    def _chain(self, node, scope, op: str) -> Val:
        terms = [self.tr.expr(t, scope).sql for t in flatten_chain(node)]
        return Val("(" + f" {op} ".join(terms) + ")", BOOLEAN)

    def x_And(self, node, scope) -> Val:
        return self._chain(node, scope, "AND")

    def x_Or(self, node, scope) -> Val:
        return self._chain(node, scope, "OR")

    def x_Not(self, node, scope) -> Val:
        return Val(f"(NOT {self.tr.expr(node.this, scope).sql})", BOOLEAN)

    # --- predicates ---------------------------------------------------------------------
    def x_Is(self, node, scope) -> Val:
        if not isinstance(node.expression, exp.Null):
            raise self.tr.error("only IS NULL / IS NOT NULL are ADQL", node)
        v = self.tr.expr(node.this, scope)
        neg = " NOT" if node.args.get("negate") else ""
        return Val(f"({v.sql} IS{neg} NULL)", BOOLEAN)

    def x_Between(self, node, scope) -> Val:
        x, lo, hi = self._args(node, scope, "this", "low", "high")
        return Val(f"({x.sql} BETWEEN {lo.sql} AND {hi.sql})", BOOLEAN)

    def x_In(self, node, scope) -> Val:
        self.tr.check_args(node, {"this", "expressions", "query"})
        x = self.tr.expr(node.this, scope)
        if node.args.get("query") is not None:
            q = node.args["query"]
            sql, cols, _ = self.tr.query(q.this if isinstance(q, exp.Subquery) else q, scope)
            if len(cols) != 1:
                raise self.tr.error("the subquery of IN must select one column", q)
            return Val(f"({x.sql} IN ({sql}))", BOOLEAN)
        if not node.expressions:
            raise self.tr.error("IN needs at least one value: IN (a, b, ...)", node)
        items = ", ".join(self.tr.expr(e, scope).sql for e in node.expressions)
        return Val(f"({x.sql} IN ({items}))", BOOLEAN)

    def x_Exists(self, node, scope) -> Val:
        q = node.this
        sql, _, _ = self.tr.query(q.this if isinstance(q, exp.Subquery) else q, scope)
        return Val(f"(EXISTS ({sql}))", BOOLEAN)

    def x_Subquery(self, node, scope) -> Val:
        sql, cols, _ = self.tr.query(node.this, scope)
        if len(cols) != 1:
            raise self.tr.error("a scalar subquery must select one column", node)
        return Val(f"({sql})", replace(cols[0], name=""))

    def x_Escape(self, node, scope) -> Val:
        esc = node.expression
        if not (isinstance(esc, exp.Literal) and esc.is_string and len(str(esc.this)) == 1):
            raise self.tr.error("ESCAPE takes a one-character string", esc)
        return self._like(node.this, scope, str(esc.this))

    def x_Like(self, node, scope) -> Val:
        return self._like(node, scope, None)

    def x_ILike(self, node, scope) -> Val:
        return self._like(node, scope, None)

    def _like(self, node, scope, escape: str | None) -> Val:
        if not isinstance(node, (exp.Like, exp.ILike)):
            raise self.tr.error("ESCAPE belongs to LIKE", node)
        x, pattern_node = self.tr.expr(node.this, scope), node.expression
        neg = "NOT " if node.args.get("negate") else ""
        literal = isinstance(pattern_node, exp.Literal) and pattern_node.is_string
        esc_arg = f", {quote_string(escape)}" if escape else ""
        if isinstance(node, exp.Like):
            if literal:  # GLOB is case-sensitive (SQLite's LIKE is not) and uses indexes
                glob = _like_to_glob(str(pattern_node.this), escape)
                return Val(f"({neg}{x.sql} GLOB {quote_string(glob)})", BOOLEAN)
            p = self.tr.expr(pattern_node, scope)
            return Val(f"({neg}adql_like({x.sql}, {p.sql}{esc_arg}))", BOOLEAN)
        p = self.tr.expr(pattern_node, scope)
        if literal and str(pattern_node.this).isascii():
            # SQLite's LIKE folds ASCII case, and an ASCII pattern has nothing else to fold.
            esc = f" ESCAPE {quote_string(escape)}" if escape else ""
            return Val(f"({x.sql} {neg}LIKE {p.sql}{esc})", BOOLEAN)
        return Val(f"({neg}adql_ilike({x.sql}, {p.sql}{esc_arg}))", BOOLEAN)

    # --- conditional and casts -------------------------------------------------------------
    def x_Case(self, node, scope) -> Val:
        sql, meta = "CASE", None
        if node.args.get("this") is not None:
            sql += " " + self.tr.expr(node.this, scope).sql
        for branch in node.args.get("ifs") or []:
            cond, val = self.tr.expr(branch.this, scope), self.tr.expr(branch.args["true"], scope)
            meta = meta or (val.meta if val.sql != "NULL" else None)
            sql += f" WHEN {cond.sql} THEN {val.sql}"
        if node.args.get("default") is not None:
            d = self.tr.expr(node.args["default"], scope)
            meta = meta or d.meta
            sql += f" ELSE {d.sql}"
        return Val(sql + " END", replace(meta or CHAR, name="", description=""))

    def x_Coalesce(self, node, scope) -> Val:
        vals = [self.tr.expr(node.this, scope)] + [self.tr.expr(e, scope) for e in node.expressions]
        meta = next((v.meta for v in vals if v.sql != "NULL"), CHAR)
        return Val(f"coalesce({', '.join(v.sql for v in vals)})", meta)

    def x_Cast(self, node, scope) -> Val:
        self.tr.check_args(node, {"this", "to"})
        v, to = self.tr.expr(node.this, scope), node.args["to"]
        if to.this == exp.DataType.Type.TIMESTAMP:
            value = v.sql
            if v.meta.datatype not in ("char", "unicodeChar"):
                # Numbers in this archive's time columns are MJD (ObsCore t_min, t_max);
                # SQLite reads a bare number as a Julian Day, which is MJD + 2400000.5.
                value = f"({v.sql}) + 2400000.5"
            sql = f"strftime('%Y-%m-%dT%H:%M:%f', {value})"
            return Val(sql, OutputColumn("", "char", arraysize="*", xtype="timestamp"))
        if to.this not in _CASTS:
            raise self.tr.error(f"CAST to {self.tr.source_text(to)} is not supported", node)
        sql_type, datatype = _CASTS[to.this]
        arraysize = "*" if datatype == "char" else None
        meta = OutputColumn("", datatype, v.meta.unit if arraysize is None else "", "", arraysize)
        return Val(f"CAST({v.sql} AS {sql_type})", meta)

    # --- string and math functions ------------------------------------------------------
    def x_Lower(self, node, scope) -> Val:
        return Val(f"lower({self.tr.expr(node.this, scope).sql})", CHAR)

    def x_Upper(self, node, scope) -> Val:
        return Val(f"upper({self.tr.expr(node.this, scope).sql})", CHAR)

    def _math(self, node, scope, name: str) -> Val:
        self.tr.check_args(node, {"this", "expression"})
        vals = self._args(node, scope, "this", "expression")
        meta = DOUBLE
        if name in ("abs", "ceil", "floor") and vals:
            meta = replace(vals[0].meta, name="", ucd="", description="", utype="")
        return Val(f"{name}({', '.join(v.sql for v in vals)})", meta)

    def x_Atan(self, node, scope) -> Val:
        return self._math(node, scope, "atan2" if node.args.get("expression") else "atan")

    def x_Cot(self, node, scope) -> Val:
        return Val(f"(1.0 / tan({self.tr.expr(node.this, scope).sql}))", DOUBLE)

    def x_Pi(self, node, scope) -> Val:
        return Val("pi()", DOUBLE, const=math.pi)

    def x_Log(self, node, scope) -> Val:
        # ADQL LOG is the natural logarithm; LOG10(x) arrives as Log(10, x).
        if node.args.get("expression") is None:
            return Val(f"ln({self.tr.expr(node.this, scope).sql})", DOUBLE)
        base, x = self._args(node, scope, "this", "expression")
        if base.const == 10:
            return Val(f"log10({x.sql})", DOUBLE)
        return Val(f"(ln({x.sql}) / ln({base.sql}))", DOUBLE)

    def x_Rand(self, node, scope) -> Val:
        self.tr.check_args(node, {"this"})
        seed = self._args(node, scope, "this")
        return Val(f"adql_rand({seed[0].sql if seed else ''})", DOUBLE)

    def x_Round(self, node, scope) -> Val:
        self.tr.check_args(node, {"this", "decimals"})
        vals = self._args(node, scope, "this", "decimals")
        return Val(f"round({', '.join(v.sql for v in vals)})", DOUBLE)

    def x_Trunc(self, node, scope) -> Val:
        self.tr.check_args(node, {"this", "decimals"})
        vals = self._args(node, scope, "this", "decimals")
        if len(vals) == 1:
            return Val(f"trunc({vals[0].sql})", DOUBLE)
        return Val(f"adql_truncate({vals[0].sql}, {vals[1].sql})", DOUBLE)

    # --- aggregates ------------------------------------------------------------------------
    def _aggregate_arg(self, node, scope) -> tuple[str, Val | None]:
        arg = node.this
        if isinstance(arg, exp.Star):
            return "*", None
        if isinstance(arg, exp.Distinct):
            if len(arg.expressions) != 1:
                raise self.tr.error("DISTINCT in an aggregate takes one expression", arg)
            v = self.tr.expr(arg.expressions[0], scope)
            return f"DISTINCT {v.sql}", v
        v = self.tr.expr(arg, scope)
        return v.sql, v

    def _enter_aggregate(self, node, name: str):
        if self.tr.no_aggregate:
            where = self.tr.no_aggregate
            hint = " (use HAVING)" if where == "WHERE" else ""
            raise self.tr.error(
                f"the aggregate function {name} is not allowed in {where}{hint}", node
            )
        self.tr.saw_aggregate = True
        saved = self.tr.no_aggregate
        self.tr.no_aggregate = "another aggregate function"
        return saved

    def x_Count(self, node, scope) -> Val:
        saved = self._enter_aggregate(node, "COUNT")
        try:
            sql, _ = self._aggregate_arg(node, scope)
        finally:
            self.tr.no_aggregate = saved
        return Val(f"count({sql})", LONG)

    def _agg(self, node, scope, name: str, keep_meta: bool) -> Val:
        saved = self._enter_aggregate(node, name.upper())
        try:
            sql, v = self._aggregate_arg(node, scope)
        finally:
            self.tr.no_aggregate = saved
        if v is None:
            raise self.tr.error(f"{name.upper()}(*) is not allowed", node)
        if keep_meta:
            meta = replace(v.meta, name="")
        elif name == "sum" and v.meta.datatype in _INTEGERS:
            meta = replace(LONG, unit=v.meta.unit)
        else:
            meta = replace(DOUBLE, unit=v.meta.unit)
        return Val(f"{name}({sql})", meta)

    def x_Sum(self, node, scope) -> Val:
        return self._agg(node, scope, "sum", False)

    def x_Avg(self, node, scope) -> Val:
        return self._agg(node, scope, "avg", False)

    def x_Min(self, node, scope) -> Val:
        return self._agg(node, scope, "min", True)

    def x_Max(self, node, scope) -> Val:
        return self._agg(node, scope, "max", True)


#: Former name (the part was a mixin of the translator); kept, as names are a contract.
ExpressionMixin = ExpressionPart
