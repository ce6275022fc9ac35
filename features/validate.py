"""Typing, row checks and quarantine for the contract tables (DATA_CONTRACT.md, "Bad input").

``validate_tables`` is pure: raw frames in, ``ValidatedData`` out. Per table and in
``TABLE_ORDER`` (so references see only the kept rows of the tables they point at):

1. schema: every contract column present, and no column mostly unparseable as its kind
   (> ``TYPE_BREAK_FRACTION`` of its non-missing values) -> ``ContractError``;
2. rows, per column in spec order: missing required value, unparseable value, non-integer,
   out of range (low/high), not an allowed value, not matching the pattern; then duplicate
   unique key (the first good occurrence is kept); then references to other tables;
3. a row failing several rules is quarantined with the FIRST reason in that order;
4. more than ``max_bad_fraction`` of a table quarantined -> ``TooManyBadRows`` (a
   ``ContractError``) whose ``data`` attribute holds the validated data, so the caller can
   still write the quarantine files for inspection.

Every check is a boolean mask over the whole column; there is no loop over rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import REASON, SPECS, TABLE_ORDER, TableSpec
from features.load import STRING, is_missing, parse_column, read_dataset
from features.quality import TableQuality, TooManyBadRows, ValidatedData
from features.timeline import TIME_COLUMNS, TIME_ORDERED, in_time_order
from portrait.errors import ContractError

ROW = "row"
TYPE_BREAK_FRACTION = 0.5  # more unparseable values than this is a wrong type, not bad rows
SETTING = "validation.max_bad_fraction"
KIND_WORDS = {
    "timestamp": "timestamp",
    "date": "timestamp",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
}


class _Reasons:
    """The first failing rule of every row, filled rule by rule with boolean masks."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.text = np.full(n, None, dtype=object)
        self.rule = np.full(n, None, dtype=object)

    def add(
        self,
        mask: np.ndarray,
        rule: str,
        values: pd.Series | pd.DataFrame | None = None,
        *,
        quote: bool = True,
    ) -> None:
        """Mark rows in ``mask`` not yet bad with ``rule`` (+ ": value" taken from ``values``)."""
        idx = np.flatnonzero(mask & ~self.bad)
        if idx.size == 0:
            return
        self.bad[idx] = True
        self.rule[idx] = rule
        if values is None:
            self.text[idx] = rule
            return
        # Format only the failing rows: building text for a whole 5M column is slow.
        shown = _shown(values.iloc[idx], quote=quote)
        self.text[idx] = (rule + ": " + shown).to_numpy(dtype=object)


def _shown(values: pd.Series | pd.DataFrame, *, quote: bool) -> pd.Series:
    if isinstance(values, pd.DataFrame):
        parts = [_shown(values[c], quote=quote) for c in values.columns]
        joined = parts[0]
        for part in parts[1:]:
            joined = joined + ", " + part
        return "(" + joined + ")"
    text = values.astype(STRING).fillna("<NA>")
    return "'" + text + "'" if quote else text


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _range_rule(col) -> str:
    if col.high is None and col.low == 0:
        return f"negative or zero {col.name}" if col.low_exclusive else f"negative {col.name}"
    if col.high is None:
        return f"{col.name} not {'>' if col.low_exclusive else '>='} {_num(col.low)}"
    if col.low is None:
        return f"{col.name} above {_num(col.high)}"
    opening = "(" if col.low_exclusive else ""
    return f"{col.name} out of range {opening}{_num(col.low)}..{_num(col.high)}"


def _isin(value: pd.Series, allowed: Any) -> np.ndarray:
    """``value.isin(allowed)`` for string columns, missing -> False.

    Arrow's hash lookup directly: pandas' own isin walks the value set in Python, which
    costs about a second per 5M-row reference check against 100k customers.
    """
    needles = pa.array(value.astype(STRING))
    haystack = pa.array(pd.Series(allowed, dtype=STRING).dropna()).cast(needles.type)
    return np.asarray(pc.is_in(needles, value_set=haystack), dtype=bool)


def _check_schema(spec: TableSpec, raw: pd.DataFrame) -> None:
    missing = [c for c in spec.names if c not in raw.columns]
    if missing:
        raise ContractError(
            f"table '{spec.name}' has no column '{missing[0]}' (columns found: "
            f"{', '.join(map(str, raw.columns)) or 'none'}); add it to the extract "
            f"(expected columns: {', '.join(spec.names)}; see DATA_CONTRACT.md)"
        )


def _check_type_break(
    spec: TableSpec, col, raw: pd.Series, present: np.ndarray, bad: np.ndarray
) -> None:
    n_present, n_bad = int(present.sum()), int(bad.sum())
    if n_present and n_bad / n_present > TYPE_BREAK_FRACTION:
        example = raw.iloc[int(np.flatnonzero(bad)[0])]
        word = KIND_WORDS[col.kind]
        hint = (
            "ISO-8601 timestamps such as 2024-05-01T09:30:00Z"
            if word == "timestamp"
            else f"{word} values"
        )
        raise ContractError(
            f"table '{spec.name}', column '{col.name}': {n_bad} of {n_present} values "
            f"({n_bad / n_present:.0%}) cannot be parsed as {word}, e.g. {example!r}; "
            f"the column has the wrong type: write {hint} (see DATA_CONTRACT.md)"
        )


def _check_columns(spec: TableSpec, raw: pd.DataFrame, reasons: _Reasons) -> dict[str, pd.Series]:
    typed: dict[str, pd.Series] = {}
    for col in spec.columns:
        s = raw[col.name]
        missing = is_missing(s)
        value, unparseable, fraction = parse_column(s, col.kind, missing)
        _check_type_break(spec, col, s, ~missing, unparseable)
        if not col.nullable:
            reasons.add(missing, f"missing required value in {col.name}")
        reasons.add(
            unparseable,
            f"unparseable {KIND_WORDS.get(col.kind, col.kind)} in {col.name}",
            s,
        )
        if fraction is not None:
            reasons.add(fraction, f"non-integer value in {col.name}", s, quote=False)
        _check_domain(col, value, reasons)
        typed[col.name] = value
    return typed


def _check_domain(col, value: pd.Series, reasons: _Reasons) -> None:
    if col.low is not None or col.high is not None:
        v = value.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            low = (
                (v <= col.low if col.low_exclusive else v < col.low)
                if col.low is not None
                else False
            )
            high = v > col.high if col.high is not None else False
        reasons.add(np.asarray(low | high), _range_rule(col), value, quote=False)
    if col.allowed is not None:
        bad = value.notna().to_numpy() & ~_isin(value, col.allowed)
        reasons.add(bad, f"{col.name} not one of {'/'.join(col.allowed)}", value)
    if col.pattern is not None:
        # Few distinct values (event names): match each once, then map back by code.
        codes, uniques = pd.factorize(value)
        ok = (
            pd.Series(uniques, dtype=STRING).str.fullmatch(col.pattern).fillna(False).to_numpy(bool)
        )
        bad = ~np.append(ok, True)[codes]  # code -1 (missing) points at the trailing True
        label = col.pattern_name or f"matching {col.pattern}"
        reasons.add(bad, f"{col.name} not {label}", value)


def _check_unique(spec: TableSpec, typed: dict[str, pd.Series], reasons: _Reasons) -> None:
    if not spec.unique:
        return
    keys = pd.DataFrame({c: typed[c] for c in spec.unique})
    dup = np.zeros(len(keys), dtype=bool)
    # Among rows still good, so a bad first copy does not cost the good second one.
    dup[~reasons.bad] = keys.loc[~reasons.bad].duplicated(keep="first").to_numpy()
    if len(spec.unique) == 1:
        reasons.add(dup, f"duplicate {spec.unique[0]}", keys.iloc[:, 0])
    else:
        reasons.add(dup, f"duplicate ({', '.join(spec.unique)})", keys)


def _check_references(
    spec: TableSpec, typed: dict[str, pd.Series], reasons: _Reasons, done: dict
) -> None:
    for column, target in spec.references.items():
        if target not in done:
            continue
        kept, quarantined = done[target]
        value = typed[column]
        unknown = value.notna().to_numpy() & ~_isin(value, kept[column])
        if quarantined is not None and len(quarantined):
            was_quarantined = unknown & _isin(value, quarantined[column])
            reasons.add(was_quarantined, f"{column} of a quarantined {target} row", value)
        reasons.add(unknown, f"unknown {column}", value)


def validate_table(
    spec: TableSpec, raw: pd.DataFrame, done: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, TableQuality]:
    """Type and check one table; ``done`` maps validated table names to (kept, quarantine)."""
    _check_schema(spec, raw)
    raw = raw.reset_index(drop=True)
    reasons = _Reasons(len(raw))
    typed = _check_columns(spec, raw, reasons)
    _check_unique(spec, typed, reasons)
    _check_references(spec, typed, reasons, done or {})
    frame = pd.DataFrame({c: typed.get(c, raw[c]) for c in raw.columns}, copy=False)
    keep = ~reasons.bad
    kept = frame.reset_index(drop=True) if keep.all() else frame.loc[keep].reset_index(drop=True)
    for col in spec.columns:
        if col.kind == "bool" and not col.nullable:  # kept rows hold no NA any more
            kept[col.name] = kept[col.name].astype(bool)
    quarantine = _quarantine_frame(raw, reasons)
    counts = pd.Series(reasons.rule[reasons.bad], dtype=object).value_counts()
    quality = TableQuality(
        spec.name, len(raw), len(kept), len(quarantine), {str(k): int(v) for k, v in counts.items()}
    )
    if quality.kept + quality.quarantined != quality.read:
        raise AssertionError(
            f"table '{spec.name}': read {quality.read} != kept {quality.kept} + quarantined {quality.quarantined}"
        )
    return kept, quarantine, quality


def _quarantine_frame(raw: pd.DataFrame, reasons: _Reasons) -> pd.DataFrame:
    idx = np.flatnonzero(reasons.bad)
    out = raw.iloc[idx].astype(STRING).reset_index(drop=True)
    out[ROW] = pd.Series(idx, dtype="int64")
    out[REASON] = pd.Series(reasons.text[idx], dtype=STRING)
    return out


def validate_tables(
    raw: dict[str, pd.DataFrame], *, max_bad_fraction: float = 0.01
) -> ValidatedData:
    """Type, check and split every contract table into kept and quarantined rows (no I/O)."""
    tables, quarantine, quality = {}, {}, {}
    done: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for name in TABLE_ORDER:
        spec = SPECS[name]
        if name not in raw:
            if spec.required:
                raise ContractError(
                    f"required table '{name}' is missing; add {name}.parquet or {name}.csv (see DATA_CONTRACT.md)"
                )
            continue
        kept, quarantine[name], quality[name] = validate_table(spec, raw[name], done)
        tables[name] = in_time_order(kept, TIME_COLUMNS[name] if name in TIME_ORDERED else None)
        done[name] = (tables[name], quarantine[name])
    data = ValidatedData(tables, quarantine, quality)
    _check_bad_fraction(data, max_bad_fraction)
    return data


def _check_bad_fraction(data: ValidatedData, max_bad_fraction: float) -> None:
    over = [
        q for q in data.quality.values() if q.read and q.quarantined / q.read > max_bad_fraction
    ]
    if not over:
        return
    q = over[0]
    rule, count = max(q.reasons.items(), key=lambda kv: kv[1])
    also = f" (also over the limit: {', '.join(o.name for o in over[1:])})" if len(over) > 1 else ""
    raise TooManyBadRows(
        f"table '{q.name}': {q.quarantined} of {q.read} rows ({q.quarantined / q.read:.2%}) are bad, "
        f"above {SETTING} = {max_bad_fraction:.2%}; top reason: '{rule}' ({count} rows){also}. "
        f"Inspect quarantine/{q.name}.parquet and fix the extract, or raise {SETTING}",
        data,
    )


def load_dataset(data_dir: str | Path, *, max_bad_fraction: float = 0.01) -> ValidatedData:
    """Read a dataset directory and validate it (``read_dataset`` + ``validate_tables``)."""
    return validate_tables(read_dataset(data_dir), max_bad_fraction=max_bad_fraction)
