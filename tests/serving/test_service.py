"""The BentoML prediction service: in-process over ASGI, and over HTTP against ``bentoml serve``.

A tiny model is trained on a simulated base once per module; requests are built from the batch
pipeline's own frames (``build_timeline`` + the accounts table), and ``/predict`` must agree with
``score_frame`` on the same data and date (what ``churnlens score`` writes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from starlette.testclient import TestClient

from churnlens.config import Config, load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.contract import load_tables
from churnlens.features.indicators import compute_indicators
from churnlens.features.schema import TIMELINE_COLUMNS
from churnlens.features.snapshots import alive_accounts
from churnlens.features.timeline import build_timeline
from churnlens.model import ChurnModel
from churnlens.serving import service as service_module
from churnlens.serving.client import account_items
from churnlens.serving.launch import local_server
from churnlens.serving.playbooks import load_catalog
from churnlens.serving.schemas import WeekIn, describe_errors, field_path
from churnlens.serving.scoring import score_frame
from churnlens.serving.service import BENTOML_REQUEST_LOGGER, ChurnService
from churnlens.store import open_store
from churnlens.training.pipeline import train

AS_OF = date(2025, 6, 15)  # a Sunday inside the simulated window: every timeline <= 104 weeks
MAX_ACCOUNTS = 40
N_PARITY = 30


@dataclass
class Base:
    """A simulated base, its model package and the batch scores as of :data:`AS_OF`."""

    data: Path
    model_dir: Path
    cfg: Config
    model: ChurnModel
    timeline: pd.DataFrame
    accounts: pd.DataFrame
    batch: dict[str, dict[str, Any]]
    batch_ja: dict[str, dict[str, Any]]
    env: dict[str, str]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """Simulate 600 accounts, train without the registry, score the batch way."""
    root = tmp_path_factory.mktemp("service")
    data = root / "data"
    write_base(simulate(SimulatorConfig(n_accounts=600, seed=5)), data)
    cfg = load_config(None, data)
    model_dir = root / "model"
    train(data, cfg, register=False).model.save(model_dir)
    model = ChurnModel.load(model_dir)
    tables = load_tables(data, cfg, AS_OF)
    timeline = build_timeline(tables)
    alive = alive_accounts(tables)
    ind = compute_indicators(timeline, alive, as_of=tables.as_of)
    catalog = load_catalog(None)
    batch = {r["account_id"]: r for r in score_frame(model, ind, alive, cfg, catalog)}
    batch_ja = {r["account_id"]: r for r in score_frame(model, ind, alive, cfg, catalog, lang="ja")}
    env = {
        "CHURNLENS_MODEL_URI": str(model_dir),
        "CHURNLENS_CONFIG": str(data / "churnlens.yaml"),
        "CHURNLENS_MAX_ACCOUNTS": str(MAX_ACCOUNTS),
        "BENTOML_HOME": str(root / "bentoml"),
        # The score store for /score_accounts: its folder is made by the test that uses it.
        "CHURNLENS_DATABASE_URL": f"sqlite:///{root / 'store' / 'scores.db'}",
    }
    return Base(data, model_dir, cfg, model, timeline, alive, batch, batch_ja, env)


@pytest.fixture(scope="module")
def client(base: Base) -> Iterator[TestClient]:
    """The service in-process (``to_asgi``), its lifespan run by the TestClient."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in base.env.items():
            mp.setenv(k, v)
        with TestClient(ChurnService.to_asgi()) as c:
            yield c


def account_payload(base: Base, account_id: str) -> dict[str, Any]:
    """An ``accounts[]`` item built from the accounts table and ``churnlens timeline`` rows."""
    return account_items(base.timeline, base.accounts, [account_id])[account_id]


def parity_ids(base: Base) -> list[str]:
    """Accounts spread over the risk range (highest, lowest and in between)."""
    ranked = sorted(base.batch.values(), key=lambda r: r["churn_probability"])
    picks = sorted({round(i * (len(ranked) - 1) / (N_PARITY - 1)) for i in range(N_PARITY)})
    return [ranked[i]["account_id"] for i in picks]


def one_account(base: Base) -> dict[str, Any]:
    """A valid single-account request (an account with a long timeline)."""
    counts = base.timeline.groupby("account_id").size()
    acc = account_payload(base, str(counts.idxmax()))
    return {"as_of": AS_OF.isoformat(), "accounts": [acc]}


def assert_parity(results: list[dict[str, Any]], batch: dict[str, dict[str, Any]]) -> None:
    """Each API result equals the batch row: probability to 1e-9, reasons and plays exactly."""
    for res in results:
        want = batch[res["account_id"]]
        assert abs(res["churn_probability"] - want["churn_probability"]) <= 1e-9
        for key in ("risk_band", "health_score", "touch_tier", "playbooks"):
            assert res[key] == want[key], (res["account_id"], key)
        assert res["arr_at_risk"] == pytest.approx(want["arr_at_risk"], abs=1e-6)
        assert [r["family"] for r in res["reasons"]] == [r["family"] for r in want["top_reasons"]]
        assert [r["evidence"] for r in res["reasons"]] == [
            r["evidence"] for r in want["top_reasons"]
        ]
        for got, exp in zip(res["reasons"], want["top_reasons"], strict=True):
            assert got["impact"] == pytest.approx(exp["impact"], abs=1e-9)


# ------------------------------------------------------------------------------------ units
def test_week_fields_are_the_timeline_columns() -> None:
    assert [f for f in WeekIn.__annotations__ if f != "week_start"] == list(TIMELINE_COLUMNS)


def test_field_path_and_error_lines() -> None:
    assert field_path(("accounts", 2, "weeks", 5, "logins")) == "accounts[2].weeks[5].logins"
    lines = describe_errors(
        [
            {"type": "missing", "loc": ["accounts", 0, "profile", "created_at"], "msg": "x"},
            {"type": "value_error", "loc": [], "msg": "Value error, accounts[1]: bad"},
        ]
    )
    assert lines == [
        "accounts[0].profile.created_at: required field is missing",
        "accounts[1]: bad",
    ]
    # Pydantic's own errors carry the input and the bound; BentoML's HTTP detail carries neither.
    ge = {"type": "greater_than_equal", "loc": ["accounts", 0, "weeks", 1, "logins"]}
    msg = "Input should be greater than or equal to 0"
    assert describe_errors([ge | {"msg": msg, "input": -3, "ctx": {"ge": 0}}]) == [
        "accounts[0].weeks[1].logins: must be >= 0, got -3"
    ]
    assert describe_errors([ge | {"msg": msg.replace("0", "1")}]) == [
        "accounts[0].weeks[1].logins: must be >= 1"
    ]


# ---------------------------------------------------------------------------- in-process API
def test_health_and_ready(client: TestClient) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert client.get(path).status_code == 200, path


def test_model_info(client: TestClient, base: Base) -> None:
    r = client.get("/model")
    assert r.status_code == 200
    doc = r.json()
    assert doc["version"] == str(base.model_dir)
    assert doc["features"] == base.model.features
    assert doc["training_window"]["test_start"] == base.model.meta["windows"]["test_start"]
    assert 0.5 < doc["metrics"]["model"]["roc_auc"] <= 1.0
    assert doc["tracked_events"] == {}  # trained without tracked event groups


def test_openapi_lists_predict_and_model(client: TestClient) -> None:
    paths = client.get("/docs.json").json()["paths"]
    assert "post" in paths["/predict"]
    assert "post" in paths["/score_accounts"]
    assert "get" in paths["/model"]


def test_score_accounts_serves_the_latest_stored_scores(
    client: TestClient, base: Base, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = parity_ids(base)[:2]
    body = {"account_ids": [b, "never-scored", a, b]}
    # No store yet (its folder does not exist): 503, the reason in the server log, no crash.
    with caplog.at_level(logging.ERROR, logger=BENTOML_REQUEST_LOGGER):
        r = client.post("/score_accounts", json=body)
    assert r.status_code == 503, r.text
    assert "score store unavailable" in caplog.text and "scores.db" in caplog.text
    url = base.env["CHURNLENS_DATABASE_URL"]
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    with open_store(url) as store:
        store.append_scores(list(base.batch.values()), as_of=AS_OF, model_version="m v1")
        later = {**base.batch[a], "as_of": "2025-06-22", "churn_probability": 0.5}
        store.append_scores([later], as_of=date(2025, 6, 22), model_version="m v2")
    r = client.post("/score_accounts", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [x["account_id"] for x in doc["results"]] == [b, a]  # request order, repeats once
    assert doc["missing"] == ["never-scored"]
    got_b, got_a = doc["results"]
    assert got_b["churn_probability"] == base.batch[b]["churn_probability"]
    assert (got_b["model_version"], got_b["as_of"]) == ("m v1", AS_OF.isoformat())
    assert got_b["playbooks"] == base.batch[b]["playbooks"]
    assert [x["family"] for x in got_b["reasons"]] == [
        x["family"] for x in base.batch[b]["top_reasons"]
    ]
    assert (got_a["model_version"], got_a["as_of"], got_a["churn_probability"]) == (
        "m v2",
        "2025-06-22",
        0.5,
    )


def test_score_accounts_bad_requests(client: TestClient) -> None:
    r = client.post("/score_accounts", json={"account_ids": []})
    assert r.status_code == 400, r.text
    assert r.json()["problems"][0].startswith("account_ids:")
    r = client.post("/score_accounts", json={"account_ids": [f"a{i}" for i in range(41)]})
    assert r.status_code == 413, r.text
    assert f"the limit is {MAX_ACCOUNTS}" in r.json()["error"]


def test_predict_matches_batch_scores(client: TestClient, base: Base) -> None:
    ids = parity_ids(base)
    body = {"as_of": AS_OF.isoformat(), "accounts": [account_payload(base, a) for a in ids]}
    # the billing period reaches the indicators in serving as in batch (weeks to renewal)
    assert {a["profile"]["billing_period"] for a in body["accounts"]} <= {"monthly", "annual"}
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["model_version"] == str(base.model_dir)
    assert [x["account_id"] for x in doc["results"]] == ids
    assert len({x["risk_band"] for x in doc["results"]}) >= 2
    assert_parity(doc["results"], base.batch)


def test_predict_in_japanese(client: TestClient, base: Base) -> None:
    ids = parity_ids(base)[-5:]  # the riskiest: reasons with evidence and plays
    body = {"as_of": AS_OF.isoformat(), "accounts": [account_payload(base, a) for a in ids]}
    r = client.post("/predict", params={"lang": "ja"}, json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert_parity(results, base.batch_ja)
    text = " ".join(
        [x["label"] for res in results for x in res["reasons"]]
        + [p["title"] for res in results for p in res["playbooks"]]
    )
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in text)


def test_weeks_out_of_order_are_sorted(client: TestClient, base: Base) -> None:
    body = one_account(base)
    body["accounts"][0]["weeks"].reverse()
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    assert_parity(r.json()["results"], base.batch)


def test_unknown_profile_keys_and_plan_are_ignored(client: TestClient, base: Base) -> None:
    body = one_account(base)
    body["accounts"][0]["profile"] |= {"plan": "galactic", "favourite_colour": "teal"}
    r = client.post("/predict", json=body)
    assert r.status_code == 200, r.text
    assert_parity(r.json()["results"], base.batch)


def _bad(base: Base, case: str) -> tuple[str | bytes, str]:
    """A bad request body and the text its error must contain."""
    body = one_account(base)
    acc = body["accounts"][0]
    if case == "missing created_at":
        del acc["profile"]["created_at"]
        return json.dumps(body), "accounts[0].profile.created_at: required field is missing"
    if case == "negative logins":
        acc["weeks"][5]["logins"] = -3
        return json.dumps(body), "accounts[0].weeks[5].logins: must be >= 0"
    if case == "NaN":
        acc["weeks"][2]["events"] = float("nan")
        return json.dumps(body), "accounts[0].weeks[2].events: must be a finite number"
    if case == "infinity":
        acc["profile"]["arr"] = float("inf")
        return json.dumps(body), "accounts[0].profile.arr: must be a finite number"
    if case == "wrong type":
        acc["weeks"][1]["touches"] = "lots"
        return json.dumps(body), "accounts[0].weeks[1].touches"
    if case == "duplicated week":
        acc["weeks"].append(dict(acc["weeks"][3]))
        day = acc["weeks"][3]["week_start"][:10]
        return json.dumps(body), f"accounts[0].weeks: week_start {day} appears twice"
    if case == "week after as_of":
        acc["weeks"].append({"week_start": "2025-06-16", "logins": 1})
        return json.dumps(body), "week_start 2025-06-16 is after as_of 2025-06-15"
    if case == "not a Monday":
        acc["weeks"][0]["week_start"] = "2024-01-03"
        return json.dumps(body), "accounts[0].weeks[0].week_start: must be a Monday"
    if case == "bad as_of":
        body["as_of"] = "last tuesday"
        return json.dumps(body), "as_of: "
    if case == "no accounts":
        body["accounts"] = []
        return json.dumps(body), "accounts: "
    if case == "duplicated account":
        body["accounts"].append(acc)
        return json.dumps(body), "accounts[1].account_id: "
    if case == "too many weeks":
        first = pd.Timestamp("2021-01-04")
        acc["weeks"] = [
            {"week_start": (first + pd.Timedelta(weeks=i)).date().isoformat(), "logins": 1}
            for i in range(105)
        ]
        return json.dumps(body), "accounts[0].weeks: "
    if case == "not JSON":
        return b"{as_of: 2025", "JSON"
    raise AssertionError(case)


BAD_CASES = [
    "missing created_at",
    "negative logins",
    "NaN",
    "infinity",
    "wrong type",
    "duplicated week",
    "week after as_of",
    "not a Monday",
    "bad as_of",
    "no accounts",
    "duplicated account",
    "too many weeks",
    "not JSON",
]


@pytest.fixture
def bentoml_log() -> Iterator[list[logging.LogRecord]]:
    """Records BentoML's request logger emits (after our filter)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_request_is_400_naming_the_field(
    client: TestClient, base: Base, case: str, bentoml_log: list[logging.LogRecord]
) -> None:
    content, expected = _bad(base, case)
    r = client.post("/predict", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    doc = r.json()
    assert expected in doc["error"], doc
    assert "got None" not in doc["error"], doc  # the server's detail has no input to quote
    assert all(isinstance(p, str) for p in doc["problems"])
    assert bentoml_log, "the client error is logged"
    for rec in bentoml_log:
        assert rec.levelno == logging.WARNING
        assert rec.exc_info is None and "\n" not in rec.getMessage()


def test_too_many_accounts_is_413_with_the_limit(client: TestClient, base: Base) -> None:
    acc = one_account(base)["accounts"][0]
    accounts = [{**acc, "account_id": f"copy-{i}"} for i in range(MAX_ACCOUNTS + 1)]
    r = client.post("/predict", json={"as_of": AS_OF.isoformat(), "accounts": accounts})
    assert r.status_code == 413, r.text
    assert f"the limit is {MAX_ACCOUNTS}" in r.json()["error"]


def test_unknown_lang_is_400(client: TestClient, base: Base) -> None:
    r = client.post("/predict", params={"lang": "fr"}, json=one_account(base))
    assert r.status_code == 400
    assert r.json()["error"].startswith("lang: expected one of en, ja")


def test_server_bug_is_500_not_4xx(
    client: TestClient, base: Base, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        raise ValueError("a bug in scoring")

    monkeypatch.setattr(service_module, "score_frame", broken)
    r = client.post("/predict", json=one_account(base))
    assert r.status_code == 500
    assert "a bug in scoring" not in r.text


# --------------------------------------------------------------------------- over real HTTP
HTTP_KEY = "http-test-key"


@pytest.fixture(scope="module")
def server(base: Base, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``bentoml serve`` in a subprocess on 127.0.0.1, with the API key required."""
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with local_server({**base.env, "CHURNLENS_API_KEY": HTTP_KEY}, log_path) as url:
        yield url


@pytest.mark.slow
def test_http_predict_parity_errors_and_model(server: str, base: Base) -> None:
    ids = parity_ids(base)[:10]
    body = {"as_of": AS_OF.isoformat(), "accounts": [account_payload(base, a) for a in ids]}
    assert httpx.get(f"{server}/model", timeout=30).status_code == 401  # the key is required
    auth = {"Authorization": f"Bearer {HTTP_KEY}"}
    with httpx.Client(base_url=server, timeout=30, headers=auth) as http:
        assert http.get("/readyz").status_code == 200
        r = http.post("/predict", json=body)
        assert r.status_code == 200, r.text
        assert_parity(r.json()["results"], base.batch)
        r = http.post("/predict", params={"lang": "ja"}, json=body)
        assert r.status_code == 200, r.text
        assert_parity(r.json()["results"], base.batch_ja)
        content, expected = _bad(base, "negative logins")
        r = http.post("/predict", content=content, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and expected in r.json()["error"]
        many = [{**body["accounts"][0], "account_id": f"c{i}"} for i in range(MAX_ACCOUNTS + 1)]
        r = http.post("/predict", json={"as_of": AS_OF.isoformat(), "accounts": many})
        assert r.status_code == 413
        info = http.get("/model").json()
        assert info["features"] == base.model.features


def test_api_key_guards_every_route_but_health(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from churnlens.serving.service import ApiKeyAuth

    async def ok(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [
        Route(p, ok, methods=["GET", "POST"]) for p in ("/readyz", "/healthz", "/model", "/predict")
    ]
    key = "s3cret-key-for-tests"
    monkeypatch.setenv("CHURNLENS_API_KEY", key)
    guarded = TestClient(ApiKeyAuth(Starlette(routes=routes)))
    with caplog.at_level(logging.DEBUG):
        assert guarded.get("/readyz").status_code == 200
        assert guarded.get("/healthz").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": key}):
            res = guarded.get("/model", headers=headers)
            assert res.status_code == 401
            assert res.headers["www-authenticate"] == "Bearer"
            assert "Authorization" in res.json()["problems"][0]
        assert guarded.post("/predict", json={}).status_code == 401
        assert guarded.get("/model", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert key not in caplog.text
    monkeypatch.delenv("CHURNLENS_API_KEY")
    assert TestClient(ApiKeyAuth(Starlette(routes=routes))).get("/model").status_code == 200


def test_client_builds_requests_from_batch_frames() -> None:
    from churnlens.serving.client import account_items, predict_request
    from churnlens.serving.schemas import PredictRequest

    tl = pd.DataFrame(
        {
            "account_id": ["a", "a", "b"],
            "week_start": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-08"]),
            "logins": [3.0, float("nan"), 1.0],
        }
    )
    acc = pd.DataFrame(
        {
            "account_id": ["a", "b"],
            "created_at": pd.to_datetime(["2024-01-01"] * 2),
            "arr": [1000.0, float("nan")],
        }
    )
    items = account_items(tl, acc, ["a"])
    assert list(items) == ["a"]
    a = items["a"]
    assert a["profile"] == {"created_at": "2024-01-01T00:00:00", "arr": 1000.0}
    assert a["weeks"] == [
        {"week_start": "2024-01-01T00:00:00", "logins": 3.0},
        {"week_start": "2024-01-08T00:00:00", "logins": None},
    ]
    body = predict_request(date(2024, 1, 14), items.values())
    assert body["as_of"] == "2024-01-14" and body["accounts"][0]["account_id"] == "a"
    PredictRequest.model_validate(body)  # the API accepts what the client builds


def test_worker_count_from_the_environment() -> None:
    assert service_module.worker_count(None) == 1
    assert service_module.worker_count(" 2 ") == 2
    assert service_module.worker_count("cpu_count") == "cpu_count"
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(service_module.ChurnlensError, match="CHURNLENS_WORKERS"):
            service_module.worker_count(bad)


# ------------------------------------------------------------------- tracked event groups
TRACKED = {"sharing": ["dashboard_share", "export_csv"], "search": ["search"]}
TRACKED_CONFIG = {g: tuple(e) for g, e in TRACKED.items()}


@pytest.fixture(scope="module")
def tracked(base: Base, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Base, Any]]:
    """A model trained with tracked event groups, served by ``bentoml serve`` over HTTP (a
    second in-process service would register BentoML's metrics twice); its batch scores."""
    root = tmp_path_factory.mktemp("tracked")
    cfg = base.cfg.model_copy(
        update={"events": base.cfg.events.model_copy(update={"tracked": TRACKED_CONFIG})}
    )
    model_dir = root / "model"
    train(base.data, cfg, register=False).model.save(model_dir)
    model = ChurnModel.load(model_dir)
    tables = load_tables(base.data, cfg, AS_OF)
    timeline = build_timeline(tables)
    assert "events__sharing" in timeline.columns
    alive = alive_accounts(tables)
    ind = compute_indicators(timeline, alive, as_of=tables.as_of)
    catalog = load_catalog(None)
    batch = {r["account_id"]: r for r in score_frame(model, ind, alive, cfg, catalog)}
    mine = Base(base.data, model_dir, cfg, model, timeline, alive, batch, {}, base.env)
    env = {**base.env, "CHURNLENS_MODEL_URI": str(model_dir), "BENTOML_HOME": str(root / "bento")}
    with local_server(env, root / "serve.log") as url, httpx.Client(base_url=url, timeout=60) as c:
        yield mine, c


@pytest.mark.slow
def test_tracked_groups_are_read_from_the_weeks_and_checked(tracked) -> None:
    base, c = tracked
    assert c.get("/model").json()["tracked_events"] == TRACKED  # what weeks should carry
    ids = parity_ids(base)[:12]
    body = {"as_of": AS_OF.isoformat(), "accounts": [account_payload(base, a) for a in ids]}
    assert "events__search" in body["accounts"][0]["weeks"][0]
    r = c.post("/predict", json=body)
    assert r.status_code == 200, r.text
    assert_parity(r.json()["results"], base.batch)
    # Without the group columns the groups are unknown: scored, but not as the batch did.
    for acc in body["accounts"]:
        for w in acc["weeks"]:
            del w["events__sharing"], w["events__search"]
    r = c.post("/predict", json=body)
    assert r.status_code == 200, r.text
    blind = {x["account_id"]: x["churn_probability"] for x in r.json()["results"]}
    assert any(abs(blind[a] - base.batch[a]["churn_probability"]) > 1e-6 for a in ids)
    # A bad value is a 400 naming the account, the week and the column.
    for bad in (-1, "many", True, None):
        one = one_account(base)
        one["accounts"][0]["weeks"][3]["events__search"] = bad
        r = c.post("/predict", json=one)
        if bad is None:  # null is unknown, as for every count
            assert r.status_code == 200, r.text
            continue
        assert r.status_code == 400, r.text
        assert "accounts[0].weeks[3].events__search: must be a number >= 0" in r.json()["error"]
