"""Run artifacts: charts and tables an ML engineer reads in MLflow after a training run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from ..model import ChurnModel

SOURCE_FAMILY = {
    "has_usage_events": "usage",
    "has_tickets": "support",
    "has_surveys": "voice",
    "has_touchpoints": "relationship",
    "has_contracts": "commercial",
}


def feature_family(model: ChurnModel, name: str) -> str:
    """Reason family of a model feature (availability flags go to their source's family)."""
    fam = str(model.spec[name]["family"])
    return SOURCE_FAMILY.get(name, fam) if fam == "availability" else fam


def write_artifacts(
    out: Path,
    model: ChurnModel,
    test: pd.DataFrame,
    metrics: dict[str, dict[str, float]],
    extra: dict[str, Any],
    frame: pd.DataFrame,
) -> None:
    """Write every artifact of a run into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (out / "features.json").write_text(
        json.dumps(
            [{"name": f, **model.spec[f]} for f in model.features], indent=1, ensure_ascii=False
        )
    )
    (out / "config.yaml").write_text(yaml.safe_dump(model.meta["config"], sort_keys=False))
    (out / "run_record.json").write_text(
        json.dumps(
            {
                k: model.meta[k]
                for k in (
                    "data_digest",
                    "git_sha",
                    "lockfile_sha256",
                    "indicator_code_version",
                    "windows",
                    "calibration",
                    "best_iteration",
                    "rounds",
                    "refit",
                    "trained_at",
                )
            },
            indent=1,
            default=str,
        )
    )
    (out / "training_stats.json").write_text(json.dumps(model.stats, indent=1))
    for name, seg in extra["segments"].items():
        seg.to_csv(out / f"metrics_by_{name}.csv", index=False)
    counts = (
        frame.groupby("window")["label"]
        .agg(["count", "sum"])
        .rename(columns={"count": "snapshots", "sum": "churned"})
    )
    counts.to_csv(out / "windows.csv")
    _calibration_curve(out / "calibration_curve.png", test)
    _gains_chart(out / "lift_gains.png", test)
    _shap_summaries(out, model, test)


def _calibration_curve(path: Path, test: pd.DataFrame) -> None:
    y = test["label"].to_numpy(dtype=float)
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for col, label in (("p", "model"), ("p_truth", "ground truth")):
        if col not in test:
            continue
        p = test[col].to_numpy(dtype=float)
        bins = np.array_split(np.argsort(p, kind="stable"), 10)
        ax.plot([p[b].mean() for b in bins], [y[b].mean() for b in bins], "o-", label=label)
    top = float(max(test["p"].max(), y.mean() * 2, 0.05))
    ax.plot([0, top], [0, top], ":", color="grey")
    ax.set_xlabel("predicted churn probability (decile mean)")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Calibration on the test window")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _gains_chart(path: Path, test: pd.DataFrame) -> None:
    y = test["label"].to_numpy(dtype=float)
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    share = np.arange(1, len(y) + 1) / len(y)
    for col, label in (("p", "model"), ("p_truth", "ground truth")):
        if col in test:
            order = np.argsort(-test[col].to_numpy(dtype=float), kind="stable")
            ax.plot(share, np.cumsum(y[order]) / max(y.sum(), 1), label=label)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="random")
    ax.set_xlabel("share of accounts contacted (highest risk first)")
    ax.set_ylabel("share of churners reached")
    ax.set_title("Cumulative gains on the test window")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _shap_summaries(out: Path, model: ChurnModel, test: pd.DataFrame) -> None:
    sample = test.sample(n=min(len(test), 5000), random_state=0)
    contrib = model.contributions(sample)[:, :-1]
    by_feature = pd.DataFrame(
        {
            "feature": model.features,
            "family": [feature_family(model, f) for f in model.features],
            "mean_abs_shap": np.abs(contrib).mean(axis=0),
            "mean_shap": contrib.mean(axis=0),
        }
    ).sort_values("mean_abs_shap", ascending=False)
    by_feature.to_csv(out / "shap_by_feature.csv", index=False)
    fam = (
        pd.DataFrame(contrib, columns=model.features)
        .T.groupby(by_feature.set_index("feature").loc[model.features, "family"].to_numpy())
        .sum()
        .T
    )
    by_family = pd.DataFrame(
        {
            "family": fam.columns,
            "mean_abs_shap": fam.abs().mean().values,
            "share_raising_risk": (fam > 0).mean().values,
        }
    ).sort_values("mean_abs_shap", ascending=False)
    by_family.to_csv(out / "shap_by_family.csv", index=False)
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(1, 2)
    top = by_feature.head(20).iloc[::-1]
    axes[0].barh(top["feature"], top["mean_abs_shap"])
    axes[0].set_title("mean |SHAP| by indicator (log-odds)")
    fams = by_family.iloc[::-1]
    axes[1].barh(fams["family"], fams["mean_abs_shap"], color="tab:orange")
    axes[1].set_title("mean |SHAP| by reason family")
    fig.tight_layout()
    fig.savefig(out / "shap_summary.png", dpi=110)
