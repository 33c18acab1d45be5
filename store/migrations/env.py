"""Alembic environment of the churnlens score store.

:func:`churnlens.store.open_store` runs ``upgrade head`` through here, handing over a connection
already inside the transaction that holds the migration lock (``config.attributes["connection"]``).
The ``alembic`` command works too, with a config whose ``script_location`` is this folder and whose
``sqlalchemy.url`` is the database; it takes the same lock.

Only tables named ``churnlens_*`` are compared by ``--autogenerate`` and the version table is
``churnlens_alembic_version``, so MLflow's tables in a shared database are never touched.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from churnlens.store.db import create_store_engine, migration_transaction
from churnlens.store.schema import PREFIX, VERSION_TABLE, metadata

config = context.config


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "table":
        return bool(name and name.startswith(PREFIX))
    return True


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=_include_name,
        render_as_batch=True,  # ALTER on SQLite goes through table copies
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Print the SQL (``alembic upgrade head --sql``) instead of running it."""
    _configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():  # no-op inside the caller's transaction
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the handed-over connection, or open one (with the lock) from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (or call churnlens.store.open_store)")
    engine = create_store_engine(url)
    try:
        with migration_transaction(engine) as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
