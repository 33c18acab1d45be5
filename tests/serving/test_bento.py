"""``churnlens bento``: the built bento carries the champion and serves it without MLflow.

A small model is trained and registered as ``@champion`` in a temporary SQLite MLflow store (in a
subprocess, so this process keeps no MLflow state); ``churnlens bento`` builds with a temporary
``BENTOML_HOME``; the bento is then served with MLflow unreachable and must answer exactly as the
service served from source (MLflow champion) does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from churnlens.cli import app
from churnlens.config import load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.contract import load_tables
from churnlens.features.snapshots import alive_accounts
from churnlens.features.timeline import build_timeline
from churnlens.serving.bento import (
    BENTO_MODEL,
    check_bentofile,
    packed_model_tag,
    project_root,
    wheel_name,
)
from churnlens.serving.client import account_items, predict_request
from churnlens.serving.launch import local_server

AS_OF = date(2025, 6, 15)
N_ACCOUNTS = 12
UNREACHABLE_MLFLOW = "http://127.0.0.1:9"  # the discard port: nothing answers there


def cli(*args: str) -> list[str]:
    """The ``churnlens`` command of this environment."""
    return [str(Path(sys.executable).with_name("churnlens")), *args]


@dataclass
class Registered:
    """A simulated base whose model is ``churnlens@champion`` in a SQLite MLflow store."""

    data: Path
    tracking_uri: str
    request: dict[str, Any]


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """Simulate 600 accounts and ``churnlens train`` them into a fresh SQLite store."""
    root = tmp_path_factory.mktemp("bento-mlflow")
    data = root / "data"
    write_base(simulate(SimulatorConfig(n_accounts=600, seed=5)), data)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    res = subprocess.run(
        cli("train", "--data", str(data)),
        env={**os.environ, "MLFLOW_TRACKING_URI": uri},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "as @champion" in res.stderr, res.stderr[-3000:]
    tables = load_tables(data, load_config(None, data), AS_OF)
    alive = alive_accounts(tables)
    ids = sorted(alive["account_id"].astype(str))[:: max(1, len(alive) // N_ACCOUNTS)]
    items = account_items(build_timeline(tables), alive, ids[:N_ACCOUNTS])
    return Registered(data, uri, predict_request(AS_OF, items.values()))


def ask(url: str, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``POST /predict`` and ``GET /model`` answers of a running server."""
    with httpx.Client(base_url=url, timeout=60) as http:
        r = http.post("/predict", json=request)
        assert r.status_code == 200, r.text
        info = http.get("/model")
        assert info.status_code == 200, info.text
        return r.json(), info.json()


def assert_same(got: Any, want: Any, where: str) -> None:
    """Equal JSON values, numbers to 1e-9."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for k in want:
            assert_same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and isinstance(got, int | float):
        assert abs(got - want) <= 1e-9, (where, got, want)
    else:
        assert got == want, (where, got, want)


# ------------------------------------------------------------------------------------ units
def test_bentofile_matches_pyproject_and_the_build() -> None:
    doc = check_bentofile(project_root())
    assert doc["python"]["wheels"] == [f"dist/{wheel_name(project_root())}"]
    assert doc["service"] == "churnlens.serving.service:ChurnService"


def test_source_serving_has_no_packed_model() -> None:
    assert packed_model_tag(None) is None


def test_bento_outside_a_checkout_says_so(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["bento", "--project", str(tmp_path)])
    assert res.exit_code == 2
    assert "not a churnlens source checkout" in res.output


# ------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_built_bento_serves_the_champion_without_mlflow(
    registered: Registered, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHURNLENS_MODEL_URI", raising=False)
    home = tmp_path / "bentoml"
    build_env = {"BENTOML_HOME": str(home), "MLFLOW_TRACKING_URI": registered.tracking_uri}
    t0 = time.perf_counter()
    res = subprocess.run(
        cli("bento"),
        env={**os.environ, **build_env},
        cwd=tmp_path,  # any directory: the build runs from the checkout
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    tag = res.stdout.strip().splitlines()[-1]
    name, _, version = tag.partition(":")
    assert name == "churnlens" and version, res.stdout
    print(f"churnlens bento: {time.perf_counter() - t0:.1f} s -> {tag}")

    # The bento references the champion, copied into the BentoML model store under BENTOML_HOME.
    info = yaml.safe_load((home / "bentos" / name / version / "bento.yaml").read_text())
    model_tags = [m["tag"] for m in info["models"]]
    assert len(model_tags) == 1 and model_tags[0].startswith(f"{BENTO_MODEL}:v1-"), model_tags
    stored = home / "models" / Path(model_tags[0].replace(":", "/"))
    assert (stored / "booster.txt").is_file() and (stored / "model.json").is_file()
    assert any((home / "bentos" / name / version / "env/python/wheels").glob("churnlens-*.whl"))

    logs = tmp_path / "logs"
    logs.mkdir()
    with local_server(build_env, logs / "source.log") as url:
        from_source, source_info = ask(url, registered.request)
    bento_env = {"BENTOML_HOME": str(home), "MLFLOW_TRACKING_URI": UNREACHABLE_MLFLOW}
    with local_server(bento_env, logs / "bento.log", target=tag) as url:
        from_bento, bento_info = ask(url, registered.request)

    assert source_info["version"] == "churnlens v1"  # the MLflow champion
    assert bento_info == source_info
    assert from_bento["model_version"] == from_source["model_version"] == "churnlens v1"
    assert len(from_bento["results"]) == len(registered.request["accounts"])
    for got, want in zip(from_bento["results"], from_source["results"], strict=True):
        assert got["account_id"] == want["account_id"]
        assert abs(got["churn_probability"] - want["churn_probability"]) <= 1e-9
        assert_same(got, want, got["account_id"])
