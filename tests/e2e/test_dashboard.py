"""The dashboard at /ui, driven in Debian's headless Chromium by Playwright
against a real `runplane serve`: the README's first session in the browser,
live updates from other clients, resuming the event stream with Last-Event-ID,
team scoping, and escaping of everything rendered."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Browser, Page, Request, expect, sync_playwright

from tests.e2e.conftest import remove_everything
from tests.support.serve import RunplaneServer, free_port

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 30_000
"""A generous deadline for something to show (2 shared cores, Chromium among them)."""
SLEEP = {"command": ["/bin/sleep", "600"]}
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # A missing Chromium fails the module: `make system-deps` installs it.
    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/system-deps.sh"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        yield page
    finally:
        context.close()
    # The page does nothing its own Content-Security-Policy forbids.
    assert not [m for m in console if "Content Security Policy" in m], console


def log_in(page: Page, serve: RunplaneServer, key: str) -> None:
    page.goto(f"{serve.url}/")  # `/` leads to /ui/
    page.fill("#login-key", key)
    page.click("#login-submit")
    expect(page.locator("#nav")).to_be_visible()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")


def row(page: Page, runtime_id: str):
    return page.locator(f'tr[data-runtime-id="{runtime_id}"]')


def expect_row_status(page: Page, runtime_id: str, status: str) -> None:
    badge = row(page, runtime_id).locator("td.status .badge")
    expect(badge).to_have_attribute("data-status", status, timeout=WAIT_MS)


def mark_page(page: Page) -> None:
    """A value that lives only as long as this page load: a reload would lose it."""
    page.evaluate("window.__sameLoad = 'yes'")


def same_page_load(page: Page) -> bool:
    return page.evaluate("window.__sameLoad") == "yes"


def act(page: Page, action: str) -> None:
    page.click(f'button[data-action="{action}"]')
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-ok")
    expect(page.locator("#confirm")).to_be_hidden()


def runtime_status_is(page: Page, status: str) -> None:
    badge = page.locator("#runtime-status .badge")
    expect(badge).to_have_attribute("data-status", status, timeout=WAIT_MS)


def test_the_first_session_in_the_browser(serve: RunplaneServer, page: Page) -> None:
    port = free_port()
    log_in(page, serve, serve.admin_key)
    page.click("#new-runtime")
    page.fill("#new-id", "demo")
    page.fill("#new-command", f"python3 -m http.server {port}")
    page.fill("#new-port", str(port))
    page.fill("#new-labels", "env=dev")
    page.click("#create-submit")
    expect_row_status(page, "demo", "running")
    expect(page.locator('#counts [data-count="running"] .n')).to_have_text("1")

    row(page, "demo").locator("a").click()
    runtime_status_is(page, "running")
    mark_page(page)
    act(page, "stop")
    runtime_status_is(page, "stopped")
    act(page, "start")
    runtime_status_is(page, "running")
    act(page, "pause")
    runtime_status_is(page, "paused")
    act(page, "resume")
    runtime_status_is(page, "running")
    assert same_page_load(page)

    for op in ("start", "stop", "pause", "resume"):
        done = page.locator(f'#operations tr[data-op="{op}"][data-outcome="success"]')
        expect(done.first).to_be_visible()
    for event_type in ("runtime.create", "runtime.stop", "runtime.pause", "runtime.resume"):
        expect(page.locator(f'#runtime-events li[data-type="{event_type}"]').first).to_be_visible()
    expect(page.locator("#health .timeline li").first).to_be_visible()
    # Its output: http.server logs each request it answers on stderr.
    get_until_answered(f"http://127.0.0.1:{port}/")
    expect(page.locator("#logs")).to_contain_text("GET / HTTP/1.1", timeout=WAIT_MS)
    expect(page.locator("#metrics svg.chart[data-samples]")).to_have_count(2)

    act(page, "stop")
    runtime_status_is(page, "stopped")
    # A refused operation shows the server's stable code and message.
    act(page, "pause")
    expect(page.locator("#action-error .error code")).to_have_text("invalid_state")
    with serve.client() as http:
        ops = http.get("/v1/runtimes/demo/operations").json()["operations"]
    refused = next(o for o in ops if o["op"] == "pause" and o["error_code"] == "invalid_state")
    expect(page.locator("#action-error .error")).to_contain_text(refused["error_message"])

    # Back on the list (no reload): started by another client, the row turns running.
    page.click('#nav a[data-page="runtimes"]')
    expect_row_status(page, "demo", "stopped")
    serve.cli("runtime", "start", "demo", check=True)
    expect_row_status(page, "demo", "running")
    assert same_page_load(page)

    # Removed from its page, the runtime leaves the list (its record stays,
    # listed under the `removed` count).
    row(page, "demo").locator("a").click()
    act(page, "remove")
    expect(page.locator('#counts [data-count="removed"] .n')).to_have_text("1")
    expect(row(page, "demo")).to_have_count(0)
    page.click('#counts [data-count="removed"]')
    expect_row_status(page, "demo", "removed")


def get_until_answered(url: str) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_another_clients_operation_appears_live(serve: RunplaneServer, page: Page) -> None:
    log_in(page, serve, serve.admin_key)
    mark_page(page)
    with serve.client() as http:
        for runtime_id, tier in (("other", "web"), ("keep", "db")):
            body = {"runtime_id": runtime_id, "spec": SLEEP, "labels": {"tier": tier}}
            assert http.post("/v1/runtimes", json=body).is_success
    expect_row_status(page, "other", "running")
    expect_row_status(page, "keep", "running")
    serve.cli("runtime", "stop", "other", check=True)
    expect_row_status(page, "other", "stopped")
    expect(page.locator('#recent-events li[data-subject="other"]').first).to_be_visible()
    # The status counts filter the rows.
    page.click('#counts [data-count="stopped"]')
    expect(row(page, "keep")).to_have_count(0)
    expect(row(page, "other")).to_be_visible()
    page.click('#counts [data-count="running"]')
    expect(row(page, "other")).to_have_count(0)
    expect(row(page, "keep")).to_be_visible()
    page.click('#counts [data-count="all"]')
    # The search on the id, and the label selector (sent to the server).
    for field, value, shown in (
        ("#filter-search", "oth", {"other"}),
        ("#filter-search", "nomatch", set()),
        ("#filter-search", "", {"other", "keep"}),
        ("#filter-label", "tier!=web", {"keep"}),
        ("#filter-label", "tier=web", {"other"}),
    ):
        page.fill(field, value)
        for runtime_id in ("other", "keep"):
            expect(row(page, runtime_id)).to_have_count(1 if runtime_id in shown else 0)
    assert same_page_load(page)


def test_the_stream_resumes_with_last_event_id(serve: RunplaneServer, page: Page) -> None:
    streams: list[Request] = []
    page.on("request", lambda r: streams.append(r) if "/v1/events/stream" in r.url else None)
    log_in(page, serve, serve.admin_key)
    with serve.client() as http:
        assert http.post("/v1/runtimes", json={"runtime_id": "before", "spec": SLEEP}).is_success
    expect_row_status(page, "before", "running")
    mark_page(page)

    # While serve is down and until the test lets it, every reconnect fails.
    stream = "**/v1/events/stream*"
    page.route(stream, lambda route: route.abort())
    serve.stop()
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
    last_seen = page.locator("#recent-events li").first.get_attribute("data-event-id")
    assert last_seen
    serve.start()
    with serve.client() as http:
        assert http.post("/v1/runtimes", json={"runtime_id": "meanwhile", "spec": SLEEP}).is_success

    refused = len(streams)
    page.unroute(stream)
    expect(page.locator('#recent-events li[data-subject="meanwhile"]').first).to_be_visible()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect_row_status(page, "meanwhile", "running")
    # The first request the page made once let through resumed from the last event it saw.
    assert streams[refused].headers.get("last-event-id") == last_seen
    assert same_page_load(page)


def test_a_team_key_sees_only_its_team(serve: RunplaneServer, page: Page) -> None:
    alpha_key = serve.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    with serve.client() as http:
        for runtime_id, team in (("alpha:web", "alpha"), ("beta:db", "beta")):
            body = {"runtime_id": runtime_id, "team_id": team, "spec": SLEEP}
            assert http.post("/v1/runtimes", json=body).is_success
    with serve.client("rp_not_a_key") as http:
        refused = http.get("/v1/runtimes").json()["error"]

    # An admin sees beta's events; signing out forgets them with the key.
    log_in(page, serve, serve.admin_key)
    with serve.client() as http:
        body = {"runtime_id": "beta:seen", "team_id": "beta", "spec": SLEEP}
        assert http.post("/v1/runtimes", json=body).is_success
    expect(page.locator('#recent-events li[data-subject="beta:seen"]').first).to_be_visible()
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0

    # A bad key: the login form again, with the server's message.
    page.fill("#login-key", "rp_not_a_key")
    page.click("#login-submit")
    expect(page.locator("#login .error")).to_contain_text(refused["message"])
    expect(page.locator("#login .error code")).to_have_text(refused["code"])
    assert page.evaluate("sessionStorage.length") == 0
    assert page.evaluate("localStorage.length") == 0

    log_in(page, serve, alpha_key)
    assert page.evaluate("Object.keys(sessionStorage)") == ["runplane.key"]
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    expect_row_status(page, "alpha:web", "running")
    with serve.client() as http:
        for runtime_id, team in (("beta:later", "beta"), ("alpha:later", "alpha")):
            body = {"runtime_id": runtime_id, "team_id": team, "spec": SLEEP}
            assert http.post("/v1/runtimes", json=body).is_success
    expect_row_status(page, "alpha:later", "running")
    assert row(page, "beta:db").count() == 0
    assert row(page, "beta:later").count() == 0
    assert page.locator('#recent-events li[data-subject^="beta:"]').count() == 0
    assert page.locator('#recent-events li[data-subject="alpha:later"]').count() >= 1

    # Admin-only pages: the server's 403, said politely.
    for name in ("hosts", "dead-letters"):
        page.click(f'#nav a[data-page="{name}"]')
        notice = page.locator("main .notice")
        expect(notice).to_contain_text("needs an admin key")
        expect(notice.locator("code")).to_have_text("forbidden")
    page.click('#nav a[data-page="webhooks"]')
    expect(page.locator("main")).to_contain_text("No webhooks yet")


def test_rendered_data_is_text(serve: RunplaneServer, page: Page) -> None:
    evil = "<img src=x onerror=window.__xss=1>"
    command = ["/bin/sh", "-c", f"echo '{evil}'; exec /bin/sleep 600"]
    with serve.client() as http:
        body = {"runtime_id": "evil", "spec": {"command": command}}
        assert http.post("/v1/runtimes", json=body).is_success
        ui = http.get("/ui/")
        assert ui.status_code == 200
        csp = ui.headers["content-security-policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "connect-src 'self'"):
            assert directive in csp
        assert "'unsafe-inline'" not in csp
        missing = http.get("/ui/no-such-file.js")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"

    log_in(page, serve, serve.admin_key)
    page.goto(f"{serve.url}/ui/#/runtimes/evil")
    expect(page.locator("#record pre.json")).to_contain_text(evil)
    expect(page.locator("#logs")).to_contain_text(evil)
    page.click('#nav a[data-page="runtimes"]')
    page.click("#new-runtime")
    page.fill("#new-command", "/bin/sleep 600")
    page.fill("#new-labels", "<b>bold</b>")
    page.click("#create-submit")
    expect(page.locator("#create-form .error")).to_contain_text("<b>bold</b>")
    assert page.locator("#create-form .error b").count() == 0
    assert page.locator("img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_the_admin_pages_show_hosts_deliveries_and_dead_letters(
    tmp_path: Path, redis_url: str, page: Page
) -> None:
    server = RunplaneServer.launch(
        tmp_path / "data", redis_url=redis_url, webhook_allow_private="true"
    )
    try:
        closed = free_port()  # nothing listens: every delivery fails
        with server.client() as http:
            hook = {"url": f"http://127.0.0.1:{closed}/hook", "event_types": ["runtime.stop"]}
            webhook_id = http.post("/v1/webhooks", json=hook).json()["id"]
            assert http.post(
                "/v1/runtimes", json={"runtime_id": "hooked", "spec": SLEEP}
            ).is_success
            assert http.post("/v1/runtimes/hooked/stop").is_success
            delivery = wait_for_delivery(http, webhook_id)
        with redis.Redis.from_url(redis_url) as r:
            fields = '{"runtime_id": "gone", "job_id": "<i>job</i>"}'
            letter = {"stream": "runtime:stop_jobs", "entry_id": "1-0", "fields": fields}
            r.xadd("runtime:dead_letters", letter | {"error": "not_found", "deliveries": "5"})

        log_in(page, server, server.admin_key)
        page.click('#nav a[data-page="hosts"]')
        host = page.locator(f'tr[data-host-id="{server.env["RUNPLANE_HOST_ID"]}"]')
        expect(host.locator(".badge")).to_have_attribute("data-status", "up")

        page.click('#nav a[data-page="webhooks"]')
        page.click(f'button[data-deliveries="{webhook_id}"]')
        shown = page.locator(f'tr[data-delivery-id="{delivery["id"]}"]')
        expect(shown).to_contain_text("hooked")
        expect(shown).to_contain_text("runtime.stop")
        expect(page.locator(f'tr[data-webhook-id="{webhook_id}"]')).to_contain_text("failing")

        page.click('#nav a[data-page="dead-letters"]')
        expect(page.locator("#dead-letters tbody tr")).to_have_count(1)
        expect(page.locator("#dead-letters")).to_contain_text("<i>job</i>")
        assert page.locator("#dead-letters i").count() == 0
    finally:
        remove_everything(server)
        server.stop()


def wait_for_delivery(http: httpx.Client, webhook_id: str) -> dict[str, object]:
    """The webhook's first delivery, once it has been attempted and failed."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        answer = http.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["deliveries"]
        tried = [d for d in answer if d["attempt_count"] >= 1]
        if tried:
            return dict(tried[0])
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)


def test_recent_events_start_with_those_made_before_the_page(
    serve: RunplaneServer, page: Page
) -> None:
    alpha_key = serve.cli("keys", "create", "--team", "alpha", check=True).stdout.strip()
    with serve.client() as http:
        for runtime_id, team in (("alpha:early", "alpha"), ("beta:early", "beta")):
            body = {"runtime_id": runtime_id, "team_id": team, "spec": SLEEP}
            assert http.post("/v1/runtimes", json=body).is_success
        assert http.post("/v1/runtimes/alpha:early/stop").is_success
        stopped = wait_for_newest_event(http, "runtime.stop")

    # The stream starts at its newest entry: these come from the newest-first read.
    log_in(page, serve, serve.admin_key)
    expect(page.locator(f'#recent-events li[data-event-id="{stopped}"]')).to_be_visible()
    expect(page.locator('#recent-events li[data-subject="beta:early"]').first).to_be_visible()
    shown = page.locator("#recent-events li[data-event-id]")
    ids = [str(li.get_attribute("data-event-id")) for li in shown.all()]
    assert ids == sorted(ids, key=stream_order, reverse=True)

    page.click("#logout")
    log_in(page, serve, alpha_key)
    expect(page.locator(f'#recent-events li[data-event-id="{stopped}"]')).to_be_visible()
    assert page.locator('#recent-events li[data-subject^="beta:"]').count() == 0


def stream_order(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def wait_for_newest_event(http: httpx.Client, event_type: str) -> str:
    """The entry id of the newest event of this type, once it is published (the
    outbox publishes after the operation answers)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        newest = http.get("/v1/events", params={"order": "desc", "limit": 20}).json()["events"]
        found = [e["id"] for e in newest if e["event"]["type"] == event_type]
        if found:
            return str(found[0])
        assert time.monotonic() < deadline, newest
        time.sleep(0.2)
