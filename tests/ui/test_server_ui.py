"""The CSM page mounted on the real service (``bentoml serve``), with ``CHURNLENS_API_KEY`` set.

The store is filled by two real ``churnlens score`` runs; the page must agree with ``/predict``
for the same account and date, and the service's key guards the page too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from churnlens.serving.client import account_items, predict_request
from churnlens.store import open_store

from .conftest import AS_OF_2, SERVER_KEY, Scored

pytestmark = pytest.mark.slow
BEARER = {"authorization": f"Bearer {SERVER_KEY}"}
HTML = {"accept": "text/html"}


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, follow_redirects=False, timeout=60) as c:
        yield c


def test_the_page_is_mounted_at_ui_and_guarded_by_the_key(http: httpx.Client):
    r = http.get("/ui/", headers=HTML)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=%2Fui%2F"
    assert "ACC-" not in r.text
    for path in ("/ui/export.csv", "/ui/accounts/ACC-00001"):
        denied = http.get(path)
        assert denied.status_code == 401, path
        assert "ACC-" not in denied.text and denied.headers["www-authenticate"] == "Bearer"
    assert http.get("/ui/login").status_code == 200
    assert http.get("/ui/static/ui.css").status_code == 200
    assert http.get("/model").status_code == 401  # the API still needs the header
    assert http.get("/readyz").status_code == 200
    ok = http.get("/ui/", headers=BEARER)
    assert ok.status_code == 200 and "data-account-id" in ok.text
    assert 'href="/ui/static/ui.css"' in ok.text
    login = http.post("/ui/login", data={"key": SERVER_KEY, "next": "/ui/?band=red"})
    assert login.status_code == 303 and login.headers["location"] == "/ui/?band=red"
    assert "path=/ui/" in login.headers["set-cookie"].lower()
    page = http.get("/ui/?band=red", headers=HTML)
    assert page.status_code == 200
    assert set(re.findall(r'data-band="(\w+)"', page.text)) == {"red"}
    # The cookie opens the page only, not the API.
    assert http.post("/predict", json={"as_of": "2025-06-15", "accounts": []}).status_code == 401


def test_account_page_shows_what_predict_returns(http: httpx.Client, scored: Scored):
    with open_store(scored.db_url) as store:
        top = max(store.latest_scores(), key=lambda s: s["arr_at_risk"] or 0)
        (details,) = store.details([(top["run_id"], top["account_id"])]).values()
    aid = top["account_id"]
    assert details["activity"] and "ja" in details["translations"]  # stored by churnlens score
    item = account_items(scored.timeline, scored.accounts, [aid])[aid]
    body = predict_request(AS_OF_2, [item])
    res = http.post("/predict", json=body, headers=BEARER)
    assert res.status_code == 200, res.text
    (result,) = res.json()["results"]
    page = http.get(f"/ui/accounts/{aid}", headers=BEARER).text
    families = re.findall(r'class="reason" data-family="(\w+)"', page)
    assert families == [r["family"] for r in result["reasons"]]
    for r in result["reasons"]:
        for sentence in r["evidence"]:
            assert sentence.replace("'", "&#39;") in page or sentence in page
    res_ja = http.post("/predict?lang=ja", json=body, headers=BEARER)
    page_ja = http.get(f"/ui/accounts/{aid}?lang=ja", headers=BEARER).text
    for r in res_ja.json()["results"][0]["reasons"]:
        assert r["label"] in page_ja
