"""The public-data adapters feed the real pipeline: validate, timeline and indicators."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner, Result

from churnlens.cli import app
from churnlens.config import load_config
from churnlens.features.contract import load_tables, validate
from churnlens.features.indicators import compute_indicators
from churnlens.features.timeline import build_timeline
from churnlens.training.pipeline import prepare

SAMPLES = Path(__file__).resolve().parents[1] / "data"
runner = CliRunner()


def imported(kind: str, tmp_path: Path) -> tuple[Path, Result]:
    """``churnlens import KIND`` of the sample into ``tmp_path``: the directory and the result."""
    out = tmp_path / kind
    res = runner.invoke(
        app, ["import", kind, "--source", str(SAMPLES / f"{kind}-sample"), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    return out, res


def test_fightchurn_sample_imports_and_yields_indicators(tmp_path: Path):
    out, _ = imported("fightchurn", tmp_path)
    cfg = load_config(None, out)
    tables = load_tables(out, cfg)
    assert tables.as_of == pd.Timestamp("2020-06-01").date()
    tl = build_timeline(tables)
    assert tl["events"].sum() > 0 and tl["tickets_opened"].isna().all()
    ind = compute_indicators(tl, tables.accounts, as_of=tables.as_of)
    assert ind["has_usage_events"].eq(1).any() and ind["has_tickets"].eq(0).all()
    assert ind["logins_change_4w_vs_prior_8w"].notna().any()


def test_fightchurn_import_is_ready_to_train(tmp_path: Path):
    # Five months of data: the adapter's config must leave room for train / validation / test
    # windows with their purge gaps (the defaults, 13 + 13 weeks, do not fit and train refused).
    out, _ = imported("fightchurn", tmp_path)
    cfg = load_config(None, out)
    assert cfg.registry.model_name == "churnlens-fightchurn"
    prepared = prepare(out, cfg, None, lambda message: None)
    rows = prepared.frame["window"].value_counts()
    assert {"train", "valid", "test"} <= set(rows.index)
    w = prepared.windows
    horizon = pd.Timedelta(weeks=cfg.labels.horizon_weeks)
    assert w.train_end + horizon <= w.valid_start and w.valid_end + horizon <= w.test_start


def test_ravenstack_inconsistencies_are_reported_by_validate(tmp_path: Path):
    out, res = imported("ravenstack", tmp_path)
    assert "churn_flag" in res.output  # the adapter's own notes are printed
    assert load_config(None, out).registry.model_name == "churnlens-ravenstack"
    report = validate(out, load_config(None, out))
    assert report.ok
    checks = {(p.table, p.check) for p in report.problems}
    assert ("usage_events", "before_created_at") in checks
    assert ("churn_events", "several_churns") in checks
    res = runner.invoke(app, ["validate", "--data", str(out), "--json"])
    assert res.exit_code == 0
    problems = json.loads(res.stdout)["problems"]
    early = next(
        p for p in problems if p["check"] == "before_created_at" and p["table"] == "usage_events"
    )
    assert early["count"] > 0 and early["examples"][0].startswith("row ")
