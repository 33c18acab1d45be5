"""Score details (activity, silent flag, translations), bulk histories and the change key."""

from __future__ import annotations

from datetime import date

import pytest

from churnlens.errors import StoreError
from churnlens.store import ScoreStore

from .conftest import at, score_row

ACTIVITY = {"week_start": ["2025-02-17", "2025-02-24"], "logins": [4, None]}
JA = {"ja": {"top_reasons": [{"family": "usage", "label": "利用の減少"}], "playbooks": []}}


def test_details_are_stored_with_the_run_and_read_back(store: ScoreStore):
    rows = [score_row("a", 0.6, translations=JA), score_row("b", 0.1), score_row("c", 0.2)]
    run = store.append_scores(
        rows,
        as_of="2025-03-02",
        model_version="m",
        details={"a": {"activity": ACTIVITY, "silent_decline": 1.0}, "zz": {"activity": ACTIVITY}},
    )
    got = store.details([(run, "a"), (run, "b"), (run, "c"), (run, "zz"), (run + 1, "a")])
    assert set(got) == {(run, "a")}  # b, c: nothing to keep; zz: not in this run
    d = got[(run, "a")]
    assert d["activity"] == ACTIVITY and d["silent_decline"] == 1 and d["translations"] == JA
    # A row's translations alone are kept too.
    run2 = store.append_scores(
        [score_row("b", 0.3, translations=JA)], as_of="2025-03-09", model_version="m"
    )
    only = store.details([(run2, "b")])[(run2, "b")]
    assert only["activity"] is None and only["silent_decline"] is None


def test_bad_details_store_nothing_of_the_run(store: ScoreStore):
    with pytest.raises(StoreError, match=r"row 1 \(account b\) details: activity: expected"):
        store.append_scores(
            [score_row("a", 0.1), score_row("b", 0.2)],
            as_of="2025-03-02",
            model_version="m",
            details={"b": {"activity": ["not", "a", "mapping"]}},
        )
    assert store.runs() == [] and store.latest_scores() == []


def test_histories_are_the_last_points_per_account_one_per_date(store: ScoreStore):
    for i, (d, p) in enumerate([("2025-02-16", 0.1), ("2025-02-23", 0.2), ("2025-03-02", 0.3)]):
        store.append_scores(
            [score_row("a", p, as_of=d), score_row("b", p / 2, as_of=d)],
            as_of=d,
            model_version="m",
            scored_at=at(10 * i),
        )
    # A later re-run of 2025-02-23 replaces that date's point (as in history()).
    store.append_scores(
        [score_row("a", 0.9, as_of="2025-02-23")],
        as_of="2025-02-23",
        model_version="m",
        scored_at=at(100),
    )
    all_h = store.histories(limit=2)
    assert [(p["as_of"], p["churn_probability"]) for p in all_h["a"]] == [
        (date(2025, 2, 23), 0.9),
        (date(2025, 3, 2), 0.3),
    ]
    assert all_h["a"][-1]["risk_band"] == "yellow"
    one = store.histories(["b", "nobody"], limit=12)
    assert list(one) == ["b"] and len(one["b"]) == 3
    assert [p["churn_probability"] for p in store.histories(["a"])["a"]] == [
        p["churn_probability"] for p in store.history("a")
    ]
    with pytest.raises(ValueError, match="limit must be >= 1"):
        store.histories(limit=0)


def test_last_change_moves_with_every_run(store: ScoreStore):
    assert store.last_change() == (0, 0)
    run = store.append_scores([score_row("a", 0.1)], as_of="2025-03-02", model_version="m")
    assert store.last_change() == (run, 1)
