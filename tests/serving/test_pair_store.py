"""The batch's pairs kept as Parquet bytes read back exactly as the frame they came from."""

import io

import numpy as np
import pandas as pd
import pytest

from serving.pair_store import JoinedPairs, StoredPairs


def _chunks() -> list[pd.DataFrame]:
    rng = np.random.default_rng(4)
    sizes = [0, 5, 0, 7, 1, 9]  # an empty chunk writes no row group
    out, first = [], 0
    for n in sizes:
        out.append(pd.DataFrame({
            "customer_id": [f"C{first + i:03d}" for i in range(n)],
            "product_id": rng.choice(["P1", "P2", None], n),
            "occupation": [None] * n if first < 6 else ["clerk"] * n,  # no value in the first
            "views_7d": rng.integers(0, 5, n).astype(np.float32),
            "affordability": rng.normal(size=n),
        }))  # fmt: skip
        first += n
    return out


def test_stored_pairs_read_back_as_the_joined_frame():
    chunks = _chunks()
    stored, joined = StoredPairs(), JoinedPairs()
    for chunk in chunks:
        stored.append(chunk)
        joined.append(chunk)
    # what the frame reads back as from its own Parquet file (text columns come back as str)
    frame = pd.read_parquet(io.BytesIO(joined.finish().to_parquet(index=False)))
    stored.finish()
    assert len(stored) == len(frame) == 22
    assert list(stored.columns) == list(frame.columns)
    whole = pd.read_parquet(io.BytesIO(stored.parquet_bytes()))
    pd.testing.assert_frame_equal(whole, frame)
    rows = np.random.default_rng(1).permutation(len(frame))[:15]  # across row groups, any order
    for asked in (rows, np.sort(rows), rows[:1], np.array([21, 0, 21])):
        pd.testing.assert_frame_equal(stored.take(asked), frame.take(asked).reset_index(drop=True))
    assert len(stored.take(np.array([], dtype=np.int64))) == 0
    with pytest.raises(IndexError, match="pair rows must be in 0..21"):
        stored.take(np.array([22]))


def test_stored_pairs_take_no_more_rows_once_finished():
    stored = StoredPairs()
    stored.append(_chunks()[0])
    stored.finish()
    with pytest.raises(RuntimeError, match="finished"):
        stored.append(_chunks()[0])
    empty = StoredPairs().finish()
    assert len(empty) == 0 and pd.read_parquet(io.BytesIO(empty.parquet_bytes())).empty
    no_rows = StoredPairs()
    no_rows.append(_chunks()[0])  # 0 rows: the file still has the columns
    assert list(pd.read_parquet(io.BytesIO(no_rows.finish().parquet_bytes())).columns) == [
        "customer_id",
        "product_id",
        "occupation",
        "views_7d",
        "affordability",
    ]


def test_stored_pairs_read_the_footer_once(monkeypatch):
    """Moving between row groups reads the file's footer once, not on every move."""
    import serving.pair_store as store

    opened = []
    real = store.pq.ParquetFile
    monkeypatch.setattr(store.pq, "ParquetFile", lambda *a, **k: opened.append(1) or real(*a, **k))
    stored = StoredPairs()
    for chunk in _chunks():
        stored.append(chunk)
    for row in (0, 21, 5, 13, 0):  # four row groups, visited back and forth
        stored.take(np.array([row]))
    assert len(opened) == 1
