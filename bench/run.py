"""Benchmarks: each figure printed beside a baseline measured in the same run.

Absolute times on a shared 2-core machine are noise; the ratio to a floor measured seconds apart on
the same data is what to read. Run with ``make bench`` (``BENCH_ACCOUNTS`` overrides 5,000).

- simulate N accounts x 2 years   vs writing the same tables to Parquet (I/O floor)
- load + validate the directory   vs ``pd.read_parquet`` of the same files
- stage 1 timeline                vs a plain DuckDB ``GROUP BY account, week`` over usage_events
- stage 2 indicators, all accounts at one date, and at every training snapshot,
                                  vs one pandas ``groupby(account).sum()`` over the timeline
- the same on the full fightchurn public data (3.6M events), when ../shared/data is present
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from churnlens.config import load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.contract import load_tables
from churnlens.features.indicators import compute_indicators
from churnlens.features.snapshots import build_snapshots
from churnlens.features.timeline import build_timeline

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED = ROOT.parent / "shared" / "data"


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def groupby_floor(data: Path) -> float:
    """A plain DuckDB GROUP BY account, week over the usage events file."""
    files = list(data.glob("usage_events.*"))
    src = files[0]
    reader = "read_parquet" if src.suffix == ".parquet" else "read_csv_auto"
    con = duckdb.connect(config={"threads": 2})
    sql = (
        f"SELECT COUNT(*) FROM (SELECT account_id, date_trunc('week', occurred_at) w, COUNT(*) n "
        f"FROM {reader}('{src}') GROUP BY 1, 2)"
    )
    t, _ = timed(lambda: con.execute(sql).fetchall())
    con.close()
    return t


def bench_dir(name: str, data: Path, rows: list[dict[str, Any]]) -> None:
    """Load, timeline and indicators on one data directory, each beside its floor."""
    cfg = load_config(None, data)
    t_load, tables = timed(lambda: load_tables(data, cfg), repeat=2)
    t_read, _ = timed(lambda: [pd.read_parquet(p) for p in data.glob("*.parquet")], repeat=2)
    rows.append(_row(name, "load + validate", t_load, "pd.read_parquet same files", t_read))
    t_tl, tl = timed(lambda: build_timeline(tables))
    rows.append(
        _row(
            name,
            f"timeline ({len(tl):,} account-weeks)",
            t_tl,
            "DuckDB GROUP BY account, week",
            groupby_floor(data),
        )
    )
    t_gb, _ = timed(lambda: tl.groupby("account_id").sum(numeric_only=True))
    t_ind, ind = timed(lambda: compute_indicators(tl, tables.accounts, as_of=tables.as_of))
    rows.append(
        _row(
            name,
            f"indicators, 1 date ({len(ind):,} accounts)",
            t_ind,
            "pandas groupby(account).sum() on the timeline",
            t_gb,
        )
    )
    snaps = build_snapshots(tables)
    t_snap, _ = timed(lambda: compute_indicators(tl, tables.accounts, snaps), repeat=2)
    rows.append(
        _row(
            name,
            f"indicators, {len(snaps):,} snapshots",
            t_snap,
            "pandas groupby(account).sum() on the timeline",
            t_gb,
        )
    )
    t_all = t_tl + t_ind
    rows.append(
        _row(
            name,
            "timeline + indicators (1 date)",
            t_all,
            "DuckDB GROUP BY account, week",
            groupby_floor(data),
        )
    )


def _row(dataset: str, what: str, seconds: float, baseline: str, base_s: float) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "what": what,
        "seconds": round(seconds, 3),
        "baseline": baseline,
        "baseline_seconds": round(base_s, 3),
        "ratio": round(seconds / max(base_s, 1e-9), 1),
    }


def main() -> int:
    n = int(os.environ.get("BENCH_ACCOUNTS", "5000"))
    rows: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="churnlens-bench-"))
    try:
        sim_dir = work / "sim"
        t0 = time.perf_counter()
        base = simulate(SimulatorConfig(n_accounts=n, seed=7))
        write_base(base, sim_dir)
        t_sim = time.perf_counter() - t0
        t0 = time.perf_counter()
        floor = work / "floor"
        floor.mkdir()
        for k, v in base.tables.items():
            v.to_parquet(floor / f"{k}.parquet", index=False)
        t_write = time.perf_counter() - t0
        n_events = len(base.tables["usage_events"])
        rows.append(
            _row(
                f"simulator {n:,}",
                f"simulate + write ({n_events:,} events)",
                t_sim,
                "write the same tables to Parquet",
                t_write,
            )
        )
        bench_dir(f"simulator {n:,}", sim_dir, rows)
        fc = SHARED / "fightchurn-socialnet7"
        if fc.exists():
            from churnlens.datasets.fightchurn import import_fightchurn

            t_imp, _ = timed(lambda: import_fightchurn(fc, work / "fc"), repeat=1)
            t_csv, _ = timed(lambda: pd.read_csv(fc / "event.csv.gz"), repeat=1)
            rows.append(
                _row(
                    "fightchurn",
                    "import (3.6M events)",
                    t_imp,
                    "pd.read_csv of event.csv.gz",
                    t_csv,
                )
            )
            bench_dir("fightchurn", work / "fc", rows)
        else:
            print(f"skipped fightchurn: {fc} not found", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    width = max(len(r["what"]) for r in rows)
    print(
        f"{'dataset':<18} {'what':<{width}} {'seconds':>8}  {'baseline (same run)':<46} "
        f"{'seconds':>8} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['dataset']:<18} {r['what']:<{width}} {r['seconds']:>8.2f}  {r['baseline']:<46} "
            f"{r['baseline_seconds']:>8.2f} {r['ratio']:>5.1f}x"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"features-{stamp}.json"
    out.write_text(json.dumps({"accounts": n, "cpus": os.cpu_count(), "rows": rows}, indent=2))
    print(f"\nwritten {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
