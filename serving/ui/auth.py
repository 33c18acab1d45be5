"""The CSM page's sign-in: the API key as a header, or a session cookie from a login form.

With ``CHURNLENS_API_KEY`` set, every page and data route of the UI needs either
``Authorization: Bearer <key>`` (scripts, proxies that inject it) or the session cookie that
``POST /ui/login`` sets after the key is typed in (people). The cookie holds an expiry time and an
HMAC-SHA256 of it keyed with the API key — never the key itself — and is ``HttpOnly``,
``SameSite=Strict`` and scoped to ``/ui``; rotating the key signs every session out. Comparisons
are constant-time and the key is never logged.

Without a key: a browser asking for a page is sent to the login form (303); anything else (the CSV
export, a script) gets 401 with JSON, so no account data reaches an unauthenticated client. The
login form and the static files (CSS, JS, icon) are open.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from urllib.parse import quote

from ..asgi import ASGIApp, Receive, Scope, Send, send_unauthorised

log = logging.getLogger(__name__)

API_KEY_ENV = "CHURNLENS_API_KEY"
SESSION_COOKIE = "churnlens_session"
SESSION_SECONDS = 12 * 3600
OPEN_PATHS = frozenset({"/login", "/logout"})
_MESSAGE = b"churnlens-ui-session:"


def api_key() -> str | None:
    """The configured key (``CHURNLENS_API_KEY``), None when the service is open."""
    return os.environ.get(API_KEY_ENV) or None


def session_token(key: str, expires: int) -> str:
    """The cookie value for a session ending at ``expires`` (Unix seconds)."""
    sig = hmac.new(key.encode(), _MESSAGE + str(expires).encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{sig}"


def new_session(key: str, now: float | None = None) -> str:
    """A cookie value valid for :data:`SESSION_SECONDS` from ``now``."""
    return session_token(key, int(now if now is not None else time.time()) + SESSION_SECONDS)


def valid_session(key: str, token: str | None, now: float | None = None) -> bool:
    """Whether ``token`` was made with ``key`` and has not expired (constant-time compare)."""
    if not token:
        return False
    expires, _, _sig = token.partition(".")
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:  # int("²") raises
        return False
    if int(expires) < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(token.encode(), session_token(key, int(expires)).encode())


def valid_key(key: str, given: str | None) -> bool:
    """Whether ``given`` is the key (constant-time compare)."""
    return given is not None and hmac.compare_digest(given.encode(), key.encode())


def bearer_ok(key: str, headers: dict[bytes, bytes]) -> bool:
    """Whether the request carries ``Authorization: Bearer <key>``."""
    scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key.encode())


def cookie_value(headers: dict[bytes, bytes], name: str = SESSION_COOKIE) -> str | None:
    """One cookie's value from the ``Cookie`` header."""
    raw = headers.get(b"cookie", b"").decode("latin-1")
    for part in raw.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


def route_path(scope: Scope) -> str:
    """The path inside the UI app (without the ``/ui`` it is mounted at)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def safe_next(value: str | None, base: str) -> str:
    """Where to go after signing in: a path inside the UI, never another site."""
    home = f"{base}/"
    if not value or not value.startswith(home) or value.startswith("//") or "\\" in value:
        return home
    return value


class UiAuth:
    """ASGI middleware of the UI app: the key (header) or a session cookie, else login/401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on when it is allowed; redirect a browser, refuse anything else."""
        key = api_key()
        path = route_path(scope)
        if (
            key is None
            or scope["type"] != "http"
            or path in OPEN_PATHS
            or path.startswith("/static/")
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if bearer_ok(key, headers) or valid_session(key, cookie_value(headers)):
            await self.app(scope, receive, send)
            return
        root = str(scope.get("root_path", ""))
        wants_page = (
            scope.get("method") in ("GET", "HEAD")
            and not path.endswith((".csv", ".json"))
            and b"text/html" in headers.get(b"accept", b"")
        )
        log.warning("unauthenticated request to the UI: %s", scope.get("path", ""))
        if wants_page:
            query = scope.get("query_string", b"").decode("latin-1")
            target = f"{root}{path}" + (f"?{query}" if query else "")
            location = f"{root}/login?next={quote(target, safe='')}"
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", location.encode()), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        problem = "sign in at /ui/login or send 'Authorization: Bearer <CHURNLENS_API_KEY>'"
        await send_unauthorised(send, problem)
