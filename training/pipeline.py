"""The training pipeline: wiring only; every step is a function in this package or features/.

contract tables -> timeline -> snapshots + indicators -> time windows -> LightGBM (early stopping
on validation) -> calibrator (isotonic or Platt by held-out Brier) -> test-window evaluation beside
the rule-based health score, a logistic regression and, on simulated data, the ground truth ->
one MLflow run -> registered version -> champion gate.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from scipy.special import expit

from ..config import Config
from ..errors import ChurnlensError, mask_passwords
from ..features.contract import Tables, data_digest, load_tables
from ..features.indicators import (
    code_version,
    compute_indicators,
    describe,
    indicator_columns,
)
from ..features.snapshots import build_snapshots
from ..features.timeline import build_timeline
from ..model import ARTIFACT_KEY, ChurnModel
from .baselines import health_score
from .calibrate import choose_calibrator
from .drift import training_stats
from .fit import fit_lightgbm, fit_logistic, refit_lightgbm, refit_rounds
from .metrics import by_segment, evaluate
from .split import Windows, assign, time_windows

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
FEATURES: tuple[str, ...] = tuple(indicator_columns())
"""The model's features without tracked event groups (:func:`feature_names`)."""


def feature_names(cfg: Config) -> list[str]:
    """The model's features: every indicator, the tracked event groups' indicators (config
    order), then the sources' availability flags."""
    return indicator_columns(list(cfg.events.tracked))


def feature_spec(name: str) -> dict[str, str]:
    """What the model package records of feature ``name`` (family, direction, unit, text)."""
    ind = describe(name)
    if ind is None:  # an availability flag
        return {
            "family": "availability",
            "direction": "none",
            "unit": "flag",
            "description": f"1 when the {name.removeprefix('has_')} source is known",
            "en": "",
            "ja": "",
        }
    return {
        "family": ind.family,
        "direction": ind.direction,
        "unit": ind.unit,
        "description": ind.description,
        "en": ind.en,
        "ja": ind.ja,
    }


TRUTH_FILE = Path("truth") / "true_churn_probability.parquet"

Progress = Callable[[str], None]
Engine = Literal["duckdb", "spark"]


@dataclass
class Prepared:
    """Labelled indicator rows with their window."""

    tables: Tables
    frame: pd.DataFrame  # snapshots + indicators + window + arr + tier
    windows: Windows


@dataclass
class TrainResult:
    """What a training run produced."""

    model: ChurnModel
    metrics: dict[str, dict[str, float]]
    windows: Windows
    run_id: str | None = None
    version: str | None = None
    alias: str | None = None
    decision: str | None = None
    test_frame: pd.DataFrame = field(default_factory=pd.DataFrame)


def prepare(
    data_dir: Path,
    cfg: Config,
    as_of: date | None,
    progress: Progress,
    *,
    engine: Engine = "duckdb",
    spark_master: str | None = None,
    tables: Tables | None = None,
) -> Prepared:
    """Load and label: one row per (account, observation date) with indicators and window.

    With ``engine="spark"`` the timeline and indicators are computed on Spark
    (:func:`churnlens.spark.pipeline.snapshot_frame`) and the labelled frame is collected here.
    ``tables``: the directory already loaded by the caller with ``load_tables(data_dir, cfg,
    as_of)`` (not read again; the Spark engine reads the files itself).
    """
    if engine == "spark":
        from ..spark.pipeline import snapshot_frame

        tables, frame = snapshot_frame(data_dir, cfg, as_of, progress, spark_master)
    else:
        progress("load + validate contract tables")
        if tables is None:
            tables = load_tables(data_dir, cfg, as_of)
        progress("stage 1: weekly timeline")
        timeline = build_timeline(tables)
        progress("snapshots + stage 2 indicators")
        snaps = build_snapshots(tables)
        ind = compute_indicators(timeline, tables.accounts, snaps)
        frame = snaps.merge(ind, on=["account_id", "as_of"], how="left", validate="one_to_one")
    windows = time_windows(
        frame["as_of"],
        tables.as_of,
        cfg.labels.horizon_weeks,
        cfg.split.test_weeks,
        cfg.split.valid_weeks,
    )
    frame["window"] = assign(frame["as_of"], windows)
    acc = tables.accounts.set_index("account_id")
    frame["tier"] = frame["account_id"].map(acc["touch_tier"]) if "touch_tier" in acc else None
    return Prepared(tables, frame, windows)


def _check_windows(frame: pd.DataFrame) -> None:
    from ..errors import ChurnlensError

    for w in ("train", "valid", "test"):
        part = frame[frame["window"] == w]
        if part.empty or part["label"].nunique() < 2:
            raise ChurnlensError(
                f"the {w} window has {len(part)} snapshots and {int(part['label'].sum())} churns;"
                " each window needs churned and retained accounts (more history or accounts, or a"
                " shorter split.* / labels.horizon_weeks)"
            )


def _tenure_band(weeks: pd.Series) -> pd.Series:
    return pd.cut(
        weeks,
        [-np.inf, 13, 52, 104, np.inf],
        labels=["0-3 months", "3-12 months", "1-2 years", "2+ years"],
    )


def fit_and_evaluate(
    p: Prepared, cfg: Config, data_dir: Path, progress: Progress
) -> tuple[ChurnModel, dict[str, dict[str, float]], pd.DataFrame, dict[str, Any]]:
    """Fit model, calibrator and baselines; evaluate all of them on the test window."""
    f = p.frame
    _check_windows(f)
    features = feature_names(cfg)
    tr, va, te = (f[f["window"] == w] for w in ("train", "valid", "test"))
    Xtr, Xva, Xte = (d[features].astype("float64") for d in (tr, va, te))
    ytr, yva, yte = (d["label"].to_numpy() for d in (tr, va, te))
    progress(f"LightGBM on {len(tr):,} train rows, early stopping on {len(va):,} validation rows")
    booster = fit_lightgbm(Xtr, ytr, Xva, yva, cfg.model, cfg.seed)
    best_iteration = booster.current_iteration()
    rounds = best_iteration
    fit_rows, fit_frame = Xtr, tr
    if cfg.model.refit:
        # The validation window is the most recent labelled data: once it has chosen the number
        # of rounds, the model is refitted on train + validation. The calibrator below then sees
        # the refit model's validation scores (in sample, but the map is close to identity for a
        # model trained with these rounds and leaf sizes; the test window stays unseen).
        fit_rows = pd.concat([Xtr, Xva])
        fit_frame = pd.concat([tr, va])
        rounds = refit_rounds(best_iteration, len(Xtr), len(fit_rows))
        progress(f"refit on {len(fit_rows):,} train + validation rows, {rounds} rounds")
        booster = refit_lightgbm(fit_rows, np.concatenate([ytr, yva]), cfg.model, cfg.seed, rounds)
    raw_va = expit(booster.predict(Xva, raw_score=True))
    progress("calibration on the validation window")
    calibrator, cal_scores = choose_calibrator(
        raw_va, yva, va["account_id"].to_numpy(), cfg.model.calibration, cfg.seed
    )
    spec = {name: feature_spec(name) for name in features}
    meta: dict[str, Any] = {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "windows": p.windows.to_dict(),
        "best_iteration": best_iteration,
        "rounds": rounds,
        "refit": cfg.model.refit,
        "calibration": {"chosen": calibrator.kind, "valid_brier": cal_scores},
        "indicator_code_version": code_version(),
        "config": cfg.model_dump(mode="json"),
        "data_digest": data_digest(data_dir),
        "git_sha": git_sha(),
        "lockfile_sha256": lockfile_hash(),
        "horizon_weeks": cfg.labels.horizon_weeks,
        "bands": cfg.bands.model_dump(),
        "tiers": cfg.tiers.model_dump(),
    }
    model = ChurnModel(
        booster, calibrator, features, spec, training_stats(fit_rows, fit_frame), meta
    )

    progress("evaluation on the test window (model, baselines, ceiling)")
    arr = te["arr"].to_numpy(dtype=float)
    te = te.assign(p=model.predict_proba(Xte))
    metrics = {"model": evaluate(yte, te["p"].to_numpy(), arr)}
    health = health_score(te)
    metrics["health_score"] = evaluate(yte, (100 - health.to_numpy()) / 100, arr)
    # The baseline learns from the same rows as the model (train + validation after a refit).
    fit_labels = np.concatenate([ytr, yva]) if cfg.model.refit else ytr
    logistic = fit_logistic(fit_rows, fit_labels, cfg.seed)
    metrics["logistic"] = evaluate(yte, logistic.predict_proba(Xte.to_numpy())[:, 1], arr)
    truth_path = data_dir / TRUTH_FILE
    if truth_path.exists():
        truth = pd.read_parquet(truth_path)
        col = "p_churn_avoidable" if cfg.labels.unavoidable == "exclude" else "p_churn"
        t = te[["account_id", "as_of"]].merge(
            truth[["account_id", "as_of", col]], on=["account_id", "as_of"], how="left"
        )
        if t[col].notna().all():
            metrics["ground_truth"] = evaluate(yte, t[col].to_numpy(), arr)
            te = te.assign(p_truth=t[col].to_numpy())
    te = te.assign(tenure_band=_tenure_band(te["tenure_weeks"]))
    segments = {"tier": by_segment(te, "tier"), "tenure_band": by_segment(te, "tenure_band")}
    meta["metrics"] = metrics
    return model, metrics, te, {"segments": segments, "calibration_scores": cal_scores}


BASELINES = ("health_score", "logistic")


def baselines_ahead(metrics: dict[str, dict[str, float]]) -> list[str]:
    """The baselines whose test ROC-AUC is at least the model's (the model should beat both)."""
    model = metrics["model"]["roc_auc"]
    return [b for b in BASELINES if b in metrics and metrics[b]["roc_auc"] >= model]


def git_sha() -> str:
    """HEAD of the checkout the package runs from ('unknown' outside git)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return out.stdout.strip() + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lockfile_hash() -> str:
    """SHA-256 of uv.lock ('unknown' when the package is installed without it)."""
    lock = ROOT / "uv.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else "unknown"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` or a SQLite file in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


TRACKING_CHECK_TIMEOUT_S = 5
FAILED_MARK_TRIES = 8


def check_tracking_store(uri: str) -> None:
    """Fail fast, before training, when the MLflow tracking store does not answer.

    MLflow itself retries a database it cannot reach for minutes (and an HTTP server up to
    ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` times); this check connects once with a short timeout.

    Raises:
        ChurnlensError: the store does not answer (naming the URI, password masked).
    """
    from ..errors import ChurnlensError

    scheme = uri.split(":", 1)[0].lower()
    try:
        if scheme in ("http", "https"):
            import httpx

            httpx.get(uri.rstrip("/") + "/health", timeout=TRACKING_CHECK_TIMEOUT_S)
        elif "://" in uri and scheme not in ("file", "databricks") and "sqlite" not in scheme:
            import sqlalchemy

            args = {"connect_timeout": TRACKING_CHECK_TIMEOUT_S} if "postgres" in scheme else {}
            engine = sqlalchemy.create_engine(uri, connect_args=args)
            try:
                with engine.connect():
                    pass
            finally:
                engine.dispose()
    except Exception as err:  # any failure to connect means the store is unusable
        cause = re.sub(r"\s+", " ", str(getattr(err, "orig", None) or err)).strip()[:300]
        raise ChurnlensError(
            f"MLflow tracking store {mask_passwords(uri)} does not answer ({cause}); nothing was "
            "trained or registered. Check MLFLOW_TRACKING_URI and that the server is up."
        ) from None


def _mark_failed(client: Any, run_id: str, uri: str) -> bool:
    """Set the run's status to FAILED, retrying while the store is locked or away (bounded)."""
    for attempt in range(FAILED_MARK_TRIES):
        try:
            client.set_terminated(run_id, "FAILED")
            return True
        except Exception as err:  # the store may still be locked: wait and retry
            log.warning("cannot mark run %s FAILED in %s yet: %s", run_id, mask_passwords(uri), err)
            time.sleep(min(0.5 * 2**attempt, 5.0))
    return False


def _start_run(uri: str) -> Any:
    """``mlflow.start_run`` in experiment ``churnlens`` (tolerating a concurrent creation)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment("churnlens")
    except MlflowException:  # another train created it at the same moment
        time.sleep(0.5)
        mlflow.set_experiment("churnlens")
    return mlflow.start_run(
        tags={"churnlens.pid": str(os.getpid()), "churnlens.host": socket.gethostname()}
    )


def train(
    data_dir: Path,
    cfg: Config,
    as_of: date | None = None,
    *,
    progress: Progress | None = None,
    register: bool = True,
    engine: Engine = "duckdb",
    spark_master: str | None = None,
    tables: Tables | None = None,
) -> TrainResult:
    """Run the whole pipeline and log it to MLflow (see module docstring).

    ``engine="spark"`` computes the timeline and the snapshot indicators on Spark
    (``spark_master``, default ``$CHURNLENS_SPARK_MASTER`` or ``local[2]``); the model is then
    trained on the driver from the collected frame.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    say = progress or (lambda msg: log.info("%s", msg))
    if register:
        check_tracking_store(tracking_uri())
    prepared = prepare(
        data_dir, cfg, as_of, say, engine=engine, spark_master=spark_master, tables=tables
    )
    model, metrics, te, extra = fit_and_evaluate(prepared, cfg, data_dir, say)
    result = TrainResult(model, metrics, prepared.windows, test_frame=te)
    if not register:
        return result

    uri = tracking_uri()
    say(f"MLflow run ({mask_passwords(uri)})")
    try:
        run = _start_run(uri)
    except _store_errors() as err:
        raise _tracking_error(uri, "starting the run", err, None, False) from None
    client = MlflowClient()
    result.run_id = run.info.run_id
    try:
        _log_and_register(
            result, run, client, model, metrics, te, extra, prepared, cfg, data_dir, say
        )
    except BaseException as err:
        log.error(
            "run %s failed in %s (%s); marking it FAILED", run.info.run_id, mask_passwords(uri), err
        )
        marked = _mark_failed(client, run.info.run_id, uri)
        with contextlib.suppress(Exception):  # pops the active run even if the store refuses
            mlflow.end_run("FAILED")
        if isinstance(err, _store_errors()):
            step = "logging or registering the model"
            raise _tracking_error(uri, step, err, run, marked) from None
        raise
    mlflow.end_run()
    return result


def _store_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the tracking store failed (not a bug in churnlens)."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    return (MlflowException, SQLAlchemyError, OSError)


def _tracking_error(
    uri: str, step: str, err: BaseException, run: Any, marked: bool
) -> ChurnlensError:
    """One paragraph: what failed, where (tracking URI), why, and what state was left."""
    cause = re.sub(r"\s+", " ", str(getattr(err, "message", None) or err)).strip()[:400]
    where = ""
    if run is not None:
        state = "marked FAILED" if marked else "could not be marked FAILED (still RUNNING)"
        where = f"run {run.info.run_id} {state}; "
    return ChurnlensError(
        f"MLflow tracking store {mask_passwords(uri)}: {step} failed ({type(err).__name__}: "
        f"{cause}); {where}@champion did not move and the version this run created, if any, "
        "was deleted (or, if the store refused that too, is tagged 'registering' and removed "
        "by the next train)"
    )


def _log_and_register(
    result: TrainResult,
    run: Any,
    client: Any,
    model: ChurnModel,
    metrics: dict[str, dict[str, float]],
    te: pd.DataFrame,
    extra: dict[str, Any],
    prepared: Prepared,
    cfg: Config,
    data_dir: Path,
    say: Progress,
) -> None:
    import mlflow

    from .artifacts import write_artifacts
    from .registry import register_and_gate

    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags(
            {
                "churnlens.data_dir": str(data_dir),
                "churnlens.data_digest": model.meta["data_digest"],
                "churnlens.git_sha": model.meta["git_sha"],
                "churnlens.lockfile_sha256": model.meta["lockfile_sha256"],
                "churnlens.indicator_code_version": model.meta["indicator_code_version"],
                "churnlens.as_of": str(prepared.tables.as_of),
            }
        )
        mlflow.log_params(
            _flat(model.meta["config"])
            | {f"window.{k}": v for k, v in prepared.windows.to_dict().items()}
            | {
                "best_iteration": model.meta["best_iteration"],
                "calibration": model.meta["calibration"]["chosen"],
            }
        )
        for who, m in metrics.items():
            mlflow.log_metrics({f"test.{who}.{k}": v for k, v in m.items() if np.isfinite(v)})
        art = Path(tmp) / "artifacts"
        write_artifacts(art, model, te, metrics, extra, prepared.frame)
        mlflow.log_artifacts(str(art))
        pkg = Path(tmp) / ARTIFACT_KEY
        model.save(pkg)
        sample = model.matrix(te.head(5))
        from mlflow.models import infer_signature

        signature = infer_signature(
            sample, pd.DataFrame({"churn_probability": model.predict_proba(sample)})
        )
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(ROOT / "mlflow_pyfunc.py"),
            artifacts={ARTIFACT_KEY: str(pkg)},
            signature=signature,
            input_example=sample,
            pip_requirements=_requirements(),
        )
        say("registry: champion / challenger gate")
        Xte = model.matrix(te)
        decision = register_and_gate(
            client,
            info.model_uri,
            run.info.run_id,
            cfg.registry,
            Xte,
            te["label"].to_numpy(),
            metrics["model"][cfg.registry.gate_metric],
        )
        result.version, result.alias, result.decision = (
            decision.version,
            decision.alias,
            decision.reason,
        )
        beats = not baselines_ahead(metrics)
        mlflow.set_tag("churnlens.beats_baselines", str(beats).lower())
        mlflow.set_tags(
            {
                "churnlens.registered_version": decision.version,
                "churnlens.alias": decision.alias,
                "churnlens.decision": decision.reason,
            }
        )


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out |= _flat(v, key + ".")
        else:
            out[key] = v if not isinstance(v, list | tuple) else ",".join(map(str, v))
    return out


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ("lightgbm", "numpy", "pandas", "scikit-learn", "scipy", "mlflow", "pyarrow")
    return [f"{p}=={version(p)}" for p in pkgs]


def config_yaml(cfg: Config) -> str:
    """The resolved configuration as YAML."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
