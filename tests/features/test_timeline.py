"""Stage 1: the weekly timeline's shape and each column's meaning, on tiny inline tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest

from churnlens.config import config_from_dict
from churnlens.features.contract import decoded
from churnlens.features.schema import TIMELINE_COLUMNS, TIMELINE_KEY
from churnlens.features.timeline import build_timeline, event_kinds

from ..conftest import make_tables


def _row(tl: pd.DataFrame, account: str, week: str) -> pd.Series:
    hit = tl[(tl["account_id"] == account) & (tl["week_start"] == pd.Timestamp(week))]
    assert len(hit) == 1, f"expected one row for {account} {week}, got {len(hit)}"
    return hit.iloc[0]


def test_columns_one_row_per_week_zero_weeks_present_nothing_before_created(tiny_frames):
    t = make_tables(tiny_frames, as_of=date(2024, 1, 28))
    tl = build_timeline(t)
    assert list(tl.columns) == [*TIMELINE_KEY, *TIMELINE_COLUMNS]
    assert not tl.duplicated(["account_id", "week_start"]).any()
    a = tl[tl["account_id"] == "a"]
    assert a["week_start"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
    ]
    assert _row(tl, "a", "2024-01-08")["logins"] == 0  # a quiet week is present with zeros
    assert tl[tl["account_id"] == "b"]["week_start"].min() == pd.Timestamp("2024-01-08")
    assert _row(tl, "a", "2024-01-01")["logins"] == 1
    assert _row(tl, "a", "2024-01-01")["events"] == 2
    assert _row(tl, "a", "2024-01-01")["distinct_features"] == 1
    assert _row(tl, "a", "2024-01-15")["active_users"] == 1


def test_rows_sorted_by_account_id_text_then_week():
    """Ids in text order (``a10`` before ``a2``), not in row or creation order; enough accounts
    that the engine's parallel joins would hand the rows back out of order."""
    ids = [f"a{i}" for i in range(3000)][::-1]
    weeks = pd.date_range("2024-01-02", periods=8, freq="7D").astype(str)
    frames = {
        "accounts": pd.DataFrame({"account_id": ids, "created_at": "2024-01-01"}),
        "usage_events": pd.DataFrame(
            {
                "account_id": np.repeat(ids, len(weeks)),
                "occurred_at": np.tile(weeks, len(ids)),
                "event": "login",
                "user_id": "u1",
            }
        ),
    }
    tl = build_timeline(make_tables(frames, as_of=date(2024, 3, 31)))
    assert tl["account_id"].drop_duplicates().tolist()[:4] == ["a0", "a1", "a10", "a100"]
    pd.testing.assert_frame_equal(tl, tl.sort_values(list(TIMELINE_KEY), ignore_index=True))


def test_incomplete_week_is_not_in_the_timeline(tiny_frames):
    tl = build_timeline(make_tables(tiny_frames, as_of=date(2024, 1, 27)))  # a Saturday
    assert tl["week_start"].max() == pd.Timestamp("2024-01-15")


def test_missing_sources_are_nan_not_zero(tiny_frames):
    tl = build_timeline(make_tables(tiny_frames, as_of=date(2024, 1, 28)))
    for col in ("tickets_opened", "tickets_open", "surveys_sent", "nps_n", "touches"):
        assert tl[col].isna().all(), col
    assert tl["logins"].notna().all()
    assert (tl["arr"] > 0).all()  # no contracts table: the account's static ARR


def test_core_features_and_login_events_come_from_config(tiny_frames):
    cfg = config_from_dict({"events": {"login": ["report"], "core_features": ["report"]}})
    t = make_tables(tiny_frames, as_of=date(2024, 1, 28), config=cfg)
    row = _row(build_timeline(t), "a", "2024-01-01")
    assert row["logins"] == 1 and row["core_feature_events"] == 1
    assert row["distinct_features"] == 1  # the "login" event is now a feature


def test_tickets_backlog_urgent_and_surveys(tiny_frames):
    tiny_frames["tickets"] = pd.DataFrame(
        {
            "account_id": ["a", "a", "a"],
            "opened_at": ["2024-01-02", "2024-01-03", "2024-01-09"],
            "closed_at": ["2024-01-04", None, "2024-01-20"],
            "priority": ["URGENT", "low", "urgent"],
        }
    )
    tiny_frames["surveys"] = pd.DataFrame(
        {
            "account_id": ["a", "a"],
            "sent_at": ["2024-01-02", "2024-01-02"],
            "responded_at": ["2024-01-10", None],
            "score": [4, None],
        }
    )
    tl = build_timeline(make_tables(tiny_frames, as_of=date(2024, 1, 28)))
    w1, w2, w3 = (_row(tl, "a", w) for w in ("2024-01-01", "2024-01-08", "2024-01-15"))
    assert (w1["tickets_opened"], w1["tickets_urgent"], w1["tickets_open"]) == (2, 1, 1)
    assert (w2["tickets_opened"], w2["tickets_open"]) == (1, 2)
    assert w3["tickets_open"] == 1
    assert (w1["surveys_sent"], w1["surveys_answered"]) == (2, 0)
    assert (w2["surveys_answered"], w2["nps_sum"], w2["nps_n"]) == (1, 4.0, 1)
    assert _row(tl, "b", "2024-01-08")["tickets_opened"] == 0  # known source, no tickets


def test_contract_in_force_at_week_end(tiny_frames):
    tiny_frames["contracts"] = pd.DataFrame(
        {
            "account_id": ["a", "a"],
            "effective_at": ["2024-01-01", "2024-01-17"],
            "arr": [12000, 6000],
            "seats": [10, 5],
        }
    )
    tl = build_timeline(make_tables(tiny_frames, as_of=date(2024, 1, 28)))
    assert _row(tl, "a", "2024-01-08")["seats"] == 10
    assert _row(tl, "a", "2024-01-15")["seats"] == 5
    assert _row(tl, "a", "2024-01-15")["arr"] == 6000


def test_timeline_ends_at_the_churn_week(tiny_frames):
    tiny_frames["churn_events"] = pd.DataFrame({"account_id": ["a"], "churned_at": ["2024-01-10"]})
    tl = build_timeline(make_tables(tiny_frames, as_of=date(2024, 1, 28)))
    assert tl[tl["account_id"] == "a"]["week_start"].max() == pd.Timestamp("2024-01-08")
    assert tl[tl["account_id"] == "b"]["week_start"].max() == pd.Timestamp("2024-01-22")


@pytest.mark.parametrize("as_of", [date(2024, 1, 14), date(2024, 1, 21), date(2024, 1, 28)])
def test_rows_of_an_earlier_timeline_never_change_later(tiny_frames, as_of):
    full = build_timeline(make_tables(tiny_frames, as_of=date(2024, 1, 28)))
    early = build_timeline(make_tables(tiny_frames, as_of=as_of))
    cut = full[full["week_start"] <= early["week_start"].max()].reset_index(drop=True)
    pd.testing.assert_frame_equal(early, cut)


def test_no_login_or_core_events_configured_means_unknown(tiny_frames):
    cfg = config_from_dict({"events": {"login": [], "core_features": []}})
    tl = build_timeline(make_tables(tiny_frames, as_of=date(2024, 1, 28), config=cfg))
    assert tl["logins"].isna().all() and tl["core_feature_events"].isna().all()
    assert tl["events"].notna().all()


@pytest.mark.parametrize("n_features", [1, 62, 63, 64, 130])
def test_distinct_features_and_users_are_exact_past_one_bitmask_word(tiny_frames, n_features):
    names = [f"feature_{i:03d}" for i in range(n_features)]
    # Every feature twice (by two users) in a's first week, plus logins by a third user and by
    # a row without a user id; the week after, half the features by one user.
    rows = [("a", "2024-01-02", name, user) for name in names for user in ("u1", "u2")]
    rows += [("a", "2024-01-03", "login", "u3"), ("a", "2024-01-03", "login", None)]
    rows += [("a", "2024-01-09", name, "u1") for name in names[: (n_features + 1) // 2]]
    tiny_frames["usage_events"] = pd.DataFrame(
        rows, columns=["account_id", "occurred_at", "event", "user_id"]
    )
    tl = build_timeline(make_tables(tiny_frames, as_of=date(2024, 1, 28)))
    first, second = _row(tl, "a", "2024-01-01"), _row(tl, "a", "2024-01-08")
    assert first["distinct_features"] == n_features  # logins are not features
    assert first["active_users"] == 3  # a row without a user id is no user
    assert first["events"] == 2 * n_features + 2 and first["logins"] == 2
    assert second["distinct_features"] == (n_features + 1) // 2
    assert second["active_users"] == 1


@pytest.mark.parametrize("n_users", [62, 63, 64, 130])
def test_active_users_are_exact_past_the_users_counted_by_bitmask(tiny_frames, n_users):
    """Each account's first USER_BITS users are counted by bitmask, the others by a DISTINCT:
    the count is exact on either side of the boundary and across it."""
    users = [f"u{i:03d}" for i in range(n_users)]
    # Week 1: every user twice. Week 2: the last two users (past the bitmask from 65 users on)
    # three times each, the first user once, and a row without an event name by a third one
    # (past the bitmask too from 66 users on), who is not active for it.
    rows = [("a", "2024-01-02", "report", u) for u in users for _ in range(2)]
    rows += [("a", "2024-01-09", "report", u) for u in users[-2:] for _ in range(3)]
    rows += [("a", "2024-01-10", "login", users[0])]
    rows += [("b", "2024-01-09", "login", u) for u in users[:3]]  # same user ids, other account
    tiny_frames["usage_events"] = pd.DataFrame(
        rows, columns=["account_id", "occurred_at", "event", "user_id"]
    )
    tables = make_tables(tiny_frames, as_of=date(2024, 1, 28))
    nameless = pd.DataFrame(  # the contract drops such rows; tables built by hand may not
        {
            "account_id": ["a"],
            "occurred_at": [pd.Timestamp("2024-01-10")],
            "event": [None],
            "user_id": [users[-3]],
        }
    )
    usage = pd.concat([tables.frames["usage_events"].astype(object), nameless])
    tl = build_timeline(replace(tables, frames={**tables.frames, "usage_events": usage}))
    assert _row(tl, "a", "2024-01-01")["active_users"] == n_users
    assert _row(tl, "a", "2024-01-08")["active_users"] == 3
    assert _row(tl, "b", "2024-01-08")["active_users"] == 3


def test_same_timeline_from_text_ids_as_from_the_codes_tables_keep(tiny_frames):
    """The SQL runs on integer keys made from categoricals (what ``Tables`` holds) or from text
    (tables built by hand); category order and unused categories change nothing."""
    rows = [("a", "2024-01-02", "report", "u1"), ("a", "2024-01-03", "login", None)]
    rows += [("a", "2024-01-09", "export", "u2"), ("b", "2024-01-10", "login", "u1")]
    tiny_frames["usage_events"] = pd.DataFrame(
        rows, columns=["account_id", "occurred_at", "event", "user_id"]
    )
    tables = make_tables(tiny_frames, as_of=date(2024, 1, 28))
    usage = tables.frames["usage_events"]
    assert isinstance(usage["event"].dtype, pd.CategoricalDtype)
    want = build_timeline(tables)
    text = usage.assign(**{c: decoded(usage[c]) for c in ("account_id", "user_id", "event")})
    shuffled = usage.assign(
        **{
            c: usage[c]
            .cat.add_categories(["zz"])
            .cat.reorder_categories(["zz", *reversed(usage[c].cat.categories)])
            for c in ("account_id", "user_id", "event")
        }
    )
    for frame in (text, shuffled):
        other = replace(tables, frames={**tables.frames, "usage_events": frame})
        pd.testing.assert_frame_equal(build_timeline(other), want, check_exact=True)
    assert _row(want, "a", "2024-01-01")["active_users"] == 1  # no user id is no user
    assert _row(want, "b", "2024-01-08")["logins"] == 1
    assert want["account_id"].dtype == "str"


def test_an_event_without_a_known_account_counts_for_no_account(tiny_frames):
    """Tables built by hand (not through the contract, which drops such rows) may hold an event
    with no account id or an unknown one: it lands in no account's week."""
    tables = make_tables(tiny_frames, as_of=date(2024, 1, 28))
    want = build_timeline(tables)
    usage = tables.frames["usage_events"]
    extra = usage.iloc[:2].assign(  # in a week where every account is live
        account_id=pd.Categorical([None, "zz"]), occurred_at=pd.Timestamp("2024-01-16 10:00")
    )
    stray = pd.concat([extra, usage.astype({"account_id": object})], ignore_index=True)
    assert stray["account_id"].isna().sum() == 1
    other = replace(tables, frames={**tables.frames, "usage_events": stray})
    pd.testing.assert_frame_equal(build_timeline(other), want, check_exact=True)


def test_an_event_without_a_name_counts_for_nothing_not_even_its_user(tiny_frames):
    """The contract drops such rows; in tables built by hand the event sums leave them out, and
    so does the count of active users (a user whose only row has no event name is not active)."""
    tables = make_tables(tiny_frames, as_of=date(2024, 1, 28))
    want = build_timeline(tables)
    usage = tables.frames["usage_events"]
    nameless = pd.DataFrame(
        {
            "account_id": ["a", "a"],
            "occurred_at": pd.to_datetime(["2024-01-16 10:00", "2024-01-23 10:00"]),
            "event": [None, None],
            "user_id": ["u9", None],
        }
    )
    stray = pd.concat([usage.astype(object), nameless], ignore_index=True)
    other = replace(tables, frames={**tables.frames, "usage_events": stray})
    pd.testing.assert_frame_equal(build_timeline(other), want, check_exact=True)


def test_event_kinds_give_each_feature_one_bit_and_logins_none():
    cfg = config_from_dict({"events": {"login": ["login"], "core_features": ["f001"]}})
    events = pd.Series(["login", *[f"f{i:03d}" for i in range(70)], "f001", None])
    kinds = event_kinds(events, cfg)
    bits = kinds[[c for c in kinds.columns if c.startswith("feature_bits_")]]
    assert list(bits.columns) == ["feature_bits_0", "feature_bits_1"]
    assert len(kinds) == 71 and kinds["event"].is_unique
    login = kinds["event"] == "login"
    assert (bits[login] == 0).all(axis=None)
    ones = bits[~login].apply(lambda col: col.map(lambda v: bin(v).count("1"))).sum(axis=1)
    assert (ones == 1).all()  # exactly one bit per feature ...
    assert not bits[~login].duplicated().any()  # ... and never the same one
    assert (bits >= 0).all(axis=None)  # the sign bit stays clear
    assert kinds.loc[kinds["event"] == "f001", "is_core"].item()


def test_tracked_event_groups_are_weekly_counts_after_the_standard_columns(tiny_frames):
    tiny_frames["usage_events"] = pd.concat(
        [
            tiny_frames["usage_events"],
            pd.DataFrame(
                {
                    "account_id": ["a", "a", "a", "b"],
                    "occurred_at": ["2024-01-04", "2024-01-05", "2024-01-23", "2024-01-10"],
                    "event": ["export", "csv", "export", "error"],
                    "user_id": "u1",
                    "quantity": [2, 1, 1, 1],
                }
            ),
        ],
        ignore_index=True,
    )
    cfg = config_from_dict(
        {"events": {"tracked": {"exports": ["export", "csv"], "errors": ["error"], "x": ["zz"]}}}
    )
    tl = build_timeline(make_tables(tiny_frames, as_of=date(2024, 1, 28), config=cfg))
    groups = ["events__exports", "events__errors", "events__x"]
    assert list(tl.columns) == [*TIMELINE_KEY, *TIMELINE_COLUMNS, *groups]
    assert all(str(tl[c].dtype) == "Int64" for c in groups)
    a1 = _row(tl, "a", "2024-01-01")
    assert (a1["events__exports"], a1["events__errors"]) == (3, 0)  # quantity counts, as events
    assert a1["events"] == 5
    assert _row(tl, "a", "2024-01-08")["events__exports"] == 0  # a quiet week: zero, not unknown
    assert _row(tl, "a", "2024-01-22")["events__exports"] == 1
    assert _row(tl, "b", "2024-01-08")["events__errors"] == 1
    assert (tl["events__x"] == 0).all()  # a group whose events never happen: zeros
    # Without usage_events the groups are unknown, like every usage column.
    no_usage = {k: v for k, v in tiny_frames.items() if k != "usage_events"}
    tl2 = build_timeline(make_tables(no_usage, as_of=date(2024, 1, 28), config=cfg))
    assert list(tl2.columns)[-3:] == groups and tl2[groups].isna().all().all()


def test_config_tracked_groups_named_or_listed_and_bad_names_rejected():
    from churnlens.errors import ConfigError

    listed = config_from_dict({"events": {"tracked": ["like", "Ad View", "3d-print"]}})
    assert listed.events.tracked == {
        "like": ("like",),
        "ad_view": ("Ad View",),
        "e_3d_print": ("3d-print",),
    }
    with pytest.raises(ConfigError, match="would share the group name 'ad_view'"):
        config_from_dict({"events": {"tracked": ["ad view", "Ad-View"]}})
    for bad in ("Upper", "two__under", "_lead", "trail_", "x" * 41):
        with pytest.raises(ConfigError, match=f"tracked group '{bad}'"):
            config_from_dict({"events": {"tracked": {bad: ["e"]}}})
    with pytest.raises(ConfigError, match="at least one non-empty event name"):
        config_from_dict({"events": {"tracked": {"g": []}}})


def test_scoring_config_takes_the_models_tracked_groups(caplog):
    from churnlens.config import with_tracked_events

    cfg = config_from_dict(
        {"events": {"core_features": ["report"], "tracked": {"a": ["x"], "b": ["y"]}}}
    )
    assert with_tracked_events(cfg, {}) is cfg
    with caplog.at_level("WARNING", logger="churnlens.config"):
        got = with_tracked_events(cfg, {"b": ["z", "w"], "c": ["v"]})
    assert got.events.tracked == {"a": ("x",), "b": ("z", "w"), "c": ("v",)}
    assert got.events.core_features == ("report",)  # the rest of the config is kept
    assert "events.tracked.b" in caplog.text and "scoring uses the model's" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="churnlens.config"):
        with_tracked_events(cfg, {"a": ["x"]})  # the same definition: nothing to say
    assert not caplog.text
