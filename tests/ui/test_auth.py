"""Sign-in for the CSM page: session tokens and redirects (pure and on the UI app alone)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from churnlens.serving.ui import auth, build_ui_app

from .conftest import Book

KEY = "k3y-for-tests"


def test_session_tokens_are_signed_with_the_key_and_expire():
    token = auth.new_session(KEY, now=1_000)
    assert KEY not in token
    assert auth.valid_session(KEY, token, now=1_000 + auth.SESSION_SECONDS - 1)
    assert not auth.valid_session(KEY, token, now=1_000 + auth.SESSION_SECONDS + 1)
    assert not auth.valid_session("other-key", token, now=1_000)
    expires, sig = token.split(".")
    assert not auth.valid_session(KEY, f"{int(expires) + 999}.{sig}", now=1_000)  # moved expiry
    for junk in (None, "", "abc", "1.2.3", "x.y", "9" * 40 + ".00"):
        assert not auth.valid_session(KEY, junk, now=1_000)


def test_next_stays_inside_the_ui():
    assert auth.safe_next("/ui/accounts/a?lang=ja", "/ui") == "/ui/accounts/a?lang=ja"
    for bad in (None, "", "https://evil.example/", "//evil.example/ui/", "/other", "/ui\\..\\x"):
        assert auth.safe_next(bad, "/ui") == "/ui/"


@pytest.fixture(scope="module")
def client(book: Book) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(auth.API_KEY_ENV, KEY)
        with TestClient(build_ui_app(book.store), follow_redirects=False) as c:
            yield c


def test_without_the_key_no_account_data_is_served(client: TestClient):
    client.cookies.clear()
    page = client.get("/?band=red", headers={"accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Fband%3Dred"
    for path, headers in (
        ("/export.csv", {"accept": "text/html"}),  # a data route: never a page
        ("/accounts/acc-001", {"accept": "application/json"}),
        ("/", {}),
    ):
        r = client.get(path, headers=headers)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        assert "acc-" not in r.text and "Account" not in r.text
    assert client.get("/login").status_code == 200
    assert client.get("/static/ui.css").status_code == 200


def test_bearer_header_is_enough(client: TestClient):
    client.cookies.clear()
    r = client.get("/export.csv", headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 200 and "acc-" in r.text
    assert client.get("/", headers={"authorization": "Bearer nope"}).status_code == 401


def test_login_form_sets_a_strict_httponly_cookie(client: TestClient, caplog):
    client.cookies.clear()
    with caplog.at_level(logging.DEBUG):
        bad = client.post("/login", data={"key": "guess-1234", "next": "/"})
        assert bad.status_code == 401 and "That key is not right" in bad.text
        ok = client.post("/login", data={"key": KEY, "next": "https://evil.example/"})
    assert KEY not in caplog.text and "guess-1234" not in caplog.text
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith(f"{auth.SESSION_COOKIE}=")
    for attr in ("HttpOnly", "SameSite=strict", "Path=/", f"Max-Age={auth.SESSION_SECONDS}"):
        assert attr.lower() in cookie.lower(), attr
    assert KEY not in cookie
    page = client.get("/", headers={"accept": "text/html"})
    assert page.status_code == 200 and "data-account-id" in page.text
    assert client.get("/export.csv").status_code == 200
    out = client.post("/logout")
    assert out.status_code == 303
    client.cookies.clear()
    assert client.get("/export.csv").status_code == 401


def test_a_forged_cookie_is_refused(client: TestClient):
    client.cookies.clear()
    forged = auth.new_session("not-the-key")
    client.cookies.set(auth.SESSION_COOKIE, forged)
    assert client.get("/export.csv").status_code == 401
    client.cookies.clear()
