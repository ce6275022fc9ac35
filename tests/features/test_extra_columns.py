"""The firm's own customer columns: typed as features, chosen by settings, used by the models."""

from __future__ import annotations

import pandas as pd
import pytest

from features.extra_columns import select_extra_columns
from features.portrait import build_features, extra_customer_features
from portrait.errors import SettingsError
from portrait.settings import FeatureSettings
from training.models.churn import ChurnModel


def _with_extras(customers: pd.DataFrame) -> pd.DataFrame:
    # as CSV gives them: text, with a missing value
    return customers.assign(score=["1.5", None, "3"], region=["north", "south", None])


def test_numeric_text_becomes_float_and_other_text_stays_text(tiny_tables):
    extras = extra_customer_features(
        _with_extras(tiny_tables["customers"]).set_index("customer_id")
    )
    assert extras["extra_score"].tolist()[::2] == [1.5, 3.0] and pd.isna(
        extras["extra_score"].iloc[1]
    )
    assert extras["extra_region"].dtype == "string"


def test_extra_columns_reach_the_portrait(tiny_tables):
    tables = tiny_tables | {"customers": _with_extras(tiny_tables["customers"])}
    portrait = build_features(tables, as_of=pd.Timestamp("2025-02-01"))
    assert {"extra_score", "extra_region"} <= set(portrait.columns)


def test_settings_include_or_exclude_extra_columns_and_refuse_unknown_names(tiny_tables):
    customers = _with_extras(tiny_tables["customers"])
    kept, used = select_extra_columns(
        customers, settings=FeatureSettings(extra_columns_exclude="region")
    )
    assert used == ["score"] and "region" not in kept.columns and "risk_level" in kept.columns
    _, used = select_extra_columns(
        customers, settings=FeatureSettings(extra_columns_include="region")
    )
    assert used == ["region"]
    with pytest.raises(SettingsError, match="regoin"):
        select_extra_columns(customers, settings=FeatureSettings(extra_columns_exclude="regoin"))


def test_churn_model_treats_text_extras_as_categorical():
    frame = pd.DataFrame({
        "customer_id": [str(i) for i in range(200)],
        "extra_region": pd.array(["north", "south"] * 100, dtype="string"),
        "extra_score": [float(i % 7) for i in range(200)],
        "churned": [i % 2 for i in range(200)],
    })  # fmt: skip
    model = ChurnModel(features=["extra_region", "extra_score"]).fit(frame)
    assert model.categorical == ("extra_region",)
    assert len(model.predict_proba(frame)) == 200
