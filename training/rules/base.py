"""The rule base: a versioned, saved set of product rules that serving turns into candidates and reasons.

On disk a rule base is a directory with `rules.parquet` (one row per rule, antecedents and
consequents as lists of product_id) and `rule_base.json` (version, created_at, params,
counts). The version is a hash of the rules' content and the params, so the same data and
settings give the same version, and a loaded rule base whose files were edited is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from features.contract import CUSTOMER_ID, PRODUCT_ID, REASON, SEGMENT_ID
from training.rules.mining import RULE_COLUMNS, RulesError

RULES_FILE = "rules.parquet"
META_FILE = "rule_base.json"
CANDIDATE_COLUMNS = [CUSTOMER_ID, PRODUCT_ID, "score", "rule_id", REASON]
_TEMPLATES = {
    "transition": "holders of {a} often add {c} next: confidence {conf}, lift {lift}",
    "holding": "holders of {a} often also hold {c}: confidence {conf}, lift {lift}",
}


@dataclass(frozen=True, eq=False)
class RuleBase:
    """Rules with the parameters that made them, a content-hash version and a creation time."""

    rules: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    created_at: str = ""

    def counts(self) -> dict[str, int]:
        """Number of rules overall, per kind, and segment-specific."""
        kinds = self.rules["kind"].value_counts()
        return {
            "rules": len(self.rules),
            **{f"{k}_rules": int(kinds.get(k, 0)) for k in ("holding", "transition")},
            "segment_rules": int(self.rules[SEGMENT_ID].notna().sum()),
        }


def rule_base_version(rules: pd.DataFrame, params: dict[str, Any]) -> str:
    """A short hash of the rules' content and the params (same inputs, same version)."""
    flat = rules[RULE_COLUMNS].assign(
        antecedents=_joined(rules["antecedents"]), consequents=_joined(rules["consequents"])
    )
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update(pd.util.hash_pandas_object(flat.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _joined(column: pd.Series) -> pd.Series:
    return pd.Series([",".join(map(str, v)) for v in column], index=column.index, dtype="str")


def build_rule_base(
    rules: pd.DataFrame, *, params: dict[str, Any], created_at: pd.Timestamp
) -> RuleBase:
    """Wrap mined rules as a versioned rule base (`created_at` is passed in, never read from a clock)."""
    missing = [c for c in RULE_COLUMNS if c not in rules.columns]
    if missing:
        raise RulesError(
            f"rules frame lacks column(s) {', '.join(missing)}; build it with training.rules.mining.mine_rules"
        )
    version = rule_base_version(rules, params)
    return RuleBase(
        rules.reset_index(drop=True), dict(params), version, pd.Timestamp(created_at).isoformat()
    )


def rule_base_files(rule_base: RuleBase) -> dict[str, Any]:
    """The rule base's files by name: the rules table and its metadata (version, params, counts)."""
    meta = {"version": rule_base.version, "created_at": rule_base.created_at,
            "params": rule_base.params, "counts": rule_base.counts()}  # fmt: skip
    return {RULES_FILE: rule_base.rules, META_FILE: meta}


def load_rule_base(directory: Path) -> RuleBase:
    """Read a saved rule base; a missing, unreadable or edited one raises RulesError."""
    directory = Path(directory)
    for name in (RULES_FILE, META_FILE):
        if not (directory / name).is_file():
            raise RulesError(f"rule base {directory} has no {name}; write one with `portrait run`")
    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        rules = pd.read_parquet(directory / RULES_FILE)
    except (ValueError, OSError) as exc:
        raise RulesError(
            f"rule base {directory} cannot be read ({exc}); write it again with `portrait run`"
        ) from exc
    for column in ("antecedents", "consequents"):
        rules[column] = [[str(p) for p in v] for v in rules[column]]
    rule_base = RuleBase(
        rules, meta.get("params", {}), meta.get("version", ""), meta.get("created_at", "")
    )
    if rule_base_version(rules, rule_base.params) != rule_base.version:
        raise RulesError(
            f"rule base {directory} does not match its version {rule_base.version!r}; it was edited"
        )
    return rule_base


def rule_reasons(rules: pd.DataFrame, products: pd.DataFrame | None = None) -> pd.Series:
    """Reason text per rule, e.g. "holders of X often add Y next: confidence 0.31, lift 4.2"."""
    names = None if products is None else product_labels(products)
    antecedents, consequents = (
        _side_names(rules["antecedents"], names),
        _side_names(rules["consequents"], names),
    )
    conf = rules["confidence"].map("{:.2f}".format)
    lift = rules["lift"].map("{:.1f}".format)
    texts = [
        _TEMPLATES[k].format(a=a, c=c, conf=f, lift=lf)
        for k, a, c, f, lf in zip(rules["kind"], antecedents, consequents, conf, lift, strict=True)
    ]
    segment = rules[SEGMENT_ID].astype(object)
    prefix = np.where(segment.notna(), "in segment " + segment.fillna("").astype(str) + ", ", "")
    return pd.Series(prefix + np.array(texts, dtype=object), index=rules.index, dtype="str")


def product_labels(products: pd.DataFrame) -> pd.Series:
    """Readable label per product_id: its name, with the id when several products share the name."""
    names = (
        products[PRODUCT_ID]
        .astype(str)
        .map(
            products.set_index(products[PRODUCT_ID].astype(str))["name"]
            .astype(str)
            .groupby(level=0)
            .first()
        )
    )
    shared = names.duplicated(keep=False).to_numpy()
    labels = names.where(~shared, names + " (" + products[PRODUCT_ID].astype(str) + ")")
    return pd.Series(labels.to_numpy(), index=products[PRODUCT_ID].astype(str).to_numpy())


def _side_names(column: pd.Series, names: pd.Series | None) -> pd.Series:
    exploded = column.explode()
    labels = (
        exploded.astype(str) if names is None else exploded.map(names).fillna(exploded).astype(str)
    )
    joined = labels.groupby(level=0).agg(" and ".join)
    return joined.reindex(column.index).fillna("")


def candidates_from_rules(
    holdings: pd.DataFrame, rules: pd.DataFrame, k: int, *, segments: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Up to k products per customer from the rules whose antecedents they all hold, best rule each.

    A product already held is never a candidate. Overall rules (null segment_id) apply to
    everyone; a segment's rules apply to its customers when `segments` [customer_id, segment_id]
    is given. Score is the rule's confidence (ties: higher lift, then rule_id).
    """
    if int(k) < 1:
        raise RulesError(f"k (candidates per customer) must be at least 1, got {k}")
    missing = [c for c in (CUSTOMER_ID, PRODUCT_ID) if c not in holdings.columns]
    if missing:
        raise RulesError(
            f"holdings lack column(s) {', '.join(missing)}; pass build_holdings output"
        )
    held = holdings[[CUSTOMER_ID, PRODUCT_ID]].dropna().drop_duplicates().astype(str)
    customers, held_c = _codes(held[CUSTOMER_ID])
    rules = rules.reset_index(drop=True)
    consequents = [[str(p) for p in group] for group in rules["consequents"]]  # one per rule
    flat = np.asarray([p for group in consequents for p in group], dtype=object)
    products, codes = _codes(pd.Series(np.concatenate([held[PRODUCT_ID].to_numpy(object), flat])))
    held_p, consequent = codes[: len(held)], codes[len(held) :]
    c, r = _fired_rules(held_c, held_p, customers, products, rules, segments)
    # each fired rule's consequents, in integer codes: (customer, rule, product) rows
    n = np.fromiter((len(g) for g in consequents), dtype=np.int64, count=len(consequents))
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    reps = n[r]
    c, r = np.repeat(c, reps), np.repeat(r, reps)
    at = np.arange(len(r)) - np.repeat(np.cumsum(reps) - reps, reps)
    p = consequent[start[r] + at]
    width = np.int64(max(len(products), 1))
    key = c.astype(np.int64) * width + p
    fresh = ~np.isin(key, held_c.astype(np.int64) * width + held_p)  # a held product never is
    c, r, p, key = c[fresh], r[fresh], p[fresh], key[fresh]
    # customer, best confidence, lift, rule id, product id (ids in text order)
    score = rules["confidence"].to_numpy(dtype=float)
    lift = rules["lift"].to_numpy(dtype=float)
    order = np.lexsort((_text_rank(products)[p], _text_rank(pd.Index(rules["rule_id"]))[r],
                        -lift[r], -score[r], _text_rank(customers)[c]))  # fmt: skip
    c, r, p, key = c[order], r[order], p[order], key[order]
    first = np.zeros(len(key), dtype=bool)
    first[np.unique(key, return_index=True)[1]] = True  # each (customer, product) by its best rule
    c, r, p = c[first], r[first], p[first]
    new_customer = np.r_[True, c[1:] != c[:-1]] if len(c) else np.zeros(0, dtype=bool)
    group_start = np.maximum.accumulate(np.where(new_customer, np.arange(len(c)), 0))
    top = (np.arange(len(c)) - group_start) < int(k)
    c, r, p = c[top], r[top], p[top]
    reasons = rules[REASON] if REASON in rules.columns else rule_reasons(rules)
    reason_codes, reason_texts = pd.factorize(reasons.astype(str))
    rule_ids = pd.Index(rules["rule_id"].astype(str))
    return pd.DataFrame({
        CUSTOMER_ID: pd.Categorical.from_codes(c, categories=customers),
        PRODUCT_ID: pd.Categorical.from_codes(p, categories=products),
        "score": score[r],
        "rule_id": pd.Categorical.from_codes(r, categories=rule_ids),
        REASON: pd.Categorical.from_codes(reason_codes[r], categories=reason_texts),
    })  # fmt: skip


def _codes(values: pd.Series) -> tuple[pd.Index, np.ndarray]:
    """Distinct values (as an Index) and each value's position among them."""
    codes, uniques = pd.factorize(values)
    return pd.Index(uniques), codes.astype(np.int64)


def _text_rank(ids: pd.Index) -> np.ndarray:
    """Each id's position in text order (what sorting the id strings gives)."""
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(ids.to_numpy(dtype=object), kind="stable")] = np.arange(len(ids))
    return rank


def _fired_rules(
    held_c: np.ndarray, held_p: np.ndarray, customers: pd.Index, products: pd.Index,
    rules: pd.DataFrame, segments: pd.DataFrame | None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(customer code, rule position) of every rule whose antecedents the customer all holds,
    in scope of segment. Held antecedents are counted as a sparse product (customers x products)
    @ (products x rules): a groupby over the customer id strings was 31 s of 45 at 200k
    customers, np.unique 11 s."""
    antecedents = [[str(p) for p in group] for group in rules["antecedents"]]
    n_ante = np.fromiter((len(g) for g in antecedents), dtype=np.int64, count=len(antecedents))
    flat = pd.Series([p for group in antecedents for p in group], dtype=object)
    rule_of = np.repeat(np.arange(len(rules)), n_ante)
    n_customers, n_products = len(customers), len(products)
    p = products.get_indexer(flat) if len(flat) else np.zeros(0, dtype=np.int64)
    holds = sparse.csr_matrix((np.ones(len(held_c), np.int32), (held_c, held_p)),
                              shape=(n_customers, n_products))  # fmt: skip
    needs = sparse.csr_matrix((np.ones(int((p >= 0).sum()), np.int32), (p[p >= 0], rule_of[p >= 0])),
                              shape=(n_products, len(rules)))  # fmt: skip
    counts = (holds @ needs).tocoo()
    full = counts.data == n_ante[counts.col]
    c, r = counts.row[full].astype(np.int64), counts.col[full].astype(np.int64)
    rule_segment = (
        rules[SEGMENT_ID] if SEGMENT_ID in rules.columns else pd.Series([None] * len(rules))
    )
    overall = rule_segment.isna().to_numpy()
    if segments is None:
        keep = overall[r]
    else:
        seg = segments[[CUSTOMER_ID, SEGMENT_ID]].astype({CUSTOMER_ID: str, SEGMENT_ID: str})
        seg = seg.drop_duplicates(CUSTOMER_ID)
        names, mine = pd.factorize(pd.concat([seg[SEGMENT_ID], rule_segment.dropna().astype(str)]))
        of_customer = np.full(n_customers, -1, dtype=np.int64)
        where = customers.get_indexer(seg[CUSTOMER_ID])
        of_customer[where[where >= 0]] = names[: len(seg)][where >= 0]
        of_rule = np.full(len(rules), -2, dtype=np.int64)
        of_rule[~overall] = names[len(seg) :]
        keep = overall[r] | (of_rule[r] == of_customer[c])
    return c[keep], r[keep]
