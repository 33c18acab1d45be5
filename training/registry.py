"""MLflow registry step: register a version, then move ``@champion`` only through the gate.

The first model becomes ``@champion``. A later one is ``@challenger`` and replaces the champion only
when it beats it on *this run's* test window (the champion is re-scored on the same rows) by the
configured margin. ``churnlens promote --force`` overrides, recorded as a tag. If anything fails
after the version is created, the version is deleted: no half-registered versions, no moved alias.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
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
        except (OSError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as err:
            cause = " ".join(str(err).split())[:300]
            raise ChurnlensError(
                f"--model {uri}: the model package is corrupt or unreadable "
                f"({type(err).__name__}: {cause})"
            ) from None
    client = MlflowClient()
    ref = uri.removeprefix("models:/")
    model_name, _, rest = ref.partition("@") if "@" in ref else ref.partition("/")
    try:
        if "@" in ref:
            version = str(client.get_model_version_by_alias(model_name, rest).version)
        else:
            version = str(client.get_model_version(model_name, rest).version)
    except MlflowException as err:
        from ..errors import mask_passwords

        raise ChurnlensError(
            f"{uri}: no such registered model at {mask_passwords(mlflow.get_tracking_uri())} "
            f"({err.message}); "
            "train one with `churnlens train` or pass --model"
        ) from None
    return load_registered(client, model_name, version), f"{model_name} v{version}"


def champion_version(client: MlflowClient, name: str) -> str | None:
    """Version number holding ``@champion``, or None."""
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as err:
        # Only "no such model / alias" means no champion; a store error must not open the gate.
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _better(metric: str, new: float, old: float, margin: float) -> bool:
    if metric == "brier":
        return new < old - margin
    return new > old + margin


@contextlib.contextmanager
def registry_lock(uri: str, name: str, timeout: float = 600) -> Iterator[None]:
    """Serialise the gate of model ``name`` between processes sharing the tracking store ``uri``.

    Two ``train`` runs at once would otherwise both see the same champion (or none) and both
    move ``@champion``. PostgreSQL: a session advisory lock on a connection of its own. SQLite:
    an exclusive ``flock`` on ``<db>.registry.lock`` beside the database. Other stores (HTTP):
    no lock (the tracking server would have to provide one).
    """
    key = int.from_bytes(hashlib.sha256(f"churnlens.registry.{name}".encode()).digest()[:8], "big")
    key -= 1 << 63 if key >= 1 << 63 else 0
    scheme = uri.split(":", 1)[0].lower()
    if scheme.startswith("postgresql"):
        import sqlalchemy

        engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"SET lock_timeout = {int(timeout * 1000)}")
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        finally:
            engine.dispose()
    elif scheme == "sqlite" and uri.startswith("sqlite:///") and ":memory:" not in uri:
        import fcntl

        lock_path = Path(uri.removeprefix("sqlite:///") + ".registry.lock")
        with lock_path.open("a") as fh:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        msg = f"{lock_path}: registry lock busy for {timeout}s"
                        raise TimeoutError(msg) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        yield


def register_and_gate(
    client: MlflowClient,
    model_uri: str,
    run_id: str,
    cfg: RegistryConfig,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    new_value: float,
) -> Decision:
    """Register ``model_uri`` and apply the champion gate; roll back on any failure.

    Runs under :func:`registry_lock`, so concurrent trains take turns at the gate.
    """
    with registry_lock(mlflow.get_tracking_uri(), cfg.model_name):
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
        moved = False
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
            moved = True
            client.set_model_version_tag(name, version, "churnlens.status", "ready")
        except BaseException:
            log.error("registration of %s v%s failed; deleting the version", name, version)
            try:
                if moved and alias == CHAMPION and champ is not None:  # give the alias back first
                    client.set_registered_model_alias(name, CHAMPION, champ)
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
    except MlflowException as err:
        if err.error_code in ("TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR"):
            raise  # the store is locked or away: do not go on registering blind
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
        dead = run_status == "RUNNING" and _owner_is_dead(client, mv.run_id)
        if dead and mv.run_id:  # killed (SIGKILL, OOM): record it, not RUNNING forever
            with contextlib.suppress(MlflowException):
                client.set_terminated(mv.run_id, "KILLED")
        if run_status != "RUNNING" or old or dead:
            client.delete_model_version(name, str(mv.version))
            removed.append(str(mv.version))
    return removed


def _owner_is_dead(client: MlflowClient, run_id: str | None) -> bool:
    """Whether the run was started by a process of this host that no longer exists."""
    if not run_id:
        return False
    try:
        tags = client.get_run(run_id).data.tags
    except MlflowException:
        return False
    pid, host = tags.get("churnlens.pid", ""), tags.get("churnlens.host")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


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
