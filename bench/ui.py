"""Benchmark: the CSM page's portfolio view for a real-sized book, beside a plain SELECT.

20,000 accounts scored on two dates (rows synthesised with realistic reasons, plays, Japanese
translations and 26 weeks of activity each; no model needed) in a SQLite score store. Server time
of ``GET /ui/`` in-process (the UI app through Starlette's TestClient: store queries, ranking,
totals, one page of HTML with sparklines), median of several runs:

- cold: the book read from the store on every request (no cache)
- warm: the book cached until a new run is stored (what a CSM's second click costs)
- filtered (``?band=red&tier=high``), the account page, the CSV export of all 20,000 rows

The floor is a plain ``SELECT *`` of the same rows (each account's latest score) through the same
engine. Target: cold portfolio under 1 s on 2 cores. ``BENCH_UI_ACCOUNTS`` overrides 20,000.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from churnlens.serving.ui import build_ui_app
from churnlens.store import open_store

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
N_ACCOUNTS = int(os.environ.get("BENCH_UI_ACCOUNTS", "20000"))
DATES = (date(2025, 6, 8), date(2025, 6, 15))
REPEAT = 5
TARGET_S = 1.0


def median_wall(fn: Callable[[], Any], repeat: int = REPEAT) -> tuple[float, Any]:
    """Median wall time of ``repeat`` runs (after one warm-up), and the last result."""
    out = fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def reasons(lang: str, rng: random.Random) -> list[dict[str, Any]]:
    fams = rng.sample(["usage", "adoption", "support", "voice", "silence", "commercial"], 3)
    out = []
    for f in fams:
        if lang == "ja":
            ev = [
                f"直近4週のログイン数が前8週比で{rng.randint(10, 80)}%減少",
                "アンケート未回答が6か月",
            ]
        else:
            ev = [
                f"Logins down {rng.randint(10, 80)}% vs the prior 8 weeks",
                "No survey in 6 months",
            ]
        out.append({"family": f, "label": f"{f} ({lang})", "impact": rng.random(), "evidence": ev})
    return out


def plays(lang: str) -> list[dict[str, Any]]:
    title = "利用回復の電話" if lang == "ja" else "CSM call to re-engage a declining account"
    task = "利用状況レポートを確認する" if lang == "ja" else "Review the usage report"
    return [
        {
            "play_id": f"play-{i}",
            "family": "usage",
            "title": title,
            "action": title * 3,
            "channel": "call",
            "owner": "csm",
            "urgency": "high",
            "due_days": 3 + i,
            "tasks": [{"day": d, "task": task} for d in (0, 2, 3, 30)],
        }
        for i in range(2)
    ]


def book_rows(as_of: date, seed: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rng = random.Random(seed)
    rows, details = [], {}
    weeks = [(as_of - timedelta(weeks=26 - w)).isoformat() for w in range(26)]
    for i in range(N_ACCOUNTS):
        p = rng.random() ** 2
        arr = float(rng.randrange(2, 500) * 1000)
        rows.append(
            {
                "account_id": f"ACC-{i:06d}",
                "as_of": as_of.isoformat(),
                "churn_probability": p,
                "risk_band": "red" if p >= 0.3 else "yellow" if p >= 0.12 else "green",
                "health_score": round(100 * (1 - p)),
                "touch_tier": ("high", "low", "tech")[i % 3],
                "arr": arr,
                "arr_at_risk": p * arr,
                "top_reasons": reasons("en", rng),
                "playbooks": plays("en"),
                "translations": {
                    "ja": {"top_reasons": reasons("ja", rng), "playbooks": plays("ja")}
                },
                "name": f"Account {i} 株式会社",
                "csm_id": f"CSM-{i % 40:03d}",
                "plan": ("starter", "business", "enterprise")[i % 3],
            }
        )
        details[f"ACC-{i:06d}"] = {
            "activity": {
                "week_start": weeks,
                **{
                    c: [rng.randint(0, 50) for _ in weeks]
                    for c in ("logins", "active_users", "distinct_features", "tickets_opened")
                },
                "surveys_answered": [0] * 26,
                "touches": [rng.randint(0, 2) for _ in weeks],
            },
            "silent_decline": int(rng.random() < 0.05),
        }
    return rows, details


def main() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="churnlens-bench-ui-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'scores.db'}"
        store = open_store(url)
        t0 = time.perf_counter()
        for k, d in enumerate(DATES):
            rows, details = book_rows(d, k)
            store.append_scores(
                rows,
                as_of=d,
                model_version="bench",
                details=details,
                scored_at=datetime(2025, 6, 16, tzinfo=UTC) + timedelta(minutes=k),
            )
        t_write = time.perf_counter() - t0
        db_mb = (Path(tmp) / "scores.db").stat().st_size / 1e6
        last_run = store.runs(limit=1)[0]["run_id"]

        def floor() -> int:
            with store.engine.connect() as conn:
                got = conn.exec_driver_sql(
                    "SELECT * FROM churnlens_scores WHERE run_id = ?", (last_run,)
                ).fetchall()
            return len(got)

        t_floor, n_floor = median_wall(floor)
        assert n_floor == N_ACCOUNTS, n_floor

        figures: dict[str, float] = {}
        with (
            TestClient(build_ui_app(store, cache=False)) as cold,
            TestClient(build_ui_app(store)) as warm,
        ):

            def get(client: TestClient, path: str) -> int:
                r = client.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
                return len(r.content)

            figures["portfolio_cold"], size = median_wall(lambda: get(cold, "/"))
            figures["portfolio_cold_ja"], _ = median_wall(lambda: get(cold, "/?lang=ja"))
            figures["portfolio_warm"], _ = median_wall(lambda: get(warm, "/"))
            figures["filtered_cold"], _ = median_wall(lambda: get(cold, "/?band=red&tier=high"))
            figures["page_50_warm"], _ = median_wall(lambda: get(warm, "/?page=50"))
            figures["account_page"], _ = median_wall(lambda: get(cold, "/accounts/ACC-000123"))
            figures["export_csv_all_warm"], csv_bytes = median_wall(
                lambda: get(warm, "/export.csv"), repeat=3
            )
        store.close()

    print(
        f"CSM page, {N_ACCOUNTS:,} accounts x {len(DATES)} dates in SQLite "
        f"({db_mb:.0f} MB, written in {t_write:.1f} s); median of {REPEAT}, server time in-process"
    )
    print(f"  floor: SELECT * of the {N_ACCOUNTS:,} latest rows  {t_floor * 1000:8.1f} ms")
    for name, secs in figures.items():
        print(f"  {name:<24} {secs * 1000:8.1f} ms   {secs / t_floor:6.1f}x floor")
    met = figures["portfolio_cold"] < TARGET_S
    print(
        f"portfolio page {size / 1e3:.0f} kB, CSV {csv_bytes / 1e6:.1f} MB; "
        f"target cold portfolio < {TARGET_S:.0f} s: {'yes' if met else 'NO'}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"ui-{stamp}.json"
    doc = {
        "cpus": os.cpu_count(),
        "accounts": N_ACCOUNTS,
        "dates": [d.isoformat() for d in DATES],
        "db_mb": round(db_mb, 1),
        "write_seconds": round(t_write, 2),
        "floor_select_seconds": round(t_floor, 4),
        "seconds": {k: round(v, 4) for k, v in figures.items()},
        "ratio_to_floor": {k: round(v / t_floor, 1) for k, v in figures.items()},
        "portfolio_bytes": size,
        "csv_bytes": csv_bytes,
        "target_seconds": TARGET_S,
        "target_met": met,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out.write_text(json.dumps(doc, indent=2))
    print(f"written {out.relative_to(ROOT)} ({doc['total_seconds']:.0f} s)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
