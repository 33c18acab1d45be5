"""The score history: appends, latest / previous / history queries, all-or-nothing runs.

Every test runs on SQLite (a file in tmp_path) and on PostgreSQL (a schema of its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from churnlens.errors import ChurnlensError, StoreError
from churnlens.store import ScoreStore, account_details, open_store

from .conftest import at, score_row


def _append(store: ScoreStore, rows: list[dict[str, Any]], minutes: int, **kw: Any) -> int:
    kw.setdefault("as_of", rows[0]["as_of"] if rows else "2025-03-02")
    kw.setdefault("model_version", "churnlens v1")
    return store.append_scores(rows, scored_at=at(minutes), **kw)


def _count(store: ScoreStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def test_append_returns_a_run_and_stores_every_row_with_its_run_fields(store: ScoreStore):
    rows = [score_row("a", 0.7), score_row("b", 0.1, arr=None)]
    accounts = {"a": {"csm_id": "csm-1", "name": "Acme", "plan": "pro"}}
    run_id = store.append_scores(
        rows,
        as_of=date(2025, 3, 2),
        model_version="churnlens v3",
        source="api",
        lang="ja",
        accounts=accounts,
        data_digest="ab" * 32,
        scored_at=at(0),
    )
    [run] = store.runs()
    assert run == {
        "run_id": run_id,
        "scored_at": at(0),
        "as_of": date(2025, 3, 2),
        "model_version": "churnlens v3",
        "n_accounts": 2,
        "data_digest": "ab" * 32,
        "source": "api",
    }
    a, b = store.run_scores(run_id)
    assert a["account_id"] == "a" and a["as_of"] == date(2025, 3, 2)
    assert a["churn_probability"] == pytest.approx(0.7) and a["health_score"] == 30
    assert a["risk_band"] == "red" and a["touch_tier"] == "high"
    assert a["arr"] == 12000.0 and a["arr_at_risk"] == pytest.approx(8400.0)
    assert a["top_reasons"] == rows[0]["top_reasons"]  # JSON round trip, non-ASCII kept
    assert a["playbooks"] == rows[0]["playbooks"]
    assert (a["csm_id"], a["name"], a["plan"]) == ("csm-1", "Acme", "pro")
    assert (a["model_version"], a["source"], a["lang"]) == ("churnlens v3", "api", "ja")
    assert a["scored_at"] == at(0) and a["scored_at"].tzinfo is not None
    assert b["arr"] is None and b["arr_at_risk"] is None
    assert (b["csm_id"], b["name"], b["plan"]) == (None, None, None)


def test_latest_is_the_newest_as_of_not_the_newest_run(store: ScoreStore):
    _append(store, [score_row("a", 0.2, "2025-03-02"), score_row("b", 0.3, "2025-03-02")], 0)
    _append(store, [score_row("a", 0.6, "2025-03-09")], 10, model_version="churnlens v2")
    # a backfill of an older date, run last, must not become the latest
    _append(store, [score_row("a", 0.9, "2025-02-23"), score_row("b", 0.9, "2025-02-23")], 20)
    latest = {r["account_id"]: r for r in store.latest_scores()}
    assert latest["a"]["as_of"] == date(2025, 3, 9)
    assert latest["a"]["churn_probability"] == pytest.approx(0.6)
    assert latest["a"]["model_version"] == "churnlens v2"
    assert latest["b"]["as_of"] == date(2025, 3, 2)
    assert latest["b"]["churn_probability"] == pytest.approx(0.3)


def test_latest_ties_on_as_of_go_to_the_later_run_then_the_higher_run_id(store: ScoreStore):
    first = _append(store, [score_row("a", 0.1)], 0)
    second = _append(store, [score_row("a", 0.2)], 5)
    [row] = store.latest_scores(["a"])
    assert row["run_id"] == second and row["churn_probability"] == pytest.approx(0.2)
    # same as_of and the very same scored_at: the later run (higher id) wins
    third = _append(store, [score_row("a", 0.3)], 5)
    assert third > second > first
    [row] = store.latest_scores(["a"])
    assert row["run_id"] == third and row["churn_probability"] == pytest.approx(0.3)


def test_latest_filters_by_accounts_csm_and_plan(store: ScoreStore):
    accounts = {
        "a": {"csm_id": "c1", "plan": "pro"},
        "b": {"csm_id": "c2", "plan": "pro"},
        "c": {"csm_id": "c1", "plan": "basic"},
    }
    _append(store, [score_row(x, 0.1) for x in "abc"], 0, accounts=accounts)
    # "a" moved to another CSM since: the latest row decides
    _append(store, [score_row("a", 0.2, "2025-03-09", csm_id="c2", plan="pro")], 5)
    ids = lambda rows: [r["account_id"] for r in rows]  # noqa: E731
    assert ids(store.latest_scores()) == ["a", "b", "c"]
    assert ids(store.latest_scores(["c", "a", "zzz"])) == ["a", "c"]
    assert store.latest_scores([]) == []
    assert ids(store.latest_scores(csm_id="c1")) == ["c"]
    assert ids(store.latest_scores(csm_id="c2", plan="pro")) == ["a", "b"]
    assert ids(store.latest_scores(["a", "c"], plan="pro")) == ["a"]


def test_latest_scores_many_account_ids_are_queried_in_chunks(store: ScoreStore):
    rows = [score_row(f"acc-{i:05d}", (i % 100) / 100) for i in range(1234)]
    _append(store, rows, 0)
    wanted = [f"acc-{i:05d}" for i in range(0, 1234, 1)] + ["missing"]
    got = store.latest_scores(wanted)
    assert [r["account_id"] for r in got] == sorted(r["account_id"] for r in rows)
    assert store.runs()[0]["n_accounts"] == 1234


def test_history_is_ordered_by_as_of_one_point_per_date(store: ScoreStore):
    _append(store, [score_row("a", 0.5, "2025-03-16")], 0, model_version="m v1")
    _append(store, [score_row("a", 0.1, "2025-03-02")], 1, model_version="m v1")
    _append(store, [score_row("a", 0.3, "2025-03-09")], 2, model_version="m v1")
    _append(store, [score_row("a", 0.35, "2025-03-09")], 3, model_version="m v2")
    _append(store, [score_row("b", 0.9, "2025-03-09")], 4)
    hist = store.history("a")
    assert [r["as_of"] for r in hist] == [date(2025, 3, d) for d in (2, 9, 16)]
    assert [r["churn_probability"] for r in hist] == pytest.approx([0.1, 0.35, 0.5])
    every = store.history("a", all_runs=True)
    assert [(r["as_of"].day, r["model_version"]) for r in every] == [
        (2, "m v1"),
        (9, "m v1"),
        (9, "m v2"),
        (16, "m v1"),
    ]
    v1 = store.history("a", model_version="m v1")
    assert [r["churn_probability"] for r in v1] == pytest.approx([0.1, 0.3, 0.5])
    assert store.history("nobody") == []


def test_previous_scores_are_from_the_date_before_the_latest(store: ScoreStore):
    _append(store, [score_row("a", 0.1, "2025-03-02"), score_row("b", 0.4, "2025-03-02")], 0)
    _append(store, [score_row("a", 0.2, "2025-03-09")], 1)
    _append(store, [score_row("a", 0.25, "2025-03-09")], 2)  # re-run of the latest date
    _append(store, [score_row("a", 0.6, "2025-03-16")], 3)
    _append(store, [score_row("a", 0.7, "2025-03-16")], 4)
    prev = store.previous_scores()
    assert [r["account_id"] for r in prev] == ["a"]  # b was scored on one date only
    assert prev[0]["as_of"] == date(2025, 3, 9)
    assert prev[0]["churn_probability"] == pytest.approx(0.25)
    [latest] = store.latest_scores(["a"])
    assert latest["churn_probability"] - prev[0]["churn_probability"] == pytest.approx(0.45)
    assert store.previous_scores(["b"]) == []


def _snapshot(store: ScoreStore) -> tuple[Any, ...]:
    return (store.runs(), store.latest_scores(), _count(store, "churnlens_scores"))


def test_a_bad_row_stores_nothing_of_its_run(store: ScoreStore):
    _append(store, [score_row("a", 0.2), score_row("b", 0.3)], 0)
    before = _snapshot(store)
    bad = score_row("b", 0.3, "2025-03-09", churn_probability=float("nan"))
    rows = [score_row("a", 0.5, "2025-03-09"), bad]
    with pytest.raises(StoreError, match=r"row 1 \(account b\): churn_probability"):
        _append(store, rows, 5)
    assert _snapshot(store) == before
    missing = score_row("c", 0.2)
    del missing["risk_band"]
    with pytest.raises(StoreError, match="missing 'risk_band'; nothing of this run was stored"):
        _append(store, [score_row("a", 0.5), missing], 6)
    assert _snapshot(store) == before


def test_an_exception_mid_write_stores_nothing_of_its_run(store: ScoreStore, monkeypatch):
    monkeypatch.setattr("churnlens.store.scores.BATCH_ROWS", 10)  # some batches reach the db

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(35):
            yield score_row(f"acc-{i}", 0.5, "2025-03-09")
        raise RuntimeError("scoring crashed")

    _append(store, [score_row("acc-1", 0.2)], 0)
    before = _snapshot(store)
    with pytest.raises(RuntimeError, match="scoring crashed"):
        store.append_scores(rows(), as_of="2025-03-09", model_version="m", scored_at=at(1))
    assert _snapshot(store) == before
    # the store still works afterwards
    run_id = _append(store, [score_row("acc-1", 0.4, "2025-03-09")], 2)
    assert store.latest_scores(["acc-1"])[0]["run_id"] == run_id


def test_a_database_refusal_stores_nothing_of_its_run(store: ScoreStore):
    _append(store, [score_row("a", 0.2)], 0)
    before = _snapshot(store)
    duplicate = [score_row("x", 0.1), score_row("y", 0.2), score_row("x", 0.3)]
    with pytest.raises(StoreError, match="storing the scores failed"):
        _append(store, duplicate, 1)
    assert _snapshot(store) == before
    assert isinstance(StoreError("x"), ChurnlensError)


def test_rows_with_json_text_and_own_profile_fields_are_accepted(store: ScoreStore):
    row = score_row("a", 0.3, csm_id="row-csm", lang="ja")
    row["top_reasons"] = '[{"label": "x"}]'
    run_id = _append(store, [row], 0, accounts={"a": {"csm_id": "table-csm", "name": "A"}})
    [got] = store.run_scores(run_id)
    assert got["top_reasons"] == [{"label": "x"}]
    assert (got["csm_id"], got["name"], got["lang"]) == ("row-csm", "A", "ja")


def test_runs_are_listed_newest_first(store: ScoreStore):
    ids = [_append(store, [score_row("a", 0.1)], m) for m in (0, 5, 10)]
    assert [r["run_id"] for r in store.runs()] == ids[::-1]
    assert [r["run_id"] for r in store.runs(limit=2)] == ids[:0:-1]


def test_stored_times_are_utc(store: ScoreStore):
    from datetime import timedelta, timezone

    tokyo = datetime(2025, 3, 1, 21, 0, tzinfo=timezone(timedelta(hours=9)))
    _append(store, [score_row("a", 0.1)], 0)
    run_id = store.append_scores(
        [score_row("a", 0.2)], as_of="2025-03-02", model_version="m", scored_at=tokyo
    )
    run = next(r for r in store.runs() if r["run_id"] == run_id)
    assert run["scored_at"] == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert run["scored_at"].utcoffset() == timedelta(0)


def test_account_details_takes_what_the_accounts_table_has():
    import pandas as pd

    df = pd.DataFrame(
        {"account_id": ["a", "b", "b"], "csm_id": ["c1", None, "c9"], "seats": [1, 2, 3]}
    )
    assert account_details(df) == {
        "a": {"csm_id": "c1", "name": None, "plan": None},
        "b": {"csm_id": "c9", "name": None, "plan": None},
    }


def test_store_can_be_reopened_and_keeps_its_rows(db_url: str):
    with open_store(db_url) as s:
        run_id = s.append_scores([score_row("a", 0.4)], as_of="2025-03-02", model_version="m")
    with open_store(db_url) as s:
        assert [r["run_id"] for r in s.latest_scores()] == [run_id]
