"""Labelled snapshots for training: observation dates, horizon labels, censoring.

An observation date ``t`` is a Sunday (the end of a timeline week). Dates run back from the last
Sunday on or before ``as_of`` every ``labels.step_weeks`` weeks. For each date, every account alive
at ``t`` (created on or before ``t``, not churned by the end of ``t``) gives one snapshot with
``label = 1`` when it churned in ``(t, t + horizon]``.

- Snapshots whose horizon runs past the end of the data (``as_of``) are censored and left out,
  unless the churn already happened inside the data.
- Unavoidable churn (``avoidable`` false, or a reason in ``labels.unavoidable_reasons``) is handled
  by ``labels.unavoidable``: ``exclude`` drops those positive snapshots (default: the model should
  learn what a CSM can act on), ``negative`` labels them 0, ``positive`` labels them 1.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from ..config import LabelsConfig
from .contract import Tables, cutoff


def last_sunday(d: date) -> date:
    """The last Sunday on or before ``d``."""
    return d - timedelta(days=(d.weekday() + 1) % 7)


def observation_dates(first: date, as_of: date, step_weeks: int) -> list[date]:
    """Sundays from the last one on or before ``as_of`` back to ``first``, ``step_weeks`` apart."""
    t = last_sunday(as_of)
    out = []
    while t >= first:
        out.append(t)
        t -= timedelta(weeks=step_weeks)
    return sorted(out)


def unavoidable_mask(churn: pd.DataFrame, labels: LabelsConfig) -> pd.Series:
    """True for churn events that a CSM could not have prevented."""
    mask = pd.Series(False, index=churn.index)
    if "avoidable" in churn.columns:
        mask |= churn["avoidable"].astype("boolean").eq(False).fillna(False).astype(bool)
    if "reason" in churn.columns:
        reasons = {r.lower() for r in labels.unavoidable_reasons}
        mask |= (
            churn["reason"]
            .astype("string")
            .str.lower()
            .str.strip()
            .isin(reasons)
            .fillna(False)
            .astype(bool)
        )
    return mask


def alive_accounts(tables: Tables) -> pd.DataFrame:
    """Accounts created by ``tables.as_of`` and not churned by the end of that day."""
    acc = tables.accounts
    churn = tables.get("churn_events")
    if churn is None or churn.empty:
        return acc
    gone = churn.loc[churn["churned_at"] < cutoff(tables.as_of), "account_id"]
    return acc.loc[~acc["account_id"].isin(gone)]


def default_dates(tables: Tables) -> list[date]:
    """The observation dates :func:`build_snapshots` (and so training) uses by default: every
    ``labels.step_weeks`` weeks back from the data's end, from ``labels.min_tenure_weeks`` after
    the first account was created."""
    labels = tables.config.labels
    first = tables.accounts["created_at"].min()
    first_d = first.date() if not pd.isna(first) else tables.as_of
    return observation_dates(
        first_d + timedelta(weeks=labels.min_tenure_weeks), tables.as_of, labels.step_weeks
    )


def build_snapshots(tables: Tables, dates: list[date] | None = None) -> pd.DataFrame:
    """Labelled ``(account_id, as_of)`` snapshots.

    Args:
        tables: validated contract tables (their ``as_of`` is the end of the data).
        dates: observation dates; default every ``step_weeks`` weeks up to the data's end.

    Returns:
        ``account_id, as_of, label, churned_at, unavoidable`` (one row per account and date).
    """
    labels = tables.config.labels
    end = tables.as_of
    acc = tables.accounts[["account_id", "created_at"]]
    if dates is None:
        dates = default_dates(tables)
    churn = tables.get("churn_events")
    churned_at = pd.Series(pd.NaT, index=acc.index, dtype="datetime64[us]")
    unavoidable = pd.Series(False, index=acc.index)
    if churn is not None and len(churn):
        by_acc = churn.set_index("account_id")
        churned_at = acc["account_id"].map(by_acc["churned_at"]).astype("datetime64[us]")
        unav = unavoidable_mask(churn, labels)
        unavoidable = acc["account_id"].map(pd.Series(unav.to_numpy(), index=churn["account_id"]))
        unavoidable = unavoidable.fillna(False).astype(bool)

    horizon = pd.Timedelta(weeks=labels.horizon_weeks)
    data_end = cutoff(end)
    parts = []
    for t in dates:
        start = cutoff(t)
        alive = (acc["created_at"] < start) & (churned_at.isna() | (churned_at >= start))
        in_horizon = (churned_at >= start) & (churned_at < start + horizon)
        censored = (start + horizon > data_end) & ~in_horizon.fillna(False)
        keep = alive & ~censored
        label = in_horizon.fillna(False).astype(int)
        unav = unavoidable & (label == 1)
        if labels.unavoidable == "exclude":
            keep &= ~unav
        elif labels.unavoidable == "negative":
            label = label.where(~unav, 0)
        parts.append(
            pd.DataFrame(
                {
                    "account_id": acc["account_id"][keep].to_numpy(),
                    "as_of": np.datetime64(t, "us"),
                    "label": label[keep].to_numpy(),
                    "churned_at": churned_at[keep].to_numpy(),
                    "unavoidable": unavoidable[keep].to_numpy(),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "account_id": pd.Series(dtype=object),
                "as_of": pd.Series(dtype="datetime64[us]"),
                "label": pd.Series(dtype=int),
                "churned_at": pd.Series(dtype="datetime64[us]"),
                "unavoidable": pd.Series(dtype=bool),
            }
        )
    out = pd.concat(parts, ignore_index=True)
    out["as_of"] = out["as_of"].astype("datetime64[us]")
    return out.sort_values(["as_of", "account_id"], kind="stable").reset_index(drop=True)
