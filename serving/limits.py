"""Request limits in front of the service: body size and a rate limit per API key.

Both are ASGI middlewares that answer before the application sees the request, with the same JSON
shape as every other client error: ``{"error": ..., "problems": [...], "status": N}``.

``CHURNLENS_MAX_BODY_BYTES`` (default 64 MiB, room for the largest request the schema allows:
1,000 accounts with 104 weeks each, every count filled, about 46 MB): a request body above it gets
413. A declared
``Content-Length`` above the limit is refused without reading the body; a chunked body is read up to
the limit and refused as soon as it passes it, so a client cannot make a worker buffer more.

``CHURNLENS_RATE_LIMIT`` (default ``100/s``): ``N/s``, ``N/min`` or ``N/h`` requests per client,
``0`` or ``off`` to disable. A token bucket per client holds up to N requests and refills at N per
period; a request with no token left gets 429 and ``Retry-After``. The client is the API key when
the request carries the configured ``CHURNLENS_API_KEY`` (every holder of the key shares one
bucket); otherwise (no key configured, no key sent, or a wrong one) the peer address, so guessing
keys is throttled too. ``X-Forwarded-For`` is not trusted: behind a proxy, limit at the proxy. The
buckets live in each worker process: with ``CHURNLENS_WORKERS=n`` a client gets up to n times N.
Health routes (``/healthz``, ``/livez``, ``/readyz``, ``/metrics``) are never limited.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ConfigError
from .asgi import ASGIApp, Message, Receive, Scope, Send, send_problem
from .ui.auth import bearer_ok

MAX_BODY_ENV = "CHURNLENS_MAX_BODY_BYTES"
DEFAULT_MAX_BODY = 64 * 1024 * 1024
RATE_LIMIT_ENV = "CHURNLENS_RATE_LIMIT"
DEFAULT_RATE_LIMIT = "100/s"
API_KEY_ENV = "CHURNLENS_API_KEY"
UNLIMITED_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics"})
MAX_CLIENTS = 10_000  # buckets kept per worker; the least recently seen is dropped first
_PERIODS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}


# ---------------------------------------------------------------------------------- body size
def max_body_bytes(value: str | None) -> int:
    """``CHURNLENS_MAX_BODY_BYTES``: a positive integer number of bytes (default 64 MiB)."""
    if value is None or not value.strip():
        return DEFAULT_MAX_BODY
    raw = value.strip()
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"{MAX_BODY_ENV}: expected a positive number of bytes, got {raw!r}")
    return int(raw)


class BodySizeLimit:
    """ASGI middleware: 413 for a request body larger than the limit."""

    def __init__(self, app: ASGIApp, limit: int | None = None) -> None:
        self.app = app
        self.limit = limit if limit is not None else max_body_bytes(os.environ.get(MAX_BODY_ENV))

    def problem(self) -> str:
        """What the client is told."""
        return f"request body: larger than the limit of {self.limit} bytes ({MAX_BODY_ENV})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse early on Content-Length; otherwise read up to the limit, then replay."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if declared.strip().isdigit() and int(declared) > self.limit:
                await send_problem(send, 413, self.problem(), [(b"connection", b"close")])
                return
            if declared.strip().isdigit():  # the server enforces the declared length
                await self.app(scope, receive, send)
                return
        # No (usable) Content-Length: chunked. Buffer up to the limit before the app sees it.
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await send_problem(send, 413, self.problem(), [(b"connection", b"close")])
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)


# -------------------------------------------------------------------------------- rate limit
@dataclass(frozen=True)
class Rate:
    """``requests`` per ``period`` seconds (None: unlimited)."""

    requests: int
    period: float

    @property
    def per_second(self) -> float:
        """Refill rate of a bucket."""
        return self.requests / self.period


def parse_rate(value: str | None) -> Rate | None:
    """``CHURNLENS_RATE_LIMIT``: ``N/s``, ``N/min``, ``N/h``; ``0``/``off`` for no limit."""
    raw = (value if value is not None else DEFAULT_RATE_LIMIT).strip().lower()
    if raw in {"0", "off", "none", "false"}:
        return None
    match = re.fullmatch(r"(\d+)\s*/\s*([a-z]+)", raw)
    if not match or match.group(2) not in _PERIODS or int(match.group(1)) <= 0:
        raise ConfigError(
            f"{RATE_LIMIT_ENV}: expected requests per period like '100/s', '600/min' or "
            f"'10000/h' (or 0 to disable), got {value!r}"
        )
    return Rate(int(match.group(1)), _PERIODS[match.group(2)])


class TokenBuckets:
    """One token bucket per client id, at most :data:`MAX_CLIENTS` of them (LRU)."""

    def __init__(
        self,
        rate: Rate,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, updated at

    def take(self, client: str) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one is available."""
        now = self.clock()
        tokens, at = self.buckets.pop(client, (float(self.rate.requests), now))
        tokens = min(float(self.rate.requests), tokens + (now - at) * self.rate.per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate.per_second
        self.buckets[client] = (tokens, now)
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


class RateLimit:
    """ASGI middleware: 429 with ``Retry-After`` once a client has used up its bucket."""

    def __init__(self, app: ASGIApp, rate: Rate | None | str = "env") -> None:
        self.app = app
        resolved = parse_rate(os.environ.get(RATE_LIMIT_ENV)) if rate == "env" else rate
        assert not isinstance(resolved, str)
        self.rate = resolved
        self.buckets = TokenBuckets(resolved) if resolved is not None else None
        self.key = os.environ.get(API_KEY_ENV, "")

    def client(self, scope: Scope) -> str:
        """The bucket's name: the configured key (as a digest, never the key), else the peer."""
        if self.key and bearer_ok(self.key, dict(scope.get("headers") or [])):
            return "key:" + hashlib.sha256(self.key.encode()).hexdigest()[:16]
        peer = scope.get("client") or ("unknown", 0)
        return f"peer:{peer[0]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through when allowed; 429 otherwise."""
        if (
            self.buckets is None
            or scope["type"] != "http"
            or scope.get("path", "") in UNLIMITED_PATHS
        ):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self.client(scope))
        if wait == 0.0:
            await self.app(scope, receive, send)
            return
        assert self.rate is not None
        per = {1.0: "second", 60.0: "minute", 3600.0: "hour"}[self.rate.period]
        problem = (
            f"rate limit: more than {self.rate.requests} requests per {per} from this client "
            f"({RATE_LIMIT_ENV}); retry after {wait:.2f} s"
        )
        retry = str(max(1, math.ceil(wait))).encode()
        await send_problem(send, 429, problem, [(b"retry-after", retry)])
