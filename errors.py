"""One exception per boundary, each with a message that says what, where and what was expected."""

from __future__ import annotations

import re

_PASSWORD_IN_URL = re.compile(r"(//[^/:@\s]+:)[^/@\s]*@")


def mask_passwords(text: str) -> str:
    """``text`` with the password of each ``scheme://user:password@host`` in it masked."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


class ChurnlensError(Exception):
    """Base class for errors churnlens reports to a user (CLI exit code 2)."""

    exit_code = 2


class ConfigError(ChurnlensError):
    """A configuration file or value is invalid."""


class DataContractError(ChurnlensError):
    """Input data breaks the data contract in a way that cannot be repaired."""


class StoreError(ChurnlensError):
    """The score store cannot be opened, migrated, read or written."""
