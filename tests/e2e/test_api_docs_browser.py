"""`/docs` and `/redoc` in Debian's headless Chromium, driven by Playwright
against a real `runplane serve`, with every request to another origin refused:
the pages work on a machine without internet access. In Swagger UI, Authorize
with the admin key then "Try it out" lists the runtimes; with a wrong key the
same call shows runplane's 401 error body. ReDoc renders the whole API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.e2e.test_dashboard import SLEEP, WAIT_MS, browser
from tests.support.serve import RunplaneServer

__all__ = ["browser"]  # the module's Chromium, shared with the dashboard's tests

LIST = "#operations-runtimes-list_runtimes"
"""Swagger UI's block for GET /v1/runtimes: `operations-<tag>-<operation id>`."""


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def offline_page(browser: Browser, serve: RunplaneServer) -> Iterator[Page]:
    """A page that may reach only the serve's own origin: anything else is
    aborted and recorded, and the test fails if there was any."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    own = origin(serve.url)
    elsewhere: list[str] = []

    def only_own_origin(route: Route) -> None:
        url = route.request.url
        if origin(url) == own:
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    context.route("**/*", only_own_origin)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
    assert elsewhere == [], f"the page asked for other origins: {elsewhere}"


def authorize(page: Page, key: str) -> None:
    page.click("button.authorize")
    dialog = page.locator(".modal-ux")
    expect(dialog).to_be_visible()
    dialog.locator("input").first.fill(key)
    dialog.get_by_role("button", name="Apply credentials").click()
    # Authorized: the dialog now offers to remove the key in place of applying one.
    expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def log_out(page: Page) -> None:
    page.click("button.authorize")
    dialog = page.locator(".modal-ux")
    dialog.get_by_role("button", name="Remove authorization").click()
    expect(dialog.get_by_role("button", name="Apply credentials")).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def execute_list_runtimes(page: Page) -> tuple[str, dict[str, object]]:
    """Open list_runtimes, Try it out, Execute: the status and body shown."""
    block = page.locator(LIST)
    if block.locator(".opblock-body").count() == 0:
        block.locator(".opblock-summary").first.click()
    try_out = block.locator("button.try-out__btn")
    expect(try_out).to_be_visible()
    if try_out.inner_text().strip() == "Try it out":  # tryItOutEnabled may have done it
        try_out.click()
    # A response shown from an earlier Execute stays until cleared: clear it, so
    # the one read below is this call's.
    clear = block.locator("button.btn-clear")
    if clear.count() > 0:
        clear.first.click()
    expect(block.locator(".live-responses-table")).to_have_count(0)
    block.locator("button.execute").click()
    response = block.locator(".live-responses-table .response").first
    expect(response.locator(".response-col_status")).not_to_be_empty()
    status = response.locator(".response-col_status").inner_text().strip()
    body = response.locator(".response-col_description pre.microlight").first.inner_text()
    return status, json.loads(body)


def test_authorize_then_try_it_out_offline(serve: RunplaneServer, offline_page: Page) -> None:
    page = offline_page
    with serve.client() as http:
        assert http.post("/v1/runtimes", json={"runtime_id": "tried", "spec": SLEEP}).is_success
    with serve.client("rp_not_a_key") as http:
        refused = http.get("/v1/runtimes")
    assert refused.status_code == 401

    page.goto(f"{serve.url}/docs")
    expect(page.locator(LIST)).to_be_visible()

    authorize(page, serve.admin_key)
    status, body = execute_list_runtimes(page)
    assert status == "200", body
    assert [r["runtime_id"] for r in body["runtimes"]] == ["tried"]  # type: ignore[union-attr]
    # The request Swagger UI shows is the one it sent: with the bearer key.
    curl = page.locator(f"{LIST} .curl-command").inner_text()
    assert f"Authorization: Bearer {serve.admin_key}" in curl

    log_out(page)
    authorize(page, "rp_not_a_key")
    status, body = execute_list_runtimes(page)
    assert status == "401", body
    assert body == refused.json()
    assert set(body["error"]) >= {"code", "message"}  # type: ignore[arg-type]
    # The key was kept in the page only: nothing in the browser's storage.
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("sessionStorage.length") == 0


def test_redoc_renders_offline(serve: RunplaneServer, offline_page: Page) -> None:
    page = offline_page
    with serve.client() as http:
        document = http.get("/openapi.json").json()
    stop = document["paths"]["/v1/runtimes/{runtime_id}/stop"]["post"]
    assert stop["operationId"] == "stop_runtime"

    page.goto(f"{serve.url}/redoc")
    expect(page.locator(".api-info h1")).to_contain_text(document["info"]["title"])
    # ReDoc renders each operation under a heading: its anchor, then its summary.
    anchor = page.locator(f'a[href$="/operation/{stop["operationId"]}"]')
    expect(page.locator("h2", has=anchor)).to_have_text(stop["summary"])
