"""Point in time, proven by property tests: later rows never change what is seen at t.

For random small tables and a random date t: appending any rows dated after t to any table must
not change an indicator or a label input at t; renaming account ids must change nothing.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnlens.features.indicators import compute_indicators
from churnlens.features.snapshots import build_snapshots
from churnlens.features.timeline import build_timeline

from ..conftest import make_tables

START = date(2024, 1, 1)
DAYS = 200


def _random_frames(
    rng: np.random.Generator, n_acc: int, lo: int, hi: int, ids: list[str]
) -> dict[str, pd.DataFrame]:
    """Rows for every table dated uniformly in days [lo, hi) after START."""

    def ts(n: int) -> pd.Series:
        days = rng.integers(lo, hi, n)
        secs = rng.integers(0, 86400, n)
        return pd.Series(pd.Timestamp(START) + pd.to_timedelta(days * 86400 + secs, unit="s"))

    def acc(n: int) -> list[str]:
        return [ids[i] for i in rng.integers(0, n_acc, n)]

    n = int(rng.integers(5, 60))
    m = int(rng.integers(0, 8))
    sent = ts(m)
    return {
        "usage_events": pd.DataFrame(
            {
                "account_id": acc(n),
                "occurred_at": ts(n),
                "event": rng.choice(["login", "report", "export", "share"], n),
                "user_id": [f"u{i}" for i in rng.integers(0, 5, n)],
                "quantity": rng.integers(1, 4, n).astype(float),
            }
        ),
        "tickets": pd.DataFrame(
            {
                "account_id": acc(m),
                "opened_at": ts(m),
                "closed_at": ts(m) + pd.Timedelta(days=3),
                "priority": rng.choice(["urgent", "low"], m),
            }
        ),
        "surveys": pd.DataFrame(
            {
                "account_id": acc(m),
                "sent_at": sent,
                "responded_at": sent + pd.Timedelta(days=2),
                "score": rng.integers(0, 11, m),
            }
        ),
        "touchpoints": pd.DataFrame(
            {
                "account_id": acc(m),
                "occurred_at": ts(m),
                "kind": "call",
                "direction": rng.choice(["inbound", "outbound"], m),
            }
        ),
        "contracts": pd.DataFrame(
            {
                "account_id": acc(m),
                "effective_at": ts(m),
                "arr": rng.integers(1, 100, m) * 1000.0,
                "seats": rng.integers(1, 50, m) * 1.0,
            }
        ),
    }


def _base(seed: int) -> tuple[dict[str, pd.DataFrame], list[str]]:
    rng = np.random.default_rng(seed)
    n_acc = int(rng.integers(1, 5))
    ids = [f"acc-{i}" for i in range(n_acc)]
    frames = _random_frames(rng, n_acc, 10, DAYS, ids)
    frames["accounts"] = pd.DataFrame(
        {
            "account_id": ids,
            "created_at": [
                pd.Timestamp(START) + pd.Timedelta(days=int(d)) for d in rng.integers(0, 10, n_acc)
            ],
            "arr": rng.integers(1, 100, n_acc) * 1000.0,
        }
    )
    churn_ids = [i for i in ids if rng.random() < 0.4]
    frames["churn_events"] = pd.DataFrame(
        {
            "account_id": churn_ids,
            "churned_at": [
                pd.Timestamp(START) + pd.Timedelta(days=int(rng.integers(30, DAYS + 80)))
                for _ in churn_ids
            ],
        }
    )
    return frames, ids


def _seen_at(
    frames: dict[str, pd.DataFrame], t: date, data_end: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    tables = make_tables(frames, as_of=data_end)
    tl = build_timeline(tables)
    alive = tables.accounts
    ind = compute_indicators(tl, alive, as_of=t).sort_values("account_id").reset_index(drop=True)
    snaps = build_snapshots(tables, [t])
    # label *inputs* at t: which accounts are alive at t (labels look ahead by design)
    alive_at_t = snaps[["account_id", "as_of"]].sort_values("account_id").reset_index(drop=True)
    return ind, alive_at_t


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), t_day=st.integers(20, DAYS), extra_seed=st.integers(0, 10_000))
def test_rows_dated_after_t_never_change_indicators_at_t(seed, t_day, extra_seed):
    frames, ids = _base(seed)
    t = START + timedelta(days=t_day)
    rng = np.random.default_rng(extra_seed)
    later = _random_frames(rng, len(ids), t_day + 1, DAYS + 120, ids)
    grown = {
        k: pd.concat([frames[k], later[k]], ignore_index=True) if k in later else frames[k]
        for k in frames
    }
    end = START + timedelta(days=DAYS + 130)
    before_ind, before_alive = _seen_at(frames, t, end)
    after_ind, after_alive = _seen_at(grown, t, end)
    pd.testing.assert_frame_equal(before_ind, after_ind)
    pd.testing.assert_frame_equal(before_alive, after_alive)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), t_day=st.integers(20, DAYS))
def test_renaming_account_ids_changes_nothing(seed, t_day):
    frames, ids = _base(seed)
    t = START + timedelta(days=t_day)
    new = {i: f"zz-{len(ids) - k:03d}-{i[::-1]}" for k, i in enumerate(ids)}
    renamed = {k: v.assign(account_id=v["account_id"].map(new)) for k, v in frames.items()}
    end = START + timedelta(days=DAYS + 30)
    a, _ = _seen_at(frames, t, end)
    b, _ = _seen_at(renamed, t, end)
    a = a.assign(account_id=a["account_id"].map(new)).sort_values("account_id")
    b = b.sort_values("account_id")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
