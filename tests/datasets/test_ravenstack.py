"""The ravenstack adapter: repairs on tiny frames, then the committed sample's notes and tables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from churnlens.config import config_from_dict, load_config
from churnlens.datasets.base import ImportReport, to_utc
from churnlens.datasets.ravenstack import (
    attach_accounts,
    avoidable_from_reasons,
    build_churn,
    contract_changes,
    convert_ravenstack,
    dedupe_usage_ids,
    import_ravenstack,
    order_subscriptions,
)
from churnlens.features.contract import load_tables
from churnlens.features.schema import TABLES

SAMPLE = Path(__file__).parents[1] / "data" / "ravenstack-sample"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def raw(name: str) -> pd.DataFrame:
    return pd.read_csv(SAMPLE / f"ravenstack_{name}.csv", dtype=str)


def note(report: ImportReport, check: str, table: str | None = None):
    found = report.get(check, table)
    assert found is not None, f"no {check} note: {[str(n) for n in report.notes]}"
    assert 1 <= len(found.examples) <= min(3, found.count)
    return found


# --- rules on tiny frames ------------------------------------------------------------------------


def usage_rows(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["usage_id", "subscription_id", "usage_date", "feature_name"])
    return df.assign(usage_count="1", usage_date=to_utc(df["usage_date"]))


def test_exact_duplicate_usage_row_is_kept_first_and_counted():
    usage = usage_rows(
        ("U-1", "S-1", "2024-01-01", "f1"),
        ("U-2", "S-1", "2024-01-02", "f2"),
        ("U-1", "S-1", "2024-01-01", "f1"),
    )
    report = ImportReport("test")
    out = dedupe_usage_ids(usage, report)
    assert out.index.tolist() == [0, 1], "the first of the two identical rows is kept"
    dup = note(report, "duplicate_usage_row")
    assert dup.count == 1 and dup.examples == ["U-1"]
    assert report.get("duplicate_usage_id") is None


def test_usage_id_shared_by_different_rows_is_kept_and_counted():
    usage = usage_rows(
        ("U-1", "S-1", "2024-01-01", "f1"),
        ("U-1", "S-2", "2023-05-09", "f7"),
        ("U-2", "S-1", "2024-01-02", "f2"),
    )
    report = ImportReport("test")
    out = dedupe_usage_ids(usage, report)
    assert len(out) == 3, "an id collision is two events, not one repeated"
    shared = note(report, "duplicate_usage_id")
    assert shared.count == 2 and shared.examples == ["U-1"] and "1 ids" in shared.message
    assert report.get("duplicate_usage_row") is None


def test_usage_with_unknown_subscription_is_dropped_and_counted():
    usage = usage_rows(("U-1", "S-1", "2024-01-01", "f1"), ("U-2", "S-9", "2024-01-02", "f2"))
    subs = pd.DataFrame(
        {
            "subscription_id": ["S-1"],
            "account_id": ["A-1"],
            "start_date": to_utc(pd.Series(["2024-01-01"])),
            "end_date": to_utc(pd.Series([None])),
        }
    )
    report = ImportReport("test")
    out = attach_accounts(usage, subs, report)
    assert out["account_id"].tolist() == ["A-1"]
    assert note(report, "unknown_subscription").examples == ["U-2"]


def test_contract_change_from_flags_and_first_subscription():
    subs = pd.DataFrame(
        {
            "subscription_id": ["S-5", "S-4", "S-3", "S-2", "S-1", "S-6"],
            "account_id": ["A", "A", "A", "A", "A", "B"],
            "start_date": to_utc(
                pd.Series(
                    [
                        "2024-05-01",
                        "2024-04-01",
                        "2024-03-01",
                        "2024-02-01",
                        "2024-01-01",
                        "2024-01-01",
                    ]
                )
            ),
            "upgrade_flag": ["False", "True", "False", "True", "True", "True"],
            "downgrade_flag": ["False", "True", "True", "False", "False", "False"],
        }
    )
    ordered = order_subscriptions(subs)
    assert ordered["subscription_id"].tolist() == ["S-1", "S-2", "S-3", "S-4", "S-5", "S-6"]
    change = contract_changes(ordered).tolist()
    assert change == ["new", "upsell", "downgrade", None, "renewal", "new"]


def test_avoidable_is_false_only_for_clearly_unavoidable_reasons():
    reasons = pd.Series(["pricing", "Acquired", "bankruptcy", "support"])
    assert avoidable_from_reasons(reasons).tolist() == [True, False, False, True]
    assert avoidable_from_reasons(pd.Series(["pricing", "budget", "unknown"])) is None


def test_churn_without_unavoidable_reasons_leaves_avoidable_unknown():
    churn = pd.DataFrame(
        {
            "account_id": ["A", "B"],
            "churn_date": to_utc(pd.Series(["2024-01-01", "2024-02-01"])),
            "reason_code": ["pricing", "budget"],
        }
    )
    report = ImportReport("test")
    out = build_churn(churn, report)
    assert "avoidable" not in out and out["reason"].tolist() == ["pricing", "budget"]
    assert note(report, "avoidable_unknown").count == 2
    with_acquired = churn.assign(reason_code=["acquired", "budget"])
    out = build_churn(with_acquired, ImportReport("test"))
    assert out["avoidable"].dtype == bool and out["avoidable"].tolist() == [False, True]


# --- the committed sample -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample() -> tuple[dict[str, pd.DataFrame], dict, ImportReport]:
    return convert_ravenstack(SAMPLE)


def test_sample_tables_follow_the_contract(sample):
    tables, config, report = sample
    assert set(tables) == {"accounts", "usage_events", "tickets", "contracts", "churn_events"}
    assert report.rows == {k: len(v) for k, v in tables.items()}
    for name, df in tables.items():
        spec = TABLES[name]
        assert set(spec.required) <= set(df.columns) <= set(spec.names), name
        for col in df.columns:
            kind = spec.column(col).kind
            if kind == "id" or col == "ticket_id":
                assert df[col].map(type).eq(str).all(), (name, col)
            if kind == "timestamp":
                assert str(df[col].dtype) == "datetime64[us, UTC]", (name, col)
    assert config_from_dict(config).events.login == ()


def test_sample_maps_every_source_row(sample):
    tables, _, _ = sample
    assert len(tables["accounts"]) == len(raw("accounts"))
    assert len(tables["contracts"]) == len(raw("subscriptions"))
    assert len(tables["usage_events"]) == len(raw("feature_usage")), "no exact repeats in sample"
    assert len(tables["tickets"]) == len(raw("support_tickets"))
    assert len(tables["churn_events"]) == len(raw("churn_events"))
    acc = tables["accounts"].set_index("account_id")
    src = raw("accounts").set_index("account_id")
    assert (acc["name"] == src["account_name"]).all() and (acc["region"] == src["country"]).all()
    assert (acc["created_at"].dt.strftime("%Y-%m-%d") == src["signup_date"]).all()


def test_sample_notes_report_the_known_inconsistencies(sample):
    _, _, report = sample
    acc, churn, usage = raw("accounts"), raw("churn_events"), raw("feature_usage")
    flag = acc["churn_flag"] == "True"
    has_event = acc["account_id"].isin(churn["account_id"])
    assert note(report, "churn_event_without_flag").count == (~flag & has_event).sum() > 0
    assert note(report, "churn_flag_without_event").count == (flag & ~has_event).sum() > 0

    shared = usage["usage_id"].duplicated(keep=False)
    assert note(report, "duplicate_usage_id").count == shared.sum() >= 6

    subs = raw("subscriptions").set_index("subscription_id")
    start = pd.to_datetime(usage["subscription_id"].map(subs["start_date"]))
    end = pd.to_datetime(usage["subscription_id"].map(subs["end_date"]))
    day = pd.to_datetime(usage["usage_date"])
    outside = (day < start) | (day > end)
    assert note(report, "outside_subscription").count == outside.sum() > len(usage) / 2

    per = churn["account_id"].value_counts()
    several = note(report, "several_churns")
    assert several.count == per[per > 1].sum()
    assert f"({(per > 1).sum()} accounts)" in several.message
    for check in (
        "same_day_churns",
        "reactivation_without_prior_churn",
        "upgrade_and_downgrade",
        "overlapping_subscriptions",
        "open_after_churn",
        "change_disagrees_with_arr",
    ):
        assert note(report, check).count > 0, check
    assert note(report, "before_signup", "usage_events").count > 0
    assert note(report, "before_signup", "tickets").count > 0


def test_sample_import_loads_through_the_contract(tmp_path, sample):
    out = tmp_path / "rs"
    report = import_ravenstack(SAMPLE, out)
    tables = load_tables(out, load_config(data_dir=out), now=NOW)
    assert tables.report.ok
    assert tables.report.rows_read == report.rows
    # The loader drops what the adapter reported as dated before signup, and nothing else.
    dropped = report.rows["usage_events"] - tables.report.rows_kept["usage_events"]
    assert dropped == note(report, "before_signup", "usage_events").count
