"""Request body size limit and per-client rate limit (ASGI middlewares, in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from churnlens.errors import ConfigError
from churnlens.serving.limits import BodySizeLimit, Rate, RateLimit, TokenBuckets, parse_rate

KEY = "limits-test-key"


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"bytes": len(body)})


def app() -> Starlette:
    return Starlette(routes=[Route(p, echo, methods=["GET", "POST"]) for p in ("/x", "/readyz")])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_parse_rate() -> None:
    assert parse_rate("100/s") == Rate(100, 1.0)
    assert parse_rate(" 600 / min ") == Rate(600, 60.0)
    assert parse_rate("10000/h") == Rate(10000, 3600.0)
    assert parse_rate("0") is None and parse_rate("off") is None
    assert parse_rate(None) == Rate(100, 1.0)  # the default
    for bad in ("fast", "100", "100/week", "-5/s", "0/s"):
        with pytest.raises(ConfigError, match="CHURNLENS_RATE_LIMIT"):
            parse_rate(bad)


def test_token_bucket_allows_a_burst_then_refills() -> None:
    clock = Clock()
    buckets = TokenBuckets(Rate(3, 60.0), clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(20.0)  # one token every 20 s
    assert buckets.take("b") == 0.0  # another client has its own bucket
    clock.now += 20.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0.0
    clock.now += 3600.0  # refills up to the burst size, no more
    assert [buckets.take("a") for _ in range(4)][-1] > 0.0


def test_token_buckets_forget_the_least_recently_seen() -> None:
    buckets = TokenBuckets(Rate(1, 60.0), clock=Clock(), max_clients=2)
    for client in ("a", "b", "c"):
        buckets.take(client)
    assert list(buckets.buckets) == ["b", "c"]


@pytest.fixture
def limited(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("CHURNLENS_API_KEY", KEY)
    monkeypatch.setenv("CHURNLENS_RATE_LIMIT", "2/min")
    with TestClient(RateLimit(app())) as client:
        yield client


def test_rate_limit_answers_429_per_client(limited: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    assert [limited.get("/x", headers=auth).status_code for _ in range(2)] == [200, 200]
    r = limited.get("/x", headers=auth)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "30"
    body = r.json()
    assert body["status"] == 429 and "2 requests per minute" in body["problems"][0]
    assert KEY not in r.text
    # Requests without the key (or with a wrong one) are counted per peer address, apart.
    assert limited.get("/x").status_code == 200
    assert limited.get("/x", headers={"Authorization": "Bearer guess"}).status_code == 200
    assert limited.get("/x", headers={"Authorization": "Bearer guess2"}).status_code == 429
    # Health checks are never limited.
    assert all(limited.get("/readyz").status_code == 200 for _ in range(5))


def test_rate_limit_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNLENS_RATE_LIMIT", "0")
    with TestClient(RateLimit(app())) as client:
        assert all(client.get("/x").status_code == 200 for _ in range(150))


def test_rate_limit_default_is_100_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHURNLENS_RATE_LIMIT", raising=False)
    assert RateLimit(app()).rate == Rate(100, 1.0)


def sized(limit: int) -> TestClient:
    return TestClient(BodySizeLimit(app(), limit=limit))


def test_body_limit_on_declared_length() -> None:
    client = sized(1000)
    assert client.post("/x", content=b"a" * 1000).json() == {"bytes": 1000}
    r = client.post("/x", content=b"a" * 1001)
    assert r.status_code == 413
    assert r.json()["problems"] == [
        "request body: larger than the limit of 1000 bytes (CHURNLENS_MAX_BODY_BYTES)"
    ]


def chunks(n: int, size: int) -> Iterator[bytes]:
    for _ in range(n):
        yield b"b" * size


def test_body_limit_on_a_chunked_body() -> None:
    client = sized(1000)
    r = client.post("/x", content=chunks(4, 250))  # no Content-Length: chunked
    assert r.status_code == 200 and r.json() == {"bytes": 1000}
    r = client.post("/x", content=chunks(5, 250))
    assert r.status_code == 413
    assert client.get("/x").json() == {"bytes": 0}


def test_body_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNLENS_MAX_BODY_BYTES", "10")
    client = TestClient(BodySizeLimit(app()))
    assert client.post("/x", content=b"12345678901").status_code == 413
    for bad in ("ten", "0", "-1"):
        monkeypatch.setenv("CHURNLENS_MAX_BODY_BYTES", bad)
        with pytest.raises(ConfigError, match="CHURNLENS_MAX_BODY_BYTES"):
            BodySizeLimit(app())


def test_service_installs_the_limits_outermost() -> None:
    from churnlens.serving.service import ChurnService

    names = [cls.__name__ for cls, _ in getattr(ChurnService, "middlewares", [])]
    assert names[:2] == ["BodySizeLimit", "RateLimit"], names
    assert names.index("RateLimit") < names.index("ApiKeyAuth")


def test_serve_refuses_a_bad_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from churnlens.cli import app as cli

    monkeypatch.setenv("CHURNLENS_RATE_LIMIT", "lots")
    result: Any = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "CHURNLENS_RATE_LIMIT" in result.output


def test_the_largest_valid_request_fits_the_default_body_limit() -> None:
    from churnlens.serving.limits import DEFAULT_MAX_BODY
    from churnlens.serving.schemas import DEFAULT_MAX_ACCOUNTS, MAX_WEEKS, WeekIn

    counts = [k for k in WeekIn.__annotations__ if k != "week_start"]
    week = {"week_start": "2025-01-06", **{k: 123456.75 for k in counts}}
    account = {
        "account_id": "x" * 64,
        "profile": {"created_at": "2023-01-02", "plan": "enterprise", "arr": 1234567.5},
        "weeks": [week] * MAX_WEEKS,
    }
    body = json.dumps({"as_of": "2025-06-15", "accounts": [account] * DEFAULT_MAX_ACCOUNTS})
    assert 20_000_000 < len(body) < DEFAULT_MAX_BODY
