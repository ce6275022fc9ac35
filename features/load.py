"""Reading a dataset directory (DATA_CONTRACT.md): one ``NAME.parquet`` or ``NAME.csv`` per table.

Reading never coerces: CSV columns come back as strings (only an empty field is missing),
Parquet columns as stored. ``parse_column`` then reads values into contract kinds; the checks
and the quarantine live in ``features.validate``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import SPECS, TABLE_ORDER
from portrait.errors import ContractError

SUFFIXES = (".parquet", ".csv")


def find_table_file(data_dir: Path, name: str) -> Path | None:
    """Return the one file holding table ``name`` in ``data_dir``, or None when there is none."""
    found = [data_dir / f"{name}{suffix}" for suffix in SUFFIXES]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        raise ContractError(
            f"table '{name}' is given twice in {data_dir}: {found[0].name} and {found[1].name}; "
            "keep exactly one of them"
        )
    return found[0] if found else None


def read_table(path: Path) -> pd.DataFrame:
    """Read one table file as is: Parquet with its own types, CSV with every column as str."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    # Only an empty field is missing: "NA", "null" or "None" stay values, so nothing is
    # coerced behind the user's back (a customer called "NA" keeps its id).
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")


def read_dataset(data_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Read every contract table found in ``data_dir``; a missing required table is an error."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ContractError(
            f"data directory {data_dir} does not exist; pass the folder holding customers.csv, "
            "products.csv, transactions.csv and events.csv (or .parquet)"
        )
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLE_ORDER:
        path = find_table_file(data_dir, name)
        if path is None:
            if SPECS[name].required:
                raise ContractError(
                    f"required table '{name}' is missing in {data_dir}: add {name}.parquet or "
                    f"{name}.csv (see DATA_CONTRACT.md)"
                )
            continue
        tables[name] = read_table(path)
    return tables


# Reading values: raw columns (text from CSV, anything from Parquet) into contract kinds.
# Each parser returns the typed column (missing where absent or unparseable), a mask of
# present-but-unparseable values and, for ints, a mask of non-integer numbers.

STRING = pd.StringDtype("pyarrow")  # pandas string dtype, missing is pd.NA
TRUE_WORDS = ("true", "1", "yes", "1.0")
FALSE_WORDS = ("false", "0", "no", "0.0")


def is_missing(s: pd.Series) -> np.ndarray:
    """Missing values: NA/NaN/None, and the empty string (Parquet may hold "")."""
    missing = s.isna().to_numpy()
    if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
        missing = missing | (s == "").fillna(False).to_numpy(dtype=bool)
    return missing


def parse_column(
    s: pd.Series, kind: str, missing: np.ndarray | None = None
) -> tuple[pd.Series, np.ndarray, np.ndarray | None]:
    """Parse ``s`` as ``kind``: (typed values, unparseable mask, non-integer mask or None)."""
    missing = is_missing(s) if missing is None else missing
    if kind == "str":
        value = s.astype(STRING)
        if missing.sum() > value.isna().sum():  # empty strings become NA
            value = value.mask(missing)
        return value, np.zeros(len(s), dtype=bool), None
    if kind in ("timestamp", "date"):
        value = parse_timestamp(s)
    elif kind in ("int", "float"):
        value = pd.Series(_as_float(s), index=s.index)
    elif kind == "bool":
        value = parse_bool(s)
    else:
        raise ValueError(f"unknown column kind {kind!r} in features/contract.py")
    unparseable = ~missing & value.isna().to_numpy()
    if kind != "int":
        return value, unparseable, None
    v = value.to_numpy()
    fraction = np.isfinite(v) & (v != np.floor(np.where(np.isfinite(v), v, 0)))
    whole = pd.Series(np.where(fraction, np.nan, v), index=s.index).astype("Int64")
    return whole, unparseable, fraction


def _as_float(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return np.full(len(s), np.nan)
    num = pd.to_numeric(s, errors="coerce")
    v = pd.Series(num).to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(v), v, np.nan)  # inf is not an amount


def parse_timestamp(s: pd.Series) -> pd.Series:
    """ISO-8601 to tz-naive UTC ``datetime64[ns]``; aware values converted, naive taken as UTC."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        value = s.dt.tz_convert("UTC").dt.tz_localize(None) if s.dt.tz is not None else s
    elif pd.api.types.is_numeric_dtype(s.dtype):
        # Epoch numbers have no unit we could trust: a type break, reported as such.
        return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    elif (fast := _arrow_timestamps(s)) is not None:
        return fast
    else:
        value = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce").dt.tz_localize(None)
        # pandas reads "now" and "today" as the clock time: not data, so unparseable.
        text = pa.array(s.astype(STRING))
        clock = np.asarray(pc.is_in(text, value_set=pa.array(["now", "today"], text.type)), bool)
        if clock.any():
            value = value.mask(clock)
    # Parsed at microsecond resolution; years outside 1677..2262 do not fit in ns.
    v = value.to_numpy()
    # Day-resolution bounds: comparing with Timestamp.min/max in µs would overflow at ns resolution.
    outside = (v < np.datetime64("1678-01-01")) | (v >= np.datetime64("2262-01-01"))
    if outside.any():
        value = value.mask(outside)
    return value.astype("datetime64[ns]")


def _arrow_timestamps(s: pd.Series) -> pd.Series | None:
    """Arrow's strict ISO-8601 cast, about 7x faster than pandas; None unless every value parses.

    A column of only naive or only offset-carrying values (the usual extract) takes this path;
    anything else (mixed, odd or bad values) goes through pandas, which finds the bad rows.
    """
    text = pa.array(s.astype(STRING))
    for tz in (None, "UTC"):
        try:
            parsed = pc.cast(text, pa.timestamp("ns", tz=tz))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        naive = parsed.cast(pa.timestamp("ns"))  # keeps the UTC wall time
        return pd.Series(naive.to_numpy(zero_copy_only=False), index=s.index)
    return None


def parse_bool(s: pd.Series) -> pd.Series:
    """true/false, 1/0, yes/no (any case) and real bools to ``boolean``; anything else is NA."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        v = _as_float(s)
        true, false = v == 1, v == 0
    else:
        words = s.astype(STRING).str.strip().str.lower()
        true = words.isin(TRUE_WORDS).to_numpy(dtype=bool)
        false = words.isin(FALSE_WORDS).to_numpy(dtype=bool)
    return pd.Series(true, index=s.index, dtype="boolean").mask(~(true | false))
