"""Cut-offs of the models and the history before them (DATA_CONTRACT.md, Time and labels).

The validation cut-off is `as_of - horizon`, so its labels close before `as_of`;
`time.training_cutoffs` further cut-offs step back one horizon each; scoring happens at
`as_of`. `history` cuts every table to rows strictly before a date.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.labels import training_cutoffs
from features.timeline import TIME_COLUMNS, window
from portrait.errors import NotEnoughData


def stamp(value: pd.Timestamp | str) -> pd.Timestamp:
    """A cut-off as a nanosecond timestamp (the unit validated tables use)."""
    return pd.Timestamp(value).as_unit("ns")


@dataclass(frozen=True)
class ModelCutoffs:
    """Training cut-offs (oldest first), the validation cut-off and the scoring time."""

    training: tuple[pd.Timestamp, ...]
    validation: pd.Timestamp
    scoring: pd.Timestamp
    wanted: int = (
        0  # training cut-offs the settings asked for (more than `training` when history is short)
    )

    @property
    def note(self) -> str:
        """Why fewer training cut-offs than asked were used (empty when all fit)."""
        if len(self.training) >= self.wanted:
            return ""
        return (
            f"{len(self.training)} of {self.wanted} training cut-offs fit the history "
            f"(time.training_cutoffs); the earlier ones fall before the first row"
        )

    @property
    def labelled(self) -> tuple[pd.Timestamp, ...]:
        return (*self.training, self.validation)


def model_cutoffs(
    as_of: pd.Timestamp, *, horizon_days: int, n_training: int, start: pd.Timestamp | None = None
) -> ModelCutoffs:
    """`n_training` training cut-offs and the validation cut-off `as_of - horizon`.

    With `start` (the first row of the history) only cut-offs after it are kept; NotEnoughData
    when the validation cut-off or every training cut-off falls at or before it.
    """
    cuts = [stamp(c) for c in training_cutoffs(as_of, horizon_days=horizon_days, n=n_training + 1)]
    training, validation = tuple(cuts[:-1]), cuts[-1]
    if start is not None:
        need = f"as_of - {n_training + 1} x {horizon_days} days for all of them"
        if validation <= start:
            raise NotEnoughData(
                f"the history starts {start.date()}, not before the validation cut-off "
                f"{validation.date()} (as_of - {horizon_days} days): at least two horizons of "
                f"history are needed ({need})"
            )
        training = tuple(c for c in training if c > start)
        if not training:
            raise NotEnoughData(
                f"the history starts {start.date()}: no training cut-off fits between it and the "
                f"validation cut-off {validation.date()} (the first needs history before "
                f"{(validation - pd.Timedelta(days=horizon_days)).date()}; {need})"
            )
    return ModelCutoffs(training, validation, stamp(as_of), wanted=n_training)


def history_start(tables: dict[str, pd.DataFrame]) -> pd.Timestamp | None:
    """The first transaction or event: cut-offs before it would see no behaviour at all."""
    firsts = [
        tables[name]["ts"].min() for name in ("transactions", "events")
        if name in tables and len(tables[name])
    ]  # fmt: skip
    return stamp(min(firsts)) if firsts else None


def history(tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every table cut to rows strictly before `as_of` (products have no time and are kept)."""
    as_of = stamp(as_of)
    out = {}
    for name, frame in tables.items():
        column = TIME_COLUMNS.get(name)
        # a table in time order is sliced (no copy of its rows); an already cut one passes as is
        out[name] = frame if column is None else _before(frame, column, as_of)
    return out


def _before(frame: pd.DataFrame, column: str, as_of: pd.Timestamp) -> pd.DataFrame:
    at = window(frame[column], None, as_of)
    if at is not None:
        return frame if at.stop == len(frame) else frame.iloc[at]
    late = frame[column] >= as_of
    return frame.loc[~late] if late.any() else frame
