"""Training-window statistics shipped in the model, and drift against them (PSI per indicator)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..features.indicators import SOURCES, availability_column

N_BINS = 10
PSI_RETRAIN = 0.25
PSI_WATCH = 0.10


def training_stats(X: pd.DataFrame, indicators: pd.DataFrame) -> dict[str, Any]:
    """Quantile bin edges and shares per feature, missing shares, and source availability."""
    feats: dict[str, Any] = {}
    for col in X.columns:
        v = X[col].to_numpy(dtype=float)
        known = v[~np.isnan(v)]
        edges = (
            np.unique(np.quantile(known, np.linspace(0, 1, N_BINS + 1)[1:-1]))
            if len(known)
            else np.array([])
        )
        shares = _shares(v, edges)
        feats[col] = {
            "edges": edges.tolist(),
            "shares": shares.tolist(),
            "missing": float(np.isnan(v).mean()) if len(v) else 1.0,
        }
    sources = {
        s: float(indicators[availability_column(s)].mean())
        for s in SOURCES
        if availability_column(s) in indicators
    }
    return {"features": feats, "sources": sources, "rows": len(X)}


def _shares(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of rows per bin: bins of the known values, then one bin for missing."""
    known = v[~np.isnan(v)]
    counts = np.bincount(np.searchsorted(edges, known, side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, np.isnan(v).sum())
    return counts / max(1, len(v))


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index between two share vectors."""
    e = np.clip(np.asarray(expected, float), eps, None)
    a = np.clip(np.asarray(actual, float), eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def drift_report(stats: dict[str, Any], X: pd.DataFrame, indicators: pd.DataFrame) -> pd.DataFrame:
    """PSI and missing share per feature now vs the training window, worst first."""
    rows = []
    for col, st in stats["features"].items():
        v = X[col].to_numpy(dtype=float) if col in X else np.full(len(X), np.nan)
        now = _shares(v, np.asarray(st["edges"], float))
        value = psi(np.asarray(st["shares"]), now)
        rows.append(
            {
                "feature": col,
                "psi": value,
                "missing_train": st["missing"],
                "missing_now": float(np.isnan(v).mean()),
                "status": "retrain"
                if value >= PSI_RETRAIN
                else "watch"
                if value >= PSI_WATCH
                else "stable",
            }
        )
    return pd.DataFrame(rows).sort_values("psi", ascending=False).reset_index(drop=True)
