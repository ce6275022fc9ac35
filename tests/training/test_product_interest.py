"""Product interests: hand-made interaction counts, category vs product items, the SVD path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.segments.interest import interest_features, interest_mix, item_of


def test_mix_is_per_source_shares_averaged_and_square_rooted():
    interactions = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B"],
            "source": ["buy", "buy", "view", "hold"],
            "item": ["gold", "bond", "gold", "bond"],
            "weight": [3.0, 1.0, 2.0, 1.0],
        }
    )
    mix, items = interest_mix(interactions, pd.Series(["A", "B", "C"]))
    assert list(items) == ["bond", "gold"]
    # A: buy shares gold 3/4, bond 1/4; view gold 1; averaged over 3 sources
    expected = np.sqrt([[0.25 / 3, (0.75 + 1.0) / 3], [1 / 3, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(mix.toarray(), expected)


def test_categories_are_items_only_when_the_catalogue_has_several():
    products = pd.DataFrame({"product_id": ["P1", "P2"], "category": ["gold", "bond"]})
    assert item_of(products).to_dict() == {"P1": "gold", "P2": "bond"}
    assert item_of(products.assign(category="x")).empty


def test_a_large_catalogue_is_compressed():
    rng = np.random.default_rng(0)
    n, n_items = 500, 2000
    interactions = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in rng.integers(0, n, 20_000)],
            "source": rng.choice(["hold", "buy", "view"], 20_000),
            "item": [f"P{j}" for j in rng.integers(0, n_items, 20_000)],
            "weight": 1.0,
        }
    )
    customers = pd.Series([f"C{i}" for i in range(n)])
    out = interest_features(interactions, customers, n_components=16, seed=1)
    assert list(out.columns) == ["customer_id", *[f"interest_svd{i}" for i in range(16)]]
    assert len(out) == n and np.isfinite(out.drop(columns="customer_id").to_numpy()).all()
    small = interest_features(interactions.assign(item="gold"), customers, n_components=16)
    assert list(small.columns) == ["customer_id", "interest_gold"]
    assert small["interest_gold"].between(0, 1 + 1e-12).all()


@pytest.mark.parametrize("n_components", [1, 4])
def test_unknown_customers_are_left_out(n_components):
    interactions = pd.DataFrame(
        {"customer_id": ["Z"], "source": ["buy"], "item": ["gold"], "weight": [1.0]}
    )
    out = interest_features(interactions, pd.Series(["A"]), n_components=n_components)
    assert out.drop(columns="customer_id").to_numpy().sum() == 0.0
