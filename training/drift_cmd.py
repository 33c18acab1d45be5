"""Drift check: current indicator distributions against the model's training window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from ..config import Config, with_tracked_events
from ..features.contract import load_tables
from ..features.indicators import SOURCES, availability_column, compute_indicators
from ..features.snapshots import alive_accounts, default_dates
from ..features.timeline import build_timeline
from ..model import ChurnModel
from .drift import PSI_RETRAIN, drift_report
from .split import labelled_dates

MISSING_SHIFT = 0.2


@dataclass
class DriftResult:
    """Per-indicator PSI, source availability then and now, and the advice.

    ``shifted``: some indicator or source moved past its threshold since the training window.
    ``retrain``: shifted, and outcomes the model has not seen are known: a model trained now would
    use later dates (``new_outcome_weeks`` > 0; unknown for a model without its windows).
    """

    report: pd.DataFrame
    sources: pd.DataFrame
    retrain: bool
    reasons: list[str]
    as_of: date
    shifted: bool = False
    trained_until: date | None = None  # the model's last dated outcome (end of its test window)
    labelled_until: date | None = None  # the last observation date with a known outcome now
    new_outcome_weeks: int | None = None


def check_drift(data_dir: Path, cfg: Config, as_of: date | None, model: ChurnModel) -> DriftResult:
    """Compare indicators of every live account at ``as_of`` with the training window."""
    tables = load_tables(data_dir, with_tracked_events(cfg, model.tracked_events()), as_of)
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
    # Retraining only helps once outcomes of later dates are known: the dates a training run
    # would label now, against the last one the model was evaluated on.
    dates = pd.Series(pd.to_datetime(default_dates(tables)), dtype="datetime64[us]")
    labelled = labelled_dates(dates, tables.as_of, cfg.labels.horizon_weeks)
    labelled_until = labelled.max().date() if len(labelled) else None
    test_end = model.meta.get("windows", {}).get("test_end")
    trained_until = date.fromisoformat(test_end) if test_end else None
    new_weeks = None
    if trained_until is not None:
        new_weeks = max(0, (labelled_until - trained_until).days // 7) if labelled_until else 0
    shifted = bool(reasons)
    retrain = shifted and (new_weeks is None or new_weeks > 0)
    return DriftResult(
        report,
        sources,
        retrain,
        reasons,
        tables.as_of,
        shifted=shifted,
        trained_until=trained_until,
        labelled_until=labelled_until,
        new_outcome_weeks=new_weeks,
    )
