"""API fuzzing over real HTTP: Schemathesis on the served OpenAPI spec, with and without the key.

One ``bentoml serve`` of the service (``local_server``) with ``CHURNLENS_API_KEY`` set, a tiny
model trained on a simulated base and a score store filled by ``churnlens score``, so
``/score_accounts`` and the CSM page (``/ui``) answer with data. Every operation of the spec the
server publishes at ``/docs.json`` is fuzzed by Schemathesis (schema-valid data, and for the JSON
bodies schema-invalid data too), once with ``Authorization: Bearer <key>`` and once without.

Every answer must be below 500. Every 4xx must name the problem: a JSON body
``{"error", "problems": [...], "status"}`` (a 401's problem names ``Authorization``), or for the
HTML page its error message, or a non-empty text. Schemathesis's own checks run too: 200 bodies
match the response schemas, content types are the documented ones, and schema-invalid bodies are
refused. (Status-code conformance is not checked: the 401 of the key middleware, the page's
303/404 are not in BentoML's generated spec.)

The page's query parameters, its session cookie and ``/predict?lang=`` are not in the spec: a
hypothesis strategy of hostile values fuzzes them over HTTP. Hand-made hostile requests (not JSON,
not UTF-8, unknown routes, wrong methods) complete the set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
)
from schemathesis.schemas import BaseSchema
from typer.testing import CliRunner

from churnlens.cli import app
from churnlens.config import load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.serving.launch import local_server
from churnlens.store import open_store
from churnlens.training.pipeline import train

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.xdist_group("fuzz_api")]

AS_OF = date(2025, 6, 15)
KEY = "fuzz-key-5e1b07"
BEARER = {"authorization": f"Bearer {KEY}"}
MAX_ACCOUNTS = 5
EXAMPLES = 30  # per operation and generation mode
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure reports its request
    suppress_health_check=list(HealthCheck),
)
# Every operation the served spec must list (a new route must be added here, so it is fuzzed).
OPERATIONS = (
    "GET /healthz",
    "GET /livez",
    "GET /readyz",
    "GET /metrics",
    "POST /predict",
    "POST /score_accounts",
    "GET /model",
    "GET /ui/",
    "GET /ui/export.csv",
    "GET /ui/accounts/{account_id}",
    "GET /ui/login",
    "POST /ui/login",
    "POST /ui/logout",
    "GET /ui/static/{name}",
)
# Open without the key: health, and the page's sign-in form, sign-out and static files.
OPEN = {
    "GET /healthz",
    "GET /livez",
    "GET /readyz",
    "GET /ui/login",
    "POST /ui/login",
    "POST /ui/logout",
    "GET /ui/static/{name}",
}
JSON_BODIES = {"POST /predict", "POST /score_accounts"}
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    negative_data_rejection,
]


@dataclass
class Served:
    """The running server, its spec as a Schemathesis schema, and a stored account id."""

    url: str
    log: Path
    schema: BaseSchema
    spec: dict[str, Any]
    account_id: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Train on 200 simulated accounts, score them into a SQLite store, serve with the key."""
    root = tmp_path_factory.mktemp("fuzz")
    data = root / "data"
    write_base(simulate(SimulatorConfig(n_accounts=200, seed=7)), data)
    train(data, load_config(None, data), register=False).model.save(root / "model")
    db_url = f"sqlite:///{root / 'scores.db'}"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--data",
            str(data),
            "--model",
            str(root / "model"),
            "--out",
            str(root / "scores.csv"),
            "--as-of",
            AS_OF.isoformat(),
            "--db",
            db_url,
        ],
        env={"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"},
    )
    assert result.exit_code == 0, result.output
    with open_store(db_url) as store:
        account_id = store.latest_summaries()[0]["account_id"]
    env = {
        "CHURNLENS_MODEL_URI": str(root / "model"),
        "CHURNLENS_CONFIG": str(data / "churnlens.yaml"),
        "CHURNLENS_DATABASE_URL": db_url,
        "CHURNLENS_API_KEY": KEY,
        "CHURNLENS_MAX_ACCOUNTS": str(MAX_ACCOUNTS),
        # The rate limit stays on but out of the way: this module measures answers, not throttling.
        "CHURNLENS_RATE_LIMIT": "100000/s",
        "BENTOML_HOME": str(root / "bentoml"),
    }
    log = root / "server.log"
    with local_server(env, log) as url:
        spec = httpx.get(f"{url}/docs.json", headers=BEARER, timeout=30).json()
        yield Served(url, log, schemathesis.openapi.from_dict(spec), spec, account_id)


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


# ------------------------------------------------------------------------------ the answers
def header(headers: Any, name: str) -> str:
    """One header of a Schemathesis (lists of values) or httpx response, lower-cased name."""
    value = headers.get(name, "")
    return str(value[0] if isinstance(value, list) and value else value or "")


def assert_named_problem(status: int, ctype: str, body: bytes, where: str) -> None:
    """A 4xx says what was wrong: JSON problems, the page's error message, or non-empty text."""
    text = body.decode("utf-8", "replace")
    if ctype.startswith("application/json"):
        doc = json.loads(body)
        assert isinstance(doc, dict), (where, text)
        assert doc.get("status") == status, (where, text)
        problems = doc.get("problems")
        assert isinstance(problems, list) and problems, (where, text)
        assert all(isinstance(p, str) and p.strip() for p in problems), (where, text)
        assert isinstance(doc.get("error"), str) and doc["error"].strip(), (where, text)
        if status == 401:
            assert any("Authorization" in p for p in problems), (where, text)
    elif ctype.startswith("text/html"):
        found = re.search(r'id="(?:error-message|login-error)"[^>]*>\s*([^<\s][^<]*)<', text)
        assert found, (where, status, text[:500])
    else:
        assert ctype.startswith("text/plain") and text.strip(), (where, status, ctype, text[:200])


def check_answer(status: int, ctype: str, body: bytes, where: str) -> None:
    """No 5xx, and every 4xx names its problem."""
    assert status < 500, (where, status, body[:500])
    if 400 <= status < 500:
        assert_named_problem(status, ctype, body, where)


def fuzz(strategy: st.SearchStrategy[Any], run: Callable[[Any], None]) -> None:
    """Run ``run`` on :data:`EXAMPLES` cases of ``strategy`` (fixed seed)."""

    @FUZZ
    @given(case=strategy)
    def each(case: Any) -> None:
        run(case)

    each()


# ------------------------------------------------------------------------------------ tests
def test_the_spec_lists_every_route_and_needs_the_key(served: Served) -> None:
    labels = {op.ok().label for op in served.schema.get_all_operations()}
    assert labels == set(OPERATIONS)
    denied = httpx.get(f"{served.url}/docs.json", timeout=30)
    assert denied.status_code == 401
    assert_named_problem(401, denied.headers["content-type"], denied.content, "GET /docs.json")
    csv = served.spec["paths"]["/ui/export.csv"]["get"]["responses"]["200"]["content"]
    assert list(csv) == ["text/csv"]


@pytest.mark.parametrize("keyed", [True, False], ids=["with-key", "without-key"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_fuzz_operation(served: Served, session: requests.Session, label: str, keyed: bool) -> None:
    op = served.schema.find_operation_by_label(label)
    assert op is not None, label
    statuses: list[int] = []

    def run(case: Any) -> None:
        session.cookies.clear()  # no page session carried from one request to the next
        response = case.call(
            base_url=served.url,
            session=session,
            headers=BEARER if keyed else {},
            timeout=60,
            allow_redirects=False,
        )
        statuses.append(response.status_code)
        check_answer(
            response.status_code,
            header(response.headers, "content-type"),
            response.content,
            f"{label} {'with' if keyed else 'without'} key",
        )
        if not keyed and label not in OPEN:
            assert response.status_code == 401, (label, response.status_code)
        case.validate_response(response, checks=CHECKS)

    strategy = op.as_strategy(generation_mode=GenerationMode.POSITIVE)
    if label == "GET /ui/accounts/{account_id}":  # a stored account too, not only unknown ids
        fixed = op.as_strategy(path_parameters={"account_id": served.account_id})
        strategy = strategy | fixed
    fuzz(strategy, run)
    if label in JSON_BODIES:
        fuzz(op.as_strategy(generation_mode=GenerationMode.NEGATIVE), run)
    assert statuses
    if keyed and label in ("POST /predict", "POST /score_accounts"):
        assert 200 in statuses and 400 in statuses, statuses  # both paths were exercised


# ------------------------------------------------------------- what the spec does not describe
# Values that break naive parsing: digits that are not ASCII ("²".isdigit() but int("²") fails),
# huge numbers, markup, formulas, NUL, a lone surrogate (not UTF-8), path tricks.
DIGITS = st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=3)
HOSTILE = (
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e9",
            "9" * 300,
            "ja",
            "red",
            "tech",
            "<script>alert(1)</script>",
            '=HYPERLINK("http://x")',
            "\x00",
            "\ud800",
            "%",
            "../../etc/passwd",
        ]
    )
    | DIGITS
    | st.text(max_size=20)
)
UI_PARAMS = st.fixed_dictionaries(
    {}, optional={k: HOSTILE for k in ("csm", "tier", "band", "segment", "lang", "page", "x")}
)
# A session cookie: "<expiry>.<signature>" shapes with any latin-1 digits, or anything at all.
LATIN1_DIGITS = st.text(st.characters(categories=("Nd", "No"), max_codepoint=255), max_size=12)
SHAPED = st.builds(lambda e, s: f"{e}.{s}", LATIN1_DIGITS, st.text("0123456789abcdef", max_size=64))
COOKIES = st.one_of(SHAPED, SHAPED, SHAPED, HOSTILE)
CHEAP = settings(FUZZ, max_examples=60)


def query(params: dict[str, str]) -> str:
    """``params`` as a query string (a lone surrogate is sent as its invalid UTF-8 bytes)."""
    return "&".join(
        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for k, v in params.items()
    )


@CHEAP
@given(path=st.sampled_from(["/ui/", "/ui/export.csv", "/ui/accounts/{id}"]), params=UI_PARAMS)
@example(path="/ui/", params={"page": "²"})  # were 500s: "²".isdigit() but int("²") raises
@example(path="/ui/export.csv", params={"page": "1²", "lang": "ja"})
def test_fuzz_page_query_strings(served: Served, path: str, params: dict[str, str]) -> None:
    url = f"{served.url}{path.replace('{id}', served.account_id)}?{query(params)}"
    r = httpx.get(url, headers=BEARER, timeout=60)
    check_answer(r.status_code, r.headers.get("content-type", ""), r.content, url)
    if r.status_code == 400:  # the page names the parameter it refused
        assert any(f"{k}:" in r.text for k in params), (url, r.text[:300])


@CHEAP
@given(value=COOKIES, lang=st.none() | HOSTILE)
@example(value="².00", lang=None)  # was a 500 in the page's sign-in check (int("²"))
def test_fuzz_session_cookie(served: Served, value: str, lang: str | None) -> None:
    """Any session cookie (not signed with the key) is refused: 303 to sign in, or 401."""
    # Any byte a header can carry (latin-1), but no control characters and no cookie separator.
    raw = bytes(b for b in value.encode("latin-1", "replace") if b >= 0x20 and b not in b";\x7f")
    headers = [(b"cookie", (b"churnlens_session=" + raw).strip()), (b"accept", b"text/html")]
    url = f"{served.url}/ui/" + (f"?{query({'lang': lang})}" if lang is not None else "")
    with httpx.Client(timeout=60) as c:
        r = c.get(url, headers=headers)
    check_answer(r.status_code, r.headers.get("content-type", ""), r.content, f"cookie {value!r}")
    assert r.status_code == 303 and "/ui/login" in r.headers["location"]


@FUZZ
@given(lang=HOSTILE)
def test_fuzz_predict_lang(served: Served, lang: str) -> None:
    body = {
        "as_of": "2025-01-05",
        "accounts": [{"account_id": "a", "profile": {"created_at": "2024-06-01"}, "weeks": []}],
    }
    r = httpx.post(
        f"{served.url}/predict?{query({'lang': lang})}", json=body, headers=BEARER, timeout=60
    )
    check_answer(r.status_code, r.headers.get("content-type", ""), r.content, f"lang {lang!r}")
    assert r.status_code == (200 if (lang or "en") in ("en", "ja") else 400), r.text


RAW_CASES: list[tuple[str, str, dict[str, str], bytes, int, str]] = [
    # method, path, headers, body, status, text a problem must contain
    ("POST", "/predict", {"content-type": "application/json"}, b"", 400, "as_of: required"),
    ("POST", "/predict", {"content-type": "application/json"}, b"{", 400, "body: Invalid JSON"),
    ("POST", "/predict", {"content-type": "application/json"}, b"\xff\xfe{", 400, "body: "),
    ("POST", "/predict", {"content-type": "application/json"}, b"null", 400, "body: "),
    ("POST", "/predict", {"content-type": "text/plain"}, b"hello", 400, "body: "),
    ("POST", "/score_accounts", {"content-type": "application/json"}, b"[]", 400, "body: "),
    (
        "POST",
        "/predict",
        {"content-type": "application/json"},
        b'{"as_of": "2025-01-05", "accounts": [{"account_id": "a", "profile": '
        b'{"created_at": "2024-01-01", "arr": 1e400}}]}',
        400,
        "accounts[0].profile.arr: must be a finite number (send null for unknown), got NaN or "
        "Infinity",
    ),
    (
        "POST",
        "/predict",
        {"content-type": "application/json"},
        b'{"as_of": "2025-01-05", "accounts": [{"account_id": "a", "profile": '
        b'{"created_at": "2024-01-01", "billing_period": "fortnightly"}}]}',
        200,
        "",
    ),
    (
        "POST",
        "/predict",
        {"content-type": "application/json"},
        json.dumps(
            {
                "as_of": "2025-01-05",
                "accounts": [
                    {"account_id": f"a{i}", "profile": {"created_at": "2024-01-01"}}
                    for i in range(MAX_ACCOUNTS + 1)
                ],
            }
        ).encode(),
        413,
        f"accounts: {MAX_ACCOUNTS + 1} accounts in one request; the limit is {MAX_ACCOUNTS}",
    ),
    (
        "POST",
        "/score_accounts",
        {"content-type": "application/json"},
        json.dumps({"account_ids": [f"a{i}" for i in range(MAX_ACCOUNTS + 1)]}).encode(),
        413,
        f"account_ids: {MAX_ACCOUNTS + 1} ids in one request; the limit is {MAX_ACCOUNTS}",
    ),
    ("GET", "/predict", {}, b"", 405, "GET /predict: Method Not Allowed"),
    ("PUT", "/model", {}, b"", 405, "PUT /model: Method Not Allowed"),
    ("DELETE", "/score_accounts", {}, b"", 405, "DELETE /score_accounts: Method Not Allowed"),
    ("GET", "/no/such/route", {}, b"", 404, "GET /no/such/route: Not Found"),
    ("GET", "/ui/no/such/page", {}, b"", 404, "Not Found"),  # the page's own answers: text
    ("PUT", "/ui/", {}, b"", 405, "PUT /ui/: Method Not Allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status", "problem"),
    RAW_CASES,
    ids=[f"{c[0]} {c[1]} {c[3][-24:]!r}" for c in RAW_CASES],
)
def test_hostile_raw_requests(
    served: Served,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    problem: str,
) -> None:
    r = httpx.request(
        method, f"{served.url}{path}", headers={**headers, **BEARER}, content=body, timeout=60
    )
    check_answer(r.status_code, r.headers.get("content-type", ""), r.content, f"{method} {path}")
    assert r.status_code == status, r.text
    if status < 400:
        return
    if r.headers["content-type"].startswith("application/json"):
        assert any(p.startswith(problem) for p in r.json()["problems"]), r.text
    else:  # the API answers JSON even where BentoML sends text; the page may answer text
        assert path.startswith("/ui/") and r.text.strip() == problem, (r.headers, r.text)


def test_the_server_log_has_no_traceback(served: Served) -> None:
    """Runs last in the module: every fuzzed request was answered without an unhandled error."""
    log = served.log.read_text(errors="replace")
    assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:3000]
