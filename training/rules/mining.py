"""Product association rules: baskets at a cut-off, fpgrowth on a sparse one-hot frame, filters.

Two kinds of basket feed the same miner:

- **holding** baskets: the products each customer holds just before `as_of`
  (rules say "holders of A also hold B").
- **transition** baskets: at cut-offs stepping back from `as_of` one window at a time, the
  products a customer held at the cut-off (items ``held:P``) and the products they newly
  bought in the following window (items ``bought:P``), one basket per (customer, cut-off)
  for customers holding at least one product. Frequent itemsets are mined over these mixed
  baskets and only rules ``held:X... -> bought:Y...`` are kept, prefixes stripped, so a rule
  says "customers holding X go on to buy Y": its confidence is P(buy Y in a window | hold X)
  and its lift compares that with the base rate of buying Y in a window. Every window closes
  at or before `as_of` (point in time).

Rules carry support, confidence, lift, leverage, conviction, the number of baskets, a
`segment_id` (null = all customers), `kind`, and `max_risk_level` (the highest risk level
of the consequents) so the serving policy can drop rules above a customer's risk level;
`risk_step_up` marks rules whose consequents are riskier than every antecedent.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
from mlxtend.frequent_patterns import association_rules, fpgrowth
from scipy import sparse

from features.contract import CUSTOMER_ID, PRODUCT_ID, SEGMENT_ID
from features.holdings import build_holdings
from features.timeline import before, between
from portrait.errors import PortraitError
from portrait.settings import RuleSettings

BASKET_ID = "basket_id"
ITEM = "item"
HELD = "held:"
BOUGHT = "bought:"
KINDS = ("holding", "transition")
METRICS = [
    "antecedent support",
    "consequent support",
    "support",
    "confidence",
    "lift",
    "leverage",
    "conviction",
]
RULE_COLUMNS = [
    "rule_id", "kind", SEGMENT_ID, "antecedents", "consequents", "antecedent_support",
    "consequent_support", "support", "confidence", "lift", "leverage", "conviction", "n_baskets",
]  # fmt: skip


class RulesError(PortraitError):
    """Baskets or rule settings that cannot give rules (no baskets, a single product, ...)."""


def build_holding_baskets(transactions: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """One basket per customer holding products just before `as_of`: [basket_id, customer_id, item]."""
    held = build_holdings(transactions, as_of=pd.Timestamp(as_of))[[CUSTOMER_ID, PRODUCT_ID]]
    return pd.DataFrame(
        {
            BASKET_ID: held[CUSTOMER_ID].astype(str),
            CUSTOMER_ID: held[CUSTOMER_ID],
            ITEM: held[PRODUCT_ID],
        }
    ).reset_index(drop=True)


def build_transition_baskets(
    transactions: pd.DataFrame, *, as_of: pd.Timestamp, window_days: int, n_windows: int
) -> pd.DataFrame:
    """Baskets of `held:P` at each cut-off plus `bought:P` newly bought in the following window."""
    as_of = pd.Timestamp(as_of)
    past = before(transactions, as_of)
    window = pd.Timedelta(days=window_days)
    frames = [
        _transition_at(past, cutoff=as_of - window * i, window=window)
        for i in range(n_windows, 0, -1)
    ]
    return pd.concat(frames, ignore_index=True)


def _transition_at(
    past: pd.DataFrame, *, cutoff: pd.Timestamp, window: pd.Timedelta
) -> pd.DataFrame:
    held = build_holdings(past, as_of=cutoff)[[CUSTOMER_ID, PRODUCT_ID]]
    buys = between(past, cutoff, cutoff + window)
    buys = buys.loc[buys["type"].eq("buy") & buys[PRODUCT_ID].notna(), [CUSTOMER_ID, PRODUCT_ID]]
    buys = buys.drop_duplicates().merge(
        held, on=[CUSTOMER_ID, PRODUCT_ID], how="left", indicator=True
    )
    new = buys.loc[buys["_merge"].eq("left_only") & buys[CUSTOMER_ID].isin(held[CUSTOMER_ID])]
    items = pd.concat(
        [held.assign(**{ITEM: HELD + held[PRODUCT_ID].astype(str)}),
         new.assign(**{ITEM: BOUGHT + new[PRODUCT_ID].astype(str)})],
        ignore_index=True,
    )  # fmt: skip
    basket = items[CUSTOMER_ID].astype(str) + "@" + str(cutoff.date())
    return pd.DataFrame({BASKET_ID: basket, CUSTOMER_ID: items[CUSTOMER_ID], ITEM: items[ITEM]})


def basket_problem(baskets: pd.DataFrame) -> str | None:
    """Why these baskets cannot give rules (no baskets, fewer than two items), or None."""
    if baskets.empty:
        return "there are no baskets (no customer holds or bought a product before as_of)"
    n_items = baskets[ITEM].nunique()
    if n_items < 2:
        return f"the baskets hold only {n_items} distinct product; a rule needs at least two"
    return None


def basket_matrix(baskets: pd.DataFrame) -> tuple[sparse.csr_matrix, pd.Index]:
    """Sparse baskets x items 0/1 matrix (rows: sorted basket ids) and its sorted item index."""
    pairs = baskets[[BASKET_ID, ITEM]].drop_duplicates()
    rows, basket_index = pd.factorize(pairs[BASKET_ID], sort=True)
    cols, item_index = pd.factorize(pairs[ITEM], sort=True)
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(basket_index), len(item_index))
    )
    return matrix, pd.Index(item_index)


def one_hot(baskets: pd.DataFrame, *, min_support: float, dense: bool = False) -> pd.DataFrame:
    """Basket x item boolean frame (sparse unless `dense`), keeping only items reaching `min_support`.

    Items below min support cannot be in a frequent itemset, and dropping columns leaves every
    support unchanged (the number of rows stays the number of baskets).
    """
    full, item_index = basket_matrix(baskets)
    n = full.shape[0]
    keep = np.asarray(full.sum(axis=0)).ravel() / max(n, 1) >= min_support
    matrix = full[:, np.flatnonzero(keep)].tocsr()
    columns = pd.Index(np.asarray(item_index)[keep].astype(str), dtype=object)
    if dense:
        return pd.DataFrame(matrix.toarray(), columns=columns)
    return pd.DataFrame.sparse.from_spmatrix(matrix, columns=columns)


def mine_rules(
    baskets: pd.DataFrame,
    *,
    settings: RuleSettings,
    kind: str,
    segment_id: str | None = None,
    dense: bool = False,
) -> pd.DataFrame:
    """Rules from fpgrowth itemsets over `baskets`, filtered on support, confidence and lift."""
    if kind not in KINDS:
        raise RulesError(f"rule kind must be one of {', '.join(KINDS)}, got {kind!r}")
    problem = basket_problem(baskets)
    if problem:
        where = "all customers" if segment_id is None else f"segment {segment_id}"
        raise RulesError(
            f"cannot mine {kind} rules for {where}: {problem}; check the transactions table and as_of"
        )
    settings = kind_settings(settings, kind, n_baskets=baskets[BASKET_ID].nunique())
    onehot = one_hot(baskets, min_support=settings.min_support, dense=dense)
    if onehot.shape[1] < 2:
        return empty_rules()
    itemsets = fpgrowth(
        onehot, min_support=settings.min_support, use_colnames=True, max_len=settings.max_len
    )
    if not (itemsets["itemsets"].map(len) >= 2).any():
        return empty_rules()
    raw = association_rules(
        itemsets, num_itemsets=len(onehot), metric="confidence",
        min_threshold=settings.min_confidence, return_metrics=METRICS,
    )  # fmt: skip
    return _tidy(
        raw, kind=kind, segment_id=segment_id, n_baskets=len(onehot), min_lift=settings.min_lift
    )


def kind_settings(settings: RuleSettings, kind: str, *, n_baskets: int) -> RuleSettings:
    """The settings a kind is mined with (transition floors; support raised to `min_rule_baskets`).

    Transitions use their own support and confidence floors, and min support is raised so that
    a rule rests on at least `min_rule_baskets` baskets (tiny segments give no one-off rules).
    """
    if kind == "transition":
        settings = dataclasses.replace(
            settings,
            min_support=settings.transition_min_support,
            min_confidence=settings.transition_min_confidence,
        )
    floor = settings.min_rule_baskets / max(n_baskets, 1)
    return dataclasses.replace(settings, min_support=min(1.0, max(settings.min_support, floor)))


def _tidy(
    raw: pd.DataFrame, *, kind: str, segment_id: str | None, n_baskets: int, min_lift: float
) -> pd.DataFrame:
    antecedents = [sorted(s) for s in raw["antecedents"]]
    consequents = [sorted(s) for s in raw["consequents"]]
    keep = np.ones(len(raw), dtype=bool)
    if kind == "transition":
        keep = np.array(
            [all(a.startswith(HELD) for a in ante) and all(c.startswith(BOUGHT) for c in cons)
             for ante, cons in zip(antecedents, consequents, strict=True)],
            dtype=bool,
        )  # fmt: skip
        antecedents = [[a.removeprefix(HELD) for a in ante] for ante in antecedents]
        consequents = [[c.removeprefix(BOUGHT) for c in cons] for cons in consequents]
    rules = pd.DataFrame(
        {
            "kind": kind,
            SEGMENT_ID: pd.Series([segment_id] * len(raw), dtype="str"),
            "antecedents": antecedents,
            "consequents": consequents,
            **{m.replace(" ", "_"): raw[m].to_numpy(dtype=float) for m in METRICS},
            "n_baskets": n_baskets,
        }
    )
    rules = rules.loc[keep & (rules["lift"].to_numpy() >= min_lift)]
    rules.insert(0, "rule_id", _rule_ids(rules))
    return sort_rules(rules[RULE_COLUMNS])


def _rule_ids(rules: pd.DataFrame) -> list[str]:
    keys = zip(
        rules["kind"],
        rules[SEGMENT_ID].fillna(""),
        rules["antecedents"],
        rules["consequents"],
        strict=True,
    )
    return [
        hashlib.sha1(f"{k}|{s}|{','.join(a)}|{','.join(c)}".encode()).hexdigest()[:12]
        for k, s, a, c in keys
    ]


def sort_rules(rules: pd.DataFrame) -> pd.DataFrame:
    """Strongest first: lift, then confidence, then rule_id (deterministic order)."""
    ordered = rules.sort_values(
        ["lift", "confidence", "rule_id"], ascending=[False, False, True], kind="stable"
    )
    return ordered.reset_index(drop=True)


def empty_rules() -> pd.DataFrame:
    """A rules frame with the right columns and no rows."""
    frame = pd.DataFrame({c: pd.Series(dtype=float) for c in RULE_COLUMNS})
    for c in ("rule_id", "kind", SEGMENT_ID):
        frame[c] = frame[c].astype("str")
    frame["antecedents"] = frame["antecedents"].astype(object)
    frame["consequents"] = frame["consequents"].astype(object)
    frame["n_baskets"] = frame["n_baskets"].astype(int)
    return frame


def mine_segment_rules(
    baskets: pd.DataFrame, segments: pd.DataFrame, *, settings: RuleSettings, kind: str
) -> tuple[pd.DataFrame, list[str]]:
    """Rules per segment (segments with too few baskets or degenerate ones are skipped and named)."""
    tagged = baskets.merge(segments[[CUSTOMER_ID, SEGMENT_ID]], on=CUSTOMER_ID, how="inner")
    tagged[SEGMENT_ID] = tagged[SEGMENT_ID].astype(str)
    frames, skipped = [empty_rules()], []
    for seg, group in tagged.groupby(SEGMENT_ID, sort=True):
        n = group[BASKET_ID].nunique()
        if n < settings.min_segment_baskets or basket_problem(group):
            skipped.append(f"{seg} ({n} baskets)")
            continue
        frames.append(mine_rules(group, settings=settings, kind=kind, segment_id=str(seg)))
    return sort_rules(
        pd.concat([f for f in frames if len(f)] or frames, ignore_index=True)
    ), skipped


def mark_risk(rules: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Add `max_risk_level` (riskiest consequent) and `risk_step_up` (consequent riskier than all antecedents)."""
    risk = products.set_index(PRODUCT_ID)["risk_level"].astype(float)
    ids = pd.Series(np.arange(len(rules)), name="_pos")

    def side_max(column: str) -> np.ndarray:
        exploded = pd.DataFrame({"_pos": ids, PRODUCT_ID: rules[column].to_numpy()}).explode(
            PRODUCT_ID
        )
        levels = exploded[PRODUCT_ID].map(risk).astype(float)
        return levels.groupby(exploded["_pos"]).max().reindex(ids).to_numpy()

    consequent, antecedent = side_max("consequents"), side_max("antecedents")
    return rules.assign(
        max_risk_level=pd.array(
            np.where(np.isnan(consequent), np.nan, consequent), dtype="Float64"
        ).astype("Int64"),
        risk_step_up=np.nan_to_num(consequent, nan=0) > np.nan_to_num(antecedent, nan=0),
    )
