"""MLflow registry step: register a version, then move ``@champion`` only through the gate.

The first model becomes ``@champion``. A later one is ``@challenger`` and replaces the champion only
when it beats it on *this run's* test window (the champion is re-scored on the same rows) by the
configured margin. ``churnlens promote --force`` overrides, recorded as a tag. If anything fails
after the version is created, the version is deleted: no half-registered versions, no moved alias.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from ..config import RegistryConfig
from ..model import ARTIFACT_KEY, ChurnModel
from .metrics import evaluate

log = logging.getLogger(__name__)
CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class Decision:
    """What the gate decided for a new version."""

    version: str
    alias: str
    champion_before: str | None
    metric: str
    challenger_value: float
    champion_value: float | None
    reason: str


def load_registered(client: MlflowClient, name: str, version: str) -> ChurnModel:
    """The churnlens package inside a registered version (no training code needed)."""
    client.get_model_version(name, version)  # a clear error when it does not exist
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}",
            dst_path=tmp,
            tracking_uri=mlflow.get_tracking_uri(),
        )
        return ChurnModel.load(Path(path) / "artifacts" / ARTIFACT_KEY)


def load_model(uri: str | None, name: str = "churnlens") -> tuple[ChurnModel, str]:
    """A model from a ``models:/name@alias`` / ``models:/name/N`` URI or a package directory.

    Returns the model and a label for it (e.g. ``churnlens v3``). Default: ``@champion``.
    """
    from ..errors import ChurnlensError

    uri = uri or f"models:/{name}@{CHAMPION}"
    if not uri.startswith("models:/"):
        path = Path(uri)
        if (path / ARTIFACT_KEY).is_dir():
            path = path / ARTIFACT_KEY
        elif (path / "artifacts" / ARTIFACT_KEY).is_dir():
            path = path / "artifacts" / ARTIFACT_KEY
        try:
            return ChurnModel.load(path), str(path)
        except FileNotFoundError as err:
            raise ChurnlensError(f"--model {uri}: {err}") from None
    client = MlflowClient()
    ref = uri.removeprefix("models:/")
    model_name, _, rest = ref.partition("@") if "@" in ref else ref.partition("/")
    try:
        if "@" in ref:
            version = str(client.get_model_version_by_alias(model_name, rest).version)
        else:
            version = str(client.get_model_version(model_name, rest).version)
    except MlflowException as err:
        raise ChurnlensError(
            f"{uri}: no such registered model at {mlflow.get_tracking_uri()} ({err.message}); "
            "train one with `churnlens train` or pass --model"
        ) from None
    return load_registered(client, model_name, version), f"{model_name} v{version}"


def champion_version(client: MlflowClient, name: str) -> str | None:
    """Version number holding ``@champion``, or None."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def _better(metric: str, new: float, old: float, margin: float) -> bool:
    if metric == "brier":
        return new < old - margin
    return new > old + margin


def register_and_gate(
    client: MlflowClient,
    model_uri: str,
    run_id: str,
    cfg: RegistryConfig,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    new_value: float,
) -> Decision:
    """Register ``model_uri`` and apply the champion gate; roll back on any failure."""
    name = cfg.model_name
    removed = remove_stale_versions(client, name)
    if removed:
        log.warning("deleted half-registered %s versions left by dead runs: %s", name, removed)
    champ = champion_version(client, name)
    champ_value: float | None = None
    if champ is not None:
        old = load_registered(client, name, champ)
        champ_value = evaluate(y_test, old.predict_proba(X_test))[cfg.gate_metric]
    with contextlib.suppress(MlflowException):  # it may exist already
        client.create_registered_model(name)
    mv = client.create_model_version(
        name, model_uri, run_id=run_id, tags={"churnlens.status": "registering"}
    )
    version = str(mv.version)
    try:
        _wait_ready(client, name, version)
        if champ is None:
            alias, reason = CHAMPION, "first model"
        elif champ_value is None or _better(
            cfg.gate_metric, new_value, champ_value, cfg.gate_margin
        ):
            alias = CHAMPION
            reason = (
                f"{cfg.gate_metric} {new_value:.4f} beats champion v{champ} "
                f"{champ_value:.4f} by margin {cfg.gate_margin}"
            )
        else:
            alias = CHALLENGER
            reason = (
                f"{cfg.gate_metric} {new_value:.4f} does not beat champion v{champ} "
                f"{champ_value:.4f} by margin {cfg.gate_margin}"
            )
        for key, value in {
            "churnlens.gate_metric": cfg.gate_metric,
            "churnlens.gate_value": f"{new_value:.6f}",
            "churnlens.champion_before": champ or "",
            "churnlens.champion_value": "" if champ_value is None else f"{champ_value:.6f}",
            "churnlens.decision": reason,
        }.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_registered_model_alias(name, alias, version)
        client.set_model_version_tag(name, version, "churnlens.status", "ready")
    except BaseException:
        log.error("registration of %s v%s failed; deleting the version", name, version)
        try:
            client.delete_model_version(name, version)
        finally:
            raise
    return Decision(version, alias, champ, cfg.gate_metric, new_value, champ_value, reason)


STALE_AFTER_S = 3600


def remove_stale_versions(client: MlflowClient, name: str, now_ms: int | None = None) -> list[str]:
    """Delete versions still tagged ``registering`` whose run ended or that are over an hour old.

    A process killed between creating a version and tagging it ``ready`` leaves such a version;
    it never held an alias, so deleting it restores the registry to a consistent state.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    removed = []
    for mv in versions:
        if mv.tags.get("churnlens.status") != "registering":
            continue
        try:
            run_status = client.get_run(mv.run_id).info.status if mv.run_id else "MISSING"
        except MlflowException:
            run_status = "MISSING"
        old = now_ms - int(mv.creation_timestamp) > STALE_AFTER_S * 1000
        if run_status != "RUNNING" or old:
            client.delete_model_version(name, str(mv.version))
            removed.append(str(mv.version))
    return removed


def promote(client: MlflowClient, name: str, version: str, reason: str) -> None:
    """Force ``@champion`` onto ``version`` (recorded on the version)."""
    client.get_model_version(name, version)  # raises if missing
    client.set_model_version_tag(name, version, "churnlens.forced_promotion", reason)
    client.set_registered_model_alias(name, CHAMPION, version)


def _wait_ready(client: MlflowClient, name: str, version: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_model_version(name, version).status
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION":
            raise RuntimeError(f"{name} v{version}: registration failed")
        time.sleep(0.2)
    raise TimeoutError(f"{name} v{version}: not ready after {timeout}s")
