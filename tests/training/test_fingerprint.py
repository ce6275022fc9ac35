"""The data fingerprint: same content, same value; any change, another; each table hashed once."""

from __future__ import annotations

import hashlib

import pandas as pd

from training import tracking


def _tables() -> dict[str, pd.DataFrame]:
    return {
        "customers": pd.DataFrame({"customer_id": ["C1", "C2"], "age": [30, 41]}),
        "events": pd.DataFrame({"customer_id": ["C1"], "event_type": ["login"]}),
    }


def test_same_content_same_fingerprint_and_any_change_another():
    base = tracking.data_fingerprint(_tables())
    assert tracking.data_fingerprint(_tables()) == base  # other objects, same content
    changed = _tables()
    changed["customers"].loc[1, "age"] = 42
    assert tracking.data_fingerprint(changed) != base
    renamed = _tables()
    renamed["visits"] = renamed.pop("events")
    assert tracking.data_fingerprint(renamed) != base


def test_each_table_object_is_hashed_once(monkeypatch):
    calls = []
    real = pd.util.hash_pandas_object
    monkeypatch.setattr(pd.util, "hash_pandas_object",
                        lambda frame, **kw: calls.append(len(frame)) or real(frame, **kw))  # fmt: skip
    tables = _tables()
    first = tracking.data_fingerprint(tables)
    assert tracking.data_fingerprint(tables) == first  # the run and each model log it
    assert calls == [2, 1]


def test_hashing_in_blocks_of_rows_gives_the_digest_of_the_whole_table(monkeypatch):
    """Text columns are hashed a block of rows at a time (bounded memory); the value is that of
    hashing every row at once, so fingerprints logged before blocks compare with new ones."""
    frame = pd.DataFrame({"customer_id": [f"C{i % 7}" for i in range(25)], "n": range(25),
                          "kind": pd.array(["a", None, "b", "a", "c"] * 5, dtype="str")})  # fmt: skip
    whole = hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    ).digest()
    monkeypatch.setattr(tracking, "HASH_ROWS", 4)
    assert tracking._rows_digest(frame) == whole
    shifted = frame.assign(n=frame["n"].shift(-1, fill_value=0))
    assert tracking._rows_digest(shifted) != whole
