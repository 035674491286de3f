"""The ADQL syntax-tree walker behind :func:`ctanb.archive.adql.translate`.

Every node type has a handler that returns the SQLite SQL of the node together
with its type (an :class:`OutputColumn` without name); a node type without a
handler is rejected, which is what keeps non-ADQL out of the database. Every
table gets an internal alias (``t0``, ``t1``, ...) and every column reference is
resolved against TAP_SCHEMA and written fully qualified.

The :class:`Translator` is composed of the expression parts (``adql_syntax``,
``adql_spatial``, ``adql_tmoc``); the layers are drawn in :mod:`.adql_types`.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from .._errors import AdqlError
from .adql_check import LIMITS, NOT_XML, MessageMixin, flatten_chain
from .adql_spatial import SpatialPart
from .adql_syntax import ExpressionPart
from .adql_tmoc import TMOC_FUNCTIONS, TmocPart, column_sql
from .adql_types import (
    INT64_MAX,
    REGION_XTYPE,
    STCS_POLYGON_PREFIX,
    STORED_GEOMETRY_KINDS,
    Geom,
    OutputColumn,
    Scope,
    Source,
    TapSchema,
    TapTable,
    Val,
    function_name,
    quote_ident,
)

__all__ = ["Scope", "Source", "Translator", "Val", "flatten_chain"]

_SELECT_ARGS = {"expressions", "distinct", "from_", "joins", "where", "group", "having",
                "order", "limit", "offset", "kind"}  # fmt: skip
_SETOP_ARGS = {"this", "expression", "distinct", "order", "limit", "offset", "by_name"}


def _stcs(sql: str) -> str:
    """SQL of the STC-S string of a stored region (NULL stays NULL, as does '')."""
    return f"('{STCS_POLYGON_PREFIX}' || NULLIF({sql}, ''))"


def _qualifier_text(col: exp.Column) -> str:
    return ".".join(str(p.this) for p in col.parts[:-1])


def _limit_value(translator: Translator, node: exp.Expression | None, what: str) -> int | None:
    if node is None:
        return None
    value = node.args.get("expression")
    if not (isinstance(value, exp.Literal) and not value.is_string
            and str(value.this).isascii() and str(value.this).isdigit()):  # fmt: skip
        raise translator.error(f"{what} must be a non-negative integer", value or node)
    number = int(str(value.this))
    if number > INT64_MAX:
        raise translator.error(f"{what} {number} is too large (at most {INT64_MAX})", value)
    return number


class Translator(MessageMixin):
    """Translate one parsed ADQL statement; one instance per query.

    Statements, FROM, the SELECT list and column references are translated here;
    expressions by the parts it is composed of (:attr:`expressions`,
    :attr:`spatial`, :attr:`tmoc`), which hand their sub-expressions back to
    :meth:`expr`.
    """

    def __init__(self, text: str, schema: TapSchema):
        self.text = text
        self.schema = schema
        self._aliases = 0
        # Where aggregates may not appear ("WHERE", "GROUP BY", ...), None where they may.
        self.no_aggregate: str | None = None
        self.saw_aggregate = False
        self.expressions = ExpressionPart(self)
        self.spatial = SpatialPart(self)
        self.tmoc = TmocPart(self)

    def expr(self, node: exp.Expression, scope: Scope) -> Val:
        """Translate one expression node: by its ``x_<NodeType>`` handler, here or in
        :attr:`expressions`, or as an operator; any other node is not ADQL."""
        name = f"x_{type(node).__name__}"
        handler = getattr(self, name, None) or getattr(self.expressions, name, None)
        if handler is not None:
            return handler(node, scope)
        val = self.expressions.operator(node, scope)
        if val is None:
            what = self.source_text(node) if isinstance(node, exp.Expression) else str(node)
            raise self.error(f"unsupported ADQL construct '{what}'", node)
        return val

    def _new_alias(self) -> str:
        self._aliases += 1
        return f"t{self._aliases - 1}"

    # --- statements -----------------------------------------------------------------------
    def translate_statement(
        self, tree: exp.Expression, row_limit: int | None
    ) -> tuple[str, list[OutputColumn], int | None]:
        if not isinstance(tree, (exp.Select, exp.SetOperation, exp.Subquery)):
            word = (self.text.split() or ["?"])[0].upper()
            raise self.error(f"only SELECT queries are allowed (this is {word})", tree)
        if tree.args.get("with_") is not None or tree.args.get("with") is not None:
            raise self.error(
                "WITH (common table expressions) is not supported by this service: "
                "use a subquery in FROM, (SELECT ...) AS name",
                tree,
            )
        return self.query(tree, None, row_limit=row_limit, outermost=True)

    def query(
        self,
        node: exp.Expression,
        parent: Scope | None,
        row_limit: int | None = None,
        *,
        outermost: bool = False,
    ) -> tuple[str, list[OutputColumn], int | None]:
        """SQL, output columns and TOP of a (sub)query.

        Only the *outermost* query writes region columns as STC-S: inside the
        query they stay the stored vertex lists the geometry functions read.
        """
        if isinstance(node, exp.Subquery) and not node.alias:
            return self.query(node.this, parent, row_limit, outermost=outermost)
        if isinstance(node, exp.Select):
            return self.select(node, parent, row_limit, outermost=outermost)
        if isinstance(node, exp.SetOperation):
            return self.set_operation(node, parent, row_limit, outermost=outermost)
        raise self.error("a SELECT was expected here", node)

    def check_args(self, node: exp.Expression, allowed: set[str]) -> None:
        """Refuse a node that has arguments outside *allowed* (constructs that are not ADQL)."""
        for key, value in node.args.items():
            if value not in (None, False, []) and key not in allowed:
                if key in ("with", "with_"):
                    raise self.error("WITH (common table expressions) is not supported by "
                                     "this service: use a subquery in FROM", node)  # fmt: skip
                where = value if isinstance(value, exp.Expression) else node
                raise self.error(f"'{self.source_text(where)}' is not ADQL here", where)

    def _limit_clause(self, node: exp.Expression, row_limit: int | None) -> tuple[str, int | None]:
        top = _limit_value(self, node.args.get("limit"), "TOP")
        offset = _limit_value(self, node.args.get("offset"), "OFFSET")
        limit = top
        if row_limit is not None:
            limit = row_limit if limit is None else min(limit, row_limit)
        sql = ""
        if limit is not None or offset:
            sql += f" LIMIT {-1 if limit is None else limit}"
        if offset:
            sql += f" OFFSET {offset}"
        return sql, top

    def _order_clause(self, node, scope: Scope | None, outputs: list[OutputColumn]) -> str:
        order = node.args.get("order")
        if not order:
            return ""
        by_name = {}
        for c in outputs:
            by_name.setdefault(c.name.lower(), c.name)
        items = []
        for o in order.expressions:
            e = o.this
            if isinstance(e, exp.Literal) and not e.is_string and str(e.this).isdigit():
                if not 1 <= int(str(e.this)) <= len(outputs):
                    raise self.error(f"ORDER BY position {e.this} is out of range", e)
                sql = str(e.this)
            elif isinstance(e, exp.Column) and not e.table and str(e.name).lower() in by_name:
                sql = quote_ident(by_name[str(e.name).lower()])
            elif scope is None:
                raise self.error(
                    f"ORDER BY of a UNION must name a result column: '{self.source_text(e)}'", e
                )
            else:
                sql = self.expr(e, scope).sql
            items.append(sql + (" DESC" if o.args.get("desc") else ""))
        return " ORDER BY " + ", ".join(items)

    def set_operation(self, node, parent, row_limit, *, outermost: bool = False):
        self.check_args(node, _SETOP_ARGS)
        parts, columns = [], None
        for side in (node.this, node.expression):
            sql, cols, _ = self.query(side, parent, outermost=outermost)
            inner = side.this if isinstance(side, exp.Subquery) else side
            if inner.args.get("order") or inner.args.get("limit") or inner.args.get("offset"):
                sql = f"SELECT * FROM ({sql})"  # SQLite allows no LIMIT inside a compound
            if columns is not None and len(cols) != len(columns):
                raise self.error("the SELECTs of a UNION/INTERSECT/EXCEPT differ in columns", node)
            columns = columns or cols
            parts.append(sql)
        op = {exp.Union: "UNION", exp.Intersect: "INTERSECT", exp.Except: "EXCEPT"}[type(node)]
        if not node.args.get("distinct"):
            if op != "UNION":
                raise self.error(f"{op} ALL is not supported", node)
            op += " ALL"
        sql = f"{parts[0]} {op} {parts[1]}"
        sql += self._order_clause(node, None, columns or [])
        limit, top = self._limit_clause(node, row_limit)
        return sql + limit, columns or [], top

    def select(
        self, node: exp.Select, parent: Scope | None, row_limit: int | None, *, outermost=False
    ):
        self.check_args(node, _SELECT_ARGS)
        if node.args.get("kind"):
            raise self.error("SELECT AS STRUCT/VALUE is not ADQL", node)
        if not node.expressions:
            raise self.error("SELECT needs at least one column or expression", node)
        saved = self.no_aggregate, self.saw_aggregate
        self.no_aggregate, self.saw_aggregate = None, False
        try:
            return self._select(node, parent, row_limit, outermost=outermost)
        finally:
            self.no_aggregate, self.saw_aggregate = saved

    def _without_aggregates(self, clause: str, func, *args):
        saved = self.no_aggregate
        self.no_aggregate = clause
        try:
            return func(*args)
        finally:
            self.no_aggregate = saved

    def _select(self, node: exp.Select, parent: Scope | None, row_limit: int | None, *,
                outermost: bool = False):  # fmt: skip
        scope = Scope(parent=parent)
        from_ = node.args.get("from_")
        from_sql = ""
        pending: list[tuple[exp.Join, str]] = []
        if from_ is not None:
            from_sql = " FROM " + self.source(from_.this, scope)
            for join in node.args.get("joins") or []:
                pending.append((join, self.source(join.this, scope)))
        for join, src in pending:
            from_sql += self.join(join, src, scope)
        projections = self.projections(node, scope)
        distinct = node.args.get("distinct")
        if distinct is not None and distinct.args.get("on"):
            raise self.error("DISTINCT ON is not ADQL", distinct)
        sql = "SELECT " + ("DISTINCT " if distinct is not None else "")
        sql += ", ".join(
            f"{_stcs(s) if outermost and c.xtype == REGION_XTYPE else s} AS {quote_ident(c.name)}"
            for s, c in projections
        )
        sql += from_sql
        if node.args.get("where") is not None:
            where = node.args["where"].this
            sql += " WHERE " + self._without_aggregates("WHERE", self.condition, where, scope)
        group = node.args.get("group")
        outputs = [c for _, c in projections]
        if group is not None:
            self.check_args(group, {"expressions"})
            sql += " GROUP BY " + ", ".join(
                self._without_aggregates("GROUP BY", self._group_item, g, scope, outputs)
                for g in group.expressions
            )
        if node.args.get("having") is not None:
            having = node.args["having"]
            sql += " HAVING " + self.condition(having.this, scope)
            if group is None and not self.saw_aggregate:
                raise self.error("HAVING needs GROUP BY or an aggregate function", having)
        sql += self._order_clause(node, scope, outputs)
        limit, top = self._limit_clause(node, row_limit)
        return sql + limit, outputs, top

    def _group_item(self, g, scope, outputs) -> str:
        if isinstance(g, exp.Literal):
            raise self.error("GROUP BY takes column names, not a value", g)
        try:
            return self.expr(g, scope).sql
        except AdqlError:
            if isinstance(g, exp.Column) and not g.table:
                for c in outputs:
                    if c.name.lower() == str(g.name).lower():
                        return quote_ident(c.name)
            raise

    # --- FROM -------------------------------------------------------------------------------
    def source(self, node: exp.Expression, scope: Scope) -> str:
        alias = self._new_alias()
        if self._aliases > LIMITS.tables:
            raise self.error(f"the query uses more than {LIMITS.tables} tables and subqueries "
                             "in FROM (the limit of this service)", node)  # fmt: skip
        if isinstance(node, exp.Table):
            self.check_args(node, {"this", "db", "catalog", "alias"})
            table = self._find_table(node)
            user_alias = node.args.get("alias")
            if user_alias is not None:
                ident = user_alias.this
                names, quoted = [(str(ident.this),)], bool(ident.quoted)
            else:
                parts = tuple(table.name.split("."))
                names, quoted = [parts, parts[-1:], (table.name,)], False
            scope.sources.append(
                Source(alias, names, quoted, list(table.columns), table, table.name)
            )
            return f"{quote_ident(table.name)} AS {alias}"
        if isinstance(node, exp.Subquery):
            if not node.alias:
                raise self.error("a subquery in FROM needs an alias: (SELECT ...) AS name", node)
            sql, cols, _ = self.query(node.this, scope.parent)
            ident = node.args["alias"].this
            scope.sources.append(
                Source(alias, [(str(ident.this),)], bool(ident.quoted), cols, None, node.alias)
            )
            return f"({sql}) AS {alias}"
        raise self.error(f"unsupported FROM item '{self.source_text(node)}'", node)

    def _find_table(self, node: exp.Table) -> TapTable:
        idents = [node.args.get(k) for k in ("catalog", "db", "this")]
        idents = [i for i in idents if i is not None]
        if not all(isinstance(i, exp.Identifier) for i in idents):
            raise self.error(f"unsupported table reference '{self.source_text(node)}'", node)
        name = ".".join(str(i.this) for i in idents)
        table = self.schema.find(name)
        if table is None and len(idents) == 1:  # unqualified: accept a unique match
            matches = [t for t in self.schema.tables.values()
                       if t.name.lower().rsplit(".", 1)[-1] == name.lower()]  # fmt: skip
            table = matches[0] if len(matches) == 1 else None
        if table is not None and any(i.quoted for i in idents):
            # Delimited names are case-sensitive: "ivoa"."obscore" or "ivoa.obscore".
            parts = table.name.split(".")[-len(idents) :]
            if table.name != name and parts != [str(i.this) for i in idents]:
                table = None
        if table is None:
            known = ", ".join(sorted(t.name for t in self.schema.tables.values()))
            raise self.error(f"unknown table '{name}' (tables: {known})", node)
        return table

    def join(self, join: exp.Join, src_sql: str, scope: Scope) -> str:
        self.check_args(join, {"this", "on", "side", "kind", "using", "method"})
        side = (join.args.get("side") or "").upper()
        kind = (join.args.get("kind") or "").upper()
        method = (join.args.get("method") or "").upper()
        if kind not in ("", "INNER", "OUTER", "CROSS") or method not in ("", "NATURAL"):
            raise self.error(f"unsupported join '{self.source_text(join)}'", join)
        words = " ".join(w for w in (method, side, kind) if w)
        sql = f" {words} JOIN {src_sql}" if words else f" JOIN {src_sql}"
        right = scope.sources[-1]
        if method == "NATURAL":
            left_names = {c.name.lower() for s in scope.sources[:-1] for c in s.columns}
            scope.merged |= {c.name.lower() for c in right.columns} & left_names
        if join.args.get("on") is not None:
            sql += " ON " + self._without_aggregates("ON", self.condition, join.args["on"], scope)
        using = join.args.get("using")
        if using:
            names = []
            for ident in using:
                col = right.column(ident if isinstance(ident, exp.Identifier) else ident.this)
                if col is None:
                    raise self.error(f"unknown column '{ident.name}' in USING", ident)
                names.append(quote_ident(col.name))
                scope.merged.add(col.name.lower())
            sql += " USING (" + ", ".join(names) + ")"
        return sql

    # --- SELECT list ------------------------------------------------------------------------
    def projections(self, node: exp.Select, scope: Scope) -> list[tuple[str, OutputColumn]]:
        out: list[tuple[str, OutputColumn]] = []
        for item in node.expressions:
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
            ):
                sources = scope.sources
                if isinstance(item, exp.Column):
                    found = scope.source_of(item)
                    if found is None:
                        raise self.error(f"unknown table or alias '{_qualifier_text(item)}'", item)
                    sources = [found]
                if not sources:
                    raise self.error("SELECT * needs a FROM clause", item)
                # a USING / NATURAL join column is one column (SQL-92), not one per table
                seen: set[str] = set()
                for s in sources:
                    for c in s.columns:
                        name = c.name.lower()
                        if isinstance(item, exp.Star) and name in scope.merged:
                            if name in seen:
                                continue
                            seen.add(name)
                        out.append((column_sql(s, c), c))
                continue
            alias = None
            if isinstance(item, exp.Alias):
                alias_node = item.args["alias"]
                alias, item = str(alias_node.this), item.this
                # A result column named with such a character has no VOTable FIELD.
                bad = NOT_XML.search(alias)
                if bad or not alias.strip():
                    what = f"character U+{ord(bad.group()):04X}" if bad else "no visible name"
                    raise self.error(f"the column name has {what}, which a VOTable cannot "
                                     "carry: choose another alias", alias_node)  # fmt: skip
            v = self.expr(item, scope)
            if v.geom is not None and v.column is None:
                v = self.spatial.geom_val(v.geom)
            name = alias or (v.column[1] if v.column else self._default_name(item))
            out.append((v.sql, v.meta if v.meta.name == name else replace(v.meta, name=name)))
        seen: set[str] = set()
        unique = []
        for sql, col in out:
            name, n = col.name, 1
            while name.lower() in seen:
                n += 1
                name = f"{col.name}_{n}"
            seen.add(name.lower())
            unique.append((sql, col if name == col.name else replace(col, name=name)))
        return unique

    @staticmethod
    def _default_name(node: exp.Expression) -> str:
        name = function_name(node)
        if name:
            return name.lower()
        if isinstance(node, exp.Func) and not isinstance(node, (exp.Case, exp.Cast)):
            return node.sql_name().lower() if hasattr(node, "sql_name") else "expr"
        return "expr"

    # --- columns ------------------------------------------------------------------------------
    def x_Column(self, node: exp.Column, scope: Scope) -> Val:
        ident = node.this
        if not isinstance(ident, exp.Identifier):
            raise self.error(f"unsupported column reference '{self.source_text(node)}'", node)
        level: Scope | None = scope
        while level is not None:
            if node.table:
                source = level.source_of(node)
                if source is not None:
                    return self._column_val(source, ident, node)
            else:
                hits = [(s, c) for s in level.sources if (c := s.column(ident)) is not None]
                if len(hits) > 1 and not all(c.name.lower() in level.merged for _, c in hits):
                    tables = ", ".join(s.label for s, _ in hits)
                    raise self.error(
                        f"ambiguous column '{ident.this}' (in {tables}): qualify it with a "
                        "table name or alias",
                        node,
                    )
                if hits:
                    return self._column_val(hits[0][0], ident, node)
            level = level.parent
        if node.table:
            if not any(lv.source_of(node) for lv in scope.levels()):
                raise self.error(
                    f"unknown table or alias '{_qualifier_text(node)}' in '{self.source_text(node)}'",
                    node,
                )
        labels = ", ".join(s.label for lv in scope.levels() for s in lv.sources)
        raise self.error(f"unknown column '{ident.this}' in {labels or 'the query'}", node)

    def _column_val(self, source: Source, ident: exp.Identifier, node) -> Val:
        col = source.column(ident)
        if col is None:
            raise self.error(f"unknown column '{ident.this}' in {source.label}", node)
        sql = column_sql(source, col)
        geom = None
        kind = STORED_GEOMETRY_KINDS.get(col.xtype or "")
        if kind is not None:
            geom = Geom(kind, text=sql)
            if source.table is not None and source.table.region_index and col.name == "s_region":
                geom.rowid, geom.index = f"{source.alias}.rowid", source.table.region_index
                geom.index_kind = "region"
        return Val(sql, col, geom=geom, column=(source, col.name))

    # --- functions --------------------------------------------------------------------------
    def x_Anonymous(self, node: exp.Anonymous, scope: Scope) -> Val:
        if function_name(node) in TMOC_FUNCTIONS:
            return self.tmoc.call(node, scope)
        return self.spatial.call(node, scope)

    def x_Contains(self, node: exp.Contains, scope: Scope) -> Val:
        return self.spatial.call(node, scope)

    def condition(self, node: exp.Expression, scope: Scope) -> str:
        """A WHERE/ON/HAVING condition; spatial terms in AND/OR use the R-tree."""
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, (exp.And, exp.Or)):
            # A chain is written flat, without recursing per operator: a thousand terms
            # must neither exhaust Python's stack nor nest SQLite's parser.
            op = " AND " if isinstance(node, exp.And) else " OR "
            terms = [self.condition(t, scope) for t in flatten_chain(node)]
            return "(" + op.join(terms) + ")"
        spatial = self.spatial.condition(node, scope)
        if spatial is not None:
            return spatial
        timed = self.tmoc.condition(node, scope)
        if timed is not None:
            return timed
        return self.expr(node, scope).sql
