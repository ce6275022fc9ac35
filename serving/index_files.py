"""The batch stage's candidate index in the run directory: the service starts from its scores.

The models stage scores every customer's pairs once (`serving.recommend_all`) and writes that
candidate index to RUN/candidate_index/: arrays.npz (customer and product ids, pair and rule rows
with their scores, rule reasons as codes into their texts, the model reasons the batch explained
as codes into theirs, segment shares, popularity), pairs.parquet (the model's columns of each
pair: reasons and visits read them) and scored_by.json (which model scored the pairs).
`read_index` rebuilds the index from the manifest-verified bytes when the service serves the
model that scored them; otherwise (a newer champion, a test's own model) it returns None and
the service scores every pair at load, as it must.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID
from serving.pair_matrix import pair_matrix
from serving.pair_reasons import ReasonMemo
from serving.pair_store import StoredPairs
from serving.recommend_index import CandidateIndex, Rows, assemble_index

INDEX_DIR = "candidate_index"
FILES = ("arrays.npz", "pairs.parquet", "scored_by.json")


def scorer_name(model: Any | None, version: str | None) -> str:
    """Who scored an index's pairs: a registered conversion version, the baseline, or none."""
    if model is None:
        return "none"
    if getattr(model, "kind", None) == "baseline":
        return f"baseline:{model.name}"
    return f"conversion:v{version}" if version else "unregistered"


def index_files(index: CandidateIndex, *, scored_by: str) -> dict[str, Any]:
    """The index as run files: path -> bytes (the arrays), DataFrame (parquet) or JSON value."""
    arrays = {"customers": index.customers.to_numpy(dtype=str),
              "products": index.products.astype(str), "popularity": index.popularity}  # fmt: skip
    for name, rows in (("pairs", index.pairs), ("rules", index.rules)):
        if rows is not None:
            arrays |= {f"{name}_ptr": rows.ptr, f"{name}_product": rows.product,
                       f"{name}_score": rows.score}  # fmt: skip
    if index.rule_reasons is not None:  # few distinct texts: each once, and a code per row
        # a hash of the objects, not np.unique over a fixed-width copy (rows x longest text)
        codes, texts = pd.factorize(index.rule_reasons, sort=True)
        arrays |= {"rule_texts": np.asarray(texts, dtype=str), "rule_codes": codes}
    if index.shares is not None:
        arrays["shares"] = index.shares
    if index.pair_reasons is not None:  # what the batch explained is not explained again
        arrays |= index.pair_reasons.arrays()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    frame = index.pair_frame if index.pair_frame is not None else pd.DataFrame()
    if isinstance(frame, StoredPairs):  # the batch's pairs are already a Parquet file
        frame = frame.parquet_bytes()
    return {f"{INDEX_DIR}/arrays.npz": buffer.getvalue(), f"{INDEX_DIR}/pairs.parquet": frame,
            f"{INDEX_DIR}/scored_by.json": {"scored_by": scored_by}}  # fmt: skip


def write_index(out_dir: Path, index: CandidateIndex, *, scored_by: str) -> None:
    """Write `index_files` under `out_dir` (the run loop writes a stage's files the same way)."""
    for name, value in index_files(index, scored_by=scored_by).items():
        path = Path(out_dir) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, bytes):
            path.write_bytes(value)
        elif isinstance(value, pd.DataFrame):
            value.to_parquet(path, index=False)
        else:
            path.write_text(json.dumps(value), encoding="utf-8")


def read_index(
    run_dir: Path,
    manifest: dict[str, Any],
    *,
    scored_by: str,
    holdings: pd.DataFrame,
    model: Any | None,
    customers: pd.Index,
) -> CandidateIndex | None:
    """The run's candidate index when `scored_by` scored it for exactly these `customers`
    (None: score at load). Reads only bytes the manifest vouched for."""
    names = [f"{INDEX_DIR}/{f}" for f in FILES]
    if not all(name in manifest["files"] for name in names):
        return None
    from training.manifest import verified_bytes

    data = {name.rsplit("/", 1)[1]: verified_bytes(run_dir, name, manifest) for name in names}
    if json.loads(data["scored_by.json"])["scored_by"] != scored_by:
        return None
    arrays = np.load(io.BytesIO(data["arrays.npz"]), allow_pickle=False)
    ids = pd.Index(arrays["customers"].astype(object), name=CUSTOMER_ID)
    if not ids.equals(pd.Index(customers.astype(str))):
        return None
    frame = pd.read_parquet(io.BytesIO(data["pairs.parquet"]))
    return assemble_index(
        pd.Index(arrays["products"].astype(object), name=PRODUCT_ID), ids, holdings,
        parts=_parts(arrays, frame, model),
        shares=arrays["shares"] if "shares" in arrays.files else None,
        popularity=arrays["popularity"],
    )  # fmt: skip


def _parts(arrays: Any, frame: pd.DataFrame, model: Any | None) -> dict[str, Any]:
    """The pair and rule rows of the saved arrays, as `assemble_index` takes them."""

    def rows(name: str) -> Rows | None:
        if f"{name}_ptr" not in arrays.files:
            return None
        return Rows(arrays[f"{name}_ptr"], arrays[f"{name}_product"], arrays[f"{name}_score"])

    pairs = rows("pairs")
    return {
        "pairs": pairs,
        "pair_frame": frame if pairs is not None else None,
        "pair_reasons": _reasons(arrays, len(frame)) if pairs is not None else None,
        "pair_matrix": pair_matrix(model, frame) if pairs is not None else None,
        "rules": rows("rules"),
        "rule_reasons": (
            arrays["rule_texts"].astype(object)[arrays["rule_codes"]]
            if "rule_texts" in arrays.files
            else None
        ),
    }


def _reasons(arrays: Any, n_pairs: int) -> ReasonMemo:
    """The batch's explained reasons of the pairs (an empty memo for an index saved without)."""
    if "reason_codes" not in arrays.files or len(arrays["reason_codes"]) != n_pairs:
        return ReasonMemo(n_pairs)
    return ReasonMemo.from_arrays(arrays["reason_codes"], arrays["reason_texts"])
