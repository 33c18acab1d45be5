"""End to end: simulate, train, register, gate, reload — against a real MLflow store.

SQLite by default; the same pipeline against the machine's PostgreSQL (database ``test``) as a team
would run it, skipped with the reason only when no PostgreSQL answers.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churnlens.config import Config, load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.indicators import INDICATORS, REGISTRY
from churnlens.training.pipeline import train
from churnlens.training.registry import CHAMPION, promote

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
PG_URI = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sim") / "base"
    write_base(simulate(SimulatorConfig(n_accounts=900, seed=5)), d)
    return d


def _cfg(d: Path, name: str) -> Config:
    cfg = load_config(None, d)
    return cfg.model_copy(update={"registry": cfg.registry.model_copy(update={"model_name": name})})


@pytest.fixture(scope="module")
def trained(sim_dir: Path, tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.chdir(tmp_path_factory.mktemp("cwd"))
    cfg = _cfg(sim_dir, "churnlens")
    first = train(sim_dir, cfg)
    second = train(sim_dir, cfg)
    yield cfg, first, second, uri
    mp.undo()


def test_first_model_is_champion_and_identical_rerun_stays_challenger(trained):
    _, first, second, uri = trained
    assert (first.version, first.alias) == ("1", "champion")
    assert (second.version, second.alias) == ("2", "challenger")
    assert "does not beat" in second.decision
    client = MlflowClient(uri)
    assert str(client.get_model_version_by_alias("churnlens", CHAMPION).version) == "1"


def test_same_command_same_data_gives_identical_predictions(trained):
    _, first, second, _ = trained
    a, b = first.test_frame["p"].to_numpy(), second.test_frame["p"].to_numpy()
    np.testing.assert_array_equal(a, b)


def test_model_beats_both_baselines_and_is_calibrated(trained):
    _, first, _, _ = trained
    m = first.metrics
    assert m["model"]["roc_auc"] > m["health_score"]["roc_auc"]
    assert m["model"]["roc_auc"] > m["logistic"]["roc_auc"]
    assert m["model"]["ece"] < 0.03
    assert "ground_truth" in m and m["ground_truth"]["roc_auc"] >= m["model"]["roc_auc"] - 0.01


def test_registered_pyfunc_returns_calibrated_probabilities(trained):
    _, first, _, uri = trained
    mlflow.set_tracking_uri(uri)
    pyfunc = mlflow.pyfunc.load_model("models:/churnlens@champion")
    X = first.model.matrix(first.test_frame.head(50))
    out = pyfunc.predict(X)
    assert list(out.columns) == ["churn_probability"]
    np.testing.assert_allclose(out["churn_probability"], first.model.predict_proba(X))
    assert out["churn_probability"].between(0, 1).all()


def test_run_records_config_digest_sha_lockfile_and_artifacts(trained):
    _, first, _, uri = trained
    client = MlflowClient(uri)
    run = client.get_run(first.run_id)
    tags = run.data.tags
    for key in ("churnlens.data_digest", "churnlens.git_sha", "churnlens.lockfile_sha256"):
        assert tags[key] and tags[key] != "unknown", key
    assert run.data.params["labels.horizon_weeks"] == "13"
    assert tags["churnlens.beats_baselines"] == "true"
    names = {a.path for a in client.list_artifacts(first.run_id)}
    for f in (
        "calibration_curve.png",
        "lift_gains.png",
        "shap_summary.png",
        "shap_by_family.csv",
        "metrics_by_tier.csv",
        "metrics_by_tenure_band.csv",
        "features.json",
        "config.yaml",
        "training_stats.json",
        "run_record.json",
    ):
        assert f in names, f
    assert run.data.metrics["test.model.roc_auc"] == pytest.approx(
        first.metrics["model"]["roc_auc"]
    )


def test_forced_promotion_moves_the_alias_and_is_recorded(trained):
    _, _, second, uri = trained
    client = MlflowClient(uri)
    promote(client, "churnlens", second.version, "forced: test")
    assert str(client.get_model_version_by_alias("churnlens", CHAMPION).version) == second.version
    tags = client.get_model_version("churnlens", second.version).tags
    assert tags["churnlens.forced_promotion"] == "forced: test"
    promote(client, "churnlens", "1", "forced: restore")


def test_a_failure_during_registration_leaves_no_version_and_no_moved_alias(
    trained, sim_dir, monkeypatch
):
    cfg, _, _, uri = trained
    client = MlflowClient(uri)
    before = {str(v.version) for v in client.search_model_versions("name='churnlens'")}
    champion = str(client.get_model_version_by_alias("churnlens", CHAMPION).version)

    def boom(*args, **kwargs):
        raise RuntimeError("store went away")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", boom)
    with pytest.raises(RuntimeError, match="store went away"):
        train(sim_dir, cfg)
    monkeypatch.undo()
    after = {str(v.version) for v in client.search_model_versions("name='churnlens'")}
    assert after == before
    assert str(client.get_model_version_by_alias("churnlens", CHAMPION).version) == champion


def test_behaviour_steeper_login_decline_never_lowers_risk(trained):
    _, first, _, _ = trained
    model = first.model
    base = first.test_frame.sample(200, random_state=0)
    prev = model.predict_proba(base)
    for factor in (0.8, 0.6, 0.4, 0.2):
        worse = base.assign(
            logins_change_4w_vs_prior_8w=base["logins_change_4w_vs_prior_8w"] - (1 - factor),
            logins_slope_12w=base["logins_slope_12w"] - 0.05 * (1 - factor),
            logins_4w=base["logins_4w"] * factor,
        )
        p = model.predict_proba(worse)
        assert (p >= prev - 1e-12).all()
        prev = p


def test_behaviour_fresh_ticket_spike_raises_risk(trained):
    _, first, _, _ = trained
    model = first.model
    quiet = first.test_frame[first.test_frame["has_tickets"] == 1].sample(200, random_state=1)
    quiet = quiet.assign(ticket_spike_4w_vs_13w=1.0, urgent_tickets_13w=0.0)
    spiky = quiet.assign(ticket_spike_4w_vs_13w=3.0, urgent_tickets_13w=3.0)
    assert (model.predict_proba(spiky) >= model.predict_proba(quiet)).all()
    assert model.predict_proba(spiky).mean() > model.predict_proba(quiet).mean()


def test_behaviour_no_identifier_is_a_feature(trained):
    _, first, _, _ = trained
    assert not any("id" in f.split("_") for f in first.model.features)
    assert set(INDICATORS) <= set(first.model.features)
    for f in first.model.features:
        if f in REGISTRY:
            assert first.model.spec[f]["family"] == REGISTRY[f].family


def test_pipeline_against_postgresql(sim_dir: Path, tmp_path: Path, monkeypatch):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    try:
        with sqlalchemy.create_engine(PG_URI).connect():
            pass
    except Exception as err:  # any connection failure means there is no server to test against
        pytest.skip(f"no PostgreSQL answers at 127.0.0.1:5432/test: {err}")
    name = f"churnlens-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", PG_URI)
    monkeypatch.chdir(tmp_path)
    result = train(sim_dir, _cfg(sim_dir, name))
    client = MlflowClient(PG_URI)
    try:
        assert result.alias == "champion"
        assert str(client.get_model_version_by_alias(name, CHAMPION).version) == result.version
        assert pd.notna(client.get_run(result.run_id).data.metrics["test.model.roc_auc"])
    finally:
        client.delete_registered_model(name)


def test_score_writes_one_row_per_live_account_with_reasons_and_plays(trained, sim_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from churnlens.cli import app
    from churnlens.serving.scoring import SCORE_COLUMNS

    _, _, _, uri = trained
    out = tmp_path / "scores.parquet"
    res = CliRunner().invoke(
        app,
        [
            "score",
            "--data",
            str(sim_dir),
            "--as-of",
            "2025-10-05",
            "--out",
            str(out),
            "--model",
            "models:/churnlens/1",
        ],
        env={"MLFLOW_TRACKING_URI": uri},
    )
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out)
    assert list(table.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert table["account_id"].is_unique and (table["as_of"] == "2025-10-05").all()
    assert table["churn_probability"].between(0, 1).all()
    assert table["arr_at_risk"].is_monotonic_decreasing
    assert set(table["risk_band"]) <= {"red", "yellow", "green"}
    flagged = table[table["risk_band"] != "green"]
    assert len(flagged) > 0
    for _, row in flagged.head(20).iterrows():
        reasons = json.loads(row["top_reasons"])
        plays = json.loads(row["playbooks"])
        assert reasons and reasons[0]["impact"] > 0 and plays
    assert (table["model_version"] == "churnlens v1").all()


def test_score_and_drift_fail_clearly_without_a_model(sim_dir, tmp_path):
    from typer.testing import CliRunner

    from churnlens.cli import app

    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    out = tmp_path / "s.csv"
    res = CliRunner().invoke(app, ["score", "--data", str(sim_dir), "--out", str(out)], env=env)
    assert res.exit_code == 2 and "no such registered model" in res.output
    assert not out.exists()
    res = CliRunner().invoke(app, ["drift", "--data", str(sim_dir), "--model", str(tmp_path)])
    assert res.exit_code == 2 and "not a churnlens model" in res.output


def test_drift_reports_psi_per_indicator(trained, sim_dir):
    import json

    from typer.testing import CliRunner

    from churnlens.cli import app

    _, first, _, uri = trained
    res = CliRunner().invoke(
        app, ["drift", "--data", str(sim_dir), "--json"], env={"MLFLOW_TRACKING_URI": uri}
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    names = {r["feature"] for r in doc["indicators"]}
    assert set(first.model.features) == names
    assert doc["retrain_advised"] is False and doc["shifted"] is True  # trained on this data
    assert doc["new_outcome_weeks"] == 0 and doc["trained_until"] == doc["labelled_until"]
    assert {s["source"] for s in doc["sources"]} >= {"usage_events", "tickets"}


def test_drift_advises_retraining_only_once_later_outcomes_are_known(trained, sim_dir):
    """Right after training on the same data, a shift is reported but retraining is not advised:
    a model trained now would use the same windows. Once outcomes exist past the model's test
    window, the same shift means retrain."""
    import copy

    from churnlens.training.drift_cmd import check_drift

    cfg, first, _, _ = trained
    now = check_drift(sim_dir, cfg, None, first.model)
    assert now.shifted and now.reasons  # two years of ageing accounts: tenure has moved
    assert now.trained_until == first.windows.test_end.date() == now.labelled_until
    assert now.new_outcome_weeks == 0 and not now.retrain
    older = copy.copy(first.model)
    older.meta = copy.deepcopy(first.model.meta)
    older.meta["windows"]["test_end"] = str(first.windows.test_end.date() - timedelta(weeks=26))
    later = check_drift(sim_dir, cfg, None, older)
    assert later.new_outcome_weeks == 26 and later.retrain
    assert later.reasons == now.reasons  # same data, same shifts: only the advice differs
    del older.meta["windows"]  # a model saved without its windows: the shift alone decides
    assert check_drift(sim_dir, cfg, None, older).retrain


def test_a_version_left_half_registered_by_a_dead_run_is_removed(trained):
    from churnlens.training.registry import remove_stale_versions

    _, first, _, uri = trained
    client = MlflowClient(uri)
    run = client.create_run(client.get_run(first.run_id).info.experiment_id)
    mv = client.create_model_version(
        "churnlens",
        f"runs:/{run.info.run_id}/model",
        run_id=run.info.run_id,
        tags={"churnlens.status": "registering"},
    )
    assert remove_stale_versions(client, "churnlens") == []  # its run is still running
    client.set_terminated(run.info.run_id, "KILLED")
    assert remove_stale_versions(client, "churnlens") == [str(mv.version)]
    versions = {str(v.version) for v in client.search_model_versions("name='churnlens'")}
    assert str(mv.version) not in versions
    assert str(client.get_model_version_by_alias("churnlens", CHAMPION).version) == "1"


def test_tracked_event_groups_train_ship_in_the_model_and_score_without_the_config(
    trained, sim_dir, tmp_path
):
    """A model trained with ``events.tracked`` has the groups' indicators as features (after the
    registered indicators, family adoption, no monotone direction) and keeps the groups in its
    package: ``churnlens score`` with a config that lacks them builds the same columns."""
    import yaml
    from typer.testing import CliRunner

    from churnlens.cli import app
    from churnlens.features.contract import load_tables
    from churnlens.features.indicators import compute_indicators, render
    from churnlens.features.snapshots import alive_accounts
    from churnlens.features.timeline import build_timeline

    _, _, _, uri = trained
    groups = {"sharing": ["dashboard_share", "export_csv"], "search": ["search"]}
    as_config = {g: tuple(e) for g, e in groups.items()}
    base = _cfg(sim_dir, "tracked")
    cfg = base.model_copy(update={"events": base.events.model_copy(update={"tracked": as_config})})
    result = train(sim_dir, cfg)
    model = result.model
    names = [f"events__{g}__{w}" for g in groups for w in ("12w", "share_12w", "pace_4w_12w")]
    assert model.features[len(INDICATORS) : len(INDICATORS) + 6] == names
    assert model.features[len(INDICATORS) + 6 :][0] == "has_usage_events"
    spec = model.spec["events__sharing__share_12w"]
    assert (spec["family"], spec["direction"], spec["unit"]) == ("adoption", "none", "share")
    assert model.tracked_events() == groups
    assert render("events__sharing__12w", 3.0) == "sharing: 3 events in the last 12 weeks"

    # The groups matter to this model: without their columns its scores change.
    tables = load_tables(sim_dir, cfg)
    alive = alive_accounts(tables)
    ind = compute_indicators(build_timeline(tables), alive, as_of=tables.as_of)
    assert ind["events__sharing__12w"].notna().mean() > 0.9
    blind = ind.assign(**{n: np.nan for n in names})
    assert not np.allclose(model.predict_proba(ind), model.predict_proba(blind))

    # Scored with the data directory's own config (no tracked groups): the model's are used.
    def score(extra: list[str], out: Path) -> pd.DataFrame:
        res = CliRunner().invoke(
            app,
            [
                *("score", "--data", str(sim_dir), "--out", str(out), "--no-store"),
                *("--model", f"models:/tracked/{result.version}", *extra),
            ],
            env={"MLFLOW_TRACKING_URI": uri},
        )
        assert res.exit_code == 0, res.output
        return pd.read_parquet(out)

    conf = tmp_path / "with_groups.yaml"
    own = yaml.safe_load((sim_dir / "churnlens.yaml").read_text())
    assert "tracked" not in own["events"]
    own["events"]["tracked"] = groups
    conf.write_text(yaml.safe_dump(own))
    plain = score([], tmp_path / "plain.parquet")
    configured = score(["--config", str(conf)], tmp_path / "configured.parquet")
    pd.testing.assert_frame_equal(plain, configured)
    want = dict(zip(alive["account_id"], model.predict_proba(ind), strict=True))
    got = plain.set_index("account_id")["churn_probability"]
    np.testing.assert_allclose(got.to_numpy(), [want[a] for a in got.index], rtol=1e-12)
