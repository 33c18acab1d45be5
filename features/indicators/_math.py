"""Small NaN-safe arithmetic on float arrays, shared by the indicator modules.

Indicators take and return ``float64`` NumPy arrays (one entry per request); NaN means unknown.
Plain arrays keep one account's request as cheap as a million-row batch (no per-call pandas cost).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Values = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


def ratio(num: Values, den: Values) -> Values:
    """``num / den``, NaN where the denominator is 0 or unknown."""
    safe = np.where(den == 0, np.nan, den)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(num / safe, dtype=np.float64)


def change(now: Values, before: Values) -> Values:
    """Relative change ``now / before - 1``; NaN when ``before`` is 0 or unknown."""
    return ratio(now, before) - 1.0


def flag(cond: Mask, known: Mask) -> Values:
    """1.0 / 0.0 where ``known``, else NaN."""
    return np.where(known, cond.astype(np.float64), np.nan)


def isknown(x: Values) -> Mask:
    """Where ``x`` is known (not NaN)."""
    return ~np.isnan(x)


def fill(x: Values, other: Values) -> Values:
    """``x`` with its unknowns taken from ``other``."""
    return np.where(np.isnan(x), other, x)


def keep(x: Values, cond: Mask) -> Values:
    """``x`` where ``cond`` holds, NaN elsewhere."""
    return np.where(cond, x, np.nan)


def count_true(*conds: Mask) -> Values:
    """How many of ``conds`` hold, per request."""
    out = np.zeros(np.shape(conds[0]), dtype=np.float64)
    for cond in conds:
        out += cond
    return out
