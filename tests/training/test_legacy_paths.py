"""Pickles written before the layer move (models in MLflow, segmentation.pkl) still load."""

from __future__ import annotations

import importlib
import pickle

import pytest

from training.legacy import MOVED
from training.models.churn import ChurnModel
from training.segments.model import SegmentationModel


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_module_path_is_the_module_at_its_new_path(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)


def _as_written_before_the_move(obj: object, new: str, old: str) -> bytes:
    # protocol 2 names a class with a GLOBAL "module\nname" line, as the old code wrote it
    data = pickle.dumps(obj, protocol=2)
    assert f"c{new}\n".encode() in data
    return data.replace(f"c{new}\n".encode(), f"c{old}\n".encode())


def test_a_churn_model_pickled_at_training_churn_loads() -> None:
    model = ChurnModel(features=["age", "total_assets"])
    data = _as_written_before_the_move(model, "training.models.churn", "training.churn")
    loaded = pickle.loads(data)
    assert type(loaded) is ChurnModel
    assert vars(loaded).keys() == vars(model).keys()


def test_a_segmentation_pickled_at_training_segments_loads() -> None:
    data = _as_written_before_the_move(
        SegmentationModel(), "training.segments.model", "training.segments"
    )
    assert type(pickle.loads(data)) is SegmentationModel


def test_an_unknown_old_path_still_fails() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("training.no_such_module")
