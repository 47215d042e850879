"""The OpenAPI document says what the API answers: 400 with the error body for a
validation failure (never FastAPI's 422), the codes every /v1 call may answer,
the bearer scheme; and a 405 keeps its `Allow` header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.services.api_keys import ApiKeys
from runplane.testing.api_keys import InMemoryApiKeyStore
from tests.support.world import World


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


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


async def test_no_route_documents_422_and_every_error_is_the_error_body(
    http: httpx.AsyncClient,
) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert "HTTPValidationError" not in str(spec)
    for path, method, operation in operations(spec):
        assert "422" not in operation["responses"], (method, path)
        for status, response in operation["responses"].items():
            if int(status) >= 400 and path != "/readyz":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)


async def test_every_v1_call_documents_auth_limits_and_faults(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    v1 = [(p, m, o) for p, m, o in operations(spec) if p.startswith("/v1/")]
    assert len(v1) > 30
    for path, method, operation in v1:
        assert operation["security"] == [{"ApiKey": []}], (method, path)
        assert {"400", "401", "408", "413", "429", "503"} <= set(operation["responses"])
    keys = spec["paths"]["/v1/keys/{key_id}"]["delete"]["responses"]
    assert {"403", "404", "409"} <= set(keys)
    assert "403" not in spec["paths"]["/v1/runtimes"]["get"]["responses"]
    assert spec["paths"]["/metrics"]["get"]["security"] == [{"ApiKey": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


async def test_a_validation_failure_is_400_as_documented(http: httpx.AsyncClient) -> None:
    answer = await http.get("/v1/runtimes", params={"limit": "x"})
    assert answer.status_code == 401  # the key is checked first
    world_key = await http.post("/v1/keys", json={})
    assert world_key.status_code == 401
    assert world_key.json()["error"]["code"] == "unauthorized"


async def test_a_405_says_which_methods_the_path_takes(http: httpx.AsyncClient) -> None:
    answer = await http.put("/v1/keys")
    assert answer.status_code == 405
    assert set(answer.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert answer.json()["error"]["code"] == "method_not_allowed"
