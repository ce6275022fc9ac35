"""Per-feature contributions of a LightGBM booster along each row's decision path (Saabas).

Each split moves the expected margin from a node's value to its child's; the move is credited to
the feature the node splits on. Summed over a row's path in every tree, the credits and the
roots' values add up to the row's margin exactly (as TreeSHAP's do). A row's credits depend only
on the leaf it reaches in each tree, so they are a table per tree (leaf x feature), read with the
leaf indices LightGBM predicts natively (`pred_leaf`): the cost of a prediction plus one gather
per tree, against TreeSHAP's O(leaves x depth^2) per tree and row (~35x a prediction, measured
in benchmarks/reasons.py, which also measures how often both name the same top factors).

Unlike TreeSHAP the credits are not consistent in the game-theoretic sense (a split near the
root takes credit that TreeSHAP shares with the features below it); they are what the reasons
read: the largest few per row, in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ROWS_PER_GATHER = 20_000  # rows per block: a block's leaf indices and credits stay small


@dataclass(frozen=True, eq=False)
class PathTable:
    """Credits per (tree, leaf, feature) and the sum of the trees' root values (the bias)."""

    credits: np.ndarray  # float64, trees x max leaves x features
    bias: float


def path_table(booster: Any, *, num_iteration: int | None = None) -> PathTable:
    """The credits table of the first `num_iteration` trees of `booster` (all when None)."""
    dump = booster.dump_model(num_iteration=num_iteration)
    trees = [info["tree_structure"] for info in dump["tree_info"]]
    n_features = len(dump["feature_names"])
    width = max((info["num_leaves"] for info in dump["tree_info"]), default=1)
    credits = np.zeros((len(trees), width, n_features))
    bias = 0.0
    for t, root in enumerate(trees):  # a loop over trees and their nodes, never over rows
        if "leaf_index" in root:  # a single-leaf tree: no split, everything is bias
            bias += float(root["leaf_value"])
            continue
        bias += float(root["internal_value"])
        _credit(root, np.zeros(n_features), credits[t])
    return PathTable(credits, bias)


def _credit(node: dict, above: np.ndarray, table: np.ndarray) -> None:
    """Fill `table[leaf]` with the credits of every path below `node` (`above`: credits so far)."""
    stack = [(node, above)]
    while stack:
        node, credit = stack.pop()
        feature, value = node["split_feature"], float(node["internal_value"])
        for side in ("left_child", "right_child"):
            child = node[side]
            moved = credit.copy()
            child_value = float(
                child["leaf_value"] if "leaf_index" in child else child["internal_value"]
            )
            moved[feature] += child_value - value
            if "leaf_index" in child:
                table[child["leaf_index"]] = moved
            else:
                stack.append((child, moved))


def path_contributions(booster: Any, table: PathTable, x: Any, *, num_iteration: int | None,
                       num_threads: int = 1) -> np.ndarray:  # fmt: skip
    """rows x features credits of `x` (the booster's inputs); each row sums to margin - bias."""
    n_rows, n_features = len(x), table.credits.shape[2]
    out = np.zeros((n_rows, n_features))
    flat = table.credits.reshape(-1, n_features)
    width = table.credits.shape[1]
    offsets = np.arange(table.credits.shape[0]) * width
    for start in range(0, n_rows, ROWS_PER_GATHER):
        stop = start + ROWS_PER_GATHER
        block = x.iloc[start:stop] if hasattr(x, "iloc") else x[start:stop]
        leaves = booster.predict(block, pred_leaf=True, num_iteration=num_iteration,
                                 num_threads=num_threads)  # fmt: skip
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(block), -1) + offsets
        acc = out[start : start + len(block)]
        for t in range(leaves.shape[1]):  # a loop over trees: one gather of every row's credits
            acc += flat[leaves[:, t]]
    return out
