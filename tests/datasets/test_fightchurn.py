"""The fightchurn adapter: coverage and churn rules on tiny frames, then the committed sample."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from churnlens.config import config_from_dict, load_config
from churnlens.datasets.base import ImportReport, to_utc, write_tables
from churnlens.datasets.fightchurn import (
    GAP_TOLERANCE_DAYS,
    assign_spells,
    build_usage,
    churn_from_spells,
    contract_rows,
    convert_fightchurn,
    event_quantity,
    find_data_end,
    import_fightchurn,
)
from churnlens.errors import ChurnlensError
from churnlens.features.contract import load_tables
from churnlens.features.schema import TABLES

SAMPLE = Path(__file__).parents[1] / "data" / "fightchurn-sample"
FULL = Path("/work/shared/data/fightchurn-socialnet7")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


def subs(*rows: tuple[str, str, str, float]) -> pd.DataFrame:
    """Subscription periods ``(account, start, end, mrr)`` as the reader returns them."""
    df = pd.DataFrame(rows, columns=["account_id", "start_date", "end_date", "mrr"])
    return df.assign(
        product="basic", start_date=to_utc(df["start_date"]), end_date=to_utc(df["end_date"])
    )


def churned(spells: pd.DataFrame, data_end: str) -> dict[str, pd.Timestamp]:
    churn = churn_from_spells(spells, ts(data_end))
    return dict(zip(churn["account_id"], churn["churned_at"], strict=True))


def assert_contract_shape(tables: dict[str, pd.DataFrame]) -> None:
    """Required columns present, only contract columns, string ids, UTC timestamps."""
    for name, df in tables.items():
        spec = TABLES[name]
        assert set(spec.required) <= set(df.columns), name
        assert set(df.columns) <= set(spec.names), (name, set(df.columns) - set(spec.names))
        for col in df.columns:
            kind = spec.column(col).kind
            if kind == "id":
                assert pd.api.types.is_string_dtype(df[col].dtype), (name, col, df[col].dtype)
                assert df[col].map(type).eq(str).all(), (name, col)
            if kind == "timestamp":
                assert str(df[col].dtype) == "datetime64[us, UTC]", (name, col, df[col].dtype)
            if kind == "bool":
                assert df[col].dtype == bool, (name, col)


# --- rules on tiny frames ------------------------------------------------------------------------


def test_three_day_gap_is_a_renewal_not_a_churn():
    spells = assign_spells(
        subs(("a", "2020-01-01", "2020-02-01", 10), ("a", "2020-02-04", "2020-03-04", 10))
    )
    assert spells["spell"].tolist() == [0, 0]
    assert contract_rows(spells)["change"].tolist() == ["new", "renewal"]
    assert churned(spells, "2020-03-20") == {"a": ts("2020-03-04")}
    assert churned(spells, "2020-02-02") == {}, "the gap itself is not a churn"


def test_forty_day_gap_followed_by_resumption_is_not_churn():
    spells = assign_spells(
        subs(("a", "2020-01-01", "2020-02-01", 10), ("a", "2020-03-12", "2020-04-12", 10))
    )
    assert spells["spell"].tolist() == [0, 1]
    assert spells["gap_days"].iloc[1] == 40
    assert churned(spells, "2020-04-01") == {}
    assert contract_rows(spells)["change"].tolist() == ["new", "new"]


def test_final_end_before_data_end_is_churn_at_that_end():
    spells = assign_spells(
        subs(
            ("gone", "2020-01-05", "2020-02-05", 10),
            ("gone", "2020-02-05", "2020-03-05", 10),
            ("stays", "2020-01-05", "2020-02-05", 10),
            ("stays", "2020-02-05", "2020-04-05", 10),
            ("edge", "2020-02-01", "2020-03-15", 10),
        )
    )
    # A coverage that ends on the data end with no renewal that day has churned; a later end
    # has not (its renewal is beyond the data).
    assert churned(spells, "2020-03-15") == {"gone": ts("2020-03-05"), "edge": ts("2020-03-15")}


def test_gap_tolerance_is_a_parameter():
    ten_days = subs(("a", "2020-01-01", "2020-02-01", 10), ("a", "2020-02-11", "2020-03-11", 10))
    assert GAP_TOLERANCE_DAYS < 10
    assert assign_spells(ten_days)["spell"].tolist() == [0, 1]
    assert assign_spells(ten_days, tolerance_days=14)["spell"].tolist() == [0, 0]


def test_overlapping_and_unsorted_periods_form_one_spell():
    spells = assign_spells(
        subs(
            ("a", "2020-02-20", "2020-03-20", 10),
            ("a", "2020-01-01", "2020-03-01", 10),
            ("a", "2020-03-20", "2020-04-20", 10),
        )
    )
    assert spells["start_date"].is_monotonic_increasing
    assert spells["spell"].tolist() == [0, 0, 0]
    assert churned(spells, "2020-05-01") == {"a": ts("2020-04-20")}


def test_mrr_change_gives_upsell_and_downgrade():
    spells = assign_spells(
        subs(
            ("a", "2020-01-01", "2020-02-01", 10),
            ("a", "2020-02-01", "2020-03-01", 20),
            ("a", "2020-03-01", "2020-04-01", 20),
            ("a", "2020-04-01", "2020-05-01", 5),
        )
    )
    rows = contract_rows(spells)
    assert rows["change"].tolist() == ["new", "upsell", "renewal", "downgrade"]
    assert rows["arr"].tolist() == [120.0, 240.0, 240.0, 60.0]
    assert "seats" not in rows, "no quantity in the source: seats unknown, not zero"


def test_data_end_is_the_last_subscription_start():
    s = subs(("a", "2020-01-01", "2020-07-01", 10), ("b", "2020-05-31", "2020-06-30", 10))
    assert find_data_end(s) == ts("2020-05-31")


def test_event_value_gives_quantity_when_numeric_else_one():
    q = event_quantity(pd.Series(["3", None, "x", "2.5"], dtype=object))
    assert q.tolist() == [3.0, 1.0, 1.0, 2.5]


def test_event_names_come_from_event_type_and_unknown_ids_are_reported():
    events = pd.DataFrame(
        {
            "account_id": ["1", "1", "2"],
            "event_time": to_utc(pd.Series(["2020-01-01 10:00:00"] * 3)),
            "event_type_id": [0, 9, 1],
            "user_id": ["0", "0", "0"],
            "event_value": [None, "2", None],
        }
    )
    types = pd.DataFrame({"event_type_id": ["0", "1"], "event_type_name": ["post", "like"]})
    report = ImportReport("test")
    usage = build_usage(events, types, report)
    assert usage["event"].tolist() == ["post", "event_type_9", "like"]
    assert usage["quantity"].tolist() == [1.0, 2.0, 1.0]
    note = report.get("unknown_event_type")
    assert note is not None and note.count == 1 and note.examples == ["9"]


def test_write_tables_refuses_a_directory_holding_other_contract_tables(tmp_path):
    (tmp_path / "tickets.csv").write_text("account_id,opened_at\n", encoding="utf-8")
    accounts = pd.DataFrame({"account_id": ["a"], "created_at": [ts("2020-01-01")]})
    with pytest.raises(ChurnlensError, match=r"tickets\.csv"):
        write_tables({"accounts": accounts}, tmp_path, None)
    assert not (tmp_path / "accounts.parquet").exists()


# --- the committed sample -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> tuple[dict[str, pd.DataFrame], dict, ImportReport]:
    return convert_fightchurn(SAMPLE)


@pytest.fixture(scope="module")
def raw_subs() -> pd.DataFrame:
    df = pd.read_csv(SAMPLE / "subscription.csv", dtype={"account_id": str})
    return df.assign(
        start_date=pd.to_datetime(df["start_date"]), end_date=pd.to_datetime(df["end_date"])
    )


def test_sample_writes_only_tables_with_source_data(sample):
    tables, _, report = sample
    assert set(tables) == {"accounts", "usage_events", "contracts", "churn_events"}
    assert report.rows == {k: len(v) for k, v in tables.items()}
    assert_contract_shape(tables)


def test_sample_churners_match_the_raw_subscriptions(sample, raw_subs):
    tables, _, _ = sample
    data_end = raw_subs["start_date"].max()
    last_end = raw_subs.groupby("account_id")["end_date"].max()
    expected = set(last_end.index[last_end <= data_end])
    assert len(expected) >= 10
    churn = tables["churn_events"]
    assert set(churn["account_id"]) == expected
    got = churn.set_index("account_id")["churned_at"].dt.tz_localize(None)
    assert (got == last_end[got.index]).all()


def test_sample_short_gap_account_is_renewed_not_churned(sample, raw_subs):
    tables, _, _ = sample
    s = raw_subs.sort_values(["account_id", "start_date"])
    gap = (s["start_date"] - s.groupby("account_id")["end_date"].shift()).dt.days
    gapped = s.loc[gap > 0, "account_id"].unique()
    assert len(gapped) == 1 and 0 < gap.max() <= GAP_TOLERANCE_DAYS
    account = gapped[0]
    assert account not in set(tables["churn_events"]["account_id"])
    changes = tables["contracts"].loc[tables["contracts"]["account_id"] == account, "change"]
    assert changes.tolist()[0] == "new" and set(changes.tolist()[1:]) == {"renewal"}


def test_sample_accounts_dated_by_first_subscription(sample, raw_subs):
    accounts = sample[0]["accounts"].set_index("account_id")
    first = raw_subs.groupby("account_id")["start_date"].min()
    assert (accounts["created_at"].dt.tz_localize(None) == first[accounts.index]).all()
    assert (accounts["arr"] == 120.0).all() and (accounts["plan"] == "basic").all()


def test_sample_events_after_data_end_are_dropped_and_counted(sample, raw_subs):
    tables, _, report = sample
    events = pd.read_csv(SAMPLE / "event.csv.gz", usecols=["event_time"])
    cut = raw_subs["start_date"].max() + pd.Timedelta(days=1)
    late = int((pd.to_datetime(events["event_time"]) >= cut).sum())
    assert late > 0
    note = report.get("after_data_end")
    assert note is not None and note.count == late and len(note.examples) == 3
    usage = tables["usage_events"]
    assert len(usage) == len(events) - late
    assert usage["occurred_at"].max() < pd.Timestamp(cut, tz="UTC")
    assert usage["quantity"].eq(1.0).all()


def test_sample_config_is_valid_and_names_real_events(sample):
    tables, config, _ = sample
    cfg = config_from_dict(config)
    names = set(tables["usage_events"]["event"])
    assert cfg.events.login and set(cfg.events.login) <= names
    assert cfg.events.core_features and set(cfg.events.core_features) <= names
    assert not set(cfg.events.login) & set(cfg.events.core_features)
    assert cfg.labels.horizon_weeks == 4
    # every event type is a tracked group of its own, named after it
    assert cfg.events.tracked == {str(n): (str(n),) for n in sorted(names)}


def test_import_output_loads_through_the_contract(tmp_path, raw_subs):
    out = tmp_path / "fc"
    report = import_fightchurn(SAMPLE, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "accounts.parquet",
        "churn_events.parquet",
        "churnlens.yaml",
        "contracts.parquet",
        "usage_events.parquet",
    ]
    tables = load_tables(out, load_config(data_dir=out), now=NOW)
    assert tables.report.ok
    assert tables.report.rows_kept == report.rows, [str(p) for p in tables.report.problems]
    assert tables.as_of == raw_subs["start_date"].max().date(), "data end drives the default as_of"
    assert tables.config.events.login == ("adview",)
    assert "like" in tables.config.events.tracked


@pytest.mark.slow
def test_full_fightchurn_churner_count_is_close_to_270():
    if not FULL.is_dir():
        pytest.skip(f"full fightchurn data not present at {FULL}")
    t0 = time.perf_counter()
    tables, _, report = convert_fightchurn(FULL)
    seconds = time.perf_counter() - t0
    assert len(tables["accounts"]) == 2934
    assert abs(len(tables["churn_events"]) - 270) <= 5, len(tables["churn_events"])
    assert len(tables["contracts"]) == 11525
    assert seconds < 60, f"full conversion took {seconds:.0f} s"
    assert_contract_shape(tables)
    note = report.get("after_data_end")
    assert note is not None and note.count + len(tables["usage_events"]) == 3_639_588
