"""Next best products: the one recommender used by batch scoring (all customers) and the service (one).

Candidates come from four sources, in this order of preference: the conversion model, the
rule base, popularity in the customer's segment, popularity overall. Every candidate passes
`features.policy.apply_policy` (suitability always; consent: a customer who opted out keeps only
non-personalised candidates). The model fills the list first; the other sources fill it up to
`k` when the model has fewer allowed products. Every row says why it is there.

For one customer per request pass pre-indexed inputs (`index_inputs`): then a call does only
index lookups, one small pair frame and one booster call, no scan of a whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.contract import CUSTOMER_ID, PRODUCT_ID, SEGMENT_ID
from features.pairs import PairContext, build_pairs, peer_key
from features.policy import apply_policy

OUTPUT_COLUMNS = [CUSTOMER_ID, "rank", PRODUCT_ID, "score", "reasons", "personalised", "source"]
SOURCES = ("model", "session", "rules", "segment_popularity", "popularity", "cold_start")
OPT_OUT_REASON = (
    "you opted out of personalised marketing, so popular with customers like you is NOT used; "
    "popular overall"
)
MAX_AUDITED_CUSTOMERS = 100
COLD_START_REASON = "new to us: popular products suitable for everyone"


@dataclass(frozen=True)
class RecommendInputs:
    """Customer-indexed inputs, built once per process (the service) or per batch."""

    portrait: pd.DataFrame  # indexed by customer_id
    policy_customers: pd.DataFrame  # customer_policy frame indexed by customer_id
    holdings: pd.DataFrame  # indexed by customer_id
    segments: pd.DataFrame | None  # indexed by customer_id


def _indexed(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    if frame is None or frame.index.name == CUSTOMER_ID:
        return frame
    return frame.set_index(frame[CUSTOMER_ID].astype(str), drop=False).rename_axis(CUSTOMER_ID)


def index_inputs(
    *,
    portrait: pd.DataFrame,
    policy_customers: pd.DataFrame,
    holdings: pd.DataFrame,
    segments: pd.DataFrame | None = None,
) -> RecommendInputs:
    """Index the customer tables by customer_id once, so per-request calls only look up rows."""
    return RecommendInputs(
        _indexed(portrait), _indexed(policy_customers), _indexed(holdings), _indexed(segments)
    )


def _lookup(indexed: pd.DataFrame | None, ids: pd.Index) -> pd.DataFrame | None:
    if indexed is None:
        return None
    hits = indexed.loc[indexed.index.intersection(ids)]
    return hits.reset_index(drop=True) if CUSTOMER_ID in hits.columns else hits.reset_index()


def _ids(customers: Any) -> pd.Index:
    if isinstance(customers, pd.DataFrame):
        customers = customers[CUSTOMER_ID]
    if isinstance(customers, str):
        customers = [customers]
    return pd.Index(pd.unique(pd.Series(list(customers), dtype=object).astype(str)))


def recommend(
    customers: Any,
    *,
    portrait: pd.DataFrame,
    products: pd.DataFrame,
    holdings: pd.DataFrame,
    conversion_model: Any | None,
    rule_base: Any | None,
    segments: pd.DataFrame | None,
    policy_customers: pd.DataFrame,
    k: int,
    context: PairContext | None = None,
    session_events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Top-k allowed products per customer with score, reasons, personalised flag and source.

    `customers` is one id, a list of ids or portrait rows. `context` (a `PairContext` at the
    scoring time) is needed by the model; without it or without a model the list comes from
    rules and popularity. `session_events` (events schema) are views in the current visit:
    they raise the view features of their pairs. Exclusion counts are in `.attrs["excluded"]`.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ids = _ids(customers)
    inputs = index_inputs(
        portrait=portrait, policy_customers=policy_customers, holdings=holdings, segments=segments
    )
    rows = _lookup(inputs.portrait, ids)
    held = _lookup(inputs.holdings, ids)[[CUSTOMER_ID, PRODUCT_ID]].astype(str)
    seg = _lookup(inputs.segments, ids)
    model_cands, pairs = _model_candidates(rows, conversion_model, context, session_events)
    cands = [model_cands]
    if model_cands is None:  # with a model, session views already move the model's view features
        cands.append(_session_candidates(rows, session_events))
    cands.append(_rule_candidates(held, rule_base, seg, k))
    cands.extend(_popular_candidates(rows, ids, context, products, seg))
    cands = [c for c in cands if c is not None and len(c)]
    if not cands:  # nothing on sale at all: an empty, well-formed answer
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS})
        out.attrs["excluded"] = {}
        return out
    cands = pd.concat(cands, ignore_index=True)
    result = apply_policy(
        cands,
        customers=_lookup(inputs.policy_customers, ids).astype({CUSTOMER_ID: str}),
        products=products,
        holdings=held,
        personalised=cands["personalised"],
    )
    policy = _lookup(inputs.policy_customers, ids)
    opted = pd.Index(policy.loc[policy["marketing_opt_out"].astype(bool), CUSTOMER_ID].astype(str))
    out = _explain_model_rows(_top_k(result.kept, k, opted_out=opted), pairs, conversion_model)
    out.attrs["excluded"] = result.exclusion_counts()
    if (
        len(ids) <= MAX_AUDITED_CUSTOMERS
    ):  # per-product audit lines for the service; attrs copy on every op
        out.attrs["excluded_rows"] = result.excluded[[CUSTOMER_ID, PRODUCT_ID, "reason"]]
    return out


def _model_candidates(rows, model, context, session_events) -> tuple[pd.DataFrame | None, Any]:
    """Every not-held active product scored by the model (reasons are added after the cut to k)."""
    if model is None or context is None or rows.empty:
        return None, None
    pairs = build_pairs(rows, context, session_events=session_events)
    if pairs.empty:
        return None, None
    cand = pd.DataFrame(
        {
            CUSTOMER_ID: pairs[CUSTOMER_ID].to_numpy(),
            PRODUCT_ID: pairs[PRODUCT_ID].to_numpy(),
            "score": model.predict_proba(pairs),
            "reasons": None,
            "personalised": True,
            "source": "model",
        }
    )
    return cand, pairs


def _explain_model_rows(out: pd.DataFrame, pairs: pd.DataFrame | None, model: Any) -> pd.DataFrame:
    """Model reasons (top SHAP factors) for the model rows that made the final list only."""
    is_model = out["source"].eq("model").to_numpy()
    if pairs is None or not is_model.any():
        return out
    keys = out.loc[is_model, [CUSTOMER_ID, PRODUCT_ID]]
    chosen = keys.merge(pairs, on=[CUSTOMER_ID, PRODUCT_ID], how="left")
    reasons = [r or ["predicted to suit you"] for r in model.explain(chosen, top=3)]
    out.loc[is_model, "reasons"] = pd.Series(reasons, index=out.index[is_model], dtype=object)
    return out


def _session_candidates(rows, session_events) -> pd.DataFrame | None:
    """Products a known customer viewed in this visit, most viewed first (the policy still applies)."""
    if session_events is None or len(session_events) == 0 or rows.empty:
        return None
    views = session_events.loc[session_events[PRODUCT_ID].notna(), [CUSTOMER_ID, PRODUCT_ID]]
    views = views.astype(str)
    views = views.loc[views[CUSTOMER_ID].isin(rows[CUSTOMER_ID].astype(str))]
    if views.empty:
        return None
    counts = views.value_counts([CUSTOMER_ID, PRODUCT_ID]).rename("score").reset_index()
    counts["score"] = counts["score"].astype(float)
    counts["reasons"] = [[f"viewed {int(n)} time(s) in this visit"] for n in counts["score"]]
    return counts.assign(personalised=True, source="session")


def _rule_candidates(held, rule_base, seg, k) -> pd.DataFrame | None:
    """Products the customer's holdings point to through the rule base, with the rule as reason."""
    if rule_base is None or held.empty or len(rule_base.rules) == 0:
        return None
    from training.rules.base import candidates_from_rules

    segs = None if seg is None or seg.empty else seg[[CUSTOMER_ID, SEGMENT_ID]]
    cand = candidates_from_rules(held, rule_base.rules, k, segments=segs)
    if cand.empty:
        return None
    return pd.DataFrame(
        {
            CUSTOMER_ID: cand[CUSTOMER_ID].astype(str).to_numpy(),
            PRODUCT_ID: cand[PRODUCT_ID].astype(str).to_numpy(),
            "score": cand["score"].to_numpy(dtype=float),
            "reasons": [[str(r)] for r in cand["reason"]],
            "personalised": True,
            "source": "rules",
        }
    )


def _popular_candidates(rows, ids, context, products, seg) -> list[pd.DataFrame]:
    """Segment (or peer) popularity for known customers; overall popularity for everyone."""
    active = products.loc[products["is_active"].astype(bool), PRODUCT_ID].astype(str)
    overall = overall_popularity(context, pd.Index(active))
    known = pd.Index(rows[CUSTOMER_ID].astype(str))
    frames = [_cross(ids, overall, "popularity", personalised=False, known=known)]
    if context is not None and len(rows):
        share = personal_shares(rows, context, seg, overall.index)
        long = pd.DataFrame(share, index=known, columns=overall.index).stack()
        long = long.rename_axis([CUSTOMER_ID, PRODUCT_ID]).rename("score").reset_index()
        long["reasons"] = [[personal_share_reason(s)] for s in long["score"]]
        frames.append(long.assign(personalised=True, source="segment_popularity"))
    return frames


def overall_popularity(context: PairContext | None, products: pd.Index) -> pd.Series:
    """Share of all customers holding each product (0 without a context), indexed by product_id."""
    if context is None:
        return pd.Series(0.0, index=products)
    return context.product_stats["popularity"].reindex(products).fillna(0.0)


def personal_shares(
    rows: pd.DataFrame, context: PairContext, seg: pd.DataFrame | None, products: pd.Index
) -> np.ndarray:
    """customers x products: share of the customer's segment (else peers) holding each product."""
    by_peer = context.peer_popularity.reindex(peer_key(rows).to_numpy())
    share = by_peer.reindex(columns=products).fillna(0.0)
    if context.segment_popularity is not None and seg is not None and len(seg):
        known = pd.Index(rows[CUSTOMER_ID].astype(str))
        seg_of = seg.set_index(CUSTOMER_ID)[SEGMENT_ID].astype(str).reindex(known)
        by_seg = context.segment_popularity.reindex(seg_of.to_numpy()).reindex(columns=products)
        share = by_seg.set_axis(share.index).fillna(share)
    return share.to_numpy(dtype=float)


def personal_share_reason(share: float) -> str:
    """The reason of a segment (or peer) popularity candidate."""
    return f"{share:.0%} of customers like you hold it"


def popular_reason(share: float) -> str:
    """The reason of an overall popularity candidate."""
    return f"popular overall: {share:.0%} of customers hold it"


def _cross(ids, overall: pd.Series, source: str, *, personalised: bool, known) -> pd.DataFrame:
    n, m = len(ids), len(overall)
    frame = pd.DataFrame(
        {
            CUSTOMER_ID: np.repeat(ids.to_numpy(dtype=object), m),
            PRODUCT_ID: np.tile(overall.index.to_numpy(dtype=object), n),
            "score": np.tile(overall.to_numpy(dtype=float), n),
        }
    )
    is_known = frame[CUSTOMER_ID].isin(known).to_numpy()
    texts = [popular_reason(s) for s in frame["score"]]
    frame["reasons"] = [[t] for t in texts]
    frame["personalised"] = personalised
    frame["source"] = np.where(is_known, source, "cold_start")
    return frame


def _top_k(kept: pd.DataFrame, k: int, *, opted_out: pd.Index) -> pd.DataFrame:
    """Best source first, then score; one row per product; ranks 1..k; reasons for opt-outs and new customers."""
    if kept.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS})
    kept = kept.assign(priority=pd.Categorical(kept["source"], categories=SOURCES).codes)
    kept = kept.sort_values(
        [CUSTOMER_ID, "priority", "score", PRODUCT_ID],
        ascending=[True, True, False, True],
        kind="stable",
    ).drop_duplicates([CUSTOMER_ID, PRODUCT_ID])
    kept = kept.loc[kept.groupby(CUSTOMER_ID, sort=False).cumcount() < k].copy()
    kept["rank"] = kept.groupby(CUSTOMER_ID, sort=False).cumcount() + 1
    opted_out = kept[CUSTOMER_ID].isin(opted_out) & kept["source"].eq("popularity")
    kept.loc[opted_out, "reasons"] = pd.Series(
        [[OPT_OUT_REASON] for _ in range(int(opted_out.sum()))], index=kept.index[opted_out]
    )
    cold = kept["source"].eq("cold_start")
    kept.loc[cold, "reasons"] = pd.Series(
        [[COLD_START_REASON] for _ in range(int(cold.sum()))], index=kept.index[cold]
    )
    kept["personalised"] = kept["personalised"].astype(bool)
    return kept[OUTPUT_COLUMNS].reset_index(drop=True)
