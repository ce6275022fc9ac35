"""Behavioural clusters: a seeded scikit-learn pipeline, k chosen by a measured criterion, names and cold start.

The clustering uses three blocks: who the customer is (``PROFILE_FEATURES``: age, income band,
risk appetite, and the firm's own numeric attributes), how they use the firm
(``ENGAGEMENT_FEATURES``: tenure, assets, app use and which business line; money and counts
log-transformed), both with gaps at the median and scaled, and the product-interest mix the stage
joins on (``interest_*``, training/segments/interest.py, kept on its own shape). Each block is
scaled to a total variance (``PERSON_WEIGHT`` each for the first two, ``interest_weight`` for the
mix), so none wins by its number of columns or its units; optionally reduced with PCA, then KMeans
(or a Gaussian mixture). k maximises silhouette x stability: clusters that are apart and that half
samples with other seeds reproduce (mean pairwise adjusted Rand). Segment ids are ordered by size
(0 = largest) so they do not depend on the solver's label order.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.base import BaseEstimator, clone
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from features.contract import CUSTOMER_ID, SEGMENT_ID
from features.portrait import EXTRA_PREFIX
from portrait.errors import NotEnoughData, PortraitError
from portrait.settings import SegmentSettings
from training.segments.interest import INTEREST_PREFIX, BlockScaler
from training.segments.names import name_segments, profile_z

# The documented clustering subset, two blocks (the stage adds the interest mix, ``interest_*``).
# Who the customer is: life stage and risk appetite; the firm's numeric extra columns join it.
PROFILE_FEATURES = ("age", "income_band", "risk_level")
# How the customer uses the firm: how long, how much, how often, and which business line.
ENGAGEMENT_FEATURES = ("tenure_days", "total_assets", "events_90d", "p2p_events_90d",
                       "forex_events_90d", "stock_events_90d")  # fmt: skip
# Each gets this total variance: in one block of nine, age had a ninth (README, Segments).
PERSON_WEIGHT = 0.5
LOG_FEATURES = tuple(c for c in ENGAGEMENT_FEATURES if c != "tenure_days")  # money and counts
CLUSTER_FEATURES = PROFILE_FEATURES + ENGAGEMENT_FEATURES
# The dozen holds_<category> flags were dropped: the interest mix says the same with shares.
SIGNUP_CATEGORICAL = ("occupation", "channel")
SIGNUP_NUMERIC = ("age", "income_band", "city_tier", "risk_level")
SIGNUP_FEATURES = SIGNUP_NUMERIC + SIGNUP_CATEGORICAL
METHODS = ("kmeans", "gmm")


# When none of the subset varies (a retailer's purchase log: no demographics, assets or app
# events), customers are told apart by how they buy.
FALLBACK_FEATURES = ("n_buy_365d", "days_since_last_buy", "n_products_held")


def cluster_columns(frame: pd.DataFrame) -> list[str]:
    """The documented clustering subset (`CLUSTER_FEATURES`) present in `frame`, and the firm's numeric extra columns.

    When none of those varies across `frame`, the buying features FALLBACK_FEATURES instead.
    The product-interest columns (``interest_*``) come last, whenever present.
    """
    extras = [
        c for c in frame.columns
        if str(c).startswith(EXTRA_PREFIX) and pd.api.types.is_numeric_dtype(frame[c])
    ]  # fmt: skip
    interests = [c for c in frame.columns if str(c).startswith(INTEREST_PREFIX)]
    columns = [*[c for c in CLUSTER_FEATURES if c in frame.columns], *extras]
    if any(frame[c].nunique(dropna=True) > 1 for c in columns):
        return [*columns, *interests]
    return [*([c for c in FALLBACK_FEATURES if c in frame.columns] or columns), *interests]


def design_matrix(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Float matrix of `columns` (missing columns become NaN), log1p on money and counts."""
    out = {}
    for col in columns:
        values = pd.to_numeric(frame[col], errors="coerce") if col in frame else np.nan
        values = pd.Series(values, index=frame.index, dtype="float64")
        out[col] = np.log1p(values.clip(lower=0.0)) if col in LOG_FEATURES else values
    return pd.DataFrame(out, index=frame.index)


def signup_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Sign-up attributes as the cold-start classifier reads them (absent -> missing)."""
    out = {}
    for col in SIGNUP_NUMERIC:
        out[col] = pd.to_numeric(frame[col], errors="coerce") if col in frame else np.nan
    for col in SIGNUP_CATEGORICAL:
        values = frame[col] if col in frame else pd.Series(pd.NA, index=frame.index)
        out[col] = values.astype(object).where(values.notna(), "unknown").astype(str)
    return pd.DataFrame(out, index=frame.index).astype(dict.fromkeys(SIGNUP_NUMERIC, "float64"))


class SegmentationModel(BaseEstimator):
    """Clusters customers, names the clusters and assigns new ones (full or sign-up-only features)."""

    def __init__(
        self, *, k_min: int = 4, k_max: int = 10, method: str = "kmeans", n_components: int = 0,
        sample_size: int = 5000, n_reseeds: int = 3, n_threads: int = 1, random_state: int = 42,
        interest_weight: float = 1.0,
    ) -> None:  # fmt: skip
        self.k_min = k_min
        self.k_max = k_max
        self.method = method
        self.n_components = n_components
        self.sample_size = sample_size
        self.n_reseeds = n_reseeds
        self.n_threads = n_threads
        self.random_state = random_state
        self.interest_weight = interest_weight

    def fit(self, portrait: pd.DataFrame, y: None = None) -> SegmentationModel:
        """Choose k over [k_min, k_max] by silhouette x stability, fit the final pipeline, name it."""
        self._check(len(portrait))
        # KMeans' OpenMP threads oversubscribe a small shared machine badly (25x slower seen on 2 cores).
        with threadpool_limits(limits=self.n_threads):
            return self._fit(portrait)

    def _fit(self, portrait: pd.DataFrame) -> SegmentationModel:
        self.features_ = cluster_columns(portrait)
        design = design_matrix(portrait, self.features_)
        sample = self._sample(design)
        self.criterion_ = {k: self._score_k(sample, k) for k in range(self.k_min, self.k_max + 1)}
        self.k_ = max(self.criterion_, key=lambda k: (self.criterion_[k]["score"], -k))
        self.pipeline_ = self._pipeline(self.k_, self.random_state).fit(design)
        raw = self.pipeline_.predict(design)
        sizes = np.bincount(raw, minlength=self.k_)
        self.label_map_ = np.empty(self.k_, dtype=int)
        self.label_map_[np.lexsort((np.arange(self.k_), -sizes))] = np.arange(self.k_)
        labels = self.label_map_[raw]
        self.profile_z_ = profile_z(design, labels)
        self.names_ = name_segments(self.profile_z_)
        self.stability_ari_ = self.criterion_[self.k_]["stability"]
        self._fit_cold_start(portrait, labels)
        return self

    def predict(self, portrait: pd.DataFrame) -> np.ndarray:
        """Segment id of each row from the full clustering features."""
        return self.label_map_[self.pipeline_.predict(design_matrix(portrait, self.features_))]

    def predict_signup(self, frame: pd.DataFrame) -> np.ndarray:
        """Segment id of each row from sign-up attributes only (cold start)."""
        return self.signup_model_.predict(signup_frame(frame)).astype(int)

    def transform(self, portrait: pd.DataFrame) -> np.ndarray:
        """Scaled (and reduced) coordinates the clustering sees, for projections and plots."""
        return self.pipeline_[:-1].transform(design_matrix(portrait, self.features_))

    def _prepare(self) -> ColumnTransformer:
        """Profile (extra columns too), engagement (buying fallback too): scaled, variance
        PERSON_WEIGHT each (floor: documented columns'); interests: ``interest_weight``."""
        interests = [c for c in self.features_ if c.startswith(INTEREST_PREFIX)]
        profile = [c for c in self.features_ if c in PROFILE_FEATURES or c.startswith(EXTRA_PREFIX)]
        engagement = [c for c in self.features_ if c not in {*interests, *profile}]
        impute = SimpleImputer(strategy="median", keep_empty_features=True)  # all-missing: 0
        blocks = [
            (name, make_pipeline(clone(impute), StandardScaler(),
                                 BlockScaler(weight=PERSON_WEIGHT, floor=len(documented))), cols)
            for name, cols, documented in (("profile", profile, PROFILE_FEATURES),
                                           ("engagement", engagement, ENGAGEMENT_FEATURES)) if cols
        ]  # fmt: skip
        zero = SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)
        weighed = Pipeline([("impute", zero), ("block", BlockScaler(weight=self.interest_weight))])
        return ColumnTransformer([*blocks, ("interests", weighed, interests)])

    def _check(self, n_rows: int) -> None:
        if self.method not in METHODS:
            raise PortraitError(f"segments.method must be one of {METHODS}, got {self.method!r}")
        if not 2 <= self.k_min <= self.k_max:
            raise PortraitError(
                f"segments.k_min..k_max must satisfy 2 <= k_min <= k_max, got {self.k_min}..{self.k_max}"
            )
        if n_rows == 0:
            raise PortraitError(
                "segmentation has no customers to fit on (no customer active at as_of); "
                "pick a later --as-of or check the events and transactions tables"
            )
        if self.k_max >= min(n_rows, self.sample_size):
            raise PortraitError(
                f"segments.k_max={self.k_max} needs more customers than the {n_rows} available "
                f"(and segments.sample_size={self.sample_size}); lower segments.k_max"
            )

    def _sample(self, design: pd.DataFrame) -> pd.DataFrame:
        if len(design) <= self.sample_size:
            return design
        return design.sample(n=self.sample_size, random_state=self.random_state)

    def _pipeline(self, k: int, seed: int) -> Pipeline:
        steps = [("prepare", self._prepare())]
        if self.n_components:
            steps.append(("reduce", PCA(n_components=self.n_components, random_state=seed)))
        if self.method == "kmeans":
            steps.append(("cluster", KMeans(n_clusters=k, n_init=4, random_state=seed)))
        else:
            cluster = GaussianMixture(k, covariance_type="diag", n_init=2, random_state=seed)
            steps.append(("cluster", cluster))
        return Pipeline(steps)

    def _score_k(self, sample: pd.DataFrame, k: int) -> dict[str, float]:
        pipe = self._pipeline(k, self.random_state).fit(sample)
        coords = pipe[:-1].transform(sample)
        labels = pipe.predict(sample)
        distinct = len(np.unique(labels))
        if distinct < 2 or distinct >= len(labels):  # silhouette is undefined: k cannot be chosen
            raise NotEnoughData(
                f"k = {k} gives {distinct} distinct cluster(s) over {len(labels)} customers: "
                "the clustering features (engagement and product interests) barely vary in these data"
            )
        silhouette = float(silhouette_score(coords, labels, random_state=self.random_state))
        stability = self._stability(sample, k)
        score = {"silhouette": silhouette, "stability": stability,
                 "score": silhouette * max(stability, 0.0)}  # fmt: skip
        if self.method == "kmeans":
            score["inertia"] = float(pipe[-1].inertia_)
        else:
            score["bic"] = float(pipe[-1].bic(coords))
        return score

    def _stability(self, sample: pd.DataFrame, k: int) -> float:
        """Mean pairwise adjusted Rand, over ``sample``, of fits on half samples with other seeds."""
        rng = np.random.default_rng(self.random_state)
        half = max(len(sample) // 2, k + 1)
        fits = [
            self._pipeline(k, self.random_state + i)
            .fit(sample.iloc[rng.choice(len(sample), half, replace=False)])
            .predict(sample)
            for i in range(1, max(self.n_reseeds, 1) + 2)
        ]
        return float(np.mean([adjusted_rand_score(a, b) for a, b in combinations(fits, 2)]))

    def _fit_cold_start(self, portrait: pd.DataFrame, labels: np.ndarray) -> None:
        signup = signup_frame(portrait)
        counts = np.bincount(labels, minlength=self.k_)
        self.cold_start_baseline_ = float(counts.max() / counts.sum())
        stratify = labels if counts.min() >= 2 and len(labels) >= 4 * self.k_ else None
        x_train, x_test, y_train, y_test = train_test_split(signup, labels, test_size=0.25,
                                                            random_state=self.random_state, stratify=stratify)  # fmt: skip
        hits = _signup_classifier().fit(x_train, y_train).predict(x_test) == y_test
        self.cold_start_agreement_ = float(hits.mean())
        # do sign-up attributes place held-out customers better than the largest segment (5%)?
        test = binomtest(int(hits.sum()), len(hits), self.cold_start_baseline_,
                         alternative="greater")  # fmt: skip
        self.cold_start_informative_ = bool(test.pvalue < 0.05)
        self.signup_model_ = _signup_classifier().fit(signup, labels)


def _signup_classifier() -> Pipeline:
    impute = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    columns = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore"), list(SIGNUP_CATEGORICAL)),
         ("numeric", Pipeline([("impute", impute), ("scale", StandardScaler())]), list(SIGNUP_NUMERIC))]
    )  # fmt: skip
    return Pipeline([("columns", columns), ("classify", LogisticRegression(max_iter=2000, C=1.0))])


def segmentation_model(settings: SegmentSettings) -> SegmentationModel:
    """The unfitted segmentation estimator the segments settings describe (both engines use it)."""
    return SegmentationModel(
        k_min=settings.k_min, k_max=settings.k_max, method=settings.method,
        n_components=settings.n_components, sample_size=settings.sample_size,
        n_reseeds=settings.n_reseeds, random_state=settings.seed,
        interest_weight=settings.interest_weight,
    )  # fmt: skip


def assign_segment(model: SegmentationModel, features: pd.DataFrame) -> pd.DataFrame:
    """Segment of every customer: full features when present, else sign-up attributes (cold start).

    Returns customer_id, segment_id, segment_name and `assigned_by` ("behaviour" or "signup").
    """
    if CUSTOMER_ID not in features:
        raise PortraitError(
            f"assign_segment needs a {CUSTOMER_ID} column; got {list(features.columns)}"
        )
    full = all(c in features.columns for c in model.features_)
    if not full and not any(c in features.columns for c in SIGNUP_FEATURES):
        raise PortraitError(
            "assign_segment needs the portrait features or at least one sign-up attribute "
            f"({', '.join(SIGNUP_FEATURES)}); got {list(features.columns)}"
        )
    ids = model.predict(features) if full else model.predict_signup(features)
    names = pd.Series(model.names_).reindex(ids).to_numpy()
    return pd.DataFrame(
        {
            CUSTOMER_ID: features[CUSTOMER_ID].to_numpy(),
            SEGMENT_ID: ids.astype(int),
            "segment_name": names.astype(str),
            "assigned_by": "behaviour" if full else "signup",
        }
    )
