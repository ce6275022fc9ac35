"""Which of the firm's own customer columns become features (settings `features.extra_columns_*`)."""

from __future__ import annotations

import pandas as pd

from features.portrait import extra_columns_of
from portrait.errors import SettingsError
from portrait.settings import FeatureSettings


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def select_extra_columns(
    customers: pd.DataFrame, *, settings: FeatureSettings
) -> tuple[pd.DataFrame, list[str]]:
    """The customers table without the extra columns the settings leave out, and the used list.

    Contract columns always stay. A name in include or exclude that is not an extra column of
    the table is an error naming it (a typo would otherwise silently change the features).
    """
    extras = extra_columns_of(customers)
    include, exclude = (
        _names(settings.extra_columns_include),
        _names(settings.extra_columns_exclude),
    )
    for setting, names in (("include", include), ("exclude", exclude)):
        unknown = [n for n in names if n not in extras]
        if unknown:
            raise SettingsError(
                f"features.extra_columns_{setting} names {', '.join(unknown)}, not an extra column "
                f"of the customers table (extra columns: {', '.join(extras) or 'none'})"
            )
    used = [c for c in extras if (not include or c in include) and c not in exclude]
    dropped = [c for c in extras if c not in used]
    return customers.drop(columns=dropped), used
