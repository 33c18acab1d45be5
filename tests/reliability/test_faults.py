"""Faults, each an automated test against the real parts (issue 9, item 4).

A tiny simulated base and a fast LightGBM config; MLflow on SQLite files in tmp (PostgreSQL at
127.0.0.1:5432/test for the concurrent trains, skipped with the reason when it does not answer);
real ``churnlens`` subprocesses killed with SIGKILL; a real ``bentoml serve``.

- the tracking store does not answer (HTTP server, PostgreSQL): ``train`` exits 2 in seconds with
  one paragraph naming the URI (password masked) and leaves nothing behind;
- the tracking DB is locked at registration: clear error, run FAILED, no version, alias unmoved;
- SIGKILL during ``train`` (registration underway) and during ``score`` (store write underway):
  champion, previous scores and score file intact; the dead run's version is cleaned up;
- model missing, then corrupt, at service start: alive, not ready, 503 naming the problem, one log
  line per cause, no worker restarts; ready as soon as a good package is put in place;
- score store down while scoring: the file is complete, the store write is retried, then kept in
  a pending file that ``churnlens store-import`` loads later; a store that comes back is used;
- two ``train`` runs at once on PostgreSQL: versions 1..n, one ``@champion``, all READY.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from churnlens.cli import app
from churnlens.config import Config, load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.errors import ChurnlensError
from churnlens.serving.launch import free_port
from churnlens.store import open_store
from churnlens.training.pipeline import train
from churnlens.training.registry import CHAMPION, load_model, remove_stale_versions

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.xdist_group("faults")]

BIN = Path(sys.executable).parent
PG_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FAST_MODEL = "model:\n  max_rounds: 60\n  learning_rate: 0.2\n  early_stopping_rounds: 10\n"
NAME = "churnlens"


@dataclass
class World:
    """A base, a SQLite registry whose v1 is @champion, a score store with one run."""

    data: Path
    cfg: Config
    mlflow_db: Path
    package: Path  # the champion's model package directory
    store_db: Path
    scores: Path  # the complete score file of the stored run
    env: dict[str, str]


def _env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    telemetry = {"BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "true"}
    return {**os.environ, **telemetry, **(base or {}), **extra}


def _registry(uri: str, name: str = NAME) -> dict[str, Any]:
    client = MlflowClient(uri)
    versions = client.search_model_versions(f"name='{name}'")
    # search_model_versions does not fill in aliases: the registered model has them.
    aliases = {str(a): str(v) for a, v in client.get_registered_model(name).aliases.items()}
    return {
        "versions": sorted(int(v.version) for v in versions),
        "aliases": aliases,
        "status": {str(v.version): v.status for v in versions},
        "tags": {str(v.version): v.tags.get("churnlens.status") for v in versions},
        "runs": {str(v.version): v.run_id for v in versions},
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("faults")
    data = root / "data"
    write_base(simulate(SimulatorConfig(n_accounts=400, seed=5)), data)
    with (data / "churnlens.yaml").open("a") as fh:
        fh.write(FAST_MODEL)
    cfg = load_config(None, data)
    mlflow_db = root / "mlflow.db"
    uri = f"sqlite:///{mlflow_db}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(root)  # MLflow's artifacts land in root/mlruns, shared by the copies below
        first = train(data, cfg)
        assert (first.version, first.alias) == ("1", CHAMPION)
        package = root / "package"
        first.model.save(package)
        store_db = root / "scores.db"
        scores = root / "scores.parquet"
        res = CliRunner().invoke(
            app,
            ["score", "--data", str(data), "--out", str(scores), "--db", f"sqlite:///{store_db}"],
            env={"MLFLOW_TRACKING_URI": uri},
        )
        assert res.exit_code == 0, res.output
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    yield World(data, cfg, mlflow_db, package, store_db, scores, env)


def _copy_registry(w: World, tmp: Path) -> str:
    db = tmp / "mlflow.db"
    shutil.copy(w.mlflow_db, db)
    return f"sqlite:///{db}"


# ------------------------------------------------------------------- tracking store faults
def test_unreachable_tracking_store_fails_fast_with_one_clear_paragraph(
    world: World, tmp_path: Path
) -> None:
    # Nothing listens on these ports: an MLflow server, and a PostgreSQL tracking database.
    http = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    pg = f"postgresql+psycopg://churn:s3cret@127.0.0.1:{port}/mlflow"
    shown = {http: http, pg: f"postgresql+psycopg://churn:***@127.0.0.1:{port}/mlflow"}
    procs = {}
    for i, uri in enumerate((http, pg)):
        cwd = tmp_path / str(i)
        cwd.mkdir()
        procs[uri] = (
            cwd,
            subprocess.Popen(
                [str(BIN / "churnlens"), "train", "--data", str(world.data)],
                env=_env(MLFLOW_TRACKING_URI=uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"),
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    for uri, (cwd, proc) in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, err
        assert "Traceback" not in err
        assert f"MLflow tracking store {shown[uri]} does not answer" in err
        assert "s3cret" not in err + out
        assert "nothing was trained or registered" in err
        assert list(cwd.iterdir()) == []  # no fallback store, no mlruns
        # It gives up before the pipeline starts, so MLflow never gets to retry the database
        # (~100 s on its own): no timeline, no fit in the output.
        assert "stage 1: weekly timeline" not in err
        assert "LightGBM on" not in err


class _LogFlag(logging.Handler):
    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle, self.seen = needle, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.seen.set()


def test_tracking_db_locked_at_registration_fails_clearly_and_marks_the_run_failed(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = _copy_registry(world, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    before = _registry(uri)
    # Another connection holds an exclusive transaction from the registry step on, until the
    # pipeline has given up registering (SQLite's busy timeout) and goes to mark its run FAILED.
    flag = _LogFlag("marking it FAILED")
    logging.getLogger("churnlens.training.pipeline").addHandler(flag)
    holder: list[sqlite3.Connection] = []
    released = threading.Event()

    def release_later() -> None:
        flag.seen.wait(60)
        holder[0].rollback()
        holder[0].close()
        released.set()

    def progress(msg: str) -> None:
        if msg.startswith("registry:"):
            conn = sqlite3.connect(str(tmp_path / "mlflow.db"), check_same_thread=False)
            conn.execute("BEGIN EXCLUSIVE")
            holder.append(conn)
            threading.Thread(target=release_later, daemon=True).start()

    try:
        with pytest.raises(ChurnlensError) as info:
            train(world.data, world.cfg, progress=progress)
    finally:
        logging.getLogger("churnlens.training.pipeline").removeHandler(flag)
        flag.seen.set()
        released.wait(10)
    msg = str(info.value)
    assert holder, "the registry step was never reached"
    assert f"MLflow tracking store {uri}" in msg and "locked" in msg
    assert "marked FAILED" in msg and "@champion did not move" in msg
    run_id = msg.split("run ", 1)[1].split()[0]
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.status == "FAILED"
    after = _registry(uri)
    assert after == before  # no new (half-)registered version, alias unmoved
    model, label = load_model(f"models:/{NAME}@{CHAMPION}")
    assert label == f"{NAME} v1" and model.features


# ------------------------------------------------------------------------ killed processes
def _watch(proc: subprocess.Popen[str], lines: list[str]) -> threading.Thread:
    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t


def _spawn(
    args: list[str], env: dict[str, str], cwd: Path, stdout: int = subprocess.DEVNULL
) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    """``churnlens ARGS`` in a subprocess, its stderr lines collected as they come."""
    proc = subprocess.Popen(
        [str(BIN / "churnlens"), *args],
        env=env,
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    return proc, lines, _watch(proc, lines)


def test_sigkill_during_train_registration_leaves_champion_and_a_cleanable_registry(
    world: World, tmp_path: Path
) -> None:
    uri = _copy_registry(world, tmp_path)
    db = tmp_path / "mlflow.db"
    proc, lines, _ = _spawn(
        ["train", "--data", str(world.data)], _env(world.env, MLFLOW_TRACKING_URI=uri), tmp_path
    )
    # Kill the moment the new version row exists (registration underway), read-only polling.
    deadline = time.monotonic() + 120
    killed_with_version = False
    ro = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05, isolation_level=None)
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                n = ro.execute("SELECT count(*) FROM model_versions").fetchone()[0]
            except sqlite3.OperationalError:  # busy: the writer holds the lock
                n = 0
            if n >= 2:
                proc.send_signal(signal.SIGKILL)
                killed_with_version = True
                break
            time.sleep(0.01)
    finally:
        ro.close()
    proc.wait(30)
    assert killed_with_version, "".join(lines)
    assert proc.returncode == -signal.SIGKILL
    client = MlflowClient(uri)
    reg = _registry(uri)
    assert reg["aliases"].get(CHAMPION) == "1"  # never moved to a half-registered version
    new = [v for v in reg["versions"] if v != 1]
    assert new == [2]
    killed_run = reg["runs"]["2"]
    assert client.get_run(killed_run).info.status == "RUNNING"  # a SIGKILL leaves it so
    mlflow.set_tracking_uri(uri)
    model, label = load_model(f"models:/{NAME}@{CHAMPION}")
    assert label == f"{NAME} v1" and model.features
    # The next train's first registry step: the dead process's half-registered version goes,
    # its run is recorded as KILLED. A version that had finished (tag ready) is kept.
    removed = remove_stale_versions(client, NAME)
    print(f"killed with v2 tagged {reg['tags']['2']!r}; removed {removed}")
    after = _registry(uri)
    if reg["tags"]["2"] == "registering":
        assert removed == ["2"] and after["versions"] == [1]
        assert client.get_run(killed_run).info.status == "KILLED"
    else:
        assert removed == [] and after["versions"] == [1, 2]
        assert after["aliases"] == {CHAMPION: "1", "challenger": "2"}
    assert all(t == "ready" for t in after["tags"].values())
    assert all(s == "READY" for s in after["status"].values())


def _latest(store_db: Path) -> dict[str, float]:
    with open_store(f"sqlite:///{store_db}") as store:
        return {r["account_id"]: r["churn_probability"] for r in store.latest_scores()}


def test_sigkill_during_score_keeps_the_score_file_and_the_stored_scores(
    world: World, tmp_path: Path
) -> None:
    store_db = tmp_path / "scores.db"
    shutil.copy(world.store_db, store_db)
    out = tmp_path / "scores.parquet"
    shutil.copy(world.scores, out)
    old_bytes = out.read_bytes()
    previous = _latest(store_db)
    with open_store(f"sqlite:///{store_db}") as store:
        runs_before = store.runs()
    assert len(previous) > 100 and len(runs_before) == 1
    # Another writer holds the store's write lock: the scorer blocks inside its store
    # transaction (after the file), where it is killed.
    lock = sqlite3.connect(str(store_db), isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    proc, lines, _ = _spawn(
        ["score", "--data", str(world.data), "--out", str(out), "--db", f"sqlite:///{store_db}"],
        _env(world.env),
        tmp_path,
    )
    deadline = time.monotonic() + 120
    when = ""
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if list(tmp_path.glob(".scores.parquet.*.tmp")):
                when = "file"  # the temp file is being written
            elif any(line.startswith("scored ") for line in lines):
                time.sleep(0.5)
                when = "store"  # blocked in the store transaction
            if when:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait(30)
    finally:
        lock.rollback()
        lock.close()
    assert when, "".join(lines)
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    # The --out path holds a complete file: the old one, or the new one renamed into place.
    table = pd.read_parquet(out)
    if out.read_bytes() != old_bytes:
        assert when == "store"
        assert set(table["account_id"]) == set(previous)
    assert table["churn_probability"].between(0, 1).all()
    assert _latest(store_db) == previous
    with open_store(f"sqlite:///{store_db}") as store:
        assert store.runs() == runs_before  # no partial run


# ------------------------------------------------------------------------ service start
def _wait(pred: Any, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:]
    raise AssertionError(f"{what} not within {seconds}s:\n{tail}")


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return -1


PREDICT = {
    "as_of": "2025-06-15",
    "accounts": [
        {
            "account_id": "acc-1",
            "profile": {"created_at": "2024-01-01", "arr": 12000},
            "weeks": [{"week_start": "2025-06-02", "logins": 3}],
        }
    ],
}


def test_model_missing_then_corrupt_at_start_keeps_the_service_up_and_not_ready(
    world: World, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"  # missing at start
    log_path = tmp_path / "serve.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(
        CHURNLENS_MODEL_URI=str(model_dir),
        CHURNLENS_MODEL_RETRY_MAX_S="1",
        CHURNLENS_CONFIG=str(world.data / "churnlens.yaml"),
        BENTOML_HOME=str(tmp_path / "bentoml"),
    )
    env.pop("CHURNLENS_API_KEY", None)
    cmd = [str(BIN / "bentoml"), "serve", "churnlens.serving.service:ChurnService"]
    with log_path.open("wb") as logf:
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait(lambda: _get(f"{url}/livez") == 200, 90, "/livez 200", log_path)
            time.sleep(2.5)  # several retries (1 s apart at most)
            assert proc.poll() is None
            assert _get(f"{url}/livez") == 200
            assert _get(f"{url}/readyz") != 200
            r = httpx.post(f"{url}/predict", json=PREDICT, timeout=10)
            assert r.status_code == 503, r.text
            assert "model not loaded" in r.text and str(model_dir) in r.text
            text = log_path.read_text(errors="replace")
            problem = [ln for ln in text.splitlines() if "cannot load the model" in ln]
            assert len(problem) == 1, text[-3000:]  # one line per cause, not one per retry
            assert f"CHURNLENS_MODEL_URI={model_dir}" in problem[0]
            assert "not a churnlens model" in problem[0]
            assert text.count("Traceback") <= 1, text[-3000:]  # the one 503 request at most

            # A corrupt package appears: still up and not ready, one new line naming it.
            staging = tmp_path / "staging"
            shutil.copytree(world.package, staging)
            (staging / "booster.txt").write_text("tree\nthis is not a LightGBM model\n")
            staging.rename(model_dir)
            _wait(
                lambda: "corrupt" in log_path.read_text(errors="replace"),
                15,
                "a log line about the corrupt package",
                log_path,
            )
            assert proc.poll() is None and _get(f"{url}/readyz") != 200
            text = log_path.read_text(errors="replace")
            assert sum("cannot load the model" in ln for ln in text.splitlines()) == 2

            # The good package is put in place: ready, and it predicts.
            shutil.copy(world.package / "booster.txt", tmp_path / "booster.tmp")
            os.replace(tmp_path / "booster.tmp", model_dir / "booster.txt")
            _wait(lambda: _get(f"{url}/readyz") == 200, 20, "/readyz 200", log_path)
            r = httpx.post(f"{url}/predict", json=PREDICT, timeout=30)
            assert r.status_code == 200, r.text
            assert 0 <= r.json()["results"][0]["churn_probability"] <= 1
            text = log_path.read_text(errors="replace")
            # No crash loop: the one worker never died and was never restarted.
            assert "exited" not in text.lower() and "restart" not in text.lower(), text[-3000:]
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


# ------------------------------------------------------------------------ database down
def test_database_down_while_scoring_keeps_the_scores_and_retries_then_imports(
    world: World, tmp_path: Path
) -> None:
    port = free_port()
    dead = f"postgresql+psycopg://churn:s3cret@127.0.0.1:{port}/scores"
    out = tmp_path / "scores.parquet"
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["score", "--data", str(world.data), "--out", str(out), "--db", dead],
        env={**world.env, "CHURNLENS_STORE_RETRIES": "2"},
    )
    text = res.output
    assert res.exit_code == 2, text
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in text and "s3cret" not in text
    assert "retry 1/2" in text and "retry 2/2" in text and "gave up after 3 attempts" in text
    assert f"churn:***@127.0.0.1:{port}/scores" in text
    table = pd.read_parquet(out)  # the score file is complete
    assert table["account_id"].is_unique and len(table) > 100
    pending = out.with_name(out.name + ".pending-store.json")
    assert pending.exists() and "churnlens store-import --file" in " ".join(text.split())
    # Later, once a database answers: the run is imported whole, the pending file removed.
    good = f"sqlite:///{tmp_path / 'store.db'}"
    res = runner.invoke(app, ["store-import", "--file", str(pending), "--db", good])
    assert res.exit_code == 0, res.output
    assert not pending.exists()
    with open_store(good) as store:
        latest = {r["account_id"]: r for r in store.latest_scores()}
        (run,) = store.runs()
        details = store.details([(run["run_id"], a) for a in list(latest)[:5]])
    assert run["n_accounts"] == len(table)
    expected = dict(zip(table["account_id"], table["churn_probability"], strict=True))
    assert {a: r["churn_probability"] for a, r in latest.items()} == pytest.approx(expected)
    assert details  # translations / recent activity kept too
    res = runner.invoke(app, ["store-import", "--file", str(pending), "--db", good])
    assert res.exit_code == 2 and "no such file" in res.output  # cannot be stored twice

    # A store that comes back during the retries is used: its folder appears once the first
    # attempt has failed (a real process, so the test can read its retry line as it comes).
    late = tmp_path / "late"
    out2 = tmp_path / "again.parquet"
    proc, lines, reader = _spawn(
        ["score", "--data", str(world.data), "--out", str(out2)],
        _env(
            world.env,
            CHURNLENS_STORE_RETRIES="3",
            CHURNLENS_DATABASE_URL=f"sqlite:///{late / 'scores.db'}",
        ),
        tmp_path,
        stdout=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any("retry 1/3" in line for line in lines):
            late.mkdir()
            break
        time.sleep(0.02)
    proc.wait(120)
    reader.join(5)
    text = "".join(lines)
    assert proc.returncode == 0, text
    assert late.is_dir() and "retry 1/3" in text and "stored as run 1" in text
    assert not out2.with_name(out2.name + ".pending-store.json").exists()
    with open_store(f"sqlite:///{late / 'scores.db'}") as store:
        assert len(store.latest_scores()) == len(pd.read_parquet(out2))


# ------------------------------------------------------------------------ concurrent trains
def _pg_or_skip() -> None:
    engine = sa.create_engine(PG_URI, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except Exception as err:  # any connection failure means there is no server to test against
        pytest.skip(f"no PostgreSQL answers at 127.0.0.1:5432/test: {err}")
    finally:
        engine.dispose()


def test_two_trains_at_once_keep_the_registry_consistent(world: World, tmp_path: Path) -> None:
    _pg_or_skip()
    name = f"churnlens-fault-{uuid.uuid4().hex[:8]}"
    cfg_path = tmp_path / "churnlens.yaml"
    cfg_path.write_text(
        (world.data / "churnlens.yaml").read_text() + f"registry:\n  model_name: {name}\n"
    )
    cmd = [str(BIN / "churnlens"), "train", "--data", str(world.data), "--config", str(cfg_path)]
    env = _env(world.env, MLFLOW_TRACKING_URI=PG_URI)
    procs = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        procs.append(
            subprocess.Popen(
                cmd,
                env=env,
                cwd=tmp_path / str(i),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = [p.communicate(timeout=240) for p in procs]
    client = MlflowClient(PG_URI)
    try:
        ok = 0
        for p, (_, err) in zip(procs, outs, strict=True):
            assert p.returncode in (0, 2), err
            assert "Traceback" not in err, err
            if p.returncode == 0:
                ok += 1
            else:
                assert "MLflow tracking store" in err, err
        assert ok >= 1
        reg = _registry(PG_URI, name)
        assert reg["versions"] == list(range(1, ok + 1))  # no gaps, no duplicates
        assert list(reg["aliases"]).count(CHAMPION) == 1
        assert all(s == "READY" for s in reg["status"].values())
        assert all(t == "ready" for t in reg["tags"].values())
        decisions = [
            client.get_model_version(name, str(v)).tags["churnlens.decision"]
            for v in reg["versions"]
        ]
        # The gate ran one after the other: one first model, the other compared with it.
        assert decisions.count("first model") == 1, decisions
        if ok == 2:
            assert reg["aliases"] == {CHAMPION: "1", "challenger": "2"}
        mlflow.set_tracking_uri(PG_URI)
        model, label = load_model(f"models:/{name}@{CHAMPION}")
        assert label == f"{name} v1" and model.features
    finally:
        client.delete_registered_model(name)
