"""Keep account data out of the service's logs.

BentoML's access log (logger ``bentoml.access``, INFO) writes every request path. The CSM page's
account view has the account id in its path (``/ui/accounts/<id>``), so the id is replaced by
``<account>`` in those lines. Request bodies and query strings are never logged by BentoML; the
service's own client-error lines name fields and positions (``accounts[2].weeks[5].logins``), not
accounts.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "bentoml.access"
_ACCOUNT_PATH = re.compile(r"(/ui/accounts/)[^,\s)]+")


def redact(text: str) -> str:
    """``text`` with the account id of every ``/ui/accounts/<id>`` path replaced."""
    return _ACCOUNT_PATH.sub(r"\1<account>", text)


class RedactAccountPaths(logging.Filter):
    """Rewrite access-log records so no account id reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the message and its string arguments; keep every record."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_access_log() -> None:
    """Install :class:`RedactAccountPaths` on BentoML's access logger (once)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactAccountPaths) for f in logger.filters):
        logger.addFilter(RedactAccountPaths())
