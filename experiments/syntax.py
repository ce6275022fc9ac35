"""Tokens and syntax-tree nodes of the audience query language, and QueryError (see experiments/query.py)."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from portrait.errors import PortraitError

KEYWORDS = {
    "and",
    "or",
    "not",
    "did",
    "in",
    "last",
    "between",
    "has",
    "days",
    "day",
    "at",
    "least",
    "times",
}
OPERATORS = ("=", "!=", ">", ">=", "<", "<=")
# Bounds of one query (the parser refuses past them, with a 400 in the service)
MAX_TOKENS = 600  # words and symbols of one query
MAX_DEPTH = 20  # nested `not` and brackets
MAX_TERMS = 60  # conditions (field tests and `did` clauses)
MAX_COUNT = 36_500  # days of a window, times of `at least N times`
MAX_NUMBER = 1e15  # a field's value (assets, scores); beyond it the query is a typo
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<op>!=|>=|<=|=|>|<)
    |(?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)
    |(?P<word>[A-Za-z0-9_.:+\-]+)""",
    re.VERBOSE,
)


class QueryError(PortraitError):
    """A query that cannot be parsed or evaluated; the message points at the bad token."""

    def __init__(self, query: str, position: int, message: str, *, hint: str = "") -> None:
        self.query, self.position = query, position
        caret = " " * position + "^"
        tail = f"\n{hint}" if hint else ""
        super().__init__(f"{message} (at position {position})\n  {query}\n  {caret}{tail}")


@dataclass(frozen=True)
class Token:
    kind: str  # word, string, op, lparen, rparen, comma, end
    text: str
    pos: int

    def keyword(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


@dataclass(frozen=True)
class Value:
    """A literal: kind is number, date, bool or text; `raw` is how it was written."""

    kind: str
    value: object
    raw: str
    pos: int


@dataclass(frozen=True)
class Window:
    """An event time window: the last `days` days before as_of, or whole days `start`..`end`."""

    days: int | None = None
    start: Value | None = None
    end: Value | None = None


@dataclass(frozen=True)
class Condition:
    """A field test: op is one of OPERATORS, "in", "between", "has" or "in_last"."""

    field: str
    op: str
    values: tuple[Value, ...]
    pos: int
    text: str


@dataclass(frozen=True)
class Did:
    """`did [not] EVENT filters [window] [at least N times]`."""

    event: str
    filters: tuple[Condition, ...]
    window: Window | None
    negated: bool
    min_count: int
    pos: int
    text: str


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple[Node, ...]


Node = Condition | Did | Not | BoolOp


@dataclass(frozen=True)
class Query:
    """A parsed query: the source text (for error messages) and the tree."""

    text: str
    root: Node


def tokenize(text: str) -> list[Token]:
    """Split a query into tokens; an unknown character raises a QueryError pointing at it."""
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise QueryError(text, pos, f"unexpected character {text[pos]!r}")
        if match.lastgroup != "ws":
            tokens.append(Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def valid_date(raw: str) -> bool:
    """Whether an ISO date-like token is a real day in 1900..2200."""
    try:
        day = dt.datetime.fromisoformat(raw)
    except ValueError:
        return False
    return 1900 <= day.year <= 2200


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class TokenCursor:
    """Reading a query's tokens one by one, with the limits (depth, terms) and typed values."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text, self.tokens, self.i = text, tokens, 0
        self.depth, self.terms = 0, 0

    def nest(self) -> None:
        """One more level of `not` or brackets; past MAX_DEPTH the query is refused."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the query nests `not` and brackets more than {MAX_DEPTH} deep")

    def term(self) -> None:
        """One more condition; past MAX_TERMS the query is refused."""
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.error(f"the query has more than {MAX_TERMS} conditions; split it")

    @property
    def peek(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, token: Token | None = None) -> QueryError:
        return QueryError(self.text, (token or self.peek).pos, message)

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def expect_keyword(self, word: str, what: str) -> Token:
        if not self.peek.keyword(word):
            shown = self.peek.text or "the end of the query"
            raise self.error(f"expected `{word}` {what}, got {shown!r}")
        return self.take()

    def name(self, what: str) -> Token:
        token = self.peek
        if (
            token.kind != "word"
            or token.text.lower() in KEYWORDS
            or not re.match(r"^[A-Za-z_]\w*$", token.text)
        ):
            shown = token.text or "the end of the query"
            raise self.error(f"expected {what}, got {shown!r}")
        return self.take()

    def value(self, what: str = "a value") -> Value:
        token = self.peek
        if token.kind == "string":
            self.take()
            return Value("text", token.text[1:-1], token.text, token.pos)
        if token.kind != "word" or token.text.lower() in KEYWORDS - {
            "days",
            "day",
            "times",
            "last",
            "least",
        }:
            shown = token.text or "the end of the query"
            raise self.error(f"expected {what}, got {shown!r}")
        self.take()
        raw = token.text
        if _DATE.match(raw):
            if not valid_date(raw):
                raise self.error(f"{raw!r} is not a calendar date between 1900 and 2200", token)
            return Value("date", raw, raw, token.pos)
        if _NUMBER.match(raw):
            number = float(raw)
            if not math.isfinite(number) or abs(number) > MAX_NUMBER:
                raise self.error(f"{raw!r} is out of range (at most {MAX_NUMBER:.0e})", token)
            return Value("number", number, raw, token.pos)
        if raw.lower() in ("true", "false"):
            return Value("bool", raw.lower() == "true", raw, token.pos)
        return Value("text", raw, raw, token.pos)

    def count(self, what: str) -> int:
        token = self.peek
        if token.kind != "word" or not token.text.isdigit():
            raise self.error(
                f"expected a whole number of {what}, got {token.text or 'the end of the query'!r}"
            )
        if len(token.text) > len(str(MAX_COUNT)) or int(token.text) > MAX_COUNT:
            raise self.error(f"{token.text[:20]!r} {what} is too many; at most {MAX_COUNT}")
        self.take()
        return int(token.text)
