"""Printing a benchmark's rows as an aligned table (every benchmark prints one)."""

from __future__ import annotations


def print_table(rows: list[dict], *, width: int = 15) -> None:
    """One header line and one line per row; ints with thousands separators, floats to 2 places."""
    keys = list(rows[0])
    print(" | ".join(f"{k:>{width}}" for k in keys))
    for row in rows:
        cells = (
            f"{v:>{width},.2f}"
            if isinstance(v, float)
            else f"{v:>{width},}"
            if isinstance(v, int)
            else f"{v!s:>{width}}"
            for v in (row[k] for k in keys)
        )
        print(" | ".join(cells))
