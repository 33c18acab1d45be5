"""Window aggregates of the weekly timeline, as of each requested date: the indicators' inputs.

For a request ``(account_id, as_of)`` only the account's timeline rows for weeks that ended on or
before ``as_of`` are used (weeks run Monday-Sunday), so an input never sees data after ``as_of``.
Windows count back from the last complete week: ``_4w`` is the last 4 weeks, ``_prior_8w`` the 8
before those, ``_13w`` and ``_26w`` the last 13 and 26. A window over a column the timeline does not
carry (NaN: source unknown) is NaN, never zero. Everything is vectorised over all requests at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..contract import normalise_billing_period
from ..schema import TIMELINE_COLUMNS

_DAY_US = 86_400_000_000
WINDOWS: dict[str, tuple[int, int]] = {
    "4w": (0, 4),
    "prior_8w": (4, 12),
    "13w": (0, 13),
    "26w": (0, 26),
}
_PEAK = ("logins", "core_feature_events", "active_users")
_LAST_SEEN = (
    "logins",
    "events",
    "tickets_opened",
    "surveys_answered",
    "touches",
    "touches_inbound",
    "nps_n",
)


def request_frame(
    account_ids: pd.Series | list[str], as_of: pd.Series | list[object]
) -> pd.DataFrame:
    """A requests frame ``account_id, as_of`` (``as_of`` normalised to midnight timestamps)."""
    return pd.DataFrame(
        {
            "account_id": pd.Series(list(account_ids), dtype=object).astype(str),
            "as_of": pd.to_datetime(pd.Series(list(as_of))).dt.normalize().astype("datetime64[us]"),
        }
    )


def last_complete_week(as_of: pd.Series) -> pd.Series:
    """Monday of the last week (Mon-Sun) ending on or before each date."""
    back = (as_of.dt.day_of_week + 1) % 7 + 6
    return (as_of - pd.to_timedelta(back, unit="D")).astype("datetime64[us]")


def _days(values: np.ndarray, *, ceil: bool = False) -> npt.NDArray[np.int64]:
    """Whole days since the epoch of ``datetime64`` values (floored, or ceiled)."""
    us = np.asarray(values).astype("datetime64[us]").astype(np.int64)
    if ceil:
        return -((-us) // _DAY_US)
    return us // _DAY_US


def _last_complete_week_day(as_of_day: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Day number of the Monday of the last week ending on or before each day."""
    dow = (as_of_day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return as_of_day - ((dow + 1) % 7 + 6)


class _Windows:
    """Cumulative sums over the sorted timeline, for O(1) window sums per request."""

    def __init__(self, pos: np.ndarray, start: np.ndarray) -> None:
        self.pos = pos  # row of the last complete week per request (-1: none)
        self.start = start  # first row of the account per request
        self.valid = pos >= 0

    def bounds(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        b = np.maximum(self.pos - lo, self.start - 1)
        a = np.maximum(self.pos - hi, self.start - 1)
        return a, b

    @staticmethod
    def prefix(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prefix sums of ``values`` (NaN as 0) and of its known count, for :meth:`sum`."""
        known = ~np.isnan(values)
        c = np.concatenate([[0.0], np.cumsum(np.where(known, values, 0.0))])
        k = np.concatenate([[0], np.cumsum(known)])
        return c, k

    def sum(
        self,
        values: np.ndarray,
        lo: int,
        hi: int,
        prefix: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Sum of ``values`` over rows (pos-hi, pos-lo]; NaN when no non-NaN row is in range.

        ``prefix`` is :meth:`prefix` of ``values`` when the caller has it (several windows).
        """
        c, k = prefix if prefix is not None else self.prefix(values)
        a, b = self.bounds(lo, hi)
        a1, b1 = a + 1, b + 1
        total = c[b1] - c[a1]
        n = k[b1] - k[a1]
        return np.where(self.valid & (n > 0), total, np.nan)

    def weeks(self, lo: int, hi: int) -> np.ndarray:
        """Number of timeline weeks in the window."""
        a, b = self.bounds(lo, hi)
        return np.where(self.valid, b - a, 0).astype(float)

    def at(self, values: np.ndarray, back: int = 0) -> np.ndarray:
        """Value ``back`` weeks before the last complete week (clipped at the account's start)."""
        idx = np.maximum(self.pos - back, self.start)
        out = values[np.clip(idx, 0, max(len(values) - 1, 0))] if len(values) else idx * np.nan
        return np.where(self.valid, out, np.nan)

    def last_positive(self, values: np.ndarray) -> np.ndarray:
        """Row of the last week at or before pos where ``values`` > 0 (-1: never)."""
        rows = np.arange(len(values))
        marked = np.where(values > 0, rows, -1)  # NaN > 0 is False
        latest = np.maximum.accumulate(marked) if len(marked) else marked
        out = latest[np.clip(self.pos, 0, None)] if len(latest) else self.pos * 0 - 1
        return np.where(self.valid & (out >= self.start), out, -1)


def _running_peak(
    values: np.ndarray, codes: np.ndarray, row_start: np.ndarray, w: _Windows, k: int
) -> np.ndarray:
    """Highest ``k``-week sum of ``values`` in the account's history up to each request's week.

    Windows that start before the account's first week are partial (lower); NaN weeks count 0.
    NaN when the column is unknown for all of the account's weeks so far.
    """
    n_rows = len(values)
    if not n_rows:
        return np.full(len(w.pos), np.nan)
    known = ~np.isnan(values)
    c = np.concatenate([[0.0], np.cumsum(np.where(known, values, 0.0))])
    rows = np.arange(n_rows)
    rolling = c[rows + 1] - c[np.maximum(rows + 1 - k, row_start)]
    rolling = np.where(known, rolling, 0.0)
    # running max within each account: offset accounts so one never sees the one before it
    big = float(np.max(rolling)) + 1.0
    offset = codes.astype(np.float64) * big
    peak = np.maximum.accumulate(rolling + offset) - offset
    n_known = w.sum(np.where(known, 1.0, np.nan), 0, 10**9)
    at = np.clip(w.pos, 0, None)
    return np.where(w.valid & (n_known > 0), peak[at], np.nan)


def _relative_slopes(
    w: _Windows, y: np.ndarray, x: np.ndarray, ks: tuple[int, ...]
) -> list[np.ndarray]:
    """Least-squares slope of ``y`` over the last ``k`` weeks divided by its mean there, for
    each ``k`` in ``ks`` (the prefix sums are shared between them).

    ``x`` is the week's index within its account (small numbers keep the sums exact).
    """
    known = ~np.isnan(y)
    parts = [np.where(known, v, np.nan) for v in (np.ones_like(y), x, y, x * y, x * x)]
    prefixes = [w.prefix(v) for v in parts]
    out = []
    for k in ks:
        n, sx, sy, sxy, sxx = (w.sum(v, 0, k, pre) for v, pre in zip(parts, prefixes, strict=True))
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
            mean = sy / n
            rel = slope / mean
        rel = np.where((n >= 4) & (mean > 0), rel, np.nan)
        out.append(np.where((n >= 4) & (sy == 0), 0.0, rel))
    return out


@dataclass(frozen=True)
class WindowInputs:
    """The indicators' inputs for each request, as plain arrays in request order."""

    account_id: npt.NDArray[np.object_]
    as_of: npt.NDArray[np.datetime64]
    values: dict[str, npt.NDArray[np.float64]]

    def __len__(self) -> int:
        return len(self.account_id)

    def frame(self) -> pd.DataFrame:
        """The inputs as a frame: ``account_id, as_of`` then one column per input."""
        return pd.DataFrame(
            {
                "account_id": pd.Series(self.account_id, dtype=str),
                "as_of": self.as_of,
                **self.values,
            }
        )


def _float_column(frame: pd.DataFrame, col: str) -> npt.NDArray[np.float64]:
    """A column as float64 (non-numbers are unknown); all NaN when the frame lacks it."""
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[col]
    if not (pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values)):
        values = pd.to_numeric(values, errors="coerce")
    return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def window_arrays(
    timeline: pd.DataFrame,
    profiles: pd.DataFrame,
    account_ids: npt.NDArray[np.object_],
    as_of: npt.NDArray[np.datetime64],
    extra: Sequence[str] = (),
) -> WindowInputs:
    """Inputs for every request ``(account_ids[i], as_of[i])``: see :func:`window_inputs`.

    ``as_of`` holds midnight ``datetime64[us]`` dates. ``extra`` names more count columns
    (tracked event groups) whose window sums are wanted; one the timeline lacks is unknown.
    """
    columns = (*TIMELINE_COLUMNS, *extra)
    # The timeline sorted by account, then week; every account's rows are contiguous.
    codes, uniques = pd.factorize(timeline["account_id"].astype(str), sort=True)
    week_day = _days(pd.to_datetime(timeline["week_start"]).to_numpy(), ceil=True)
    n_rows = len(codes)
    step = np.diff(codes)
    # A timeline from stage 1 is in key order already: then no reordering (a copy per column).
    order: np.ndarray | None = None
    if not np.all((step > 0) | ((step == 0) & (np.diff(week_day) >= 0))):
        order = np.lexsort((week_day, codes))
        codes, week_day = codes[order], week_day[order]
    # Every column in one (rows x columns) matrix held column-major: ``cols`` are its columns
    # (contiguous views) and the window sums below take prefix sums of all of them at once.
    matrix = np.empty((n_rows, len(columns)), order="F")
    for j, c in enumerate(columns):
        values = _float_column(timeline, c)
        matrix[:, j] = values if order is None else values[order]
    cols = {c: matrix[:, j] for j, c in enumerate(columns)}
    rows = np.arange(n_rows)
    seg_first = np.searchsorted(codes, np.arange(len(uniques)), side="left")
    row_start = seg_first[codes] if n_rows else rows

    # Each request's last complete week -> the account's last timeline row at or before it.
    req_code = pd.Index(uniques).get_indexer(pd.Index(account_ids.astype(str)))
    req_week = _last_complete_week_day(_days(as_of))
    if n_rows:
        lo_day = int(week_day.min())
        span = int(week_day.max()) - lo_day + 2
        keys = codes.astype(np.int64) * span + (week_day - lo_day)
        offset = np.clip(req_week - lo_day, -1, span - 1)
        idx = np.searchsorted(keys, np.maximum(req_code, 0) * span + offset, side="right") - 1
        hit = (req_code >= 0) & (idx >= 0)
        hit &= codes[np.clip(idx, 0, None)] == req_code
        pos = np.where(hit, idx, -1)
        start = np.where(req_code >= 0, seg_first[np.maximum(req_code, 0)], 0)
    else:
        pos = np.full(len(account_ids), -1, dtype=np.int64)
        start = np.zeros(len(account_ids), dtype=np.int64)
    pos, start = pos.astype(np.int64), start.astype(np.int64)
    w = _Windows(pos, start)
    out: dict[str, np.ndarray] = {}

    # Window sums of every column at once: prefix sums of the matrix, column-major so each
    # column's running sum walks contiguous memory.
    if n_rows:
        known = ~np.isnan(matrix)
        csum = np.zeros((n_rows + 1, matrix.shape[1]), order="F")
        np.copyto(csum[1:], matrix, where=known)  # unknown stays 0, with no temporary matrix
        np.cumsum(csum[1:], 0, out=csum[1:])
        ksum = np.zeros((n_rows + 1, matrix.shape[1]), dtype=np.int32, order="F")
        np.cumsum(known, 0, dtype=np.int32, out=ksum[1:])
    for name, (lo, hi) in WINDOWS.items():
        if not n_rows:
            sums = np.full((len(pos), len(columns)), np.nan)
        else:
            a, b = w.bounds(lo, hi)
            a1, b1 = a + 1, b + 1
            n = ksum[b1] - ksum[a1]
            sums = np.where(w.valid[:, None] & (n > 0), csum[b1] - csum[a1], np.nan)
        for j, col in enumerate(columns):
            out[f"sum_{col}_{name}"] = sums[:, j]
    for name, (lo, hi) in WINDOWS.items():
        out[f"weeks_{name}"] = w.weeks(lo, hi)
    out["weeks_observed"] = np.where(w.valid, pos - start + 1, 0).astype(float)

    # last week each signal was seen (weeks ago, counted from the last complete week)
    activity = np.zeros(n_rows)
    for c in ("events", "tickets_opened", "surveys_answered", "touches_inbound"):
        activity += np.where(np.isnan(cols[c]), 0.0, cols[c])
    signals = {c: cols[c] for c in _LAST_SEEN}
    signals["any_activity"] = np.where(activity > 0, 1.0, 0.0)
    signals["core_feature_events"] = cols["core_feature_events"]
    for name, v in signals.items():
        last = w.last_positive(v)
        out[f"since_{name}"] = np.where(last >= 0, pos - last, np.nan)
    out["active_weeks_to_date"] = w.sum(signals["any_activity"], 0, 10**9)

    # first week of core-feature use (time to value), seen only if it happened by as_of
    core = np.where(np.isnan(cols["core_feature_events"]), 0.0, cols["core_feature_events"])
    if n_rows:
        marked = np.where(core > 0, rows, np.iinfo(np.int64).max)
        first_core_of = np.minimum.reduceat(marked, seg_first)
        fc = first_core_of[np.maximum(req_code, 0)]
    else:
        fc = np.full(len(pos), np.iinfo(np.int64).max)
    reached = w.valid & (fc <= pos)
    out["weeks_to_first_core"] = np.where(reached, fc - start, np.nan)
    out["core_weeks_to_date"] = w.sum(np.where(core > 0, 1.0, 0.0), 0, 10**9)
    out["usage_known"] = np.where(
        w.valid,
        ~np.isnan(cols["events"][np.clip(pos, 0, None)]) if n_rows else False,
        False,
    ).astype(float)

    # NPS: the last answer and the one before it
    nps_n = cols["nps_n"]
    with np.errstate(invalid="ignore", divide="ignore"):
        nps_row = np.where(nps_n > 0, cols["nps_sum"] / nps_n, np.nan)
    last = w.last_positive(nps_n)
    out["last_nps"] = np.where(last >= 0, nps_row[np.clip(last, 0, None)] if n_rows else 0, np.nan)
    marked_nps = np.where(nps_n > 0, rows, -1)
    latest = np.maximum.accumulate(marked_nps) if n_rows else marked_nps
    prev_idx = np.where(last - 1 >= start, latest[np.clip(last - 1, 0, None)] if n_rows else -1, -1)
    prev_idx = np.where((last >= 0) & (prev_idx >= start), prev_idx, -1)
    out["previous_nps"] = np.where(
        prev_idx >= 0, nps_row[np.clip(prev_idx, 0, None)] if n_rows else 0, np.nan
    )

    for col in ("seats", "arr", "tickets_open"):
        out[f"now_{col}"] = w.at(cols[col])
        out[f"ago13_{col}"] = w.at(cols[col], 13)
    for col in _PEAK:
        out[f"peak_{col}_4w"] = _running_peak(cols[col], codes, row_start, w, 4)
    local_week = (rows - row_start).astype(float)
    out["slope_logins_12w"], out["slope_logins_26w"] = _relative_slopes(
        w, cols["logins"], local_week, (12, 26)
    )
    (out["slope_core_feature_events_12w"],) = _relative_slopes(
        w, cols["core_feature_events"], local_week, (12,)
    )
    out["has_timeline"] = w.valid.astype(float)
    out |= _profile_inputs(profiles, account_ids, as_of)
    return WindowInputs(account_ids, as_of, out)


def _add_months(day: npt.NDArray[np.int64], months: npt.NDArray[np.int64]) -> np.ndarray:
    """Day numbers plus whole calendar months, clipped to the target month's last day."""
    d = day.astype("datetime64[D]")
    month0 = d.astype("datetime64[M]")
    dom = (d - month0.astype("datetime64[D]")).astype(np.int64)
    target = month0 + months
    first = target.astype("datetime64[D]")
    length = ((target + 1).astype("datetime64[D]") - first).astype(np.int64)
    return np.asarray((first + np.minimum(dom, length - 1)).astype(np.int64))


def _days_to_next_monthiversary(
    created_day: npt.NDArray[np.float64], as_of_day: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Days from each ``as_of`` to the next monthly anniversary of ``created_at`` after it."""
    known = ~np.isnan(created_day)
    created = np.where(known, created_day, 0).astype(np.int64)

    def month(day: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.asarray(day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64))

    months = np.maximum(month(as_of_day) - month(created), 0)
    nxt = _add_months(created, months)
    nxt = np.where(nxt <= as_of_day, _add_months(created, months + 1), nxt)
    return np.where(known, (nxt - as_of_day).astype(float), np.nan)


@functools.lru_cache(maxsize=256)
def _monthly_flag(value: object) -> float:
    """1.0 monthly, 0.0 annual, NaN unknown: ``normalise_billing_period`` for one value (cached;
    a Series of string operations costs more than the rest of one account's indicators)."""
    if not isinstance(value, str):
        return math.nan
    term = normalise_billing_period(pd.Series([value])).iloc[0]
    if pd.isna(term):  # an unknown spelling is <NA>: comparing it would raise
        return math.nan
    return 1.0 if term == "monthly" else 0.0 if term == "annual" else math.nan


def _profile_inputs(
    profiles: pd.DataFrame,
    account_ids: npt.NDArray[np.object_],
    as_of: npt.NDArray[np.datetime64],
) -> dict[str, npt.NDArray[np.float64]]:
    """Tenure, renewal calendar, billing term and the static ARR / seats of each account."""
    prof = profiles.drop_duplicates("account_id")
    at = pd.Index(prof["account_id"].astype(str)).get_indexer(pd.Index(account_ids.astype(str)))
    found = at >= 0
    take = np.maximum(at, 0)
    as_of_day = _days(as_of)

    def day_column(col: str) -> npt.NDArray[np.float64]:
        if col not in prof.columns or not len(prof):
            return np.full(len(at), np.nan)
        stamps = pd.to_datetime(prof[col]).to_numpy()
        us = stamps.astype("datetime64[us]")
        day = np.where(np.isnat(us), np.nan, _days(us).astype(float))
        return np.where(found, day[take], np.nan)

    def number_column(col: str) -> npt.NDArray[np.float64]:
        if col not in prof.columns or not len(prof):
            return np.full(len(at), np.nan)
        return np.where(found, _float_column(prof, col)[take], np.nan)

    def billing_monthly() -> npt.NDArray[np.float64]:
        if "billing_period" not in prof.columns or not len(prof):
            return np.full(len(at), np.nan)
        flag = np.array([_monthly_flag(v) for v in prof["billing_period"].tolist()], dtype=float)
        return np.where(found, flag[take], np.nan)

    created_day = day_column("created_at")
    return {
        "tenure_days": as_of_day - created_day,
        "days_to_renewal_date": day_column("renewal_date") - as_of_day,
        "days_to_monthly_anniversary": _days_to_next_monthiversary(created_day, as_of_day),
        "billing_monthly": billing_monthly(),
        "profile_arr": number_column("arr"),
        "profile_seats": number_column("seats"),
    }


def window_inputs(
    timeline: pd.DataFrame, profiles: pd.DataFrame, requests: pd.DataFrame
) -> pd.DataFrame:
    """Inputs for every request: window sums, last-seen weeks, values now and before, profile.

    Args:
        timeline: ``account_id, week_start`` + timeline columns (any order, any subset of
            accounts; missing columns are unknown).
        profiles: one row per account: ``account_id, created_at`` and optionally ``renewal_date``,
            ``billing_period``, ``arr``, ``seats``.
        requests: ``account_id, as_of`` (from :func:`request_frame`).

    Returns:
        One row per request, in request order, with ``account_id, as_of`` and the inputs.
    """
    return window_arrays(
        timeline,
        profiles,
        requests["account_id"].astype(str).to_numpy(dtype=object),
        requests["as_of"].to_numpy(dtype="datetime64[us]"),
    ).frame()
