"""Window aggregates of the weekly timeline, as of each requested date: the indicators' inputs.

For a request ``(account_id, as_of)`` only the account's timeline rows for weeks that ended on or
before ``as_of`` are used (weeks run Monday-Sunday), so an input never sees data after ``as_of``.
Windows count back from the last complete week: ``_4w`` is the last 4 weeks, ``_prior_8w`` the 8
before those, ``_13w`` and ``_26w`` the last 13 and 26. A window over a column the timeline does not
carry (NaN: source unknown) is NaN, never zero. Everything is vectorised over all requests at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import TIMELINE_COLUMNS

WINDOWS: dict[str, tuple[int, int]] = {
    "4w": (0, 4),
    "prior_8w": (4, 12),
    "13w": (0, 13),
    "26w": (0, 26),
}
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


class _Windows:
    """Cumulative sums over the sorted timeline, for O(1) window sums per request."""

    def __init__(self, tl: pd.DataFrame, pos: np.ndarray, start: np.ndarray) -> None:
        self.tl = tl
        self.pos = pos  # row of the last complete week per request (-1: none)
        self.start = start  # first row of the account per request
        self.valid = pos >= 0

    def _bounds(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        b = np.maximum(self.pos - lo, self.start - 1)
        a = np.maximum(self.pos - hi, self.start - 1)
        return a, b

    def sum(self, values: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Sum of ``values`` over rows (pos-hi, pos-lo]; NaN when no non-NaN row is in range."""
        known = ~np.isnan(values)
        c = np.concatenate([[0.0], np.cumsum(np.where(known, values, 0.0))])
        k = np.concatenate([[0], np.cumsum(known)])
        a, b = self._bounds(lo, hi)
        a1, b1 = a + 1, b + 1
        total = c[b1] - c[a1]
        n = k[b1] - k[a1]
        return np.where(self.valid & (n > 0), total, np.nan)

    def weeks(self, lo: int, hi: int) -> np.ndarray:
        """Number of timeline weeks in the window."""
        a, b = self._bounds(lo, hi)
        return np.where(self.valid, b - a, 0).astype(float)

    def at(self, values: np.ndarray, back: int = 0) -> np.ndarray:
        """Value ``back`` weeks before the last complete week (clipped at the account's start)."""
        idx = np.maximum(self.pos - back, self.start)
        out = values[np.clip(idx, 0, max(len(values) - 1, 0))] if len(values) else idx * np.nan
        return np.where(self.valid, out, np.nan)

    def last_positive(self, values: np.ndarray) -> np.ndarray:
        """Row of the last week at or before pos where ``values`` > 0 (-1: never)."""
        rows = np.arange(len(values))
        marked = np.where(np.nan_to_num(values) > 0, rows, -1)
        latest = np.maximum.accumulate(marked) if len(marked) else marked
        out = latest[np.clip(self.pos, 0, None)] if len(latest) else self.pos * 0 - 1
        return np.where(self.valid & (out >= self.start), out, -1)


def _relative_slope(w: _Windows, y: np.ndarray, k: int) -> np.ndarray:
    """Least-squares slope of ``y`` over the last ``k`` weeks divided by its mean there."""
    x = np.arange(len(y), dtype=float)
    known = ~np.isnan(y)
    yz = np.where(known, y, np.nan)
    n = w.sum(np.where(known, 1.0, np.nan), 0, k)
    sx = w.sum(np.where(known, x, np.nan), 0, k)
    sy = w.sum(yz, 0, k)
    sxy = w.sum(np.where(known, x * np.nan_to_num(y), np.nan), 0, k)
    sxx = w.sum(np.where(known, x * x, np.nan), 0, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
        mean = sy / n
        rel = slope / mean
    rel = np.where((n >= 4) & (mean > 0), rel, np.nan)
    return np.where((n >= 4) & (sy == 0), 0.0, rel)


def window_inputs(
    timeline: pd.DataFrame, profiles: pd.DataFrame, requests: pd.DataFrame
) -> pd.DataFrame:
    """Inputs for every request: window sums, last-seen weeks, values now and before, profile.

    Args:
        timeline: ``account_id, week_start`` + timeline columns (any order, any subset of
            accounts; missing columns are unknown).
        profiles: one row per account: ``account_id, created_at`` and optionally ``renewal_date``,
            ``arr``, ``seats``.
        requests: ``account_id, as_of`` (from :func:`request_frame`).

    Returns:
        One row per request, in request order, with ``account_id, as_of`` and the inputs.
    """
    tl = timeline.copy()
    for col in TIMELINE_COLUMNS:
        tl[col] = pd.to_numeric(tl[col], errors="coerce").astype("float64") if col in tl else np.nan
    tl["account_id"] = tl["account_id"].astype(str)
    tl["week_start"] = pd.to_datetime(tl["week_start"]).astype("datetime64[us]")
    tl = tl.sort_values(["account_id", "week_start"], kind="stable").reset_index(drop=True)
    rows = np.arange(len(tl))
    tl["_row"] = rows
    tl["_start"] = tl.groupby("account_id", sort=False)["_row"].transform("min")

    req = requests[["account_id", "as_of"]].copy().reset_index(drop=True)
    req["_order"] = np.arange(len(req))
    req["_week"] = last_complete_week(req["as_of"])
    req = req.sort_values("_week", kind="stable")
    right = tl[["account_id", "week_start", "_row", "_start"]].sort_values(
        "week_start", kind="stable"
    )
    m = pd.merge_asof(
        req, right, left_on="_week", right_on="week_start", by="account_id", direction="backward"
    )
    m = m.sort_values("_order").reset_index(drop=True)
    pos = m["_row"].fillna(-1).to_numpy(dtype=np.int64)
    start = m["_start"].fillna(0).to_numpy(dtype=np.int64)
    w = _Windows(tl, pos, start)
    out: dict[str, np.ndarray] = {}

    for col in TIMELINE_COLUMNS:
        v = tl[col].to_numpy(dtype=float)
        for name, (lo, hi) in WINDOWS.items():
            out[f"sum_{col}_{name}"] = w.sum(v, lo, hi)
    for name, (lo, hi) in WINDOWS.items():
        out[f"weeks_{name}"] = w.weeks(lo, hi)
    out["weeks_observed"] = np.where(w.valid, pos - start + 1, 0).astype(float)

    # last week each signal was seen (weeks ago, counted from the last complete week)
    activity = np.nansum(
        np.column_stack(
            [
                np.nan_to_num(tl[c].to_numpy(dtype=float))
                for c in ("events", "tickets_opened", "surveys_answered", "touches_inbound")
            ]
        )
        if len(tl)
        else np.zeros((0, 4)),
        axis=1,
    )
    signals = {c: tl[c].to_numpy(dtype=float) for c in _LAST_SEEN}
    signals["any_activity"] = np.where(activity > 0, 1.0, 0.0)
    signals["core_feature_events"] = tl["core_feature_events"].to_numpy(dtype=float)
    for name, v in signals.items():
        last = w.last_positive(v)
        out[f"since_{name}"] = np.where(last >= 0, pos - last, np.nan)
    out["active_weeks_to_date"] = w.sum(signals["any_activity"], 0, 10**9)

    # first week of core-feature use (time to value), seen only if it happened by as_of
    core = np.nan_to_num(tl["core_feature_events"].to_numpy(dtype=float))
    first_core = (
        pd.Series(np.where(core > 0, rows, np.iinfo(np.int64).max))
        .groupby(tl["account_id"].to_numpy())
        .transform("min")
        .to_numpy()
    )
    fc = first_core[np.clip(pos, 0, None)] if len(tl) else pos
    reached = w.valid & (fc <= pos)
    out["weeks_to_first_core"] = np.where(reached, fc - start, np.nan)
    out["core_weeks_to_date"] = w.sum(np.where(core > 0, 1.0, 0.0), 0, 10**9)
    out["usage_known"] = np.where(
        w.valid,
        ~np.isnan(tl["events"].to_numpy(dtype=float)[np.clip(pos, 0, None)]) if len(tl) else False,
        False,
    ).astype(float)

    # NPS: the last answer and the one before it
    nps_n = tl["nps_n"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        nps_row = np.where(nps_n > 0, tl["nps_sum"].to_numpy(dtype=float) / nps_n, np.nan)
    last = w.last_positive(nps_n)
    out["last_nps"] = np.where(last >= 0, nps_row[np.clip(last, 0, None)] if len(tl) else 0, np.nan)
    marked = np.where(np.nan_to_num(nps_n) > 0, rows, -1)
    latest = np.maximum.accumulate(marked) if len(marked) else marked
    prev_idx = np.where(
        last - 1 >= start, latest[np.clip(last - 1, 0, None)] if len(tl) else -1, -1
    )
    prev_idx = np.where((last >= 0) & (prev_idx >= start), prev_idx, -1)
    out["previous_nps"] = np.where(
        prev_idx >= 0, nps_row[np.clip(prev_idx, 0, None)] if len(tl) else 0, np.nan
    )

    for col in ("seats", "arr", "tickets_open"):
        v = tl[col].to_numpy(dtype=float)
        out[f"now_{col}"] = w.at(v)
        out[f"ago13_{col}"] = w.at(v, 13)
    out["slope_logins_12w"] = _relative_slope(w, tl["logins"].to_numpy(dtype=float), 12)
    out["has_timeline"] = w.valid.astype(float)

    res = pd.DataFrame(out)
    res.insert(0, "as_of", m["as_of"].to_numpy())
    res.insert(0, "account_id", m["account_id"].astype(str).to_numpy())
    res["account_id"] = res["account_id"].astype(str)
    return _with_profile(res, profiles)


def _with_profile(res: pd.DataFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    prof = profiles.drop_duplicates("account_id").set_index(
        profiles.drop_duplicates("account_id")["account_id"].astype(str)
    )
    created = pd.to_datetime(res["account_id"].map(prof["created_at"])).astype("datetime64[us]")
    age_days = (res["as_of"] - created.dt.normalize()).dt.days.astype(float)
    res["tenure_days"] = age_days
    if "renewal_date" in prof.columns:
        renewal = pd.to_datetime(res["account_id"].map(prof["renewal_date"]))
        days = (renewal.astype("datetime64[us]").dt.normalize() - res["as_of"]).dt.days
        res["days_to_renewal_date"] = days.astype(float)
    else:
        res["days_to_renewal_date"] = np.nan
    for col in ("arr", "seats"):
        if col in prof.columns:
            static = pd.to_numeric(res["account_id"].map(prof[col]), errors="coerce")
            res[f"profile_{col}"] = static.astype(float)
        else:
            res[f"profile_{col}"] = np.nan
    return res
