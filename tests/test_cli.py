"""The command line: exit codes, messages that name the problem, outputs written atomically."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.cli import app
from churnlens.features.schema import TIMELINE_COLUMNS, TIMELINE_KEY

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, tiny_frames) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    for name, df in tiny_frames.items():
        df.to_csv(d / f"{name}.csv", index=False)
    return d


def test_validate_ok_and_json(data_dir: Path):
    res = runner.invoke(app, ["validate", "--data", str(data_dir)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["validate", "--data", str(data_dir), "--json"])
    report = json.loads(res.stdout)
    assert report["ok"] and report["rows_read"]["usage_events"] == 4
    assert "tickets" in report["tables_missing"]


def test_validate_fatal_exits_2_naming_table_and_column(data_dir: Path):
    pd.DataFrame({"account_id": ["a"], "when": ["2024-01-02"]}).to_csv(
        data_dir / "tickets.csv", index=False
    )
    res = runner.invoke(app, ["validate", "--data", str(data_dir), "--json"])
    assert res.exit_code == 2
    fatal = [p for p in json.loads(res.stdout)["problems"] if p["severity"] == "fatal"]
    assert fatal[0]["table"] == "tickets" and fatal[0]["column"] == "opened_at"


def test_timeline_writes_contract_columns(data_dir: Path, tmp_path: Path):
    out = tmp_path / "tl.csv"
    res = runner.invoke(
        app, ["timeline", "--data", str(data_dir), "--as-of", "2024-01-28", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    tl = pd.read_csv(out)
    assert list(tl.columns) == [*TIMELINE_KEY, *TIMELINE_COLUMNS]
    assert tl["week_start"].iloc[0] == "2024-01-01"
    assert len(tl) == 7


def test_bad_options_exit_2_and_leave_no_file(data_dir: Path, tmp_path: Path):
    out = tmp_path / "tl.parquet"
    res = runner.invoke(
        app, ["timeline", "--data", str(data_dir), "--as-of", "28/01/2024", "--out", str(out)]
    )
    assert res.exit_code == 2 and "expected a date as YYYY-MM-DD" in res.output
    assert not out.exists()
    res = runner.invoke(
        app, ["timeline", "--data", str(data_dir), "--out", str(tmp_path / "x.xlsx")]
    )
    assert res.exit_code == 2 and "output must end in" in res.output
    res = runner.invoke(app, ["timeline", "--data", str(tmp_path / "nope"), "--out", str(out)])
    assert res.exit_code == 2 and "not found" in res.output
    assert list(tmp_path.glob("*.tmp")) == [] and not out.exists()


def test_bad_config_exits_2_naming_the_key(data_dir: Path, tmp_path: Path):
    (data_dir / "churnlens.yaml").write_text("labels:\n  horizon_weeks: -3\n")
    res = runner.invoke(app, ["indicators", "--data", str(data_dir)])
    assert res.exit_code == 2 and "labels.horizon_weeks" in res.output


def test_indicators_and_snapshots_write_files(data_dir: Path, tmp_path: Path):
    out = tmp_path / "ind.parquet"
    res = runner.invoke(
        app,
        [
            "indicators",
            "--data",
            str(data_dir),
            "--as-of",
            "2024-01-28",
            "--out",
            str(out),
            "--top",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    ind = pd.read_parquet(out)
    assert set(ind["account_id"]) == {"a", "b"} and "health_score" in ind.columns
    assert "riskiest-looking" in res.stdout
    snaps = tmp_path / "snaps.csv"
    res = runner.invoke(app, ["snapshots", "--data", str(data_dir), "--out", str(snaps)])
    assert res.exit_code == 0, res.output
    assert {"label", "logins_4w"} <= set(pd.read_csv(snaps).columns)


def test_console_script_runs_as_a_process(data_dir: Path):
    exe = Path(sys.executable).with_name("churnlens")
    proc = subprocess.run(
        [str(exe), "validate", "--data", str(data_dir / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "data directory not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_fatal_data_problem_stops_timeline_with_exit_2_naming_table_and_column(
    data_dir: Path, tmp_path: Path
):
    pd.DataFrame({"account_id": ["a"], "occurred": ["2024-01-02"], "event": ["login"]}).to_csv(
        data_dir / "usage_events.csv", index=False
    )
    out = tmp_path / "tl.csv"
    res = runner.invoke(app, ["timeline", "--data", str(data_dir), "--out", str(out)])
    assert res.exit_code == 2
    assert "usage_events.occurred_at" in res.output and "required column" in res.output
    assert "Traceback" not in res.output and not out.exists()


def test_library_tracebacks_are_one_line_without_verbose() -> None:
    import io
    import logging

    from churnlens import cli

    original = logging.getLogRecordFactory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("mlflow.store.db.test")
    logger.addHandler(handler)
    try:
        cli._short_library_tracebacks()
        cli._short_library_tracebacks()  # once
        try:
            raise RuntimeError("database is locked")
        except RuntimeError:
            logger.exception("SQLAlchemy database error")
            logging.getLogger("churnlens.test").addHandler(handler)
            logging.getLogger("churnlens.test").exception("ours keep theirs")
    finally:
        logging.setLogRecordFactory(original)
        logger.removeHandler(handler)
        logging.getLogger("churnlens.test").removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == (
        "SQLAlchemy database error (RuntimeError: database is locked; -v for details)"
    )
    assert lines[1] == "ours keep theirs" and "Traceback" in lines[2]  # churnlens' own: untouched
