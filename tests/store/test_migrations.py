"""Opening the store: Alembic migrations, idempotence, concurrency, MLflow's tables, errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from churnlens.errors import StoreError
from churnlens.store import (
    DEFAULT_DATABASE_URL,
    alembic_config,
    database_url,
    display_url,
    head_revision,
    open_store,
)
from churnlens.store.db import MIGRATIONS_DIR
from churnlens.store.schema import PREFIX, VERSION_TABLE, metadata

from .conftest import score_row

STORE_TABLES = {
    "churnlens_alembic_version",
    "churnlens_score_runs",
    "churnlens_scores",
    "churnlens_score_details",
}
HEAD = "0002"
ROOT = Path(__file__).resolve().parents[2]


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {t for t in sa.inspect(engine).get_table_names() if t != "sqlite_sequence"}
    finally:
        engine.dispose()


def _versions(url: str, table: str = VERSION_TABLE) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {table}"))]
    finally:
        engine.dispose()


def test_opening_twice_is_idempotent_and_records_the_revision(db_url: str):
    with open_store(db_url) as first:
        assert first.revision == head_revision() == HEAD
        first.append_scores([score_row("a", 0.1)], as_of="2025-03-02", model_version="m")
    with open_store(db_url) as second:
        assert second.revision == HEAD
        assert len(second.latest_scores()) == 1
    assert _tables(db_url) == STORE_TABLES
    assert _versions(db_url) == [HEAD]


def test_migrated_schema_matches_the_table_definitions(db_url: str):
    with open_store(db_url) as store, store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "version_table": VERSION_TABLE,
                "compare_type": True,
                "include_name": lambda name, type_, _: type_ != "table" or name.startswith(PREFIX),
            },
        )
        assert compare_metadata(ctx, metadata) == []


def test_mlflow_tables_and_its_alembic_version_are_left_alone(db_url: str):
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # what MLflow's own migrations leave in a shared database
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('mlflow_rev_123')"))
        conn.execute(sa.text("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO experiments VALUES (7)"))
    engine.dispose()
    with open_store(db_url) as store:
        store.append_scores([score_row("a", 0.1)], as_of="2025-03-02", model_version="m")
    assert _tables(db_url) == STORE_TABLES | {"alembic_version", "experiments"}
    assert _versions(db_url, "alembic_version") == ["mlflow_rev_123"]
    assert _versions(db_url) == [HEAD]


def test_concurrent_first_opens_migrate_once(db_url: str, tmp_path: Path):
    script = tmp_path / "open.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from churnlens.store import open_store

            with open_store(sys.argv[1]) as store:
                row = {"account_id": sys.argv[2], "churn_probability": 0.5, "risk_band": "red",
                       "health_score": 50, "touch_tier": "low", "top_reasons": [],
                       "playbooks": []}
                store.append_scores([row], as_of="2025-03-02", model_version="m")
            """
        )
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), db_url, f"acc-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert _versions(db_url) == [HEAD]
    with open_store(db_url) as store:
        assert len(store.runs()) == 4
        assert [r["account_id"] for r in store.latest_scores()] == [f"acc-{i}" for i in range(4)]


def test_a_schema_newer_than_this_churnlens_is_refused(db_url: str):
    open_store(db_url).close()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'f00d'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision 'f00d' is newer than this churnlens knows"):
        open_store(db_url)


def test_the_alembic_command_upgrades_and_downgrades(sqlite_url: str):
    cfg = alembic_config(sqlite_url)
    command.upgrade(cfg, "head")
    assert _tables(sqlite_url) == STORE_TABLES
    command.downgrade(cfg, "base")
    assert _tables(sqlite_url) == {"churnlens_alembic_version"}
    with open_store(sqlite_url) as store:
        assert store.revision == HEAD and store.runs() == []


def test_a_0001_store_upgrades_to_0002_keeping_its_scores(sqlite_url: str):
    cfg = alembic_config(sqlite_url)
    command.upgrade(cfg, "0001")
    engine = sa.create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO churnlens_score_runs (run_id, scored_at, as_of, model_version, "
                "n_accounts, source) VALUES (1, '2025-03-01 12:00:00', '2025-03-02', 'm', 1, 'cli')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO churnlens_scores (run_id, account_id, as_of, model_version, "
                "churn_probability, risk_band, health_score, touch_tier, top_reasons, playbooks, "
                "lang) VALUES (1, 'a', '2025-03-02', 'm', 0.4, 'red', 60, 'high', '[]', '[]', 'en')"
            )
        )
    engine.dispose()
    with open_store(sqlite_url) as store:
        assert store.revision == HEAD
        (row,) = store.latest_scores()
        assert row["account_id"] == "a" and store.details([(1, "a")]) == {}
    assert _tables(sqlite_url) == STORE_TABLES


def test_default_is_churnlens_db_in_the_working_directory(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHURNLENS_DATABASE_URL", raising=False)
    assert database_url() == DEFAULT_DATABASE_URL == "sqlite:///churnlens.db"
    with open_store() as store:
        assert store.url == f"sqlite:///{tmp_path / 'churnlens.db'}"
    assert (tmp_path / "churnlens.db").exists()
    other = tmp_path / "elsewhere.db"
    monkeypatch.setenv("CHURNLENS_DATABASE_URL", f"sqlite:///{other}")
    assert database_url() == f"sqlite:///{other}"
    assert database_url("sqlite:///given.db") == "sqlite:///given.db"
    with open_store() as store:
        assert store.url == f"sqlite:///{other}"
    assert other.exists()


def test_an_unreachable_database_is_named_without_its_password():
    url = "postgresql+psycopg://churn:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(StoreError) as info:
        open_store(url)
    msg = str(info.value)
    assert (
        "cannot open the score store at postgresql+psycopg://churn:***@127.0.0.1:1/nowhere" in msg
    )
    assert "s3cret" not in msg
    assert display_url(url) == "postgresql+psycopg://churn:***@127.0.0.1:1/nowhere"


def test_bad_urls_and_missing_directories_are_clear_errors(tmp_path: Path):
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("just some words")
    with pytest.raises(StoreError, match="no database driver"):
        open_store("nosuchdb://host/db")
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(StoreError, match=f"cannot open the score store at sqlite:///{missing}"):
        open_store(f"sqlite:///{missing}")


def test_migrations_ship_with_the_package():
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = doc["tool"]["setuptools"]
    packages = set(setuptools["packages"])
    assert {
        "churnlens.store",
        "churnlens.store.migrations",
        "churnlens.store.migrations.versions",
    } <= packages
    assert "script.py.mako" in setuptools["package-data"]["churnlens.store.migrations"]
    assert (MIGRATIONS_DIR / "env.py").is_file() and (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0002_score_details.py").is_file()
    deps = " ".join(doc["project"]["dependencies"])
    assert "sqlalchemy" in deps and "alembic" in deps
