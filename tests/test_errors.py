"""Passwords never reach a message."""

from __future__ import annotations

from churnlens.errors import mask_passwords


def test_mask_passwords_in_urls_and_free_text() -> None:
    assert mask_passwords("postgresql://ml:s3cr3t@db:5432/mlflow") == (
        "postgresql://ml:***@db:5432/mlflow"
    )
    assert mask_passwords("cannot reach http://u:p%40ss@host/x (timeout)") == (
        "cannot reach http://u:***@host/x (timeout)"
    )
    assert mask_passwords("sqlite:///tmp/mlflow.db and http://host:5000") == (
        "sqlite:///tmp/mlflow.db and http://host:5000"
    )
    assert mask_passwords("postgresql://ml@db/x") == "postgresql://ml@db/x"
