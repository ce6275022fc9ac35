"""Old module paths of classes and functions that pickles written before the layer move name.

Models registered in MLflow and the runs' segmentation.pkl hold classes by module path
(`training.churn.ChurnModel`). Issue #20 moved those modules; this finder answers an import of
an old path with the module now at the new one, so a champion registered before the move still
loads. It is installed when `training` is imported, which unpickling any of these paths does
first. `training.segments` is now a package: it re-exports `SegmentationModel` itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "training.extra_columns": "features.extra_columns",
    "training.pairs": "features.pairs",
    "training.pair_history": "features.pair_history",
    "training.segment_names": "training.segments.names",
    "training.tiers": "training.segments.tiers",
    "training.lifecycle": "training.segments.lifecycle",
    "training.tags": "training.segments.tags",
    "training.product_interest": "training.segments.interest",
    "training.rules_ranking": "training.rules.ranking",
    "training.rule_base": "training.rules.base",
    "training.rule_budget": "training.rules.budget",
    "training.rules_strata": "training.rules.strata",
    "training.pair_matrices": "features.pair_matrices",
    "training.gbm": "training.models.gbm",
    "training.churn": "training.models.churn",
    "training.conversion": "training.models.conversion",
    "training.baselines": "training.models.baselines",
    "training.bgnbd": "training.models.bgnbd",
    "training.candidates": "features.candidates",
    "training.datasets": "training.models.datasets",
    "training.tuning": "training.models.tuning",
    "training.metrics": "training.models.metrics",
    "training.fallback": "training.models.fallback",
    "training.propensity": "training.models.propensity",
    "training.modelling": "training.models.modelling",
    "training.truth": "training.models.truth",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:  # the target ran already
        return None


class MovedModules(importlib.abc.MetaPathFinder):
    """Finds each old path in MOVED as the module at its new path (the same module object)."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201, ARG002
        new = MOVED.get(fullname)
        return None if new is None else importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Put the finder on sys.meta_path once."""
    if not any(isinstance(f, MovedModules) for f in sys.meta_path):
        sys.meta_path.append(MovedModules())
