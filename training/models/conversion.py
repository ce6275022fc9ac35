"""The conversion / next-best-product model over customer x product pairs, and the per-product variant.

`ConversionModel` is one calibrated LightGBM over every pair (product id and category as
categorical features, so it shares strength across products). `PerProductModel` fits one
calibrated LightGBM per product on that product's pairs; products with too few positives fall
back to the pair model's score. The models stage measures both on the validation fold and keeps
the better one (its MAP@k is logged next to the other's).

Objective: binary log loss on pairs, not LambdaRank. Measured at 20k customers on the same
features, LambdaRank on buyers' lists was 0.9 points of MAP@5 higher on both the validation
fold and the purchases after as_of (0.465 vs 0.456, 0.435 vs 0.426), inside the noise of ~1400
buyers, while its score only orders one customer's products; the binary margin calibrates
into the purchase probability the contract asks for.

Short histories are where it fails (benchmarks/next_best.py, MovieLens 100K at 1998-02-20: one
training cut-off with a month of history, 168 customers, 640 purchases): the binary objective
stops after one or two trees on customer columns (customer AUC 0.47-0.51 on validation), i.e.
it learns who buys, not what. Measured and not kept: cut-offs spaced 8 days apart (four, not
one), per-customer weights, buyers only, rank features of the popularity generators (none
moved it; the ranks cost the default demo bank 0.019 MAP@5 after as_of); LambdaRank over the
same pairs (customer AUC 0.59-0.66, MAP@10 at most 0.142) still loses to EASE^R (0.154), and
boosting from EASE^R's ranks mostly undoes them (0.12-0.16 over 12 settings). The gate then
serves the best validation baseline (training/models/fallback.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.contract import PRODUCT_ID
from features.pairs import PAIR_CATEGORICAL, PAIR_FEATURES, attribute_columns
from features.portrait import text_columns
from training.models.gbm import CalibratedGBM

LABEL = "converted"
# Pair features and the customer columns that say *what* a customer buys (profile, risk, kind of
# investor); activity columns that say *who* buys now (logins, recency) are left out: they do
# not change the order of one customer's products and, measured at 20k, cost MAP@5.
PROFILE_FEATURES = (
    "age", "income_band", "risk_level", "log_total_assets", "max_risk_held", "mean_risk_held",
    "n_products_held", "tenure_days", "n_buys_total", "p2p_share", "forex_share", "stock_share",
)  # fmt: skip
FEATURES = [*PAIR_FEATURES, *PROFILE_FEATURES]
# Shallow, heavily regularised trees ranked best on the validation fold; Optuna starts here.
DEFAULT_PARAMS = {"learning_rate": 0.1, "num_leaves": 7, "max_depth": 3, "min_child_samples": 200}
MIN_PRODUCT_POSITIVES = 20

PHRASES = {
    "views_7d": "you viewed it {v:.0f} times in the last 7 days",
    "views_30d": "you viewed it {v:.0f} times in the last 30 days",
    "cohold_lift": "holders of your products often hold it too (lift {v:.1f})",
    "cohold_conf": "{v:.0%} of holders of your products hold it",
    "transition_lift": "customers with your products often buy it next (lift {v:.1f})",
    "transition_conf": "{v:.0%} of customers with your products bought it next",
    "peer_popularity": "{v:.0%} of customers like you hold it",
    "segment_popularity": "{v:.0%} of your segment hold it",
    "popularity": "{v:.0%} of all customers hold it",
    "recent_buy_share": "{v:.0%} of recent purchases",
    "decayed_popularity": "{v:.0%} of purchases lately (recent ones count more)",
    "ease_score": "customers who hold what you hold choose it (EASE^R score {v:.2f})",
    "item_item_score": "often held together with your products (similarity {v:.2f})",
    "risk_gap": "fits your risk level (your level minus product's: {v:+.0f})",
    "affordability": "within your means",
    "holds_same_category": "complements what you hold",
    "n_buy_90d": "you bought {v:.0f} times in 90 days",
    "product_views_7d": "you browsed {v:.0f} products this week",
    "log_min_amount": "minimum investment {e:,.0f}",
    "product_risk": "product risk level R{v:.0f}",
    "views_90d": "you viewed it {v:.0f} times in the last 90 days",
    "views_365d": "you viewed it {v:.0f} times this year",
    "view_share": "{v:.0%} of the products you view are this one",
    "category_view_share": "{v:.0%} of the products you view are in its category",
    "bought_before": "you bought it {v:.0f} time(s) before",
    "category_buy_share": "{v:.0%} of your purchases are in its category",
    "age": "popular with customers of your age",
    "income_band": "suits your income band",
    "risk_level": "suits your risk profile (C{v:.0f})",
    "log_total_assets": "suits your assets",
    "max_risk_held": "matches the risk of what you hold",
    "mean_risk_held": "matches the risk of what you hold",
    "n_products_held": "complements your {v:.0f} products",
    "tenure_days": "suits customers who have been with us {v:.0f} days",
    "n_buys_total": "fits your {v:.0f} past purchases",
    "p2p_share": "you are active in P2P lending",
    "forex_share": "you follow forex",
    "stock_share": "you follow the stock market",
}
LABEL_PHRASES = {
    "product_code": "{v} is often chosen by customers with your profile",
    "category_code": "{v} products suit your profile",
}


def phrase(feature: str, values: pd.Series) -> pd.Series:
    """Readable text of a pair feature's values; product and category read as their value."""
    template = PHRASES.get(feature)
    if feature in LABEL_PHRASES:
        text = LABEL_PHRASES[feature]
        return pd.Series([text.format(v=str(v).replace("_", " ")) for v in values], dtype=object)
    if template is None:
        name = feature.removeprefix("extra_").replace("_", " ")
        if not pd.api.types.is_numeric_dtype(values):  # text attributes: gender, occupation, ...
            return pd.Series(
                [f"suits customers with {name} {v}" for v in values.astype(object)], dtype=object
            )
        return pd.Series([f"{name}: {v:.3g}" for v in values.astype(float)], dtype=object)
    nums = pd.to_numeric(values, errors="coerce").astype(float).fillna(0.0)
    return pd.Series([template.format(v=v, e=np.expm1(v)) for v in nums], dtype=object)


class ConversionModel(CalibratedGBM):
    """P(customer buys this product in the horizon) for pairs not held at the cut-off."""

    kind = "pair"

    def __init__(self, *, params: dict[str, Any] | None = None, **kw) -> None:
        kw.setdefault("features", FEATURES)
        super().__init__(categorical=PAIR_CATEGORICAL, params=params or DEFAULT_PARAMS, **kw)

    def setup(self, train: pd.DataFrame) -> None:
        """The customer's attributes on the pairs (gender, occupation, the firm's extra columns)
        join the fixed feature list; text ones are categorical."""
        self.features = [
            *self.features,
            *[c for c in attribute_columns(train) if c not in self.features],
        ]
        self.categorical = (*PAIR_CATEGORICAL, *text_columns(train, attribute_columns(train)))

    def fit(self, train: pd.DataFrame, *, label: str = LABEL, weight: str | None = "weight", **kw):
        """Fit on pairs (label `converted`, negatives weighted for subsampling)."""
        return super().fit(train, label=label, weight=weight if weight in train else None, **kw)

    def explain(self, frame: pd.DataFrame, *, top: int = 3) -> list[list[str]]:
        """Up to `top` reasons per pair that raise the purchase probability, strongest first."""
        reasons = self.top_factors(
            frame, top=top, phrase=phrase, up="+", down="-", positive_only=True
        )
        return [[r.removesuffix(" (+)") for r in row] for row in reasons]


def product_rows(frame: pd.DataFrame) -> dict[Any, np.ndarray]:
    """Each product's row positions in `frame`, ascending (one pass over its product column)."""
    return frame.groupby(PRODUCT_ID, observed=True, sort=False).indices


def trainable_products(train: pd.DataFrame, *, label: str = LABEL) -> list[Any]:
    """Products with at least MIN_PRODUCT_POSITIVES positive training pairs, in id order."""
    positives = train.groupby(PRODUCT_ID, observed=True)[label].sum()
    return list(positives.index[positives >= MIN_PRODUCT_POSITIVES])


class PerProductModel:
    """One calibrated LightGBM per product, with the pair model for products with few positives."""

    kind = "per_product"
    # inputs besides `features`: the product routes a pair to its model, and the fallback pair
    # model reads product and category codes (MLflow's input example must hold them)
    extra_inputs = (PRODUCT_ID, *PAIR_CATEGORICAL)

    def __init__(self, *, params: dict[str, Any] | None = None, seed: int = 42, **kw) -> None:
        self.params = params
        self.seed = seed
        self.kw = kw
        self.features = [f for f in FEATURES if f not in PAIR_CATEGORICAL]

    def fit(
        self, train: pd.DataFrame, *, label: str = LABEL, weight: str | None = "weight",
        fallback: ConversionModel | None = None, cluster: Any = None,
    ):  # fmt: skip
        """Fit the fallback pair model (or take `fallback`, one fitted on `train` with the same
        parameters) and one model per product with enough positives."""
        self.fallback_ = fallback or ConversionModel(params=self.params, seed=self.seed, **self.kw)
        if fallback is None:
            self.fallback_.fit(train, label=label, weight=weight, cluster=cluster)
        self.models_ = {}
        at = product_rows(train)
        for product in trainable_products(train, label=label):  # loop over products
            rows = train.iloc[at[product]]
            model = CalibratedGBM(
                features=self.features, params=self.params, seed=self.seed, **self.kw
            )
            self.models_[product] = model.fit(
                rows, label=label, weight=weight if weight in rows else None, cluster=cluster
            )
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Each pair scored by its product's model (the pair model where none was fitted): each
        model scores only its own rows, and the product models read one frame of their columns."""
        out = np.zeros(len(frame))
        own = [(self.models_[p], at) for p, at in product_rows(frame).items() if p in self.models_]
        rest = np.ones(len(frame), dtype=bool)
        for _, at in own:
            rest[at] = False
        if rest.any():
            out[rest] = self.fallback_.predict_proba(frame.loc[rest])
        if own:
            x = frame[self.features]
            for model, at in own:  # loop over products
                out[at] = model.predict_proba(x.iloc[at])
        return out

    def explain(self, frame: pd.DataFrame, *, top: int = 3) -> list[list[str]]:
        """Reasons from the pair model (shared phrasing across products)."""
        return self.fallback_.explain(frame, top=top)

    def importance(self) -> pd.Series:
        """The fallback pair model's gain importance."""
        return self.fallback_.importance()
