"""Evaluation metrics a CS team and an ML engineer both read."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |observed rate - mean prediction| over equal-frequency bins of ``p``."""
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    err = 0.0
    for idx in np.array_split(order, bins):
        if len(idx):
            err += len(idx) * abs(float(y[idx].mean()) - float(p[idx].mean()))
    return err / len(y)


def top_decile(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Lift and recall of the 10% highest scores."""
    n = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-score, kind="stable")[:n]
    base = y.mean()
    lift = float(y[top].mean() / base) if base > 0 else float("nan")
    recall = float(y[top].sum() / y.sum()) if y.sum() > 0 else float("nan")
    return lift, recall


def arr_captured(y: np.ndarray, p: np.ndarray, arr: np.ndarray, share: float = 0.1) -> float:
    """Share of churned ARR held by the top ``share`` of accounts ranked by ARR at risk."""
    arr = np.nan_to_num(arr)
    churned = float((arr * y).sum())
    if churned <= 0:
        return float("nan")
    n = max(1, int(np.ceil(share * len(y))))
    top = np.argsort(-(p * arr), kind="stable")[:n]
    return float((arr[top] * y[top]).sum() / churned)


def evaluate(y: np.ndarray, p: np.ndarray, arr: np.ndarray | None = None) -> dict[str, float]:
    """All metrics for one scored set (``p`` should be probabilities for Brier and ECE)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    both = len(np.unique(y)) > 1
    lift, recall = top_decile(y, p)
    out = {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(brier_score_loss(y, np.clip(p, 0, 1))),
        "ece": expected_calibration_error(y, p),
        "lift_top_decile": lift,
        "recall_top_decile": recall,
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "n": float(len(y)),
    }
    if arr is not None:
        out["arr_captured_top10"] = arr_captured(y, p, np.asarray(arr, dtype=float))
    return out


def by_segment(frame: pd.DataFrame, column: str, p: str = "p", y: str = "label") -> pd.DataFrame:
    """Metrics per value of ``column`` (e.g. touch tier, tenure band)."""
    rows = []
    for value, g in frame.groupby(column, observed=True, dropna=False):
        m = evaluate(g[y].to_numpy(), g[p].to_numpy())
        rows.append({column: value, **m})
    return pd.DataFrame(rows)
