"""Without the `spark` extra, churnlens works and says how to install it."""

from __future__ import annotations

import sys

import pytest

from churnlens.errors import ChurnlensError


def test_missing_pyspark_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import fails as if not installed
    from churnlens import spark as cs

    with pytest.raises(ChurnlensError, match=r"churnlens\[spark\].*uv sync --extra spark"):
        cs.session()


def test_cli_engine_spark_without_pyspark_exits_2(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from churnlens.cli import app

    monkeypatch.setitem(sys.modules, "pyspark", None)
    (tmp_path / "accounts.csv").write_text("account_id,created_at\na,2024-01-01\n")
    res = CliRunner().invoke(
        app,
        [
            "timeline",
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path / "t.csv"),
            "--engine",
            "spark",
        ],
    )
    assert res.exit_code == 2
    assert "churnlens[spark]" in res.output
