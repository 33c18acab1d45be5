"""Small NaN-safe arithmetic shared by the indicator modules."""

from __future__ import annotations

import numpy as np
import pandas as pd


def ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """``num / den``, NaN where the denominator is 0 or unknown."""
    den = den.where(den != 0)
    return (num / den).astype("float64")


def change(now: pd.Series, before: pd.Series) -> pd.Series:
    """Relative change ``now / before - 1``; NaN when ``before`` is 0 or unknown."""
    return ratio(now, before) - 1.0


def flag(cond: pd.Series, known: pd.Series) -> pd.Series:
    """1.0 / 0.0 where ``known``, else NaN."""
    return pd.Series(np.where(known, cond.astype(float), np.nan), index=cond.index)
