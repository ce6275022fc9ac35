"""The batch stage's candidate index in the run: the service reads it instead of scoring every
pair at load, answers exactly as from an index scored at load, and scores anew for another model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.holdings import build_holdings
from portrait.settings import load_settings
from serving.index_files import read_index, scorer_name, write_index
from serving.pair_reasons import EXPLAINED, UNEXPLAINED
from serving.recommend_index import CandidateIndex
from serving.recommend_one import recommend_one
from serving.state import load_state
from tests.conftest import make_tables
from tests.serving.conftest import candidate_index
from tests.serving.test_recommend import AS_OF, tiny  # noqa: F401  (the hand-made bank's index)
from training.manifest import run_files


def assert_same_index(got: CandidateIndex, want: CandidateIndex) -> None:
    """Same ids, rows, scores, reasons, shares, popularity, held matrix and pair columns."""
    assert got.products.tolist() == want.products.tolist()
    assert got.customers.equals(want.customers) and (got.held == want.held).all()
    for name in ("pairs", "rules"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None)
        if a is not None:
            for part in ("ptr", "product", "score"):
                np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    for name in ("rule_reasons", "shares", "popularity"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None) and (a is None or (a == b).all())
    if want.pair_frame is not None:
        pd.testing.assert_frame_equal(got.pair_frame, want.pair_frame)


def test_the_service_starts_from_the_batch_index(demo_run):
    settings = load_settings(None, {"tracking.tracking_uri": demo_run.tracking_uri})
    state = load_state(demo_run.run_dir, settings)
    assert "pair_context" not in state.__dict__  # nothing was scored at load
    model = state.models["conversion"]
    scored = candidate_index(state, model)
    assert_same_index(state.candidates, scored)
    assert state.candidates.pair_matrix is not None  # the batch skips it; the service builds it
    memo = state.candidates.pair_reasons  # the batch's reasons came with its index: kept, equal
    explained = np.flatnonzero(memo._codes[:, 0] != UNEXPLAINED)
    assert len(explained) > 0
    rows = explained[:: max(1, len(explained) // 50)]
    again = model.explain(state.candidates.pair_frame.iloc[rows], top=EXPLAINED)
    assert memo.reasons(rows, lambda missing: pytest.fail(f"{missing} explained again")) == again
    viewed = list(state.products.index[:2])
    for cid in state.portrait.index[:40]:
        for views in ([], viewed):
            args = (state.product_facts, state.customer_facts, cid)
            kw = {"k": 5, "session_products": views, "model": model}
            got, want = (
                recommend_one(state.candidates, *args, **kw),
                recommend_one(scored, *args, **kw),
            )
            assert got.items == want.items and got.excluded == want.excluded


def test_another_model_or_other_customers_score_at_load(tmp_path, tiny):  # noqa: F811
    index, _ = tiny
    write_index(tmp_path, index, scored_by=scorer_name(None, None))
    manifest = {"files": run_files(tmp_path)}
    holdings = build_holdings(make_tables()["transactions"], as_of=AS_OF)
    read = read_index(tmp_path, manifest, scored_by="none", holdings=holdings, model=None,
                      customers=index.customers)  # fmt: skip
    assert_same_index(read, index)
    assert read_index(tmp_path, manifest, scored_by="conversion:v9", holdings=holdings,
                      model=None, customers=index.customers) is None  # fmt: skip
    assert read_index(tmp_path, manifest, scored_by="none", holdings=holdings, model=None,
                      customers=index.customers[:2]) is None  # fmt: skip
    assert read_index(tmp_path, {"files": {}}, scored_by="none", holdings=holdings, model=None,
                      customers=index.customers) is None  # fmt: skip


def test_propensity_from_the_index_equals_scoring_every_pair_again(state):
    """The models stage's propensity table from the candidate index's scores (one scoring pass)
    is the table `score_propensity` builds by scoring every pair with the same model."""
    from serving.recommend_all import scored_pairs
    from training.models.propensity import allowed_propensity, score_propensity

    model = state.models["conversion"]
    portrait = state.portrait.reset_index(drop=True)
    held = state.holdings[["customer_id", "product_id"]].astype(str)
    policy = {"policy_customers": state.policy.reset_index(drop=True),
              "products": state.products.reset_index(drop=True), "holdings": held}  # fmt: skip
    once = allowed_propensity(scored_pairs(state.candidates, block=97), **policy)
    again = score_propensity(model, portrait, state.pair_context, block=250, **policy)
    assert len(once) > 0 and once["probability"].between(0, 1).all()
    pd.testing.assert_frame_equal(once, again, check_exact=True)


def test_kept_reasons_round_trip_and_bad_codes_are_refused():
    from serving.pair_reasons import ReasonMemo

    memo = ReasonMemo(4)
    memo.reasons(np.array([0, 2]), lambda rows: [["a", "b"], []])
    back = ReasonMemo.from_arrays(
        **{k.removeprefix("reason_"): v for k, v in memo.arrays().items()}
    )
    assert back.reasons(np.array([0, 2]), lambda rows: pytest.fail("explained again")) == [
        ["a", "b"], []]  # fmt: skip
    assert back.reasons(np.array([1]), lambda rows: [["c"]]) == [["c"]]  # never explained: now
    codes = memo.arrays()["reason_codes"]
    with pytest.raises(ValueError, match="do not fit"):
        ReasonMemo.from_arrays(codes, np.array(["only one"]))
    with pytest.raises(ValueError, match="do not fit"):
        ReasonMemo.from_arrays(codes[:, :2], np.array(["a", "b"]))
