"""Labels and censoring of training snapshots."""

from __future__ import annotations

import itertools
from datetime import date

import pandas as pd
import pytest

from churnlens.config import config_from_dict
from churnlens.features.snapshots import build_snapshots, observation_dates

from ..conftest import make_tables


def _frames(churns: list[tuple[str, str, str]]) -> dict[str, pd.DataFrame]:
    ids = ["a", "b", "c", "d"]
    return {
        "accounts": pd.DataFrame({"account_id": ids, "created_at": ["2024-01-01"] * 4}),
        "churn_events": pd.DataFrame(churns, columns=["account_id", "churned_at", "reason"]),
    }


def _cfg(**labels):
    return config_from_dict({"labels": {"horizon_weeks": 4, "step_weeks": 2, **labels}})


def test_observation_dates_are_sundays_stepping_back_from_as_of():
    d = observation_dates(date(2024, 1, 1), date(2024, 3, 6), 2)
    assert all(x.weekday() == 6 for x in d)
    assert d[-1] == date(2024, 3, 3) and d[0] >= date(2024, 1, 1)
    assert {(b - a).days for a, b in itertools.pairwise(d)} == {14}


def test_labels_horizon_exclusions_and_censoring():
    frames = _frames([("a", "2024-02-20", "price"), ("b", "2024-01-10", "price")])
    t = make_tables(frames, as_of=date(2024, 3, 31), config=_cfg())
    s = build_snapshots(t)
    a = s[s["account_id"] == "a"].set_index("as_of")["label"]
    # a churned 2024-02-20: positive when the churn is within (t, t+4w]
    assert a[pd.Timestamp("2024-01-21")] == 0  # 2024-02-18 horizon end: before the churn
    assert a[pd.Timestamp("2024-02-04")] == 1
    assert a[pd.Timestamp("2024-02-18")] == 1
    assert pd.Timestamp("2024-03-03") not in a.index  # churned before t: excluded
    # b churned on 2024-01-10: only dates before it
    assert (s.loc[s["account_id"] == "b", "as_of"] < pd.Timestamp("2024-01-10")).all()
    # the horizon of 2024-03-17 runs past the data end (2024-03-31): censored for survivors
    c_dates = set(s.loc[s["account_id"] == "c", "as_of"])
    assert pd.Timestamp("2024-03-03") in c_dates and pd.Timestamp("2024-03-17") not in c_dates
    assert not s.duplicated(["account_id", "as_of"]).any()


def test_a_churn_inside_the_data_is_kept_even_when_the_horizon_is_censored():
    frames = _frames([("a", "2024-03-25", "price")])
    s = build_snapshots(make_tables(frames, as_of=date(2024, 3, 31), config=_cfg()))
    assert s.set_index(["account_id", "as_of"]).loc[("a", pd.Timestamp("2024-03-17")), "label"] == 1


@pytest.mark.parametrize(
    ("mode", "expected"), [("exclude", None), ("negative", 0), ("positive", 1)]
)
def test_unavoidable_churn_is_configurable(mode, expected):
    frames = _frames([("a", "2024-02-20", "Acquired")])
    s = build_snapshots(make_tables(frames, as_of=date(2024, 3, 31), config=_cfg(unavoidable=mode)))
    key = ("a", pd.Timestamp("2024-02-18"))
    idx = s.set_index(["account_id", "as_of"])
    if expected is None:
        assert key not in idx.index
        assert idx.loc[("a", pd.Timestamp("2024-01-21")), "label"] == 0  # earlier still kept
    else:
        assert idx.loc[key, "label"] == expected


def test_alive_accounts_drops_accounts_churned_by_the_end_of_as_of():
    from churnlens.features.snapshots import alive_accounts

    frames = _frames([("a", "2024-02-20", "price"), ("b", "2024-03-31T23:00", "price")])
    assert sorted(alive_accounts(make_tables(frames, as_of=date(2024, 3, 30)))["account_id"]) == [
        "b",
        "c",
        "d",
    ]
    assert sorted(alive_accounts(make_tables(frames, as_of=date(2024, 3, 31)))["account_id"]) == [
        "c",
        "d",
    ]
