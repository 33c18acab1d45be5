"""Stage 2: indicator metadata, values on tiny timelines, and missing sources."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from churnlens.features.indicators import (
    FAMILIES,
    INDICATORS,
    REGISTRY,
    compute_indicators,
    render,
)
from churnlens.features.schema import TIMELINE_COLUMNS

from ..conftest import weekly

PROFILE = pd.DataFrame(
    {"account_id": ["a"], "created_at": [pd.Timestamp("2024-01-01")], "seats": [10.0]}
)


def _full(df: pd.DataFrame, fill: float = 0.0) -> pd.DataFrame:
    for col in TIMELINE_COLUMNS:
        if col not in df.columns:
            df[col] = fill
    return df


def _at(tl: pd.DataFrame, as_of: str, profile: pd.DataFrame = PROFILE) -> pd.Series:
    out = compute_indicators(tl, profile, as_of=pd.Timestamp(as_of))
    assert len(out) == len(profile)
    return out.iloc[0]


def test_every_family_is_covered_and_metadata_is_complete():
    assert {REGISTRY[n].family for n in INDICATORS} == set(FAMILIES)
    for name in INDICATORS:
        ind = REGISTRY[name]
        assert ind.func.__name__ == name
        assert ind.direction in ("up", "down", "none") and ind.unit and ind.description
        for lang in ("en", "ja"):
            text = render(name, 1.0 if ind.unit == "flag" else -0.25, lang)
            assert text and "{" not in text, (name, lang, text)
    assert render("logins_4w", float("nan")) == ""
    assert render("logins_4w", 1.0) == "1 login in the last 4 weeks"
    assert render("logins_4w", 0.0) == "0 logins in the last 4 weeks"
    assert render("logins_4w", 1.6) == "2 logins in the last 4 weeks"
    assert render("touches_13w", 1.0) == "1 CSM touch in the last 13 weeks"
    assert render("touches_13w", 3.0) == "3 CSM touches in the last 13 weeks"
    # a change that shows as 0% is no change; the direction follows the figure shown
    change = "logins_change_4w_vs_prior_8w"
    assert render(change, 0.003) == "Logins unchanged in the last 4 weeks vs the prior 8"
    assert render(change, -0.004, "ja") == "直近4週間のログインが前8週間比で横ばい"
    assert render(change, 0.006) == "Logins up 1% in the last 4 weeks vs the prior 8"
    assert render(change, -0.25, "ja") == "直近4週間のログインが前8週間比で25%減少"
    assert render("logins_vs_peak_4w", 0.0).startswith("Logins in the last 4 weeks are 0% below")
    assert render("nps_detractor", 0.0) == "" and "detractor" in render("nps_detractor", 1.0)


def test_login_decline_and_slope():
    # 8 prior weeks at 10 logins, then 4 weeks at 5: rate halves.
    tl = _full(weekly("a", "2024-01-01", [10] * 8 + [5] * 4))
    row = _at(tl, "2024-03-24")  # Sunday ending week 12
    assert row["logins_4w"] == 20
    assert row["logins_change_4w_vs_prior_8w"] == pytest.approx(-0.5)
    assert row["logins_slope_12w"] < 0
    flat = _at(_full(weekly("a", "2024-01-01", [7] * 12)), "2024-03-24")
    assert flat["logins_change_4w_vs_prior_8w"] == pytest.approx(0.0)
    assert flat["logins_slope_12w"] == pytest.approx(0.0)


def test_decline_against_the_accounts_own_history():
    # 20 weeks at 10 logins and 20 core events, then 4 weeks at 5 logins and 6 core events.
    core = [20.0] * 20 + [6.0] * 4
    tl = _full(weekly("a", "2024-01-01", [10] * 20 + [5] * 4, core_feature_events=core))
    row = _at(tl, "2024-06-16")  # Sunday ending week 24
    assert row["logins_vs_peak_4w"] == pytest.approx(-0.5)
    assert row["core_use_vs_peak_4w"] == pytest.approx(6 / 20 - 1)
    assert row["logins_change_4w_vs_26w"] == pytest.approx(5 / (220 / 24) - 1)
    assert row["core_use_change_4w_vs_prior_8w"] == pytest.approx(-0.7)
    assert row["core_use_slope_12w"] < 0 and row["logins_slope_26w"] < 0
    # a peak in the past is kept: a recovered account is at its peak again
    back = _full(weekly("a", "2024-01-01", [10] * 8 + [2] * 4 + [10] * 4))
    assert _at(back, "2024-04-21")["logins_vs_peak_4w"] == pytest.approx(0.0)
    # the peak is the account's own: another account's history does not leak in
    other = _full(weekly("b", "2023-01-02", [100] * 30))
    profiles = pd.concat([PROFILE, PROFILE.assign(account_id="b")], ignore_index=True)
    both = compute_indicators(pd.concat([other, tl]), profiles, as_of=pd.Timestamp("2024-06-16"))
    assert both.set_index("account_id").loc["a", "logins_vs_peak_4w"] == pytest.approx(-0.5)


@pytest.mark.parametrize(
    ("period", "as_of", "weeks", "monthly"),
    [
        ("monthly", "2024-03-10", 21 / 7, 1.0),  # next monthly anniversary of Jan 31: Mar 31
        ("Monthly", "2024-02-25", 4 / 7, 1.0),  # Feb 29 (leap year, clipped from the 31st)
        (
            "annual",
            "2024-03-10",
            (pd.Timestamp("2025-01-31") - pd.Timestamp("2024-03-10")).days / 7,
            0.0,
        ),
        (
            None,
            "2024-03-10",
            (pd.Timestamp("2025-01-31") - pd.Timestamp("2024-03-10")).days / 7,
            math.nan,
        ),
    ],
)
def test_weeks_to_renewal_follows_the_billing_period(
    period: str | None, as_of: str, weeks: float, monthly: float
):
    profile = pd.DataFrame(
        {
            "account_id": ["a"],
            "created_at": [pd.Timestamp("2024-01-31 10:00")],
            "renewal_date": [pd.Timestamp("2026-01-31")],
            "billing_period": [period],
        }
    )
    row = _at(_full(weekly("a", "2024-01-29", [5] * 8)), as_of, profile)
    assert row["weeks_to_renewal"] == pytest.approx(weeks, rel=1e-3)
    assert row["monthly_billing"] == pytest.approx(monthly, nan_ok=True)


def test_as_of_mid_week_uses_only_complete_weeks():
    tl = _full(weekly("a", "2024-01-01", [10] * 8 + [5] * 4))
    sat = _at(tl, "2024-03-23")  # Saturday: week 12 not over, so weeks 1-11 are seen
    assert sat["logins_4w"] == 10 + 10 + 5 + 5 + 5 - 10  # weeks 8-11: 10, 5, 5, 5
    assert sat["tenure_weeks"] == pytest.approx(
        (pd.Timestamp("2024-03-23") - pd.Timestamp("2024-01-01")).days / 7
    )


def test_ticket_spike_backlog_and_nps():
    n = 13
    tickets = [1.0] * 9 + [4.0] * 4
    nps_n = [0.0] * n
    nps_sum = [0.0] * n
    nps_n[2], nps_sum[2] = 1, 9
    nps_n[10], nps_sum[10] = 1, 3
    tl = _full(
        weekly(
            "a",
            "2024-01-01",
            [5] * n,
            tickets_opened=tickets,
            nps_n=nps_n,
            nps_sum=nps_sum,
            surveys_sent=[1.0 if i in (2, 10) else 0 for i in range(n)],
            surveys_answered=nps_n,
            tickets_open=[0.0] * 12 + [3.0],
        )
    )
    row = _at(tl, "2024-03-31")
    assert row["ticket_spike_4w_vs_13w"] == pytest.approx((16 / 4) / (25 / 13))
    assert row["open_tickets"] == 3
    assert row["nps_last"] == 3 and row["nps_change"] == -6 and row["nps_detractor"] == 1
    assert row["weeks_since_survey_answer"] == 2
    assert row["survey_response_rate_26w"] == 1


def test_silent_customer_is_flagged_and_loud_one_is_not():
    logins = [20] * 8 + [14, 12, 10, 8]
    quiet = _full(weekly("a", "2024-01-01", logins))  # no tickets, answers, inbound contact
    row = _at(quiet, "2024-03-24")
    assert row["quiet_channels_13w"] == 3 and row["silent_decline"] == 1
    loud = _full(weekly("a", "2024-01-01", logins, tickets_opened=[0.0] * 10 + [3.0, 2.0]))
    row = _at(loud, "2024-03-24")
    assert row["quiet_channels_13w"] == 2 and row["silent_decline"] == 0


def test_unknown_source_gives_nan_and_flag_not_zero():
    tl = weekly("a", "2024-01-01", [5] * 12)  # only logins: every other column absent
    row = _at(tl, "2024-03-24")
    assert row["has_usage_events"] == 1 and row["has_tickets"] == 0
    for name in (
        "tickets_13w",
        "ticket_spike_4w_vs_13w",
        "nps_last",
        "touches_13w",
        "survey_response_rate_26w",
    ):
        assert math.isnan(row[name]), name
    assert row["logins_4w"] == 20


def test_lifecycle_time_to_value_and_onboarding():
    core = [0, 0, 0, 2, 3, 0, 4, 0]
    tl = _full(weekly("a", "2024-01-01", [3] * 8, core_feature_events=core, events=[5.0] * 8))
    row = _at(tl, "2024-02-25")
    assert row["value_reached"] == 1 and row["time_to_value_weeks"] == 3
    assert row["onboarding_done"] == 1 and row["in_first_90_days"] == 1
    early = _at(tl, "2024-01-21")  # weeks 1-3 only: value not reached yet
    assert early["value_reached"] == 0 and early["time_to_value_weeks"] == 3


def test_account_without_complete_week_gets_lifecycle_only():
    tl = _full(weekly("a", "2024-01-01", [5]))
    row = _at(tl, "2024-01-06")  # Saturday of the first week
    assert math.isnan(row["logins_4w"])
    assert row["tenure_weeks"] == pytest.approx(5 / 7)


def _three_accounts(seed: int, weeks: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Timeline and profiles of accounts a, b, c: random logins and tickets from 2024-01-01."""
    rng = np.random.default_rng(seed)
    tl = pd.concat(
        [
            _full(
                weekly(
                    acc,
                    "2024-01-01",
                    rng.integers(0, 30, weeks).tolist(),
                    tickets_opened=rng.integers(0, 3, weeks).astype(float),
                )
            )
            for acc in ("a", "b", "c")
        ],
        ignore_index=True,
    )
    prof = pd.DataFrame(
        {"account_id": ["a", "b", "c"], "created_at": pd.to_datetime(["2024-01-01"] * 3)}
    )
    return tl, prof


def test_many_requests_match_one_at_a_time():
    tl, prof = _three_accounts(0, 30)
    reqs = pd.DataFrame(
        {
            "account_id": ["c", "a", "b", "a"],
            "as_of": pd.to_datetime(["2024-05-05", "2024-03-03", "2024-07-28", "2024-04-14"]),
        }
    )
    batch = compute_indicators(tl, prof, reqs)
    for i, r in reqs.iterrows():
        one = compute_indicators(
            tl[tl["account_id"] == r["account_id"]],
            prof[prof["account_id"] == r["account_id"]],
            as_of=r["as_of"],
        )
        pd.testing.assert_series_equal(batch.iloc[i], one.iloc[0], check_names=False)


def test_row_order_of_the_timeline_does_not_matter():
    # Sorted timelines skip the reordering: any other order must give the same indicators.
    tl, prof = _three_accounts(1, 20)
    want = compute_indicators(tl, prof, as_of=pd.Timestamp("2024-05-20"))
    weeks_reversed = tl.iloc[::-1].sort_values("account_id", kind="stable")
    for order in (tl.sample(frac=1.0, random_state=3), weeks_reversed, tl.iloc[::-1]):
        assert not order.index.equals(tl.index)
        got = compute_indicators(order, prof, as_of=pd.Timestamp("2024-05-20"))
        pd.testing.assert_frame_equal(got, want)


def test_tracked_groups_count_share_and_pace_point_in_time():
    """16 weeks: exports 2 a week for 12 weeks, then 0 for 4; errors only in the last 4 weeks.
    At week 12's end: 12 weeks of exports, steady; at week 16's end: the pace has collapsed."""
    n = 16
    tl = _full(
        weekly(
            "a",
            "2024-01-01",
            [1] * n,
            events=[10.0] * n,
            events__exports=[2] * 12 + [0] * 4,
            events__errors=[0] * 12 + [3] * 4,
        )
    )
    at12 = _at(tl, "2024-03-24")  # the Sunday ending week 12
    assert at12["events__exports__12w"] == 24
    assert at12["events__exports__share_12w"] == pytest.approx(0.2)
    assert at12["events__exports__pace_4w_12w"] == pytest.approx(1.0)  # (3*8 + 1) / (24 + 1)
    assert at12["events__errors__12w"] == 0 and at12["events__errors__pace_4w_12w"] == 1.0
    at16 = _at(tl, "2024-04-21")
    assert at16["events__exports__12w"] == 16  # weeks 5-16
    assert at16["events__exports__pace_4w_12w"] == pytest.approx(1 / 17)
    assert at16["events__errors__12w"] == 12
    assert at16["events__errors__share_12w"] == pytest.approx(12 / 120)
    assert at16["events__errors__pace_4w_12w"] == pytest.approx(37 / 13)
    # Week 16's rows do not change the indicators at week 12 (point in time).
    later = tl.copy()
    later.loc[12:, "events__exports"] = 100
    assert _at(later, "2024-03-24")["events__exports__12w"] == 24


def test_tracked_pace_of_a_young_account_uses_the_weeks_it_has():
    tl = _full(weekly("a", "2024-01-01", [1] * 6, events=[4.0] * 6, events__likes=[1] * 6))
    row = _at(tl, "2024-02-11")  # six complete weeks
    assert row["events__likes__12w"] == 6
    assert row["events__likes__pace_4w_12w"] == pytest.approx(1.0)  # (4 * 6/4 + 1) / (6 + 1)


def test_tracked_groups_unknown_without_usage_or_column_and_rendered():
    tl = _full(weekly("a", "2024-01-01", [1] * 6, events__likes=[1] * 6))
    # asked for a group the timeline lacks: its indicators are unknown, not zero
    out = compute_indicators(tl, PROFILE, as_of=pd.Timestamp("2024-02-11"), tracked=["dislikes"])
    assert out[["events__dislikes__12w", "events__dislikes__share_12w"]].isna().all().all()
    assert "events__likes__12w" not in out.columns
    # no usage source at all: unknown too
    no_usage = _full(weekly("a", "2024-01-01", [1] * 6, events__likes=[1] * 6), fill=np.nan)
    no_usage["logins"] = np.nan
    no_usage["events__likes"] = np.nan
    row = _at(no_usage, "2024-02-11")
    assert row["has_usage_events"] == 0 and math.isnan(row["events__likes__12w"])
    assert render("events__likes__12w", 1.0) == "likes: 1 event in the last 12 weeks"
    assert render("events__ad_view__share_12w", 0.25) == (
        "ad view: 25% of all events in the last 12 weeks"
    )
    assert render("events__likes__pace_4w_12w", 0.5, "ja") == (
        "直近4週間の「likes」イベントは12週間平均の0.5倍のペース"
    )
    assert render("events__likes__pace_4w_12w", 0.5) == (
        "likes: the last 4 weeks at 0.5x the 12-week pace"
    )
    with pytest.raises(KeyError, match="unknown indicator"):
        render("events__Bad__12w", 1.0)
