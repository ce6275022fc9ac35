"""Product interests: hand-made interaction counts, pooling and shrinkage, block scaling, category vs product items, the SVD path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from portrait.errors import PortraitError
from training.segments.interest import BlockScaler, interest_features, interest_mix, item_of

INTERACTIONS = pd.DataFrame(
    {
        "customer_id": ["A", "A", "A", "B"],
        "source": ["buy", "buy", "view", "hold"],
        "item": ["gold", "bond", "gold", "bond"],
        "weight": [3.0, 1.0, 2.0, 1.0],
    }
)


def test_mix_pools_every_interaction_and_square_roots_the_shares():
    mix, items, total = interest_mix(INTERACTIONS, pd.Series(["A", "B", "C"]))
    assert list(items) == ["bond", "gold"]
    # A: bond 1 buy, gold 3 buys + 2 views = 6 interactions; one view weighs as much as one buy
    expected = np.sqrt([[1 / 6, 5 / 6], [1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(mix.toarray(), expected)
    assert total.tolist() == [6.0, 1.0, 0.0]


def test_thin_mixes_are_shrunk_toward_the_mean_and_no_activity_stays_zero():
    customers = pd.Series(["A", "B", "C"])
    raw = interest_features(INTERACTIONS, customers, prior=0.0).drop(columns="customer_id")
    np.testing.assert_allclose(raw.to_numpy(), np.sqrt([[1 / 6, 5 / 6], [1.0, 0.0], [0.0, 0.0]]))
    out = interest_features(INTERACTIONS, customers, prior=2.0).drop(columns="customer_id")
    mean = raw.iloc[:2].mean().to_numpy()
    # A has 6 interactions: keeps 6 / (6 + 2) of its own mix; B (1 interaction) keeps 1 / 3
    np.testing.assert_allclose(out.iloc[0], 0.75 * raw.iloc[0] + 0.25 * mean)
    np.testing.assert_allclose(out.iloc[1], raw.iloc[1] / 3 + 2 * mean / 3)
    assert out.iloc[2].tolist() == [0.0, 0.0]
    with pytest.raises(PortraitError, match="interest_prior"):
        interest_features(INTERACTIONS, customers, prior=-1.0)


def test_blocks_get_their_total_variance_whatever_their_width_and_units():
    rng = np.random.default_rng(0)
    wide, narrow = rng.normal(0, 5, (200, 9)), rng.uniform(0, 0.1, (200, 2))
    for block, weight in ((wide, 1.0), (narrow, 2.5)):
        scaled = BlockScaler(weight=weight).fit(block).transform(block)
        assert scaled.var(axis=0).sum() == pytest.approx(weight)
        np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-12)
        # the block keeps its shape: columns keep their variance ratios
        np.testing.assert_allclose(
            scaled.var(axis=0) / block.var(axis=0), weight / block.var(axis=0).sum()
        )
    constant = np.ones((5, 3))
    assert not BlockScaler().fit(constant).transform(constant).any()


def test_a_block_with_columns_that_do_not_vary_keeps_each_columns_share():
    rng = np.random.default_rng(1)
    varying = rng.normal(0, 1, (300, 1))
    varying = (varying - varying.mean()) / varying.std()  # as StandardScaler leaves it
    block = np.hstack([varying, np.zeros((300, 2))])  # an age; no income or risk level on file
    full = BlockScaler(weight=0.5, floor=3).fit(rng.normal(0, 1, (300, 3)))
    alone = BlockScaler(weight=0.5, floor=3).fit(block)
    # the age gets the sixth it has when all three vary, not the whole half
    assert alone.transform(block)[:, 0].var() == pytest.approx(0.5 / 3, rel=1e-9)
    assert full.scale_ == pytest.approx(alone.scale_, rel=0.1)
    assert BlockScaler(weight=0.5).fit(block).transform(block)[:, 0].var() == pytest.approx(0.5)
    # wider than its floor: the whole weight, spread over every column
    wide = rng.normal(0, 1, (300, 8))
    scaled = BlockScaler(weight=0.5, floor=3).fit(wide).transform(wide)
    assert scaled.var(axis=0).sum() == pytest.approx(0.5)


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
