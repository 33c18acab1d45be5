"""Time-ordered train / validation / test windows with a purge gap of one horizon.

Only observation dates whose horizon ends inside the data are used: later dates would keep only
the accounts that already churned. The test window is the last ``test_weeks`` of those dates; the
validation window ends one horizon before the test window starts (its labels cannot overlap the
test dates), and training ends one horizon before validation starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from ..errors import ChurnlensError


@dataclass(frozen=True)
class Windows:
    """Date bounds (inclusive) of the three windows."""

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    valid_start: pd.Timestamp
    valid_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def to_dict(self) -> dict[str, str]:
        """ISO dates, for run records."""
        return {k: f"{v:%Y-%m-%d}" for k, v in self.__dict__.items()}


def labelled_dates(dates: pd.Series, data_end: date, horizon_weeks: int) -> pd.Series:
    """The dates whose whole horizon lies inside the data: the only ones with a known outcome."""
    h = pd.Timedelta(weeks=horizon_weeks)
    return dates[dates + h <= pd.Timestamp(data_end) + pd.Timedelta(days=1)]


def time_windows(
    dates: pd.Series, data_end: date, horizon_weeks: int, test_weeks: int, valid_weeks: int
) -> Windows:
    """Choose the windows from the snapshot dates; raise when the data is too short."""
    h = pd.Timedelta(weeks=horizon_weeks)
    complete = labelled_dates(dates, data_end, horizon_weeks)
    if complete.empty:
        raise ChurnlensError(
            f"no observation date has a complete {horizon_weeks}-week horizon before the data "
            f"ends ({data_end}); more history is needed"
        )
    test_end = complete.max()
    test_start = test_end - pd.Timedelta(weeks=test_weeks - 1)
    valid_end = test_start - h
    valid_start = valid_end - pd.Timedelta(weeks=valid_weeks - 1)
    train_end = valid_start - h
    train_start = complete.min()
    if train_end < train_start:
        span = (test_end - train_start).days // 7
        raise ChurnlensError(
            f"not enough history for train / validation / test windows: {span} weeks of "
            f"observation dates, but test ({test_weeks}w) + validation ({valid_weeks}w) + two "
            f"purge gaps of one horizon ({horizon_weeks}w) need more; shorten split.* or "
            "labels.horizon_weeks in the config"
        )
    return Windows(train_start, train_end, valid_start, valid_end, test_start, test_end)


def assign(dates: pd.Series, w: Windows) -> pd.Series:
    """'train', 'valid', 'test' or '' (purged / incomplete) for each snapshot date."""
    out = pd.Series("", index=dates.index, dtype=object)
    out[(dates >= w.train_start) & (dates <= w.train_end)] = "train"
    out[(dates >= w.valid_start) & (dates <= w.valid_end)] = "valid"
    out[(dates >= w.test_start) & (dates <= w.test_end)] = "test"
    return out
