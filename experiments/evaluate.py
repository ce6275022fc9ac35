"""Evaluate a parsed audience query to one boolean per customer, and say why each customer matched.

Semantics (documented for marketers in experiments/README.md):
- a missing value never equals, exceeds or lies between anything; `!=` is `not =`, so it includes missing;
- dates are whole days: `registered between 2026-01-01 and 2026-01-31` covers both days entirely,
  `> D` means after day D, `<= D` up to the end of day D;
- `did EVENT` counts only events strictly before as_of; `in last N days` is [as_of - N days, as_of);
- `did not X` is exactly the customers for whom `did X` is false.
Every condition is a vectorised mask over the whole customer frame; nothing loops over rows.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from experiments.events import event_rows
from experiments.query import PROPENSITY
from experiments.syntax import Condition, Did, Node, Not, Query, QueryError, Value

FIELD_ALIASES = {"registered": "signup_at", "signed_up": "signup_at"}
DAY = pd.Timedelta(days=1)


class QueryEvaluator:
    """Evaluates one query against a customer frame (index customer_id) and the event tables at as_of."""

    def __init__(
        self,
        query: Query,
        *,
        fields: pd.DataFrame,
        tables: dict[str, pd.DataFrame],
        as_of: pd.Timestamp,
        propensity: pd.DataFrame | None = None,
    ):
        self.query, self.fields, self.tables, self.as_of = (
            query,
            fields,
            tables,
            pd.Timestamp(as_of),
        )
        self.propensity = propensity  # long: customer_id, product_id, probability
        self.leaves: dict[int, tuple[np.ndarray, pd.Series | None]] = {}

    def mask(self, node: Node | None = None) -> np.ndarray:
        """Boolean array over `fields` rows: True where the customer satisfies the (sub)query."""
        node = self.query.root if node is None else node
        if isinstance(node, Not):
            return ~self.mask(node.item)
        if isinstance(node, Condition | Did):
            return self._leaf(node)[0]
        masks = [self.mask(item) for item in node.items]
        combine = np.logical_and if node.op == "and" else np.logical_or
        return combine.reduce(masks)

    def explain(self, rows: np.ndarray) -> pd.Series:
        """For customers in `rows`, the conditions that made them match, joined with '; '."""
        reasons = pd.Series("", index=self.fields.index[rows], dtype="str")
        for label, where in self._reasons(self.query.root, True, rows):
            where = where[rows]
            if not where.any():
                continue
            text = label if isinstance(label, str) else label[rows]
            if isinstance(text, pd.Series):
                text = text.to_numpy()
            added = reasons.where(reasons == "", reasons + "; ") + text
            reasons = reasons.where(~where, added)
        return reasons

    def _reasons(self, node: Node, want: bool, rows: np.ndarray) -> list[tuple[object, np.ndarray]]:
        if isinstance(node, Not):
            return self._reasons(node.item, not want, rows)
        if isinstance(node, Condition | Did):
            mask, detail = self._leaf(node)
            if want:
                label = node.text if detail is None else node.text + " (" + detail + ")"
                return [(label, rows & mask)]
            return [(f"not ({node.text})", rows & ~mask)]
        out = []
        for item in node.items:
            child = self.mask(item)
            narrowed = rows & (child if want else ~child) if (node.op == "or") == want else rows
            out.extend(self._reasons(item, want, narrowed))
        return out

    def _leaf(self, node: Condition | Did) -> tuple[np.ndarray, pd.Series | None]:
        key = id(node)
        if key not in self.leaves:
            self.leaves[key] = self._did(node) if isinstance(node, Did) else self._condition(node)
        return self.leaves[key]

    def _column(self, node: Condition) -> pd.Series:
        if node.field.startswith(PROPENSITY + "("):
            return self._propensity(node)
        name = FIELD_ALIASES.get(node.field, node.field)
        if name not in self.fields.columns:
            known = ", ".join(sorted({*self.fields.columns, *FIELD_ALIASES}))
            hint = " (segments and churn scores need --run RUN_DIR)" if name in _RUN_FIELDS else ""
            raise QueryError(
                self.query.text,
                node.pos,
                f"unknown field {node.field!r}{hint}",
                hint=f"available fields: {known}",
            )
        return self.fields[name]

    def _propensity(self, node: Condition) -> pd.Series:
        """The probability of buying the product per customer; NaN where the pair is not allowed."""
        product = node.field[len(PROPENSITY) + 1 : -1]
        scores = self.propensity
        if scores is None or scores.empty:
            raise QueryError(self.query.text, node.pos,
                             "propensity(...) needs the run's propensity.parquet (pass --run RUN_DIR "
                             "of a run whose conversion model trained)")  # fmt: skip
        rows = scores.loc[scores["product_id"].astype(str).eq(product)]
        if rows.empty:
            known = ", ".join(sorted(scores["product_id"].astype(str).unique())[:20])
            raise QueryError(self.query.text, node.pos, f"no propensity for product {product!r}",
                             hint=f"products with a propensity include: {known}")  # fmt: skip
        by_customer = rows.drop_duplicates("customer_id").set_index("customer_id")["probability"]
        return by_customer.astype(float).reindex(self.fields.index)

    def _condition(self, node: Condition) -> tuple[np.ndarray, pd.Series | None]:
        column = self._column(node)
        mask = compare(column, node, query=self.query, as_of=self.as_of)
        detail = None
        if node.op not in ("=", "in", "has") and not pd.api.types.is_bool_dtype(column):
            detail = node.field + "=" + _shown(column)
        return mask, detail

    def _did(self, node: Did) -> tuple[np.ndarray, pd.Series | None]:
        rows = event_rows(node, tables=self.tables, query=self.query, as_of=self.as_of)
        rows = _in_window(rows, node, self.query, self.as_of)
        grouped = rows.groupby("customer_id", sort=False)["ts"]
        counts = grouped.size().reindex(self.fields.index, fill_value=0).to_numpy()
        mask = counts >= node.min_count
        if node.negated:
            return ~mask, None
        last = grouped.max().reindex(self.fields.index).dt.strftime("%Y-%m-%d")
        detail = (
            pd.Series(counts, index=self.fields.index).astype("str")
            + "x, last "
            + last.fillna("never")
        )
        return mask, detail


_RUN_FIELDS = {
    "segment_id",
    "segment_name",
    "value_tier",
    "lifecycle_stage",
    "tags",
    "churn_probability",
    "uplift",
}


def _shown(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.dt.strftime("%Y-%m-%d").fillna("missing")
    if pd.api.types.is_float_dtype(column):
        return column.round(4).astype("str").replace("nan", "missing")
    return column.astype("str").fillna("missing")


def _in_window(rows: pd.DataFrame, node: Did, query: Query, as_of: pd.Timestamp) -> pd.DataFrame:
    ts = rows["ts"]
    keep = ts < as_of
    window = node.window
    if window is not None and window.days is not None:
        keep &= ts >= as_of - pd.Timedelta(days=window.days)
    elif window is not None:
        start, end = _date(window.start, query), _day_end(window.end, query)
        if end <= start:
            raise QueryError(
                query.text,
                window.start.pos,
                f"the window {window.start.raw}..{window.end.raw} is empty",
            )
        keep &= (ts >= start) & (ts < end)
    return rows.loc[keep.to_numpy()]


def _date(value: Value, query: Query) -> pd.Timestamp:
    if value.kind != "date":
        raise QueryError(
            query.text, value.pos, f"{value.raw!r} is not a date; write dates as YYYY-MM-DD"
        )
    return pd.Timestamp(value.value)


def _day_end(value: Value, query: Query) -> pd.Timestamp:
    """The exclusive end of a date bound: the next midnight for a whole day, the instant itself otherwise."""
    stamp = _date(value, query)
    return stamp + DAY if len(value.raw) == 10 else stamp


def compare(column: pd.Series, node: Condition, *, query: Query, as_of: pd.Timestamp) -> np.ndarray:
    """Vectorised test of one condition on one column; the value kinds must fit the column's type."""
    if node.op == "!=":
        return ~compare(
            column,
            Condition(node.field, "=", node.values, node.pos, node.text),
            query=query,
            as_of=as_of,
        )
    if node.op == "has":
        return _has(column, node.values[0])
    if pd.api.types.is_datetime64_any_dtype(column):
        return _compare_dates(column, node, query, as_of)
    numeric = pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
    values = [_typed(v, numeric, node, query) for v in node.values]
    if node.op == "in_last":
        raise QueryError(
            query.text, node.pos, f"`in last N days` needs a date field; {node.field!r} is not one"
        )
    if not numeric and node.op in (">", ">=", "<", "<=", "between"):
        raise QueryError(
            query.text,
            node.pos,
            f"{node.op!r} needs a numeric or date field; {node.field!r} holds text",
        )
    data = column.astype("float64") if numeric else column.astype("str")
    ops = {
        "=": lambda: data == values[0],
        ">": lambda: data > values[0],
        ">=": lambda: data >= values[0],
        "<": lambda: data < values[0],
        "<=": lambda: data <= values[0],
        "in": lambda: data.isin(values),
        "between": lambda: (data >= values[0]) & (data <= values[1]),
    }
    return ops[node.op]().fillna(False).to_numpy(dtype=bool)


def _typed(value: Value, numeric: bool, node: Condition, query: Query) -> object:
    if numeric and value.kind in ("number", "bool"):
        return float(value.value)
    if numeric:
        raise QueryError(
            query.text, value.pos, f"{node.field!r} is numeric; {value.raw!r} is not a number"
        )
    return value.raw if value.kind != "text" else value.value


def _compare_dates(
    column: pd.Series, node: Condition, query: Query, as_of: pd.Timestamp
) -> np.ndarray:
    ts = column
    if node.op == "in_last":
        return (
            ((ts >= as_of - pd.Timedelta(days=node.values[0].value)) & (ts < as_of))
            .fillna(False)
            .to_numpy(bool)
        )
    starts = [_date(v, query) for v in node.values]
    ends = [_day_end(v, query) for v in node.values]
    ops = {
        "=": lambda: (ts >= starts[0]) & (ts < ends[0]),
        ">": lambda: ts >= ends[0],
        ">=": lambda: ts >= starts[0],
        "<": lambda: ts < starts[0],
        "<=": lambda: ts < ends[0],
        "between": lambda: (ts >= starts[0]) & (ts < ends[-1]),
        "in": lambda: np.logical_or.reduce(
            [(ts >= s) & (ts < e) for s, e in zip(starts, ends, strict=True)]
        ),
    }
    return pd.Series(ops[node.op](), index=column.index).fillna(False).to_numpy(dtype=bool)


def _has(column: pd.Series, value: Value) -> np.ndarray:
    """Tag membership: the column holds lists of tags or text with tags separated by , ; or |."""
    tag = str(value.value)
    first = column.dropna().head(1)
    if len(first) and isinstance(first.iloc[0], list | tuple | np.ndarray):
        exploded = column.explode()
        hit = (exploded.astype("str") == tag).groupby(level=0, sort=False).any()
        return hit.reindex(column.index, fill_value=False).to_numpy(dtype=bool)
    pattern = r"(?:^|[,;|]\s*)" + re.escape(tag) + r"\s*(?:$|[,;|])"
    return column.astype("str").str.contains(pattern, regex=True).fillna(False).to_numpy(dtype=bool)
