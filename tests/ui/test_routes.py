"""The CSM page's routes in-process (the UI app on a synthetic book, no model needed)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from churnlens.serving.ui import build_ui_app
from churnlens.serving.ui.views import PAGE_SIZE, rank_key

from .conftest import AS_OF_2, FORMULA, HOSTILE, N_BOOK, Book

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def client(book: Book) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CHURNLENS_API_KEY", raising=False)
        with TestClient(build_ui_app(book.store)) as c:
            yield c


def row_ids(html: str) -> list[str]:
    return re.findall(r'data-account-id="([^"]+)"', html)


def store_order(book: Book, **match: str) -> list[str]:
    rows = [
        s
        for s in book.store.latest_scores()
        if all(s[k] == v for k, v in match.items())  # type: ignore[literal-required]
    ]
    return [s["account_id"] for s in sorted(rows, key=rank_key)]


def test_portfolio_is_ranked_like_the_store_with_totals_over_all(client: TestClient, book: Book):
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert row_ids(r.text) == store_order(book)[:PAGE_SIZE]
    assert f"1–{PAGE_SIZE} of {N_BOOK} accounts" in r.text
    assert f'id="total-accounts">{N_BOOK}<' in r.text
    risk = sum(s["arr_at_risk"] or 0 for s in book.store.latest_scores())
    assert f'id="total-arr-at-risk">{risk:,.0f}<' in r.text
    assert f"Scored as of {AS_OF_2.isoformat()}" in r.text


def test_pages_continue_the_ranking(client: TestClient, book: Book):
    r = client.get("/?page=3")
    assert row_ids(r.text) == store_order(book)[2 * PAGE_SIZE :]
    assert 'id="prev"' in r.text and 'id="next"' not in r.text


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("band=red", {"risk_band": "red"}),
        ("tier=low", {"touch_tier": "low"}),
        ("csm=csm-2&segment=growth", {"csm_id": "csm-2", "plan": "growth"}),
    ],
)
def test_filters_narrow_the_list_and_the_totals(client: TestClient, book: Book, query, match):
    r = client.get(f"/?{query}")
    want = store_order(book, **match)
    assert 0 < len(want) < N_BOOK
    assert row_ids(r.text) == want[:PAGE_SIZE]
    assert f'id="total-accounts">{len(want)}<' in r.text


def test_bad_filter_is_a_400_page_naming_it(client: TestClient):
    r = client.get("/?band=purple")
    assert r.status_code == 400
    assert "band: expected one of red, yellow, green" in r.text


def test_account_names_are_escaped_everywhere(client: TestClient):
    for path in ("/?csm=csm-3", "/accounts/acc-003", "/accounts/acc-003?lang=ja"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert HOSTILE not in r.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text, path
    assert "<script>" not in client.get("/accounts/%3Cscript%3E").text


def test_change_labels_and_sparklines_are_in_the_rows(client: TestClient):
    html = client.get("/").text
    assert re.search(r"risk (up|down) \d+ pts|new in red|no change", html)
    assert html.count('<svg class="spark"') == PAGE_SIZE


def test_japanese_toggle_translates_chrome_reasons_and_plays(client: TestClient):
    en, ja = client.get("/").text, client.get("/?lang=ja").text
    assert "ARR at risk" in en and "リスクARR" in ja
    assert "Usage decline" in en and "利用の減少" in ja and "Usage decline" not in ja
    assert '<html lang="ja">' in ja
    assert 'href="?lang=ja"' in en and 'id="lang-toggle"' in ja
    account = client.get("/accounts/acc-001?lang=ja").text
    assert "利用回復の電話" in account and "理由" in account


def test_account_page_has_reasons_plays_history_activity_and_silence(
    client: TestClient, book: Book
):
    (s,) = book.store.latest_scores(["acc-000"])
    r = client.get("/accounts/acc-000")
    assert r.status_code == 200
    html = r.text
    assert s["top_reasons"][0]["evidence"][0] in html
    assert "CSM call to re-engage" in html and "due 2025-06-18" in html
    assert 'id="silent"' in html and "Silent customer" in html
    assert html.count('<svg class="bars"') == 5  # surveys_answered has no source: said so
    assert "no data source" in html
    assert "2025-06-08 – 2025-06-15" in html  # the risk history spans both dates
    other = client.get("/accounts/acc-050").text  # no details stored: no charts, no silence
    assert 'id="no-activity"' in other and 'id="silent"' not in other


def test_unknown_account_is_404(client: TestClient):
    r = client.get("/accounts/nobody")
    assert r.status_code == 404 and "No stored score for this account" in r.text


def test_csv_export_is_the_filtered_view_with_neutralised_cells(client: TestClient, book: Book):
    r = client.get("/export.csv?tier=low&lang=ja")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["content-disposition"]
    text = r.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [x["account_id"] for x in rows] == store_order(book, touch_tier="low")
    assert all(x["touch_tier"] == "low" for x in rows)
    assert rows[0]["reasons"].startswith("利用の減少")
    full = list(csv.DictReader(io.StringIO(client.get("/export.csv").content.decode("utf-8-sig"))))
    assert len(full) == N_BOOK
    (evil,) = [x for x in full if x["account_id"] == "acc-004"]
    assert evil["name"] == "'" + FORMULA


def test_static_files_are_served_locally(client: TestClient):
    css = client.get("/static/ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/ui.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_empty_store_says_how_to_fill_it(tmp_path):
    from churnlens.store import open_store

    with (
        open_store(f"sqlite:///{tmp_path / 'empty.db'}") as store,
        TestClient(build_ui_app(store)) as c,
    ):
        r = c.get("/")
    assert r.status_code == 200 and "churnlens score" in r.text


def test_store_that_cannot_be_read_is_a_503(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURNLENS_DATABASE_URL", f"sqlite:///{tmp_path / 'no' / 'dir.db'}")
    with TestClient(build_ui_app()) as c:
        r = c.get("/")
    assert r.status_code == 503 and "cannot be read" in r.text


def test_the_book_is_cached_until_a_new_run_is_stored(tmp_path):
    from churnlens.store import open_store

    from .conftest import AS_OF_1, book_rows

    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.append_scores(book_rows(AS_OF_1, 1, n=5), as_of=AS_OF_1, model_version="m")
        app = build_ui_app(store)
        with TestClient(app) as c:
            assert len(row_ids(c.get("/").text)) == 5
            first = app.state.ui.book()
            assert app.state.ui.book() is first
            store.append_scores(book_rows(AS_OF_2, 2, n=7), as_of=AS_OF_2, model_version="m")
            assert len(row_ids(c.get("/").text)) == 7
