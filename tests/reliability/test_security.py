"""Security over real HTTP (``bentoml serve``): rate limit per key, body size limit, and logs.

One server with the API key, a small rate limit and a small body limit. Account data (ids, plans,
ARR) is sent through every route and must not appear in the server log at INFO, and neither may
the key; the limits answer 429 / 413 in the service's error shape and leave the server serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from churnlens.config import load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.contract import load_tables
from churnlens.features.timeline import build_timeline
from churnlens.serving.client import account_items
from churnlens.serving.launch import local_server
from churnlens.training.pipeline import train

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

AS_OF = date(2025, 6, 15)
KEY = "sec-test-key-7f3a9c"
RATE = 30  # requests per minute per client
MAX_BODY = 256 * 1024
SECRET_ID = "acct-CONFIDENTIAL-8841"
SECRET_PLAN = "plan-confidential-zeta"
SECRET_ARR = 987654.25


@dataclass
class Served:
    url: str
    log: Path
    payload: dict[str, Any]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("security")
    data = root / "data"
    write_base(simulate(SimulatorConfig(n_accounts=300, seed=11)), data)
    cfg = load_config(None, data)
    train(data, cfg, register=False).model.save(root / "model")
    tables = load_tables(data, cfg, AS_OF)
    timeline = build_timeline(tables)
    first = str(tables.accounts["account_id"].iloc[0])
    item = account_items(timeline, tables.accounts, [first])[first]
    item = {
        **item,
        "account_id": SECRET_ID,
        "profile": {**item["profile"], "plan": SECRET_PLAN, "arr": SECRET_ARR},
    }
    env = {
        "CHURNLENS_MODEL_URI": str(root / "model"),
        "CHURNLENS_CONFIG": str(data / "churnlens.yaml"),
        "BENTOML_HOME": str(root / "bentoml"),
        "CHURNLENS_DATABASE_URL": f"sqlite:///{root / 'scores.db'}",
        "CHURNLENS_API_KEY": KEY,
        "CHURNLENS_RATE_LIMIT": f"{RATE}/min",
        "CHURNLENS_MAX_BODY_BYTES": str(MAX_BODY),
    }
    log = root / "serve.log"
    with local_server(env, log) as url:
        yield Served(url, log, {"as_of": AS_OF.isoformat(), "accounts": [item]})


def until_429(call: Callable[[], int], most: int = 3 * RATE) -> list[int]:
    """Status codes of ``call()`` up to and including the first 429 (or ``most`` calls)."""
    codes: list[int] = []
    while len(codes) < most and (not codes or codes[-1] != 429):
        codes.append(call())
    return codes


def test_limits_and_logs_over_http(served: Served) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=served.url, timeout=30) as http:
        r = http.post("/predict", json=served.payload, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["account_id"] == SECRET_ID
        # A client mistake that carries account data: the 400 names the field, the log must not
        # carry the account.
        bad = {**served.payload}
        bad["accounts"] = [{**served.payload["accounts"][0], "weeks": [{"week_start": "x"}]}]
        r = http.post("/predict", json=bad, headers=auth)
        assert r.status_code == 400 and "week_start" in r.json()["error"]
        r = http.post("/score_accounts", json={"account_ids": [SECRET_ID]}, headers=auth)
        assert r.status_code in (200, 503), r.text
        r = http.get(f"/ui/accounts/{SECRET_ID}", headers=auth)  # the CSM page's account view
        assert r.status_code in (200, 404), r.text
        # The body limit: refused before it is read, in the service's error shape.
        big = {**served.payload, "padding": "x" * (MAX_BODY + 1)}
        r = http.post("/predict", json=big, headers=auth)
        assert r.status_code == 413
        assert "CHURNLENS_MAX_BODY_BYTES" in r.json()["problems"][0]
        # The rate limit, per key: the requests above used 4 of its tokens (the 413 came before
        # it), and it refills at RATE per minute while these run.
        codes = until_429(lambda: http.get("/model", headers=auth).status_code)
        assert RATE - 6 <= codes.count(200) <= RATE + 10 and codes[-1] == 429, codes
        r = http.get("/model", headers=auth)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "per minute" in r.json()["error"]
        # Health is never limited; the server is still up and ready.
        assert http.get("/readyz").status_code == 200
        # Wrong keys are limited per peer address: guessing is throttled as well.
        n = iter(range(10**6))
        guesses = until_429(
            lambda: http.get("/model", headers={"Authorization": f"Bearer g{next(n)}"}).status_code
        )
        assert set(guesses) == {401, 429} and guesses.count(401) >= RATE - 2, guesses
    time.sleep(1.0)  # let the workers flush their log lines
    log = served.log.read_text(errors="replace")
    assert "/predict" in log  # the access log is on: the check below is not vacuous
    for secret in (SECRET_ID, SECRET_PLAN, str(SECRET_ARR), f"{SECRET_ARR:.0f}", KEY):
        assert secret not in log, f"{secret!r} found in the server log"
