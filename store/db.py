"""Connecting to the score store's database and bringing its schema to the latest revision.

The database is ``--db URL``, else ``CHURNLENS_DATABASE_URL``, else :data:`DEFAULT_DATABASE_URL`
(``churnlens.db`` in the working directory, beside MLflow's default ``mlflow.db``). Any SQLAlchemy
URL works; SQLite and PostgreSQL (``postgresql+psycopg://user@host:5432/db``) are tested.

Schema changes are Alembic revisions in ``migrations/versions``; :func:`upgrade_schema` runs
``upgrade head`` in one transaction that first takes a lock (``BEGIN IMMEDIATE`` on SQLite, a
transaction-scoped advisory lock on PostgreSQL), so processes opening a new database at the same
time run the migration once, one after the other, and never see a half-built schema.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from ..errors import StoreError
from .schema import VERSION_TABLE

ENV_VAR = "CHURNLENS_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///churnlens.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 10

# pg_advisory_xact_lock key: the first 8 bytes of sha256(b"churnlens.store.migrations"), signed.
PG_LOCK_KEY = -0x15DB_9A1B_A741_5992
_IMMEDIATE = "churnlens_sqlite_immediate"
# Alembic keeps its running context in module globals: one upgrade at a time per process.
_MIGRATE_LOCK = threading.Lock()


class StoreUnavailable(StoreError):
    """The database did not answer, refused the connection or is busy: worth retrying."""


def store_error(message: str, err: BaseException) -> StoreError:
    """:class:`StoreUnavailable` for connection-level failures, else :class:`StoreError`."""
    if isinstance(err, OperationalError | InterfaceError):
        return StoreUnavailable(message)
    return StoreError(message)


def database_url(url: str | None = None) -> str:
    """The store URL: ``url``, else ``$CHURNLENS_DATABASE_URL``, else ``sqlite:///churnlens.db``."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_DATABASE_URL


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as err:
        raise StoreError(
            f"score store: not a database URL ({err}); expected e.g. sqlite:///churnlens.db or "
            "postgresql+psycopg://user@host:5432/db"
        ) from None


def absolute_url(url: str) -> str:
    """``url`` with a relative SQLite path made absolute (against the working directory now)."""
    u = _parse(url)
    db = u.database
    if (
        u.get_backend_name() == "sqlite"
        and db
        and db != ":memory:"
        and not db.startswith("file:")
        and not Path(db).is_absolute()
    ):
        return u.set(database=str(Path(db).resolve())).render_as_string(hide_password=False)
    return url


def display_url(url: str) -> str:
    """``url`` for messages: the password masked, a relative SQLite path made absolute."""
    try:
        u = make_url(absolute_url(url))
    except StoreError:
        return "<unparsable database URL>"
    return u.render_as_string(hide_password=True)


def error_text(err: BaseException) -> str:
    """A database error on one line (the driver's message when there is one)."""
    orig = getattr(err, "orig", None) or err
    return re.sub(r"\s+", " ", str(orig)).strip()


def create_store_engine(url: str) -> Engine:
    """A SQLAlchemy engine for the store at ``url`` (SQLite gets real transactions, see below).

    On SQLite, Python's driver would leave DDL outside transactions and take write locks late;
    here every transaction starts with an explicit ``BEGIN`` (``BEGIN IMMEDIATE`` for migrations),
    foreign keys are enforced and a writer waits up to 30 s for another one to finish.

    Raises:
        StoreError: the URL is malformed or its database driver is not installed.
    """
    u = _parse(url)
    try:
        if u.get_backend_name() == "postgresql":  # a host that drops packets fails in 10 s
            return create_engine(
                u, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S}
            )
        if u.get_backend_name() != "sqlite":
            return create_engine(u, pool_pre_ping=True)
        engine = create_engine(u, connect_args={"timeout": SQLITE_TIMEOUT_S})
    except (NoSuchModuleError, ImportError) as err:
        raise StoreError(
            f"score store {display_url(url)}: no database driver for it ({err})"
        ) from None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN/COMMIT of its own
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def migration_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction holding the store's migration lock; committed on exit.

    SQLite: ``BEGIN IMMEDIATE`` (the database's write lock). PostgreSQL: a transaction-scoped
    advisory lock. Other databases: no lock beyond the transaction.
    """
    with engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            yield conn


def alembic_config(url: str) -> Any:
    """An Alembic ``Config`` for the store's migrations and the database at ``url``.

    ``alembic upgrade head`` equivalent: ``alembic.command.upgrade(alembic_config(url), "head")``.
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser interpolation
    return cfg


def head_revision() -> str:
    """The newest schema revision this version of churnlens knows."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head())


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in ``churnlens_alembic_version``, or None for a fresh database."""
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def upgrade_schema(engine: Engine, url: str) -> str:
    """Bring the database to :func:`head_revision` (no-op when it is there already).

    Returns:
        The schema revision now recorded.

    Raises:
        StoreError: the database cannot be reached or written, or it carries a revision newer
            than this churnlens knows (written by a later version).
    """
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    shown = display_url(url)
    head = head_revision()
    try:
        with engine.connect() as conn:
            current = current_revision(conn)
        if current == head:
            return head
        known = {s.revision for s in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions()}
        if current is not None and current not in known:
            raise StoreError(
                f"score store {shown}: schema revision {current!r} is newer than this churnlens "
                f"knows (latest {head!r}); upgrade churnlens or use another database"
            )
        cfg = alembic_config(url)
        with _MIGRATE_LOCK, migration_transaction(engine) as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            done = current_revision(conn)
    except SQLAlchemyError as err:
        msg = f"cannot open the score store at {shown}: {error_text(err)}"
        raise store_error(msg, err) from None
    except CommandError as err:
        raise StoreError(f"score store {shown}: migration failed: {err}") from None
    return done or head
