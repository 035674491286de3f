"""Checks of an ADQL text before it is parsed: tokens, numbers, size and depth limits.

The parser (sqlglot) and SQLite both recurse on nested constructs and accept some
text that is not ADQL; both are protected here, on the token stream, so that a
hostile or hasty query gets a 400 naming its problem and position instead of a
crash deep inside a library. Limits are those of this service, chosen so that
any query within them translates and runs (SQLite's parser stack holds about a
hundred levels, Python's recursion a thousand frames).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

from .._errors import AdqlError

__all__ = [
    "LIMITS",
    "NOT_XML",
    "MessageMixin",
    "QueryLimits",
    "check_tokens",
    "check_tree",
    "describe_text",
    "flatten_chain",
    "line_col",
    "node_span",
    "query_error",
    "tokenize",
]


@dataclass(frozen=True)
class QueryLimits:
    """Size and depth limits of one ADQL query (each named in the message that enforces it)."""

    #: Levels of parentheses, function calls and CASE expressions inside each other.
    nesting: int = 20
    #: Subqueries inside subqueries (a top-level SELECT is level 1).
    subqueries: int = 6
    #: SELECTs in one query (UNION/INTERSECT/EXCEPT arms and subqueries together).
    selects: int = 64
    #: AND/OR operators in one query.
    boolean_terms: int = 500
    #: Nesting of the parsed query, weighted by what each construct costs SQLite's
    #: parser (see :func:`check_tree`): about 90 fits its stack of 100.
    expression_depth: int = 85
    #: Tables and subqueries in the FROM clauses of one query.
    tables: int = 32
    #: Vertices of one POLYGON (as pgSphere's limit).
    polygon_vertices: int = 1024


#: The limits the service applies.
LIMITS = QueryLimits()

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
# Punctuation and operators of ADQL; any other symbol token is refused.
_SYMBOLS = {
    TokenType.L_PAREN, TokenType.R_PAREN, TokenType.COMMA, TokenType.DOT, TokenType.STAR,
    TokenType.PLUS, TokenType.DASH, TokenType.SLASH, TokenType.EQ, TokenType.NEQ,
    TokenType.LT, TokenType.LTE, TokenType.GT, TokenType.GTE, TokenType.DPIPE,
}  # fmt: skip
_HINTS = {
    TokenType.SEMICOLON: "';' is not part of ADQL: send one query, without a trailing ';'",
    TokenType.LIMIT: "LIMIT is not ADQL: write SELECT TOP n ... instead",
    TokenType.DCOLON: "'::' is not ADQL: write CAST(x AS type)",
    TokenType.MOD: "'%' is not an ADQL operator: write MOD(x, y)",
    TokenType.PLACEHOLDER: "'?' placeholders are not ADQL: write the value itself",
}
# Tokens after which a ',' or ')' cannot follow, and what may not follow a ','.
_NO_ITEM_AFTER_COMMA = {
    TokenType.COMMA, TokenType.R_PAREN, TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY,
    TokenType.ORDER_BY, TokenType.HAVING, TokenType.UNION, TokenType.INTERSECT,
    TokenType.EXCEPT, TokenType.ON, TokenType.OFFSET,
}  # fmt: skip
# Tokens that end an operand: a '-' or '+' after them is binary, not a sign.
_OPERAND_END = {
    TokenType.NUMBER, TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING,
    TokenType.R_PAREN, TokenType.END, TokenType.NULL, TokenType.STAR,
}  # fmt: skip
#: Characters XML 1.0 cannot carry (nor a VOTable, nor a message in one).
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character *offset* of *text*."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def describe_text(text: str, limit: int = 40) -> str:
    """*text* as quoted in a message: shortened, invisible characters as ``\\uXXXX``."""
    short = text if len(text) <= limit else text[: limit - 3] + "..."
    return "".join(
        f"\\u{ord(c):04X}" if (not c.isprintable() and c != " ") or NOT_XML.match(c) else c
        for c in short
    )


def query_error(text: str, offset: int, snippet: str, message: str) -> AdqlError:
    """An :class:`AdqlError` at character *offset*: "<message> at line L, column C near '...'"."""
    line, col = line_col(text, offset)
    near = f" near '{describe_text(snippet)}'" if snippet else ""
    return AdqlError(
        f"{message} (at line {line}, column {col}{near})", query=text, position=(line, col)
    )


def _unterminated(text: str) -> AdqlError:
    """Locate the quote a tokenizer error is about: the first one left open."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if ch in "'\"":
            j = i + 1
            while True:
                j = text.find(ch, j)
                if j < 0:
                    what = "string" if ch == "'" else "quoted name"
                    return query_error(text, i, text[i : i + 20],
                                       f"unterminated {what}: the closing {ch} is missing")  # fmt: skip
                if text.startswith(ch * 2, j):  # doubled quote inside
                    j += 2
                    continue
                break
            i = j + 1
            continue
        i += 1
    return query_error(text, 0, text[:20], "the query cannot be split into ADQL words")


def tokenize(text: str, tokenizer) -> list[Token]:
    """The tokens of *text*; an unterminated string or name is an :class:`AdqlError`."""
    try:
        return tokenizer.tokenize(text)
    except TokenError:
        raise _unterminated(text) from None


def _check_number(text: str, tok: Token, following: Token | None) -> None:
    raw = tok.text
    if not raw.isascii() or not _NUMBER.match(raw):
        raise query_error(text, tok.start, raw, f"'{describe_text(raw)}' is not a valid "
                          "number: write numbers with the digits 0-9")  # fmt: skip
    if following is not None and following.start == tok.end + 1 and following.text[:1].isalnum():
        bad = text[tok.start : following.end + 1]
        raise query_error(text, tok.start, bad, f"'{describe_text(bad)}' is not a valid number")
    if math.isinf(float(raw)):
        raise query_error(text, tok.start, raw, f"the number {describe_text(raw)} is out of "
                          "range (beyond ±1.8e308)")  # fmt: skip


def _check_word(text: str, tok: Token) -> None:
    raw = tok.text
    if all(_WORD.match(word) for word in raw.split()):  # keywords such as GROUP BY
        return
    if any(c.isdigit() and not c.isascii() for c in raw):
        msg = f"'{describe_text(raw)}' uses non-ASCII digits: write numbers with the digits 0-9"
    else:
        msg = (f"'{describe_text(raw)}' is not a valid ADQL name: unquoted names use ASCII "
               'letters, digits and _ (put other names in double quotes, "like this")')  # fmt: skip
    raise query_error(text, tok.start, raw, msg)


def check_tokens(text: str, tokens: list[Token], limits: QueryLimits = LIMITS) -> None:
    """Refuse non-ADQL tokens and queries beyond the :class:`QueryLimits`, before parsing."""
    depth = 0
    frames: list[bool] = []  # one per open parenthesis/CASE: does it hold a SELECT?
    selects = terms = prefixes = 0
    prev: Token | None = None
    for i, tok in enumerate(tokens):
        tt, raw = tok.token_type, tok.text
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tt in _HINTS:
            raise query_error(text, tok.start, raw, _HINTS[tt])
        if tt == TokenType.NUMBER:
            _check_number(text, tok, nxt)
        elif tt == TokenType.EQ and raw != "=":
            raise query_error(text, tok.start, raw, f"'{raw}' is not ADQL: write '='")
        elif tt in (TokenType.STRING, TokenType.IDENTIFIER):
            pass
        elif raw[:1].isalpha() or raw[:1] in "_$" or (raw and not raw.isascii()):
            _check_word(text, tok)
        elif tt not in _SYMBOLS:
            raise query_error(text, tok.start, raw,
                              f"'{describe_text(raw)}' is not part of ADQL")  # fmt: skip
        if tt == TokenType.COMMA and (
            prev is None or prev.token_type in (TokenType.COMMA, TokenType.L_PAREN,
                                                TokenType.SELECT, TokenType.DISTINCT)
            or nxt is None or nxt.token_type in _NO_ITEM_AFTER_COMMA
        ):  # fmt: skip
            raise query_error(text, tok.start, raw, "a list item is missing around this ','")
        # Prefix operators (NOT, unary signs) nest like parentheses in the parser.
        if tt == TokenType.NOT or (tt in (TokenType.DASH, TokenType.PLUS)
                                   and (prev is None or prev.token_type not in _OPERAND_END)):  # fmt: skip
            prefixes += 1
            if prefixes > limits.nesting:
                raise query_error(text, tok.start, raw, f"the query has more than "
                                  f"{limits.nesting} NOT or sign operators in a row (the limit "
                                  "of this service)")  # fmt: skip
        else:
            prefixes = 0
        if tt in (TokenType.L_PAREN, TokenType.CASE):
            depth += 1
            frames.append(False)
            if depth > limits.nesting:
                raise query_error(
                    text, tok.start, raw,
                    f"the query nests parentheses, function calls and CASE expressions more "
                    f"than {limits.nesting} levels deep (the limit of this service)",
                )  # fmt: skip
        elif tt in (TokenType.R_PAREN, TokenType.END) and frames:
            depth -= 1
            frames.pop()
        elif tt == TokenType.SELECT:
            selects += 1
            if selects > limits.selects:
                raise query_error(text, tok.start, raw, f"the query has more than "
                                  f"{limits.selects} SELECTs (the limit of this service)")  # fmt: skip
            if frames:
                frames[-1] = True
            if sum(frames) + 1 > limits.subqueries:
                raise query_error(
                    text, tok.start, raw,
                    f"the query nests subqueries more than {limits.subqueries} levels deep "
                    "(the limit of this service)",
                )  # fmt: skip
        elif tt in (TokenType.AND, TokenType.OR):
            terms += 1
            if terms > limits.boolean_terms:
                raise query_error(text, tok.start, raw, f"the query has more than "
                                  f"{limits.boolean_terms} AND/OR operators (the limit of "
                                  "this service)")  # fmt: skip
        prev = tok


def node_span(node: exp.Expression) -> tuple[int, int] | None:
    """(first, last) character offsets of the source text of *node*, when known."""
    starts, ends = [], []
    for n in node.walk():
        meta = n.meta if n.meta else None
        if meta and isinstance(meta.get("start"), int):
            starts.append(meta["start"])
            ends.append(meta.get("end", meta["start"]))
    return (min(starts), max(ends)) if starts else None


def _weight(node: exp.Expression, parent: exp.Expression | None) -> int:
    """What *node* costs SQLite's parser stack, roughly, in the SQL written for it."""
    if isinstance(node, (exp.And, exp.Or)):
        return 0 if type(parent) is type(node) else 1  # chains are written flat
    if isinstance(node, exp.Binary):
        return 1
    if isinstance(node, exp.Case):
        return 6
    if isinstance(node, exp.If):
        return 0
    if isinstance(node, exp.Subquery):
        return 8
    if isinstance(node, exp.Select):
        return 3
    if isinstance(node, (exp.Paren, exp.Not, exp.Neg)):
        return 2
    if isinstance(node, exp.Func):
        return 3
    return 0


def check_tree(text: str, tree: exp.Expression, limits: QueryLimits = LIMITS) -> None:
    """Refuse a parsed query nested beyond ``limits.expression_depth`` (iteratively, no recursion)."""
    deepest, where = 0, tree
    stack: list[tuple[exp.Expression, exp.Expression | None, int]] = [(tree, None, 0)]
    while stack:
        node, parent, cost = stack.pop()
        cost += _weight(node, parent)
        if cost > deepest:
            deepest, where = cost, node
        for child in node.iter_expressions():
            stack.append((child, node, cost))
    if deepest > limits.expression_depth:
        span = node_span(where) or node_span(tree) or (0, 0)
        raise query_error(
            text, span[0], text[span[0] : span[1] + 1],
            f"the query is nested too deeply: its innermost part is {deepest} levels deep, "
            f"the limit of this service is {limits.expression_depth} (an operator counts 1, "
            "parentheses 2, a function call 3, CASE 6, a subquery 11)",
        )  # fmt: skip


def flatten_chain(node: exp.Expression) -> list[exp.Expression]:
    """The operands of a chain of one associative operator (``a AND b AND c``), in order."""
    kind, out, stack = type(node), [], [node]
    while stack:
        n = stack.pop()
        if type(n) is kind:
            stack += [n.expression, n.this]
        else:
            out.append(n)
    return out


class MessageMixin:
    """Positions and quoted text of syntax-tree nodes, for the translator's messages."""

    text: str

    def span(self, node: exp.Expression | None) -> tuple[int, int]:
        """Source offsets of *node*: its own tokens, else its nearest enclosing node's."""
        while node is not None:
            found = node_span(node)
            if found is not None:
                return found
            node = node.parent
        first = len(self.text) - len(self.text.lstrip())
        return first, min(len(self.text), first + 30) - 1

    def source_text(self, node: exp.Expression | None) -> str:
        """The ADQL text of *node* as the user wrote it (shortened, for messages)."""
        start, end = self.span(node)
        return describe_text(self.text[start : end + 1], 60)

    def error(self, message: str, node: exp.Expression | None = None) -> AdqlError:
        start, end = self.span(node)
        line, col = line_col(self.text, start)
        near = describe_text(self.text[start : end + 1])
        return AdqlError(
            f"{message} (at line {line}, column {col} near '{near}')",
            query=self.text,
            position=(line, col),
        )

    def position(self, node: exp.Expression | None) -> tuple[int, int] | None:
        """1-based (line, column) of the first token of *node*."""
        return line_col(self.text, self.span(node)[0])
