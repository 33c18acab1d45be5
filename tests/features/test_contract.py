"""Unit tests of the data contract: every problem is named, counted and handled as documented."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnlens.config import Config, config_from_dict, load_config
from churnlens.errors import ConfigError, DataContractError
from churnlens.features.contract import (
    _repeated,
    as_distinct,
    decoded,
    exact_duplicates,
    last_complete_week_start,
    load_tables,
    read_table_file,
    tables_from_frames,
    validate,
)

from ..conftest import NOW, make_tables


def _problem(tables_or_report, check: str, table: str):
    report = getattr(tables_or_report, "report", tables_or_report)
    found = [p for p in report.problems if p.check == check and p.table == table]
    assert found, f"no {check} problem for {table}: {[str(p) for p in report.problems]}"
    return found[0]


def test_missing_required_column_is_fatal_and_names_table_and_column(tiny_frames):
    tiny_frames["usage_events"] = tiny_frames["usage_events"].drop(columns=["event"])
    with pytest.raises(DataContractError) as err:
        make_tables(tiny_frames)
    msg = str(err.value)
    assert "usage_events.event" in msg and "required column 'event' is missing" in msg


def test_missing_optional_table_is_unknown_not_empty(tiny_frames):
    t = make_tables(tiny_frames)
    assert t.available("usage_events")
    assert not t.available("tickets") and t.get("tickets") is None
    assert "tickets" in t.report.tables_missing


def test_unparseable_timestamp_rows_dropped_with_count_and_example(tiny_frames):
    ev = tiny_frames["usage_events"].copy()
    ev.loc[1, "occurred_at"] = "31/02/2024"
    tiny_frames["usage_events"] = ev
    t = make_tables(tiny_frames)
    p = _problem(t, "unparseable_timestamp", "usage_events")
    assert p.count == 1 and p.severity == "repaired" and p.column == "occurred_at"
    assert "row 2" in p.examples[0] and "31/02/2024" in p.examples[0]
    assert len(t.get("usage_events")) == 3


def test_mostly_unparseable_column_becomes_fatal(tiny_frames):
    ev = tiny_frames["usage_events"].copy()
    ev["occurred_at"] = ["01/02/2024", "02/02/2024", "03/02/2024", "2024-01-09"]
    tiny_frames["usage_events"] = ev
    with pytest.raises(DataContractError, match="max_invalid_fraction"):
        make_tables(tiny_frames)


def test_events_for_unknown_accounts_and_before_created_are_dropped_and_counted(tiny_frames):
    ev = tiny_frames["usage_events"].copy()
    ev.loc[len(ev)] = ["zz", "2024-01-10", "login", "u9"]
    ev.loc[len(ev)] = ["b", "2024-01-02", "login", "u9"]  # b was created 2024-01-08
    tiny_frames["usage_events"] = ev
    t = make_tables(tiny_frames)
    assert _problem(t, "unknown_account", "usage_events").count == 1
    early = _problem(t, "before_created_at", "usage_events")
    assert early.count == 1 and "row 6" in early.examples[0]
    assert len(t.get("usage_events")) == 4


def test_contract_before_creation_is_moved_not_dropped(tiny_frames):
    tiny_frames["contracts"] = pd.DataFrame(
        {"account_id": ["a"], "effective_at": ["2023-12-20"], "arr": [12000], "seats": [10]}
    )
    t = make_tables(tiny_frames)
    assert _problem(t, "before_created_at", "contracts").count == 1
    assert t.get("contracts")["effective_at"].iloc[0] == pd.Timestamp("2024-01-01")


def test_future_rows_dropped_and_rows_after_as_of_ignored_as_info(tiny_frames):
    ev = tiny_frames["usage_events"].copy()
    ev.loc[len(ev)] = ["a", "2099-01-01", "login", "u1"]
    tiny_frames["usage_events"] = ev
    t = make_tables(tiny_frames, as_of=date(2024, 1, 10))
    assert _problem(t, "in_future", "usage_events").count == 1
    info = _problem(t, "after_as_of", "usage_events")
    assert info.severity == "info" and info.count == 1  # the 2024-01-16 login
    assert t.get("usage_events")["occurred_at"].max() < pd.Timestamp("2024-01-11")


def test_negative_quantity_and_bad_numbers(tiny_frames):
    ev = tiny_frames["usage_events"].copy()
    ev["quantity"] = ["1", "-3", "2", "inf"]
    tiny_frames["usage_events"] = ev
    acc = tiny_frames["accounts"].copy()
    acc.loc[0, "arr"] = "lots"
    tiny_frames["accounts"] = acc
    t = make_tables(tiny_frames)
    assert _problem(t, "negative", "usage_events").count == 1
    assert _problem(t, "infinite", "usage_events").count == 1
    assert _problem(t, "not_a_number", "accounts").column == "arr"
    assert pd.isna(t.accounts.set_index("account_id").loc["a", "arr"])


def test_billing_period_is_normalised_and_unknown_values_set_missing(tiny_frames):
    acc = pd.concat([tiny_frames["accounts"]] * 2, ignore_index=True)
    acc["account_id"] = ["a", "b", "c", "d"]
    acc["billing_period"] = [" Monthly", "ANNUAL", "quarterly", None]
    tiny_frames["accounts"] = acc
    t = make_tables(tiny_frames)
    problem = _problem(t, "unknown_value", "accounts")
    assert problem.column == "billing_period" and problem.count == 1
    assert problem.severity == "repaired"
    period = t.accounts.set_index("account_id")["billing_period"]
    assert period["a"] == "monthly" and period["b"] == "annual"
    assert pd.isna(period["c"]) and pd.isna(period["d"])


def test_duplicate_accounts_identical_repaired_conflicting_fatal(tiny_frames):
    acc = tiny_frames["accounts"]
    tiny_frames["accounts"] = pd.concat([acc, acc.iloc[[0]]], ignore_index=True)
    t = make_tables(tiny_frames)
    assert _problem(t, "duplicate_id", "accounts").severity == "repaired"
    assert len(t.accounts) == 2
    other = acc.iloc[[0]].assign(arr="1")
    tiny_frames["accounts"] = pd.concat([acc, other], ignore_index=True)
    with pytest.raises(DataContractError, match="different values"):
        make_tables(tiny_frames)


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_exact_duplicates_matches_pandas_duplicated(tz):
    at = pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02"])
    df = pd.DataFrame(
        {
            "account_id": ["a", "a", "b", "a", "a"],
            "occurred_at": at.tz_localize(tz) if tz else at,
            "event": ["x", "x", "x", "y", None],
        }
    )
    got = exact_duplicates(df, min_rows=0)  # the row-key path, not pandas' own
    assert got.tolist() == [False, True, False, False, False]
    assert got.equals(df.duplicated(keep="first"))
    no_stamps = df.drop(columns=["occurred_at"])
    assert exact_duplicates(no_stamps, min_rows=0).equals(no_stamps.duplicated(keep="first"))


def test_churn_for_unknown_account_and_several_churns(tiny_frames):
    tiny_frames["churn_events"] = pd.DataFrame(
        {
            "account_id": ["a", "a", "nobody"],
            "churned_at": ["2024-03-01", "2024-02-01", "2024-02-01"],
        }
    )
    t = make_tables(tiny_frames)
    assert _problem(t, "unknown_account", "churn_events").count == 1
    assert _problem(t, "several_churns", "churn_events").count == 1
    assert t.get("churn_events")["churned_at"].tolist() == [pd.Timestamp("2024-02-01")]


def test_timezones_are_converted_to_utc():
    t = make_tables(
        {"accounts": pd.DataFrame({"account_id": ["x"], "created_at": ["2024-01-01T08:00+09:00"]})}
    )
    assert t.accounts["created_at"].iloc[0] == pd.Timestamp("2023-12-31 23:00")


def test_ticket_closed_after_as_of_is_not_known_yet():
    frames = {
        "accounts": pd.DataFrame({"account_id": ["x"], "created_at": ["2024-01-01"]}),
        "tickets": pd.DataFrame(
            {"account_id": ["x"], "opened_at": ["2024-01-02"], "closed_at": ["2024-02-01"]}
        ),
    }
    t = make_tables(frames, as_of=date(2024, 1, 20))
    assert t.get("tickets")["closed_at"].isna().all()


def test_validate_reports_without_raising_and_load_raises(tmp_path: Path):
    (tmp_path / "accounts.csv").write_text("id,created_at\n1,2024-01-01\n")
    report = validate(tmp_path)
    assert not report.ok
    assert report.fatal[0].table == "accounts" and report.fatal[0].column == "account_id"
    with pytest.raises(DataContractError, match="account_id"):
        load_tables(tmp_path)


def test_missing_accounts_file_and_two_files_for_one_table(tmp_path: Path):
    report = validate(tmp_path)
    assert report.fatal[0].check == "missing_table"
    (tmp_path / "accounts.csv").write_text("account_id,created_at\n1,2024-01-01\n")
    (tmp_path / "tickets.csv").write_text("account_id,opened_at\n1,2024-01-02\n")
    pd.DataFrame({"account_id": ["1"], "opened_at": ["2024-01-02"]}).to_parquet(
        tmp_path / "tickets.parquet"
    )
    report = validate(tmp_path)
    assert [p.check for p in report.fatal] == ["ambiguous_table"]


def test_config_renames_columns_and_rejects_bad_keys(tmp_path: Path, tiny_frames):
    acc = tiny_frames["accounts"].rename(columns={"account_id": "customer", "created_at": "since"})
    tiny_frames["accounts"] = acc
    cfg = config_from_dict(
        {"columns": {"accounts": {"customer": "account_id", "since": "created_at"}}}
    )
    t = make_tables(tiny_frames, config=cfg)
    assert list(t.accounts["account_id"]) == ["a", "b"]
    with pytest.raises(ConfigError, match=r"labels\.horizon_weeks"):
        config_from_dict({"labels": {"horizon_weeks": 0}})
    with pytest.raises(ConfigError, match="not a column of accounts"):
        config_from_dict({"columns": {"accounts": {"x": "nonsense"}}})
    (tmp_path / "churnlens.yaml").write_text("events:\n  login: [sign_in]\n  bogus: 1\n")
    with pytest.raises(ConfigError, match=r"events.bogus"):
        load_config(None, tmp_path)
    (tmp_path / "churnlens.yaml").write_text("events:\n  login: [sign_in]\n")
    assert load_config(None, tmp_path).events.login == ("sign_in",)
    assert load_config(None, None) == Config()


@pytest.mark.parametrize(
    ("as_of", "monday"),
    [
        (date(2024, 1, 7), date(2024, 1, 1)),  # a Sunday: its own week is complete
        (date(2024, 1, 8), date(2024, 1, 1)),  # a Monday: the week just ended
        (date(2024, 1, 13), date(2024, 1, 1)),  # a Saturday: this week is not over
    ],
)
def test_last_complete_week(as_of: date, monday: date):
    assert last_complete_week_start(as_of) == monday


def test_exact_duplicates_on_a_large_frame_matches_pandas():
    """At the default cut-off (100k rows) the row-key path runs: same answer as ``duplicated``."""
    rng = np.random.default_rng(3)
    n = 150_000
    df = pd.DataFrame(
        {
            "account_id": pd.Series(rng.integers(0, 50, n).astype(str), dtype="str"),
            "occurred_at": pd.to_datetime(rng.integers(0, 2_000, n), unit="s", utc=True),
            "event": pd.Series(rng.choice(["login", "report", None], n), dtype="str"),
            "quantity": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 3, n) * 1.0),
        }
    )
    df.loc[::7, "quantity"] = -0.0  # equal to 0.0 for duplicated
    got = exact_duplicates(df)
    want = df.duplicated(keep="first")
    assert want.sum() > 1_000  # the frame does hold duplicates, with NaN and -0.0 among them
    assert got.equals(want)


@pytest.mark.parametrize("split_from", [10**9, 10])  # one sort / two halves on two threads
def test_repeated_keys_are_found_whichever_half_they_fall_in(split_from):
    top = np.uint64(1 << 63)
    key = np.array([5, 7, 5, 9, 7, 7, 1, 2, 3, 4, 6], dtype=np.uint64)
    key = np.concatenate([key, key[:6] + top, [top + np.uint64(11)]])  # same pattern, high half
    before = key.copy()
    got = _repeated(key, split_from=split_from)
    assert sorted(got.tolist()) == [5, 7, 5 + (1 << 63), 7 + (1 << 63)]
    np.testing.assert_array_equal(key, before)  # the caller's keys are not sorted in place


def test_event_table_text_is_checked_as_codes_from_text_or_categories(tiny_frames):
    """Event-table text runs through the checks as codes + distinct values, whether it arrives
    as text or as categories: stripped, blank and unknown ids are handled as row by row."""
    frames = {k: v.copy() for k, v in tiny_frames.items()}
    ev = frames["usage_events"]
    frames["usage_events"] = pd.concat(
        [ev, ev.assign(account_id=[" a", "a ", "zz", "  "], user_id=["u1 ", None, "u9", "u1"])],
        ignore_index=True,
    )
    before = {k: v.copy() for k, v in frames.items()}
    as_text = tables_from_frames(frames, now=NOW)
    for name, df in before.items():  # the caller's frames are left as they were
        pd.testing.assert_frame_equal(frames[name], df, check_exact=True)
    as_cat = {k: v.copy() for k, v in frames.items()}
    as_cat["usage_events"] = frames["usage_events"].astype("category")
    got = tables_from_frames(as_cat, now=NOW)
    usage = got.frames["usage_events"]
    pd.testing.assert_frame_equal(usage, as_text.frames["usage_events"], check_exact=True)
    assert not usage["user_id"].iloc[:4].isna().any()
    for col in ("account_id", "user_id", "event"):  # kept as codes (Tables.KEPT_AS_CODES) ...
        assert isinstance(usage[col].dtype, pd.CategoricalDtype), col
        assert usage[col].cat.categories.dtype == "str", col
    # ... with no category left without a row ("zz" and the blank id were dropped)
    assert sorted(usage["account_id"].cat.categories) == sorted(usage["account_id"].unique())
    # " a" and "a " are account a after stripping; "zz" is unknown and "  " a missing id
    assert usage["account_id"].tolist().count("a") == 5
    checks = {(p.check, p.count) for p in got.report.problems}
    assert checks == {(p.check, p.count) for p in as_text.report.problems}
    assert ("unknown_account", 1) in checks and ("missing_id", 1) in checks


def test_distinct_text_round_trip_keeps_missing_values():
    s = pd.Series([" x", "y", None, "x ", ""], dtype="str", name="event")
    cat = as_distinct(s)
    assert isinstance(cat.dtype, pd.CategoricalDtype) and len(cat.cat.categories) == 4
    back = decoded(cat)
    pd.testing.assert_series_equal(back, s, check_exact=True)
    assert decoded(s) is s  # plain text is left as it is


def test_parquet_text_is_read_as_categories_and_loaded_as_from_text(tmp_path: Path, tiny_frames):
    tiny_frames = dict(tiny_frames)
    tiny_frames["usage_events"] = tiny_frames["usage_events"].assign(
        note=pd.Series([None] * 4, dtype="str")  # an unknown, all-missing text column
    )
    for name, df in tiny_frames.items():
        df.to_parquet(tmp_path / f"{name}.parquet")
    raw = read_table_file(tmp_path / "usage_events.parquet")
    assert isinstance(raw["event"].dtype, pd.CategoricalDtype)
    tables = load_tables(tmp_path, now=NOW)
    want = tables_from_frames(tiny_frames, now=NOW)
    for name in tiny_frames:
        pd.testing.assert_frame_equal(tables.frames[name], want.frames[name], check_exact=True)
