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
    fired = _fired_rules(held, rules, segments)
    if fired.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="str" if c != "score" else float) for c in CANDIDATE_COLUMNS}
        )
    reasons = rules[REASON] if REASON in rules.columns else rule_reasons(rules)
    lookup = rules[["rule_id", "consequents", "confidence", "lift"]].assign(
        **{REASON: reasons.to_numpy()}
    )
    cand = (
        fired.merge(lookup, on="rule_id")
        .explode("consequents")
        .rename(columns={"consequents": PRODUCT_ID})
    )
    cand[PRODUCT_ID] = cand[PRODUCT_ID].astype(str)
    cand = cand.merge(held, on=[CUSTOMER_ID, PRODUCT_ID], how="left", indicator=True)
    cand = cand.loc[cand["_merge"].eq("left_only")].rename(columns={"confidence": "score"})
    cand = cand.sort_values(
        [CUSTOMER_ID, "score", "lift", "rule_id", PRODUCT_ID],
        ascending=[True, False, False, True, True],
        kind="stable",
    ).drop_duplicates([CUSTOMER_ID, PRODUCT_ID])
    cand = cand.loc[cand.groupby(CUSTOMER_ID, sort=False).cumcount() < int(k)]
    return cand[CANDIDATE_COLUMNS].reset_index(drop=True)


def _fired_rules(
    held: pd.DataFrame, rules: pd.DataFrame, segments: pd.DataFrame | None
) -> pd.DataFrame:
    """(customer_id, rule_id) for every rule whose antecedents the customer holds, in scope of segment."""
    ante = rules[["rule_id", "antecedents", SEGMENT_ID]].assign(
        n_ante=rules["antecedents"].map(len)
    )
    ante = ante.explode("antecedents").rename(columns={"antecedents": PRODUCT_ID})
    ante[PRODUCT_ID] = ante[PRODUCT_ID].astype(str)
    # held antecedents counted as a sparse product (customers x products) @ (products x rules):
    # a groupby over the customer id strings was 31 s of 45 at 200k customers, np.unique 11 s
    customer, customers = pd.factorize(held[CUSTOMER_ID])
    product, products = pd.factorize(held[PRODUCT_ID])
    by_rule = ante.drop_duplicates("rule_id").reset_index(drop=True)
    r = pd.Index(by_rule["rule_id"]).get_indexer(ante["rule_id"])
    p = pd.Index(products).get_indexer(ante[PRODUCT_ID])  # -1: an antecedent nobody holds
    holds = sparse.csr_matrix((np.ones(len(held), np.int32), (customer, product)),
                              shape=(len(customers), len(products)))  # fmt: skip
    needs = sparse.csr_matrix((np.ones(int((p >= 0).sum()), np.int32), (p[p >= 0], r[p >= 0])),
                              shape=(len(products), len(by_rule)))  # fmt: skip
    counts = holds @ needs
    counts.sort_indices()  # customer codes in order, rule codes in order within each
    counts = counts.tocoo()
    full = counts.data == by_rule["n_ante"].to_numpy()[counts.col]
    c, r = counts.row, counts.col
    hits = pd.DataFrame({CUSTOMER_ID: np.asarray(customers, dtype=object)[c[full]],
                         "rule_id": by_rule["rule_id"].to_numpy()[r[full]],
                         "rule_segment": by_rule[SEGMENT_ID].to_numpy()[r[full]]})  # fmt: skip
    if segments is None:
        in_scope = hits["rule_segment"].isna()
    else:
        seg = segments[[CUSTOMER_ID, SEGMENT_ID]].astype({CUSTOMER_ID: str, SEGMENT_ID: str})
        hits = hits.merge(seg, on=CUSTOMER_ID, how="left")
        in_scope = hits["rule_segment"].isna() | hits["rule_segment"].astype(object).eq(
            hits[SEGMENT_ID].astype(object)
        )
    return hits.loc[in_scope, [CUSTOMER_ID, "rule_id"]]
