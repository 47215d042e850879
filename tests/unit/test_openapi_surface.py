"""What a reader of `/openapi.json`, `/docs` and `/redoc` meets: a readable id and
a description on every operation, the codes the API really answers (never
FastAPI's 422) each with the error body, enums taken from domain/, and pages
whose assets are served here (no CDN)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.domain.errors import ErrorCode
from runplane.domain.health.events import HealthEventType
from runplane.domain.health.reactions import HealthSummary
from runplane.domain.lifecycle_events import DURABLE_TYPES
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.statuses import Status
from runplane.domain.webhooks.model import DeliveryStatus, Trigger
from runplane.services.api_keys import ApiKeys
from runplane.testing.api_keys import InMemoryApiKeyStore
from tests.support.world import World

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
METHOD_SUFFIX = re.compile(r"_(get|post|put|patch|delete)$")


@pytest.fixture
async def http(world: World) -> AsyncIterator[httpx.AsyncClient]:
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=ApiKeys(InMemoryApiKeyStore(), world.clock),
        readiness={},
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield client


@pytest.fixture
async def spec(http: httpx.AsyncClient) -> dict[str, Any]:
    answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


def test_every_operation_has_a_readable_unique_snake_case_id(spec: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) > 40
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)
    for path, method, operation in operations(spec):
        op_id = operation["operationId"]
        assert SNAKE_CASE.match(op_id), (method, path, op_id)
        assert not METHOD_SUFFIX.search(op_id), (method, path, op_id)
        assert "v1" not in op_id.split("_"), (method, path, op_id)
    by_route = {(p, m): o["operationId"] for p, m, o in operations(spec)}
    assert by_route[("/v1/runtimes/{runtime_id}/stop", "post")] == "stop_runtime"
    assert by_route[("/v1/runtimes", "get")] == "list_runtimes"
    assert by_route[("/v1/runtimes/{runtime_id}/logs", "get")] == "get_runtime_logs"
    assert by_route[("/v1/runtimes/{runtime_id}", "patch")] == "update_runtime"
    assert by_route[("/v1/runtimes/{runtime_id}/patch", "post")] == "patch_runtime"


def test_every_operation_has_a_description(spec: dict[str, Any]) -> None:
    for path, method, operation in operations(spec):
        assert len(operation.get("description", "").strip()) > 10, (method, path)


def test_no_422_and_every_4xx_answers_the_error_body(spec: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        fours = [code for code in responses if code.startswith("4")]
        if path.startswith("/v1/"):
            assert {"400", "401", "429"} <= set(fours), (method, path)
        for code in fours:
            assert responses[code]["content"]["application/json"]["schema"] == error, (
                method,
                path,
                code,
            )
    assert "HTTPValidationError" not in str(spec)


def test_the_codes_each_route_really_answers(spec: dict[str, Any]) -> None:
    def codes(path: str, method: str) -> set[str]:
        return set(spec["paths"][path][method]["responses"])

    assert {"403", "404", "409"} <= codes("/v1/runtimes/{runtime_id}/stop", "post")
    assert {"404", "409"} <= codes("/v1/dead-letters/{dead_letter_id}/replay", "post")
    assert "403" in codes("/v1/keys", "get")  # admin only
    assert "404" not in codes("/v1/runtimes", "get")
    assert {"200", "201"} <= codes("/v1/runtimes", "post")  # 200: a replayed create
    assert codes("/healthz", "get") == {"200"}
    # A read refuses no policy and changes nothing: no 403 unless admin-only, no 409.
    assert not {"403", "409"} & codes("/v1/runtimes/{runtime_id}", "get")
    assert not {"403", "404", "409"} & codes("/v1/snapshots", "get")
    assert "404" not in codes("/v1/events", "get")  # a list: an empty page
    assert "404" in codes("/v1/webhooks/{webhook_id}", "get")
    assert "403" in codes("/v1/hosts/{host_id}", "get")
    timeout = spec["paths"]["/v1/runtimes/{runtime_id}/timeout"]["post"]["responses"]["409"]
    assert "timeout_would_shorten" in timeout["description"]


def test_every_key_taking_operation_is_under_the_bearer_scheme(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    for path, method, operation in operations(spec):
        if path in ("/healthz", "/readyz"):
            assert "security" not in operation, path
        else:
            assert operation["security"] == [{"ApiKey": []}], (method, path)


def enum_of(spec: dict[str, Any], *pointer: str) -> list[str]:
    node: Any = spec["components"]["schemas"]
    for step in pointer:
        node = node[step]
    for branch in node.get("anyOf", [node]):
        if "enum" in branch:
            return list(branch["enum"])
        if "items" in branch:
            return list(branch["items"]["enum"])
    raise AssertionError(f"no enum at {pointer}")


@pytest.mark.parametrize(
    ("pointer", "domain"),
    [
        (("Status",), Status),
        (("OpKind",), OpKind),
        (("OpSource",), OpSource),
        (("Outcome",), Outcome),
        (("ErrorCode",), ErrorCode),
        (("HealthEventType",), HealthEventType),
        (("HealthSummary",), HealthSummary),
        (("DeliveryStatus",), DeliveryStatus),
        (("Trigger",), Trigger),
        (("RuntimeOut", "properties", "engine_health"), HealthSummary),
        (("CreateWebhookBody", "properties", "event_types"), DURABLE_TYPES),
        (("EventOut", "properties", "event", "properties", "type"), DURABLE_TYPES),
    ],
)
def test_closed_sets_are_the_domain_enums(
    spec: dict[str, Any], pointer: tuple[str, ...], domain: Any
) -> None:
    assert sorted(enum_of(spec, *pointer)) == sorted(str(value) for value in domain)


def test_records_name_their_enums(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas["RuntimeOut"]["properties"]["status"] == {"$ref": "#/components/schemas/Status"}
    entry = schemas["OperationEntryOut"]["properties"]
    assert entry["op"] == {"$ref": "#/components/schemas/OpKind"}
    assert entry["outcome"] == {"$ref": "#/components/schemas/Outcome"}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def urls_in(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    # Script bodies name the document too (`url: '/openapi.json'`, `spec-url`).
    quoted = re.findall(r"""['"]((?:https?:)?//[^'"]+)['"]""", html)
    return parser.urls + quoted + re.findall(r"""spec-url=['"]([^'"]+)""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_doc_pages_load_only_same_origin_assets(http: httpx.AsyncClient, page: str) -> None:
    answer = await http.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    urls = urls_in(answer.text)
    assert urls, answer.text
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), f"{page} loads {url} from elsewhere"
    assets = [u for u in urls if u.endswith((".js", ".css"))]
    assert assets
    for url in assets:
        fetched = await http.get(url)
        assert fetched.status_code == 200, url
        kind = "text/css" if url.endswith(".css") else "javascript"
        assert kind in fetched.headers["content-type"], (url, fetched.headers["content-type"])
        assert len(fetched.content) > 10_000, url  # the bundle itself, not a stub
    assert "/openapi.json" in answer.text


async def test_swagger_ui_keeps_the_key_in_the_page_only(http: httpx.AsyncClient) -> None:
    page = (await http.get("/docs")).text
    assert '"persistAuthorization": false' in page
    assert "swagger-ui-bundle.js" in page
