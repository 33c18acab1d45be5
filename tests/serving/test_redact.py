"""Account ids are taken out of BentoML's access-log lines."""

from __future__ import annotations

import logging

import pytest

from churnlens.serving.redact import ACCESS_LOGGER, redact, redact_access_log


def test_redact_account_paths() -> None:
    line = "127.0.0.1:5 (scheme=http,method=GET,path=/ui/accounts/acme%20co,type=,length=)"
    assert (
        redact(line)
        == "127.0.0.1:5 (scheme=http,method=GET,path=/ui/accounts/<account>,type=,length=)"
    )
    assert redact("path=/ui/,status=200") == "path=/ui/,status=200"
    assert redact("path=/predict") == "path=/predict"


def test_access_logger_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    redact_access_log()
    redact_access_log()  # installed once
    logger = logging.getLogger(ACCESS_LOGGER)
    assert sum(type(f).__name__ == "RedactAccountPaths" for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        logger.info("%s (%s)", "127.0.0.1:1", "method=GET,path=/ui/accounts/secret-co-9")
    assert "secret-co-9" not in caplog.text
    assert "/ui/accounts/<account>" in caplog.text
