"""``churnlens score`` appends each run to the score store; the file comes first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli import app
from churnlens.config import load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.store import open_store
from churnlens.training.pipeline import train

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
runner = CliRunner()


@dataclass
class Trained:
    """A simulated base and a model package trained on it (no registry)."""

    data: Path
    model: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("store-cli")
    data = root / "data"
    write_base(simulate(SimulatorConfig(n_accounts=300, seed=5)), data)
    model = root / "model"
    train(data, load_config(None, data), register=False).model.save(model)
    return Trained(data, model)


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean working directory and environment (the default store lands here)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHURNLENS_DATABASE_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def _score(t: Trained, out: Path, as_of: str, *extra: str, env: dict[str, str] | None = None):
    args = ["score", "--data", str(t.data), "--model", str(t.model), "--out", str(out)]
    return runner.invoke(app, [*args, "--as-of", as_of, *extra], env=env)


def test_two_score_runs_are_two_stored_runs_and_latest_is_the_second(trained: Trained, cwd: Path):
    first = _score(trained, cwd / "s1.csv", "2025-06-08")
    assert first.exit_code == 0, first.output
    second = _score(trained, cwd / "s2.parquet", "2025-06-15")
    assert second.exit_code == 0, second.output
    db = cwd / "churnlens.db"
    said = " ".join(second.output.split())
    assert f"in sqlite:///{db}" in said and "stored as run 2" in said

    table = pd.read_parquet(cwd / "s2.parquet")
    with open_store(f"sqlite:///{db}") as store:
        runs = store.runs()
        assert [r["run_id"] for r in runs] == [2, 1]
        assert [r["as_of"] for r in runs] == [date(2025, 6, 15), date(2025, 6, 8)]
        assert runs[0]["n_accounts"] == len(table) and runs[0]["source"] == "cli"
        assert runs[0]["model_version"] == str(table["model_version"].iloc[0])
        assert runs[0]["data_digest"] and len(str(runs[0]["data_digest"])) == 64
        latest = store.latest_scores(table["account_id"].tolist())
        assert {r["run_id"] for r in latest} == {2}
        assert {r["account_id"] for r in latest} == set(table["account_id"])
        # accounts gone by the second date keep their score from the first
        everyone = store.latest_scores()
        assert {r["run_id"] for r in everyone} <= {1, 2} and len(everyone) >= len(latest)
        by_id = {r["account_id"]: r for r in latest}
        for rec in table.head(25).to_dict("records"):
            got = by_id[rec["account_id"]]
            assert got["churn_probability"] == pytest.approx(rec["churn_probability"], abs=1e-12)
            assert got["risk_band"] == rec["risk_band"] and got["touch_tier"] == rec["touch_tier"]
            assert got["as_of"] == date(2025, 6, 15)
        # the accounts table's csm_id, name and plan come along (csm_id is empty for some)
        accounts = pd.read_parquet(trained.data / "accounts.parquet").set_index("account_id")
        for r in latest:
            acc = accounts.loc[r["account_id"]]
            assert (r["name"], r["plan"]) == (acc["name"], acc["plan"])
            assert r["csm_id"] == (None if pd.isna(acc["csm_id"]) else acc["csm_id"])
        assert any(r["csm_id"] for r in latest)
        account = latest[0]["account_id"]
        assert [h["as_of"] for h in store.history(account)][-1] == date(2025, 6, 15)


def test_no_store_skips_it_and_env_var_points_it_elsewhere(trained: Trained, cwd: Path):
    res = _score(trained, cwd / "s.csv", "2025-06-15", "--no-store")
    assert res.exit_code == 0, res.output
    assert (cwd / "s.csv").exists() and not (cwd / "churnlens.db").exists()
    assert "stored as run" not in res.output

    other = cwd / "team.db"
    res = _score(
        trained, cwd / "s.csv", "2025-06-15", env={"CHURNLENS_DATABASE_URL": f"sqlite:///{other}"}
    )
    assert res.exit_code == 0, res.output
    assert other.exists() and not (cwd / "churnlens.db").exists()

    res = _score(trained, cwd / "s.csv", "2025-06-15", "--db", "sqlite:///x.db", "--no-store")
    assert res.exit_code == 2 and "exclude each other" in res.output


def test_a_store_failure_keeps_the_file_and_exits_2_saying_so(trained: Trained, cwd: Path):
    out = cwd / "s.csv"
    bad = "postgresql+psycopg://churn:s3cret@127.0.0.1:1/nowhere"
    res = _score(trained, out, "2025-06-15", "--db", bad)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert (
        "cannot open the score store at postgresql+psycopg://churn:***@127.0.0.1:1/nowhere" in text
    )
    assert f"The scores were written to {out} but not stored" in text
    assert "s3cret" not in res.output
    assert out.exists() and len(pd.read_csv(out)) > 0
