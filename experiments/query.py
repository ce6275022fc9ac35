"""The audience query language: tokenizer and recursive-descent parser into a small syntax tree.

Grammar (keywords are case-insensitive)::

    query     := or_expr
    or_expr   := and_expr ("or" and_expr)*
    and_expr  := unary ("and" unary)*
    unary     := "not" unary | "(" or_expr ")" | did | condition
    did       := "did" ["not"] EVENT filter* [window] ["at" "least" N "times"]
    filter    := NAME op VALUE                      (page=credit_report, variant=B, amount>=1000)
    window    := "in" "last" N "days" | "between" DATE "and" DATE
    condition := FIELD op VALUE | FIELD "in" "(" VALUE ("," VALUE)* ")"
               | FIELD "between" VALUE "and" VALUE | FIELD "has" VALUE | FIELD "in" "last" N "days"
               | FIELD window                       (registered between 2026-01-01 and 2026-01-31)
    op        := "=" | "!=" | ">" | ">=" | "<" | "<="

Values are numbers, dates (YYYY-MM-DD), true/false, bare words or quoted strings.
A FIELD may be a score of one product: `propensity(PRODUCT) > 0.2` (the calibrated probability
that the customer buys PRODUCT, from the run's propensity.parquet); at most
MAX_PROPENSITY_TERMS such terms per query, product ids at most MAX_PRODUCT_ID characters.
"""

from __future__ import annotations

from experiments.syntax import (
    KEYWORDS,
    MAX_TOKENS,
    BoolOp,
    Condition,
    Did,
    Node,
    Not,
    Query,
    QueryError,
    Token,
    TokenCursor,
    Value,
    Window,
    tokenize,
)  # fmt: skip

MAX_PROPENSITY_TERMS = 20
MAX_PRODUCT_ID = 64
PROPENSITY = "propensity"


def parse_query(text: str) -> Query:
    """Parse a query string into a Query; errors name the bad token and its position."""
    if not text or not text.strip():
        raise QueryError(
            text or "",
            0,
            "the query is empty; e.g. `churn_probability > 0.6 and did not login in last 30 days`",
        )
    tokens = tokenize(text)
    if len(tokens) > MAX_TOKENS:
        raise QueryError(text, tokens[MAX_TOKENS].pos,
                         f"the query has more than {MAX_TOKENS} words and symbols; split it")  # fmt: skip
    parser = _Parser(text, tokens)
    root = parser.or_expr()
    if parser.peek.kind != "end":
        raise parser.error(
            f"unexpected {parser.peek.text!r}; expected `and`, `or` or the end of the query"
        )
    return Query(text, root)


class _Parser(TokenCursor):
    """The grammar of the module docstring, one method per rule."""

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.peek.keyword("or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Node:
        items = [self.unary()]
        while self.peek.keyword("and"):
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def unary(self) -> Node:
        token = self.peek
        if token.keyword("not"):
            self.take()
            self.nest()
            inner = Not(self.unary())
            self.depth -= 1
            return inner
        if token.kind == "lparen":
            self.take()
            self.nest()
            inner = self.or_expr()
            if self.peek.kind != "rparen":
                raise self.error(f"expected `)` to close the `(` at position {token.pos}")
            self.take()
            self.depth -= 1
            return inner
        self.term()
        if token.keyword("did"):
            return self.did()
        return self.condition()

    def last_days(self) -> Window:
        self.expect_keyword("last", "after `in` (as in `in last 30 days`)")
        days = self.count("days")
        if not self.peek.keyword("days", "day"):
            raise self.error(f"expected `days` after `in last {days}`")
        self.take()
        return Window(days=days)

    def between_dates(self) -> Window:
        start = self.value("a date (YYYY-MM-DD)")
        self.expect_keyword("and", "between the two dates of `between`")
        end = self.value("a date (YYYY-MM-DD)")
        for v in (start, end):
            if v.kind != "date":
                raise QueryError(
                    self.text, v.pos, f"{v.raw!r} is not a date; write dates as YYYY-MM-DD"
                )
        return Window(start=start, end=end)

    def window(self) -> Window | None:
        if self.peek.keyword("in") and self.tokens[self.i + 1].keyword("last"):
            self.take()
            return self.last_days()
        if self.peek.keyword("between"):
            self.take()
            return self.between_dates()
        return None

    def did(self) -> Did:
        start = self.take()
        negated = self.peek.keyword("not")
        if negated:
            self.take()
        event = self.name("an event name after `did` (e.g. login, page_view, invest_success, buy)")
        filters = []
        while (
            self.peek.kind == "word"
            and not self.peek.keyword(*KEYWORDS)
            and self.tokens[self.i + 1].kind == "op"
        ):
            field = self.take()
            op = self.take()
            filters.append(Condition(field.text, op.text, (self.value(),), field.pos, ""))
        window = self.window()
        min_count = 1
        if self.peek.keyword("at"):
            self.take()
            self.expect_keyword("least", "after `at` (as in `at least 3 times`)")
            min_count = self.count("times")
            if not self.peek.keyword("times", "time"):
                raise self.error(f"expected `times` after `at least {min_count}`")
            self.take()
        text = self.text[start.pos : self._end()].strip()
        return Did(event.text, tuple(filters), window, negated, min_count, start.pos, text)

    def product_score(self, field: Token) -> Token:
        """`propensity(PRODUCT)` as one field token named `propensity(PRODUCT)` (bounded)."""
        self.take()  # the `(`
        product = self.value("a product id inside `propensity(...)`")
        if len(product.raw) > MAX_PRODUCT_ID or product.kind not in ("text", "number"):
            raise QueryError(self.text, product.pos,
                             f"{product.raw[:MAX_PRODUCT_ID]!r} is not a product id "
                             f"(at most {MAX_PRODUCT_ID} characters)")  # fmt: skip
        if self.peek.kind != "rparen":
            raise self.error("expected `)` after the product id of `propensity(`")
        self.take()
        self.terms = getattr(self, "terms", 0) + 1
        if self.terms > MAX_PROPENSITY_TERMS:
            raise QueryError(self.text, field.pos,
                             f"more than {MAX_PROPENSITY_TERMS} propensity(...) terms in one query")  # fmt: skip
        name = str(product.value if product.kind == "text" else product.raw)
        return Token("word", f"{PROPENSITY}({name})", field.pos)

    def condition(self) -> Condition:
        field = self.name("a field name, `did`, `not` or `(`")
        if field.text.lower() == PROPENSITY and self.peek.kind == "lparen":
            field = self.product_score(field)
        token = self.peek
        if token.kind == "op":
            self.take()
            values: tuple[Value, ...] = (self.value(f"a value after {token.text!r}"),)
            op = token.text
        elif token.keyword("in") and self.tokens[self.i + 1].keyword("last"):
            self.take()
            op, values = "in_last", (Value("number", float(self.last_days().days), "", token.pos),)
        elif token.keyword("in"):
            self.take()
            op, values = "in", self.value_list()
        elif token.keyword("between"):
            self.take()
            low = self.value("the lower bound of `between`")
            self.expect_keyword("and", "between the two bounds of `between`")
            op, values = "between", (low, self.value("the upper bound of `between`"))
        elif token.keyword("has"):
            self.take()
            op, values = "has", (self.value("a tag after `has`"),)
        else:
            shown = token.text or "the end of the query"
            raise self.error(
                f"expected an operator (= != > >= < <= in between has) after {field.text!r}, got {shown!r}"
            )
        return Condition(
            field.text, op, values, field.pos, self.text[field.pos : self._end()].strip()
        )

    def value_list(self) -> tuple[Value, ...]:
        if self.peek.kind != "lparen":
            raise self.error(
                "expected `(` after `in`, as in `value_tier in (top, potential_large)`"
            )
        self.take()
        values = [self.value()]
        while self.peek.kind == "comma":
            self.take()
            values.append(self.value())
        if self.peek.kind != "rparen":
            raise self.error("expected `,` or `)` in the list after `in`")
        self.take()
        return tuple(values)

    def _end(self) -> int:
        last = self.tokens[self.i - 1]
        return last.pos + len(last.text)
