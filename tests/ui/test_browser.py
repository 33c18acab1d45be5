"""The CSM page in a real browser: Debian's headless Chromium driven by Playwright.

A real ``bentoml serve`` (``local_server``) on a store filled by two ``churnlens score`` runs, with
``CHURNLENS_API_KEY`` set: sign in through the form, check the ranking against the store, filter,
open the riskiest account and compare its reasons with ``POST /predict``, switch to Japanese, and
fail on any console error. Screenshots of both pages go to the test's tmp dir and to
``out/screenshots/`` in the repository (git-ignored).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from churnlens.serving.client import account_items, predict_request
from churnlens.serving.ui.views import PAGE_SIZE, rank_key
from churnlens.store import open_store

from .conftest import AS_OF_2, SERVER_KEY, Scored

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def shoot(page: Any, name: str, tmp_path: Path) -> None:
    """A full-page screenshot in the test's tmp dir, copied to out/screenshots/."""
    here = tmp_path / "screenshots"
    here.mkdir(exist_ok=True)
    page.screenshot(path=str(here / name), full_page=True)
    out = REPO / "out" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(here / name, out / name)
    assert (here / name).stat().st_size > 10_000


def test_csm_page_in_chromium(server: str, browser: Any, scored: Scored, tmp_path: Path):
    with open_store(scored.db_url) as store:
        latest = sorted(store.latest_scores(), key=rank_key)
    ranked = [s["account_id"] for s in latest]
    red = [s["account_id"] for s in latest if s["risk_band"] == "red"]
    assert 0 < len(red) < len(latest)

    context = browser.new_context(viewport={"width": 1500, "height": 1000}, locale="en-US")
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}")
        if m.type in ("error", "warning")
        else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

    # Signed out: the page sends the browser to the login form; the key signs it in.
    page.goto(f"{server}/ui/")
    assert "/ui/login" in page.url
    page.fill("#key", SERVER_KEY)
    page.click("#sign-in")
    page.wait_for_url(f"{server}/ui/")

    # The ranking is the store's (ARR at risk, highest first), one page of it.
    ids = page.locator("tr.account-row").evaluate_all("rows => rows.map(r => r.dataset.accountId)")
    assert ids == ranked[:PAGE_SIZE]
    assert page.locator("#total-accounts").inner_text() == f"{len(latest):,}"
    shoot(page, "portfolio.png", tmp_path)

    # A filter menu applies at once (vanilla JS submits the form) and narrows the list.
    page.select_option("#filter-band", "red")
    page.wait_for_url("**band=red**")
    bands = page.locator("tr.account-row").evaluate_all("rows => rows.map(r => r.dataset.band)")
    assert set(bands) == {"red"} and len(bands) == min(len(red), PAGE_SIZE)
    assert page.locator("#total-accounts").inner_text() == f"{len(red):,}"
    export = page.locator("#export").get_attribute("href")
    assert export is not None and "band=red" in export

    # The riskiest account: its reasons are the ones /predict gives for the same date.
    top = ranked[0]
    page.goto(f"{server}/ui/accounts/{top}")
    item = account_items(scored.timeline, scored.accounts, [top])[top]
    auth = {"authorization": f"Bearer {SERVER_KEY}"}
    body = predict_request(AS_OF_2, [item])
    predicted = httpx.post(f"{server}/predict", json=body, headers=auth, timeout=60).json()
    (result,) = predicted["results"]
    families = page.locator(".reason").evaluate_all("els => els.map(e => e.dataset.family)")
    assert families == [r["family"] for r in result["reasons"]]
    evidence = page.locator(".evidence li").all_inner_texts()
    assert evidence == [s for r in result["reasons"] for s in r["evidence"]]
    assert page.locator("#activity svg.bars").count() >= 3
    shoot(page, "account.png", tmp_path)

    # Japanese: the chrome and the reasons change language.
    english = page.locator("#reasons h2").inner_text()
    page.click("#lang-toggle")
    page.wait_for_url("**lang=ja**")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert page.locator("#reasons h2").inner_text() == "理由" != english
    predicted_ja = httpx.post(
        f"{server}/predict?lang=ja", json=body, headers=auth, timeout=60
    ).json()
    labels = page.locator(".reason h3").all_inner_texts()
    for got, want in zip(labels, predicted_ja["results"][0]["reasons"], strict=True):
        assert got.startswith(want["label"])
    shoot(page, "account-ja.png", tmp_path)
    page.goto(f"{server}/ui/?lang=ja")
    assert "リスクARR" in page.content()
    shoot(page, "portfolio-ja.png", tmp_path)

    context.close()
    assert problems == []
