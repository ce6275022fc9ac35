"""Tokens and syntax-tree nodes of the audience query language, and QueryError (see experiments/query.py)."""

from __future__ import annotations

import datetime as dt
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
