"""Drift check: current indicator distributions against the model's training window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from ..config import Config
from ..features.contract import load_tables
from ..features.indicators import SOURCES, availability_column, compute_indicators
from ..features.snapshots import alive_accounts
from ..features.timeline import build_timeline
from ..model import ChurnModel
from .drift import PSI_RETRAIN, drift_report

MISSING_SHIFT = 0.2


@dataclass
class DriftResult:
    """Per-indicator PSI, source availability then and now, and the advice."""

    report: pd.DataFrame
    sources: pd.DataFrame
    retrain: bool
    reasons: list[str]
    as_of: date


def check_drift(data_dir: Path, cfg: Config, as_of: date | None, model: ChurnModel) -> DriftResult:
    """Compare indicators of every live account at ``as_of`` with the training window."""
    tables = load_tables(data_dir, cfg, as_of)
    ind = compute_indicators(build_timeline(tables), alive_accounts(tables), as_of=tables.as_of)
    report = drift_report(model.stats, model.matrix(ind), ind)
    rows = []
    for s in SOURCES:
        col = availability_column(s)
        then = model.stats.get("sources", {}).get(s, float("nan"))
        now = float(ind[col].mean()) if col in ind and len(ind) else float("nan")
        rows.append({"source": s, "available_train": then, "available_now": now})
    sources = pd.DataFrame(rows)
    reasons = [
        f"{r['feature']}: PSI {float(r['psi']):.2f}"
        for r in report.to_dict("records")
        if float(r["psi"]) >= PSI_RETRAIN
    ]
    for src in rows:
        then, now = float(src["available_train"]), float(src["available_now"])
        if abs(now - then) >= MISSING_SHIFT:
            reasons.append(
                f"{src['source']}: known for {now:.0%} of accounts now vs {then:.0%} in training"
            )
    return DriftResult(report, sources, bool(reasons), reasons, tables.as_of)
