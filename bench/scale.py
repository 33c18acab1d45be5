"""Scale benchmark: events/s, training time, scoring throughput and memory, each beside a reference.

Absolute times on a shared 2-core machine are noise; read each figure beside its floor or peer,
measured in the same run on the same data. Run with ``make bench`` or
``python bench/scale.py [--sizes 1M,10M,50M] [--skip-peer] [--skip-spark] ...`` (``--help``).

Sections (all on by default):

- **build**: timeline + indicators (``build_timeline`` then ``compute_indicators``, at one date and
  at every training snapshot) on 1M, 10M and 50M simulated events, as events/s, beside the floor:
  a bare DuckDB ``GROUP BY account, week`` over the same ``usage_events.parquet`` (2 threads).
  Target: within 2x of the floor. Each build runs in a fresh child process (the figure is the best
  of ``--repeat`` children), whose peak RSS the parent reads with ``os.wait4``; the 10M build must
  stay under 4 GiB.
- **peer**: Featuretools DFS computing counts and sums per event type (plus distinct users) over the
  last 4, 13 and 26 weeks at the snapshot dates of the smallest base (``--peer-accounts N``: a
  seeded subsample of N accounts instead; the event count is then the subsample's), as events/s,
  beside the same accounts' timeline + indicators at every snapshot. Target: at least 20x faster
  than the peer.
- **train**: the pipeline's LightGBM fit step (``fit_lightgbm``, early stopping on the validation
  window) on 10k .. 1M snapshot rows, beside LightGBM's own binning pass (``Dataset.construct``) on
  the same rows. Rows come from the 10M base's labelled snapshots: fewer rows are a seeded sample,
  more are replicas of the snapshots (ids suffixed, each non-flag indicator multiplied by
  log-normal noise, sd 5%) so the curve runs past what one base gives.
- **score**: batch scoring of every live account of the 10M base as accounts/s:
  ``compute_indicators`` + ``predict_proba``; the same + ``score_frame`` (reasons and plays); beside
  ``predict_proba`` alone on the ready indicators.
- **spark**: the same build and scoring on Spark ``local[2]`` through :mod:`churnlens.spark`, when
  it imports (``--skip-spark`` to leave it out).

The script re-executes itself with ``OMP_WAIT_POLICY=PASSIVE`` unless the variable is set: on a
shared machine LightGBM's spinning OpenMP threads otherwise turn other users' load into 4-10x
slower fits. Training sizes are the best of two fits; the 1-minute load average is recorded per
section in the JSON, so a figure taken while the machine was busy can be told apart.

Simulated bases are cached under ``--cache`` (default ``$TMPDIR/churnlens-scale``) and reused by
later runs; the 50M base is simulated in chunks of at most 10,000 accounts (ids prefixed per
chunk) and merged table by table, so the simulation never holds 50M events in memory at once.

Writes ``bench/results/scale-<UTC stamp>.json`` and, next to it, ``scale-<stamp>-events.png``
(events/s vs events) and ``scale-<stamp>-training.png`` (training time vs rows).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from run import groupby_floor, timed

from churnlens.config import load_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EVENTS_PER_ACCOUNT = 1450  # usage_events rows per simulated account (2 years), measured
CHUNK_ACCOUNTS = 10_000  # larger bases are simulated in chunks of at most this many accounts
SEED = 7
GIB = 2**30
MEMORY_LIMIT_GIB = 4.0
MEMORY_SIZE = 10_000_000
FLOOR_RATIO_TARGET = 2.0
PEER_SPEEDUP_TARGET = 20.0
PEER_WINDOWS_WEEKS = (4, 13, 26)
TRAIN_ROWS = (10_000, 30_000, 100_000, 300_000, 1_000_000)
TRAIN_BASE = 10_000_000  # the base whose snapshots feed the training and scoring sections
NOISE_SD = 0.05
TRAIN_REPEAT = 2  # best of: a fit on a shared machine is at the mercy of the other jobs
ID_COLUMNS = ("account_id", "user_id", "ticket_id")


# ------------------------------------------------------------------------------------ helpers
def parse_count(text: str) -> int:
    """``1M`` -> 1_000_000, ``30k`` -> 30_000, ``2500`` -> 2500."""
    t = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def label(n: int) -> str:
    """1_000_000 -> ``1M``, 30_000 -> ``30k``."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def row(
    section: str,
    what: str,
    value: float,
    unit: str,
    seconds: float,
    reference: str,
    ref_seconds: float,
    **extra: Any,
) -> dict[str, Any]:
    """One table row: a figure and the reference measured in the same run on the same work.

    ``ratio`` is ours / reference in wall time (1.0 = as fast as the reference, 2.0 = twice as
    slow); for a peer, ``speedup`` = reference / ours.
    """
    return {
        "section": section,
        "what": what,
        "value": round(value, 1),
        "unit": unit,
        "seconds": round(seconds, 3),
        "reference": reference,
        "reference_seconds": round(ref_seconds, 3),
        "ratio": round(seconds / max(ref_seconds, 1e-9), 2),
        **extra,
    }


# --------------------------------------------------------------------------------------- data
def _simulate_dir(n_accounts: int, seed: int, out: Path) -> None:
    from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base

    write_base(simulate(SimulatorConfig(n_accounts=n_accounts, seed=seed)), out)


def _prefixed(table: pa.Table, prefix: str) -> pa.Table:
    for col in ID_COLUMNS:
        if col in table.column_names:
            i = table.column_names.index(col)
            arr = pc.cast(table.column(col), pa.string())
            table = table.set_column(i, col, pc.binary_join_element_wise(prefix, arr, ""))
    return table.replace_schema_metadata(None)


def ensure_base(target_events: int, cache: Path) -> Path:
    """A simulated base with about ``target_events`` usage events (cached under ``cache``)."""
    n_accounts = max(1, round(target_events / EVENTS_PER_ACCOUNT))
    out = cache / f"sim-{n_accounts}-s{SEED}"
    if (out / ".done").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    if n_accounts <= CHUNK_ACCOUNTS:
        _simulate_dir(n_accounts, SEED, out)
    else:
        # Independent worlds with the same calendar; ids prefixed per chunk so they stay unique.
        k = math.ceil(n_accounts / CHUNK_ACCOUNTS)
        sizes = [n_accounts // k + (1 if i < n_accounts % k else 0) for i in range(k)]
        parts = out.with_name(out.name + ".parts")
        shutil.rmtree(parts, ignore_errors=True)
        for i, n in enumerate(sizes):
            print(f"  simulating chunk {i + 1}/{k} ({n:,} accounts)", flush=True)
            # one child per chunk: each chunk's simulation memory is returned to the system
            code = (
                "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[4]);"
                "from scale import _simulate_dir;"
                "_simulate_dir(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))"
            )
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    code,
                    str(n),
                    str(SEED + i),
                    str(parts / f"c{i}"),
                    str(Path(__file__).parent),
                ],
                check=True,
            )
        out.mkdir(parents=True)
        shutil.copy(parts / "c0" / "churnlens.yaml", out / "churnlens.yaml")
        for f in sorted((parts / "c0").glob("*.parquet")):
            writer = None
            for i in range(k):
                t = _prefixed(pq.read_table(parts / f"c{i}" / f.name), f"C{i}-")
                if writer is None:
                    writer = pq.ParquetWriter(out / f.name, t.schema)
                writer.write_table(t.cast(writer.schema))
            assert writer is not None
            writer.close()
        shutil.rmtree(parts, ignore_errors=True)
    (out / ".done").write_text(f"{time.perf_counter() - t0:.1f}s\n")
    return out


def count_events(data: Path) -> int:
    return pq.ParquetFile(data / "usage_events.parquet").metadata.num_rows


# ------------------------------------------------------------------------------ child process
def child_build(data: Path, snapshots: bool) -> dict[str, Any]:
    """One build pass (runs in a fresh process): load, timeline, indicators; seconds per step."""
    import resource

    from churnlens.features.contract import load_tables
    from churnlens.features.indicators import compute_indicators
    from churnlens.features.snapshots import build_snapshots
    from churnlens.features.timeline import build_timeline

    cfg = load_config(None, data)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    tables = load_tables(data, cfg)
    t1 = time.perf_counter()
    tl = build_timeline(tables)
    t2 = time.perf_counter()
    ind = compute_indicators(tl, tables.accounts, as_of=tables.as_of)
    t3 = time.perf_counter()
    out |= {
        "events": len(tables.frames["usage_events"]),
        "accounts": len(tables.accounts),
        "account_weeks": len(tl),
        "load_s": t1 - t0,
        "timeline_s": t2 - t1,
        "indicators_1_date_s": t3 - t2,
        "indicator_rows_1_date": len(ind),
    }
    del ind
    if snapshots:
        t3 = time.perf_counter()
        snaps = build_snapshots(tables)
        compute_indicators(tl, tables.accounts, snaps)
        out["indicators_snapshots_s"] = time.perf_counter() - t3
        out["snapshots"] = len(snaps)
    out["maxrss_self_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    return out


def child_prepare(data: Path, out: Path) -> dict[str, Any]:
    """Labelled snapshot frame, a trained model and the scoring inputs of one base (cached)."""
    from churnlens.features.contract import last_complete_week_start
    from churnlens.features.snapshots import alive_accounts
    from churnlens.features.timeline import build_timeline
    from churnlens.training.pipeline import FEATURES, fit_and_evaluate, prepare

    cfg = load_config(None, data)
    p = prepare(data, cfg, None, lambda _msg: None)
    keep = ["account_id", "as_of", "label", "window", *FEATURES]
    p.frame[keep].to_parquet(out / "frame.parquet", index=False)
    model, metrics, _te, _extra = fit_and_evaluate(p, cfg, data, lambda _msg: None)
    model.save(out / "model")
    tl = build_timeline(p.tables)
    tl.to_parquet(out / "timeline.parquet", index=False)
    alive_accounts(p.tables).to_parquet(out / "profiles.parquet", index=False)
    info = {
        "as_of": str(p.tables.as_of),
        "last_complete_week": str(last_complete_week_start(p.tables.as_of)),
        "auc": metrics["model"].get("auc"),
        "rows": len(p.frame),
    }
    (out / "info.json").write_text(json.dumps(info))
    return info


def run_child(args: list[str]) -> tuple[dict[str, Any], float]:
    """Run this script in a child mode; its JSON result and its peak RSS in GiB (``wait4``)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = Path(f.name)
    proc = subprocess.Popen([sys.executable, __file__, *args, "--child-out", str(result)])
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} exited with {proc.returncode}")
    out = json.loads(result.read_text())
    result.unlink(missing_ok=True)
    return out, usage.ru_maxrss * 1024 / GIB  # Linux: ru_maxrss in KiB


# -------------------------------------------------------------------------------------- build
def bench_build(
    sizes: list[int], cache: Path, repeat: int, rows: list[dict[str, Any]], res: dict[str, Any]
) -> None:
    for target in sizes:
        data = ensure_base(target, cache)
        n_events = count_events(data)
        reps = repeat if target < 10_000_000 else max(1, repeat - 1) if target < 50_000_000 else 1
        runs, rss = [], []
        for _ in range(reps):
            r, peak = run_child(["--child", "build", "--data", str(data)])
            runs.append(r)
            rss.append(peak)
        best = {k: min(r[k] for r in runs) for k in runs[0] if k.endswith("_s")}
        floor_s = groupby_floor(data)
        name = label(target)
        tl_ind = best["timeline_s"] + best["indicators_1_date_s"]
        tl_snap = best["timeline_s"] + best["indicators_snapshots_s"]
        e2e = best["load_s"] + tl_ind
        floor = "DuckDB GROUP BY account, week (same Parquet)"
        meta = {
            "events": n_events,
            "accounts": runs[0]["accounts"],
            "size": name,
            "peak_rss_gib": round(max(rss), 2),
        }
        res["build"].append(
            meta
            | {k: round(v, 3) for k, v in best.items()}
            | {
                "floor_s": round(floor_s, 3),
                "snapshots": runs[0]["snapshots"],
                "account_weeks": runs[0]["account_weeks"],
                "runs": reps,
            }
        )
        for what, secs, target_ratio in (
            ("timeline + indicators (1 date)", tl_ind, FLOOR_RATIO_TARGET),
            (f"timeline + indicators ({runs[0]['snapshots']:,} snapshots)", tl_snap, None),
            ("load + validate + timeline + indicators (1 date)", e2e, None),
        ):
            extra: dict[str, Any] = {"size": name, "events": n_events}
            if target_ratio is not None:
                extra |= {
                    "target": f"<= {target_ratio:g}x floor",
                    "met": secs / floor_s <= target_ratio,
                }
            rows.append(
                row(
                    f"build {name}",
                    what,
                    n_events / secs,
                    "events/s",
                    secs,
                    floor,
                    floor_s,
                    **extra,
                )
            )
        if target == MEMORY_SIZE or (MEMORY_SIZE not in sizes and target == max(sizes)):
            peak = max(rss)
            res["memory"] = {"size": name, "events": n_events, "peak_rss_gib": round(peak, 2)}
            rows.append(
                {
                    "section": f"memory {name}",
                    "what": "peak RSS of the build (load + timeline + indicators, child)",
                    "value": round(peak, 2),
                    "unit": "GiB",
                    "reference": "limit",
                    "reference_value": MEMORY_LIMIT_GIB,
                    "ratio": round(peak / MEMORY_LIMIT_GIB, 2),
                    "target": f"< {MEMORY_LIMIT_GIB:g} GiB",
                    "met": peak < MEMORY_LIMIT_GIB,
                    "size": name,
                }
            )


# --------------------------------------------------------------------------------------- peer
def _patch_woodwork() -> None:
    """Cache woodwork's ``.ww`` accessor per object, as pandas < 3 did for every accessor.

    pandas 3 builds a new accessor object on every attribute access, so the typing schema that
    ``df.ww.init()`` stores is lost at once and Featuretools 1.31 / woodwork 0.31 (the latest
    releases) fail with ``WoodworkNotInitError``. Storing the accessor on the frame (what pandas'
    former ``CachedAccessor`` did) restores their behaviour; nothing else is changed.
    """
    import woodwork  # noqa: F401  (registers the accessors)
    from woodwork.column_accessor import WoodworkColumnAccessor
    from woodwork.table_accessor import WoodworkTableAccessor

    class Cached:
        def __init__(self, cls: type) -> None:
            self.cls = cls

        def __get__(self, obj: Any, owner: type) -> Any:
            if obj is None:
                return self.cls
            acc = obj.__dict__.get("_churnlens_ww")
            if acc is None:
                acc = self.cls(obj)
                object.__setattr__(obj, "_churnlens_ww", acc)
            return acc

    pd.DataFrame.ww = Cached(WoodworkTableAccessor)  # type: ignore[attr-defined]
    pd.Series.ww = Cached(WoodworkColumnAccessor)  # type: ignore[attr-defined]


def peer_featuretools(tables: Any, ids: list[str]) -> tuple[float, int, int, int]:
    """DFS seconds, events, cutoff rows and feature columns for ``ids`` (same windows as ours)."""
    warnings.filterwarnings("ignore")
    _patch_woodwork()
    import featuretools as ft

    from churnlens.features.contract import cutoff, decoded
    from churnlens.features.snapshots import build_snapshots

    events = tables.frames["usage_events"]
    sub = events[events["account_id"].isin(ids)]
    ev = sub[["account_id", "occurred_at", "event", "user_id", "quantity"]].reset_index(drop=True)
    # Text as the peer would get it from a CSV or a warehouse (Tables keeps these as codes).
    ev = ev.assign(**{c: decoded(ev[c]) for c in ("account_id", "event", "user_id")})
    ev.insert(0, "event_id", np.arange(len(ev)))
    acc = tables.accounts.loc[tables.accounts["account_id"].isin(ids), ["account_id"]]
    snaps = build_snapshots(tables)
    snaps = snaps[snaps["account_id"].isin(ids)]
    ct = pd.DataFrame(
        {
            "account_id": snaps["account_id"].to_numpy(),
            "time": [cutoff(d.date()) for d in snaps["as_of"]],
        }
    )
    t0 = time.perf_counter()
    es = ft.EntitySet("churnlens")
    es = es.add_dataframe(dataframe_name="accounts", dataframe=acc.copy(), index="account_id")
    es = es.add_dataframe(
        dataframe_name="events",
        dataframe=ev,
        index="event_id",
        time_index="occurred_at",
        logical_types={"event": "Categorical", "user_id": "Categorical"},
    )
    es = es.add_relationship("accounts", "account_id", "events", "account_id")
    es.add_interesting_values(
        dataframe_name="events", values={"event": sorted(ev["event"].unique())}
    )
    n_features = 0
    for weeks in PEER_WINDOWS_WEEKS:
        fm, _defs = ft.dfs(
            entityset=es,
            target_dataframe_name="accounts",
            cutoff_time=ct,
            agg_primitives=["count", "sum", "num_unique"],
            trans_primitives=[],
            where_primitives=["count", "sum"],
            training_window=f"{7 * weeks} days",
            max_depth=1,
            verbose=False,
        )
        n_features += fm.shape[1]
    return time.perf_counter() - t0, len(ev), len(ct), n_features


def ours_subsample(tables: Any, ids: list[str]) -> float:
    """Our timeline + indicators at every snapshot for the same accounts (best of 3)."""
    from churnlens.features.contract import Tables
    from churnlens.features.indicators import compute_indicators
    from churnlens.features.snapshots import build_snapshots
    from churnlens.features.timeline import build_timeline

    frames = {
        k: (v[v["account_id"].isin(ids)] if "account_id" in v.columns else v)
        for k, v in tables.frames.items()
    }
    sub = Tables(frames, tables.as_of, tables.config, tables.report)

    def run() -> None:
        tl = build_timeline(sub)
        compute_indicators(tl, sub.accounts, build_snapshots(sub))

    t, _ = timed(run, repeat=3)
    return t


def bench_peer(
    data: Path, n_accounts: int, rows: list[dict[str, Any]], res: dict[str, Any]
) -> None:
    from churnlens.features.contract import load_tables

    cfg = load_config(None, data)
    tables = load_tables(data, cfg)
    rng = np.random.default_rng(SEED)
    all_ids = tables.accounts["account_id"].astype(str).to_numpy()
    size = len(all_ids) if n_accounts <= 0 else min(n_accounts, len(all_ids))
    ids = sorted(rng.choice(all_ids, size=size, replace=False).tolist())
    t_peer, n_ev, n_ct, n_feat = peer_featuretools(tables, ids)
    t_ours = ours_subsample(tables, ids)
    ev_ours_all = len(tables.frames["usage_events"])
    res["peer"] = {
        "tool": "featuretools 1.31 DFS (woodwork accessor cached for pandas 3)",
        "accounts": len(ids),
        "of_accounts": len(all_ids),
        "events": n_ev,
        "of_events": ev_ours_all,
        "cutoff_rows": n_ct,
        "feature_columns": n_feat,
        "windows_weeks": list(PEER_WINDOWS_WEEKS),
        "peer_s": round(t_peer, 3),
        "ours_s": round(t_ours, 3),
    }
    speedup = t_peer / t_ours
    rows.append(
        row(
            f"peer {len(ids)} acc",
            f"timeline + indicators at {n_ct:,} snapshots ({n_ev:,} events)",
            n_ev / t_ours,
            "events/s",
            t_ours,
            f"Featuretools DFS, {n_feat} windowed aggregates",
            t_peer,
            speedup=round(speedup, 1),
            peer_value=round(n_ev / t_peer, 1),
            target=f">= {PEER_SPEEDUP_TARGET:g}x faster than peer",
            met=speedup >= PEER_SPEEDUP_TARGET,
            events=n_ev,
        )
    )


# -------------------------------------------------------------------------------------- train
def _replicate(frame: pd.DataFrame, n: int, features: list[str], seed: int) -> pd.DataFrame:
    """``n`` rows: a seeded sample of ``frame``, or noisy replicas of it when ``n`` is larger."""
    rng = np.random.default_rng(seed)
    if n <= len(frame):
        return frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))]
    k = math.ceil(n / len(frame))
    cont = [
        f
        for f in features
        if not frame[f].dropna().isin([0.0, 1.0]).all()  # flags and availability stay exact
    ]
    parts = [frame]
    for r in range(1, k):
        rep = frame.copy()
        rep["account_id"] = rep["account_id"] + f"-R{r}"
        noise = np.exp(rng.normal(0.0, NOISE_SD, (len(rep), len(cont))))
        rep[cont] = rep[cont].to_numpy() * noise
        parts.append(rep)
    out = pd.concat(parts, ignore_index=True)
    return out.iloc[np.sort(rng.choice(len(out), n, replace=False))]


def bench_train(prep: Path, row_counts: list[int], rows: list[dict[str, Any]], res: dict) -> None:
    import lightgbm as lgb

    from churnlens.config import Config
    from churnlens.training.fit import fit_lightgbm, lgb_params
    from churnlens.training.pipeline import FEATURES

    cfg = Config()
    frame = pd.read_parquet(prep / "frame.parquet")
    frame = frame[frame["window"].isin(["train", "valid"])].reset_index(drop=True)
    features = list(FEATURES)
    res["train_source"] = {
        "snapshot_rows": len(frame),
        "accounts": int(frame["account_id"].nunique()),
        "method": f"sample below {len(frame):,} rows; above, replicas with log-normal noise "
        f"(sd {NOISE_SD:g}) on non-flag indicators",
    }
    for n in row_counts:
        f = _replicate(frame, n, features, SEED)
        tr, va = f[f["window"] == "train"], f[f["window"] == "valid"]
        Xtr, Xva = tr[features].astype("float64"), va[features].astype("float64")
        ytr, yva = tr["label"].to_numpy(), va["label"].to_numpy()
        t_fit, booster = timed(
            lambda Xtr=Xtr, ytr=ytr, Xva=Xva, yva=yva: fit_lightgbm(
                Xtr, ytr, Xva, yva, cfg.model, cfg.seed
            ),
            repeat=TRAIN_REPEAT,
        )
        params = lgb_params(cfg.model, features, cfg.seed)
        t_bin, _ = timed(
            lambda Xtr=Xtr, ytr=ytr, p=params: lgb.Dataset(Xtr, ytr, params=p).construct(), 1
        )
        rounds = booster.current_iteration()
        res["train"].append(
            {
                "rows": n,
                "train_rows": len(tr),
                "valid_rows": len(va),
                "fit_s": round(t_fit, 3),
                "best_iteration": rounds,
                "binning_s": round(t_bin, 3),
            }
        )
        rows.append(
            row(
                "train",
                f"fit_lightgbm, {label(n)} rows ({len(tr):,} train + {len(va):,} valid), "
                f"best iteration {rounds}",
                n / t_fit,
                "rows/s",
                t_fit,
                "LightGBM Dataset.construct (binning) same rows",
                t_bin,
                rows=n,
            )
        )
        print(f"  train {label(n)}: {t_fit:.1f}s, best iteration {rounds}", flush=True)


# -------------------------------------------------------------------------------------- score
def bench_score(prep: Path, rows: list[dict[str, Any]], res: dict[str, Any]) -> None:
    from churnlens.features.indicators import compute_indicators
    from churnlens.model import ChurnModel
    from churnlens.serving.playbooks import load_catalog
    from churnlens.serving.scoring import score_frame

    cfg = load_config(None, None)
    catalog = load_catalog(None)
    info = json.loads((prep / "info.json").read_text())
    model = ChurnModel.load(prep / "model")
    tl = pd.read_parquet(prep / "timeline.parquet")
    prof = pd.read_parquet(prep / "profiles.parquet")
    as_of = pd.Timestamp(info["as_of"]).date()
    n = len(prof)
    t_pred, _ = timed(
        lambda: model.predict_proba(compute_indicators(tl, prof, as_of=as_of)), repeat=3
    )
    ind = compute_indicators(tl, prof, as_of=as_of)
    t_floor, _ = timed(lambda: model.predict_proba(ind), repeat=5)
    t_full, _ = timed(
        lambda: score_frame(model, compute_indicators(tl, prof, as_of=as_of), prof, cfg, catalog),
        repeat=2,
    )
    res["score"] = {
        "accounts": n,
        "as_of": info["as_of"],
        "indicators_predict_s": round(t_pred, 3),
        "score_frame_s": round(t_full, 3),
        "predict_only_s": round(t_floor, 3),
    }
    for what, secs in (
        ("batch: compute_indicators + predict_proba", t_pred),
        ("batch: compute_indicators + score_frame (reasons, plays)", t_full),
    ):
        rows.append(
            row(
                "score",
                f"{what} ({n:,} accounts)",
                n / secs,
                "accounts/s",
                secs,
                "predict_proba alone on ready indicators",
                t_floor,
                accounts=n,
            )
        )


# -------------------------------------------------------------------------------------- spark
def bench_spark(
    sizes: list[int],
    cache: Path,
    prep: Path | None,
    rows: list[dict[str, Any]],
    res: dict[str, Any],
) -> None:
    try:
        import churnlens.spark as cs
    except Exception as exc:  # the engine is optional (extra "spark")
        res["spark"] = {"skipped": f"churnlens.spark does not import: {exc!r}"}
        print(f"skipped spark: {exc!r}", file=sys.stderr)
        return
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    spark = cs.session(master="local[2]")
    res["spark"] = {"master": "local[2]", "build": []}
    try:
        build_by_size = {b["events"]: b for b in res["build"]}
        for target in [s for s in sizes if s <= 10_000_000]:
            data = ensure_base(target, cache)
            n_events = count_events(data)
            cfg = load_config(None, data)

            def run(data: Path = data, cfg: Any = cfg) -> None:
                tables = cs.read_tables(spark, data, cfg)
                as_of = cs.data_as_of(tables)
                tl = cs.build_timeline_spark(spark, tables, cfg, as_of).cache()
                tl.count()
                profiles = tables["accounts"]
                reqs = profiles.selectExpr("account_id", f"DATE'{as_of}' AS as_of")
                ind = cs.compute_indicators_spark(tl, profiles, reqs)
                ind.write.format("noop").mode("overwrite").save()
                tl.unpersist()

            if not res["spark"]["build"]:
                run()  # warm-up (JVM start, code generation), once
            t, _ = timed(run, repeat=2 if target < 10_000_000 else 1)
            floor_s = groupby_floor(data)
            local = build_by_size.get(n_events, {})
            res["spark"]["build"].append(
                {"size": label(target), "events": n_events, "seconds": round(t, 3)}
                | {"floor_s": round(floor_s, 3)}
            )
            rows.append(
                row(
                    f"spark {label(target)}",
                    "read + timeline + indicators (1 date), local[2]",
                    n_events / t,
                    "events/s",
                    t,
                    "DuckDB GROUP BY account, week (same Parquet)",
                    floor_s,
                    events=n_events,
                    size=label(target),
                    pandas_engine_s=local.get("load_s", 0)
                    + local.get("timeline_s", 0)
                    + local.get("indicators_1_date_s", 0)
                    or None,
                )
            )
        if prep is not None:
            _spark_score(spark, cs, prep, rows, res)
    except Exception as exc:
        res["spark"]["error"] = repr(exc)
        print(f"spark section failed: {exc!r}", file=sys.stderr)
    finally:
        spark.stop()


def ensure_pyfunc(prep: Path) -> str:
    """The prepared model saved as an MLflow pyfunc (what ``churnlens train`` logs), its path."""
    out = prep / "pyfunc"
    if not (out / "MLmodel").exists():
        import mlflow.pyfunc
        from mlflow.models import infer_signature

        from churnlens.model import ARTIFACT_KEY, ChurnModel

        model = ChurnModel.load(prep / "model")
        sample = model.matrix(pd.read_parquet(prep / "frame.parquet").head(5))
        signature = infer_signature(
            sample, pd.DataFrame({"churn_probability": model.predict_proba(sample)})
        )
        mlflow.pyfunc.save_model(
            str(out),
            python_model=str(ROOT / "mlflow_pyfunc.py"),
            artifacts={ARTIFACT_KEY: str(prep / "model")},
            signature=signature,
        )
    return str(out)


def _spark_score(spark: Any, cs: Any, prep: Path, rows: list[dict[str, Any]], res: dict) -> None:
    info = json.loads((prep / "info.json").read_text())
    as_of = pd.Timestamp(info["as_of"]).date()
    tl = spark.createDataFrame(pd.read_parquet(prep / "timeline.parquet")).cache()
    prof_pd = pd.read_parquet(prep / "profiles.parquet")
    prof = spark.createDataFrame(prof_pd).cache()
    tl.count()
    prof.count()
    reqs = prof.selectExpr("account_id", f"DATE'{as_of}' AS as_of")
    model_uri = ensure_pyfunc(prep)

    def run() -> None:
        ind = cs.compute_indicators_spark(tl, prof, reqs)
        cs.score_spark(spark, ind, model_uri).write.format("noop").mode("overwrite").save()

    run()
    t, _ = timed(run, repeat=2)
    ind = cs.compute_indicators_spark(tl, prof, reqs).cache()
    ind.count()
    t_floor, _ = timed(
        lambda: cs.score_spark(spark, ind, model_uri).write.format("noop").mode("overwrite").save(),
        repeat=2,
    )
    n = len(prof_pd)
    res["spark"]["score"] = {
        "accounts": n,
        "seconds": round(t, 3),
        "score_only_s": round(t_floor, 3),
    }
    rows.append(
        row(
            "spark score",
            f"compute_indicators_spark + score_spark, local[2] ({n:,} accounts)",
            n / t,
            "accounts/s",
            t,
            "score_spark alone on cached indicators",
            t_floor,
            accounts=n,
        )
    )


# -------------------------------------------------------------------------------------- plots
def plot(res: dict[str, Any], stem: Path) -> list[Path]:
    """events/s vs events and training time vs rows, as PNG next to the JSON."""
    from matplotlib.figure import Figure

    written = []
    if res["build"]:
        fig = Figure(figsize=(10, 4.5), dpi=120)
        ax = fig.add_subplot()
        b = sorted(res["build"], key=lambda r: r["events"])
        ev = np.array([r["events"] for r in b], float)

        def line(secs: list[float], lbl: str, style: str) -> None:
            ax.plot(ev, ev / np.array(secs), style, label=lbl)

        line([r["timeline_s"] + r["indicators_1_date_s"] for r in b], "timeline + indicators", "o-")
        line(
            [r["timeline_s"] + r["indicators_snapshots_s"] for r in b],
            "timeline + indicators, every snapshot",
            "s-",
        )
        line(
            [r["load_s"] + r["timeline_s"] + r["indicators_1_date_s"] for r in b],
            "load + validate + timeline + indicators",
            "^-",
        )
        line([r["floor_s"] for r in b], "floor: DuckDB GROUP BY account, week", "k--")
        sp = res.get("spark", {}).get("build", [])
        if sp:
            ax.plot(
                [r["events"] for r in sp],
                [r["events"] / r["seconds"] for r in sp],
                "D-",
                label="Spark local[2]: read + timeline + indicators",
            )
        if res.get("peer"):
            p = res["peer"]
            ax.plot(
                [p["events"]],
                [p["events"] / p["peer_s"]],
                "rx",
                ms=9,
                label=f"peer: Featuretools DFS ({p['accounts']} accounts)",
            )
            ax.plot(
                [p["events"]],
                [p["events"] / p["ours_s"]],
                "r+",
                ms=9,
                label="ours on the same accounts, every snapshot",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("usage events")
        ax.set_ylabel("events / s")
        ax.set_title("Timeline + indicators throughput (2 cores)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        path = stem.with_name(stem.name + "-events.png")
        fig.savefig(path)
        written.append(path)
    if res["train"]:
        fig = Figure(figsize=(7, 4.5), dpi=120)
        ax = fig.add_subplot()
        t = res["train"]
        n = [r["rows"] for r in t]
        ax.plot(n, [r["fit_s"] for r in t], "o-", label="fit_lightgbm (early stopping)")
        ax.plot(n, [r["binning_s"] for r in t], "k--", label="floor: LightGBM binning")
        for r in t:
            ax.annotate(
                f"{r['best_iteration']} it",
                (r["rows"], r["fit_s"]),
                fontsize=7,
                textcoords="offset points",
                xytext=(4, -10),
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("snapshot rows (train + valid)")
        ax.set_ylabel("seconds")
        ax.set_title("Training time vs snapshot rows (2 cores)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = stem.with_name(stem.name + "-training.png")
        fig.savefig(path)
        written.append(path)
    return written


# --------------------------------------------------------------------------------------- main
def print_table(rows: list[dict[str, Any]]) -> None:
    w = max(len(r["what"]) for r in rows)
    print(
        f"\n{'section':<16} {'what':<{w}} {'figure':>16}  {'reference (same run)':<46} "
        f"{'ratio':>7}  target"
    )
    for r in rows:
        fig = f"{r['value']:,.0f} {r['unit']}" if r["unit"] != "GiB" else f"{r['value']} GiB"
        if "reference_seconds" in r:
            ref = f"{r['reference']} {r['reference_seconds']:.2f}s"
        else:
            ref = f"{r['reference']} {r['reference_value']} GiB"
        ratio = f"{r['ratio']:.2f}x"
        tgt = ""
        if "target" in r:
            tgt = f"{r['target']}: {'met' if r['met'] else 'NOT met'}"
            if "speedup" in r:
                tgt = f"{r['speedup']}x faster; {tgt}"
        print(f"{r['section']:<16} {r['what']:<{w}} {fig:>16}  {ref:<46} {ratio:>7}  {tgt}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1M,10M,50M", help="event counts for the build section")
    ap.add_argument("--train-rows", default=",".join(label(n) for n in TRAIN_ROWS))
    ap.add_argument("--repeat", type=int, default=3, help="build runs below 10M (10M: one less)")
    ap.add_argument(
        "--peer-accounts",
        type=int,
        default=0,
        help="accounts in the DFS subsample of the smallest base (0: all of them)",
    )
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "churnlens-scale")
    for s in ("build", "peer", "train", "score", "spark"):
        ap.add_argument(f"--skip-{s}", action="store_true")
    ap.add_argument("--child", choices=["build", "prepare"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if "OMP_WAIT_POLICY" not in os.environ:
        # LightGBM's OpenMP threads spin while they wait by default; when other jobs share the
        # 2 cores, spinning threads slow a fit 4-10x (a 10k-row fit: 1 s alone, 4-10 s beside
        # a Spark test run). PASSIVE waits make the figures measure the code, not the neighbours.
        # Set OMP_WAIT_POLICY yourself (e.g. ACTIVE) to measure otherwise; children inherit it.
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.execv(sys.executable, [sys.executable, __file__, *sys.argv[1:]])

    if a.child:
        if a.child == "build":
            out = child_build(a.data, snapshots=True)
        else:
            prep_dir = a.data.with_name(a.data.name + "-prepared")
            prep_dir.mkdir(exist_ok=True)
            out = child_prepare(a.data, prep_dir)
        a.child_out.write_text(json.dumps(out))
        return 0

    t_start = time.perf_counter()
    sizes = sorted(parse_count(s) for s in a.sizes.split(",") if s)
    a.cache.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    res: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "sizes": [label(s) for s in sizes],
        "build": [],
        "train": [],
    }
    try:
        import psutil

        res["machine"]["memory_gib"] = round(psutil.virtual_memory().total / GIB, 1)
    except ImportError:
        pass

    res["loadavg_1m"] = {"start": round(os.getloadavg()[0], 2)}

    def mark(section: str) -> None:
        # Other users of the machine show here: a 1-minute load above the 2 cores slows figures.
        res["loadavg_1m"][section] = round(os.getloadavg()[0], 2)

    if not a.skip_build:
        print("build: timeline + indicators per size", flush=True)
        bench_build(sizes, a.cache, a.repeat, rows, res)
        mark("after build")
    if not a.skip_peer:
        print("peer: Featuretools DFS on a subsample", flush=True)
        bench_peer(ensure_base(sizes[0], a.cache), a.peer_accounts, rows, res)
        mark("after peer")
    prep: Path | None = None
    if not (a.skip_train and a.skip_score and a.skip_spark):
        base = ensure_base(TRAIN_BASE, a.cache)
        prep = base.with_name(base.name + "-prepared")
        if not (prep / "info.json").exists():
            print("preparing snapshots + model on the 10M base", flush=True)
            run_child(["--child", "prepare", "--data", str(base)])
    if not a.skip_train and prep is not None:
        print("train: fit time vs snapshot rows", flush=True)
        bench_train(prep, [parse_count(s) for s in a.train_rows.split(",") if s], rows, res)
        mark("after train")
    if not a.skip_score and prep is not None:
        print("score: batch accounts/s", flush=True)
        bench_score(prep, rows, res)
        mark("after score")
    if not a.skip_spark:
        print("spark: local[2]", flush=True)
        bench_spark(sizes, a.cache, prep, rows, res)
        mark("after spark")

    res["wall_s"] = round(time.perf_counter() - t_start, 1)
    res["rows"] = rows
    print_table(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"scale-{stamp}.json"
    out.write_text(json.dumps(res, indent=2, default=str))
    print(f"\nwritten {out.relative_to(ROOT)}")
    for p in plot(res, out.with_suffix("")):
        print(f"written {p.relative_to(ROOT)}")
    print(f"total wall time {res['wall_s']:.0f}s; 1-minute load average {res['loadavg_1m']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
