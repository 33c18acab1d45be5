"""Model quality on data the model never saw (a later time window), each beside its reference.

- fightchurn socialnet7 (full public data via the adapter): LightGBM on churnlens's features (the
  indicators and, as the adapter's config tracks every event type, the tracked groups'
  indicators) vs a plain LightGBM on raw 28-day event counts per event type, same snapshots, same
  split (train on snapshots before 2020-03-25, test on those from 2020-04-01, 4-week horizon),
  same parameters; beside them, the indicators without the tracked groups and a hand-made
  per-event-type feature set for this data (84-day counts, each type's share of events,
  28-vs-84-day trend).
- simulator: the training pipeline's test-window metrics beside the ground-truth ceiling, then
  where the gap comes from: the same LightGBM with and without the true (latent) decline level, and
  mean model probability vs mean truth on test rows grouped by decline level.

Run with ``make bench`` (or ``python bench/quality.py``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from churnlens.config import load_config
from churnlens.datasets.fightchurn import import_fightchurn
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.contract import decoded, load_tables
from churnlens.features.indicators import compute_indicators
from churnlens.features.snapshots import build_snapshots, observation_dates
from churnlens.features.timeline import build_timeline
from churnlens.training.fit import lgb_params
from churnlens.training.pipeline import FEATURES, feature_names, fit_and_evaluate, prepare

ROOT = Path(__file__).resolve().parents[1]
FIGHTCHURN = ROOT.parent / "shared" / "data" / "fightchurn-socialnet7"
TRAIN_BEFORE = pd.Timestamp("2020-03-25")
TEST_FROM = pd.Timestamp("2020-04-01")


def raw_counts(events: pd.DataFrame, snaps: pd.DataFrame, days: int = 28) -> pd.DataFrame:
    """Counts per event type in the ``days`` days ending at each snapshot date (28: the plain
    features)."""
    ev = events[["account_id", "occurred_at", "event"]]
    ev = ev.assign(account_id=decoded(ev["account_id"]), event=decoded(ev["event"]))  # not codes
    parts = []
    for t, grp in snaps.groupby("as_of"):
        end = t + pd.Timedelta(days=1)
        start = end - pd.Timedelta(days=days)
        window = ev[(ev["occurred_at"] >= start) & (ev["occurred_at"] < end)]
        window = window[window["account_id"].isin(grp["account_id"])]
        c = window.groupby(["account_id", "event"]).size().unstack(fill_value=0)
        c = c.reindex(grp["account_id"].unique(), fill_value=0)
        c.index.name = "account_id"
        parts.append(c.reset_index().assign(as_of=t))
    return pd.concat(parts, ignore_index=True).fillna(0)


def fit_auc(train: pd.DataFrame, test: pd.DataFrame, features: list[str], seed: int) -> float:
    """Same LightGBM recipe for both feature sets: early stopping on 20% of training accounts."""
    return float(roc_auc_score(test["label"], fit_predict(train, test, features, seed)))


def fit_predict(
    train: pd.DataFrame, test: pd.DataFrame, features: list[str], seed: int
) -> np.ndarray:
    """:func:`fit_auc`'s model's scores of the test rows."""
    rng = np.random.default_rng(seed)
    accounts = train["account_id"].unique()
    hold = set(rng.choice(accounts, size=len(accounts) // 5, replace=False).tolist())
    is_hold = train["account_id"].isin(hold)
    tr, va = train[~is_hold], train[is_hold]
    cfg = load_config(None, None).model
    params = lgb_params(cfg, features, seed) | {"monotone_constraints": [0] * len(features)}
    booster = lgb.train(
        params,
        lgb.Dataset(tr[features], tr["label"]),
        num_boost_round=2000,
        valid_sets=[lgb.Dataset(va[features], va["label"])],
        callbacks=[lgb.early_stopping(100, verbose=False), lgb.log_evaluation(0)],
    )
    return np.asarray(booster.predict(test[features]), dtype=float)


def paired_bootstrap(
    test: pd.DataFrame, ours: list[np.ndarray], theirs: list[np.ndarray], n: int = 1000
) -> tuple[float, float, float]:
    """Standard error and 90% interval of (mean-of-seeds AUC of ``ours``) - (same of
    ``theirs``), resampling test *accounts* (an account's weekly snapshots stay together)."""
    rng = np.random.default_rng(0)
    codes, uniques = pd.factorize(test["account_id"])
    rows_of = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes))[:-1])
    y = test["label"].to_numpy()
    diffs = []
    for _ in range(n):
        idx = np.concatenate([rows_of[i] for i in rng.integers(0, len(uniques), len(uniques))])
        if y[idx].min() == y[idx].max():
            continue
        a = np.mean([roc_auc_score(y[idx], p[idx]) for p in ours])
        b = np.mean([roc_auc_score(y[idx], p[idx]) for p in theirs])
        diffs.append(a - b)
    d = np.asarray(diffs)
    return float(d.std(ddof=1)), float(np.quantile(d, 0.05)), float(np.quantile(d, 0.95))


def fightchurn(work: Path) -> list[str]:
    """Indicators vs raw counts on the full fightchurn data."""
    data = work / "fightchurn"
    import_fightchurn(FIGHTCHURN, data)
    cfg = load_config(None, data)  # the adapter's config: weekly snapshots, 4-week horizon
    tables = load_tables(data, cfg)
    dates = [
        d
        for d in observation_dates(pd.Timestamp("2020-02-01").date(), tables.as_of, 1)
        if pd.Timestamp(d) <= pd.Timestamp("2020-04-29")
    ]
    snaps = build_snapshots(tables, dates)
    ind = compute_indicators(build_timeline(tables), tables.accounts, snaps)
    frame = snaps.merge(ind, on=["account_id", "as_of"])
    raw = raw_counts(tables.frames["usage_events"], snaps)
    event_cols = [c for c in raw.columns if c not in ("account_id", "as_of")]
    frame = frame.merge(raw, on=["account_id", "as_of"], how="left")
    # A hand-made reference for this data: per event type, 84-day counts, the type's share of
    # the account's events and its last 28 days against the 84 (what churnlens's generic
    # indicators fold into breadth and core-feature use).
    raw84 = raw_counts(tables.frames["usage_events"], snaps, 84)
    raw84 = raw84.rename(columns={c: f"{c}_84d" for c in event_cols})
    frame = frame.merge(raw84, on=["account_id", "as_of"], how="left")
    total = frame[[f"{c}_84d" for c in event_cols]].sum(axis=1)
    for c in event_cols:
        frame[f"{c}_share_84d"] = frame[f"{c}_84d"] / total
        frame[f"{c}_trend_28_84d"] = (3 * frame[c] + 1) / (frame[f"{c}_84d"] + 1)
    bespoke = [
        f"{c}{suffix}" for c in event_cols for suffix in ("_84d", "_share_84d", "_trend_28_84d")
    ]
    train = frame[frame["as_of"] < TRAIN_BEFORE]
    test = frame[frame["as_of"] >= TEST_FROM]
    lines = [
        f"fightchurn: {len(train):,} train / {len(test):,} test snapshots, "
        f"{int(test['label'].sum())} churns in test"
    ]
    aucs, preds = {}, {}
    for name, feats in (
        ("plain LightGBM, raw 28-day counts", event_cols),
        ("churnlens features (indicators + tracked event groups)", feature_names(cfg)),
        ("churnlens indicators without tracked event groups", list(FEATURES)),
        ("churnlens indicators + raw counts", [*FEATURES, *event_cols]),
        ("hand-made per event type: 84-day counts, shares, 28/84 trends", bespoke),
    ):
        preds[name] = [fit_predict(train, test, feats, seed) for seed in (1, 2, 3)]
        per_seed = [float(roc_auc_score(test["label"], p)) for p in preds[name]]
        aucs[name] = float(np.mean(per_seed))
        spread = ", ".join(f"{a:.3f}" for a in per_seed)
        lines.append(f"  ROC-AUC {aucs[name]:.4f}  {name} (mean of seeds 1-3: {spread})")
    plain, ours = (
        "plain LightGBM, raw 28-day counts",
        "churnlens features (indicators + tracked event groups)",
    )
    se, lo, hi = paired_bootstrap(test, preds[ours], preds[plain])
    lines.append(
        f"  churnlens - plain = {aucs[ours] - aucs[plain]:+.4f} (target >= +0.03); paired"
        f" bootstrap over test accounts: SE {se:.4f}, 90% interval {lo:+.4f} .. {hi:+.4f}"
    )
    return lines


def simulator(work: Path, n: int) -> list[str]:
    """The pipeline's test-window metrics beside the truth, and its wall time."""
    data = work / "sim"
    write_base(simulate(SimulatorConfig(n_accounts=n, seed=7)), data)
    cfg = load_config(None, data)
    t0 = time.perf_counter()
    prepared = prepare(data, cfg, None, lambda m: None)
    _, metrics, test, _ = fit_and_evaluate(prepared, cfg, data, lambda m: None)
    secs = time.perf_counter() - t0
    lines = [f"simulator {n:,} accounts: features + training + evaluation in {secs:.0f}s"]
    for who in ("model", "logistic", "health_score", "ground_truth"):
        m = metrics.get(who)
        if m:
            lines.append(
                f"  {who:<13} ROC-AUC {m['roc_auc']:.4f}  ECE {m['ece']:.4f}  "
                f"Brier {m['brier']:.4f}"
            )
    gap = metrics["ground_truth"]["roc_auc"] - metrics["model"]["roc_auc"]
    lines.append(f"  ceiling - model = {gap:.4f} (target <= 0.01)")
    return lines + decline_level_gap(prepared.frame, test, data, cfg.seed)


def decline_level_gap(frame: pd.DataFrame, test: pd.DataFrame, data: Path, seed: int) -> list[str]:
    """What the gap to the ceiling is made of: the latent decline level.

    The same LightGBM recipe is fitted twice on the pipeline's train window, once on the
    indicators and once on the indicators plus the simulator's true decline level (not observable:
    an oracle); then to tell declining accounts from healthy ones by the indicators (how visible a
    decline is). Then the test rows are grouped by true phase, comparing the mean calibrated model
    probability with the mean truth.
    """
    states = pd.read_parquet(data / "truth" / "latent_states.parquet")
    states = states.assign(
        as_of=states["week_start"] + pd.Timedelta(days=6),
        level=np.where(states["phase"] == "bottom", 11, states["decline_level"]),
    )[["account_id", "as_of", "level"]]
    f = frame.merge(states, on=["account_id", "as_of"], how="left")
    train, test_rows = f[f["window"] == "train"], f[f["window"] == "test"]
    lines = []
    for name, feats in (
        ("indicators", list(FEATURES)),
        ("indicators + true decline level (oracle)", [*FEATURES, "level"]),
    ):
        auc = fit_auc(train, test_rows, feats, seed)
        lines.append(f"  ROC-AUC {auc:.4f}  LightGBM on {name}, same train / test windows")
    # How visible is a decline at all? The same recipe, trained to tell accounts at decline
    # levels lo..hi from healthy ones (level 0) by their indicators alone.
    for lo, hi in ((1, 3), (4, 6)):
        tr_d, te_d = (
            d[(d["level"] == 0) | d["level"].between(lo, hi)].assign(label=d["level"] > 0)
            for d in (train, test_rows)
        )
        auc = fit_auc(tr_d.astype({"label": int}), te_d.astype({"label": int}), [*FEATURES], seed)
        lines.append(
            f"  ROC-AUC {auc:.4f}  telling decline levels {lo}-{hi} from healthy rows by the"
            " indicators (LightGBM, same windows)"
        )
    t = test.merge(states, on=["account_id", "as_of"], how="left")
    phase = pd.cut(t["level"], [-1, 0, 3, 6, 10, 11], labels=["none", "1-3", "4-6", "7-10", "B"])
    table = t.groupby(phase, observed=True).agg(
        rows=("label", "size"),
        churned=("label", "mean"),
        model=("p", "mean"),
        truth=("p_truth", "mean"),
    )
    lines.append("  test rows by true decline level: rows, churned share, mean model p, mean truth")
    for level, r in table.iterrows():
        shares = f"{r['churned']:.3f} {r['model']:.3f} {r['truth']:.3f}"
        lines.append(f"    {level:>5}: {int(r['rows']):>6,} {shares}")
    return lines


def main() -> int:
    n = int(os.environ.get("BENCH_ACCOUNTS", "5000"))
    with tempfile.TemporaryDirectory(prefix="churnlens-quality-") as tmp:
        lines = simulator(Path(tmp), n)
        if FIGHTCHURN.exists():
            lines += fightchurn(Path(tmp))
        else:
            lines.append(f"fightchurn skipped: {FIGHTCHURN} not found")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
