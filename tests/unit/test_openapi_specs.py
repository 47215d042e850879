"""The spec typed per driver in the OpenAPI document: a union on `driver` for a
create, each driver's fields as the driver's validator knows them, every
published example valid against the published schema, and bad specs still
refused by the validator with the same 400 as before (the document checks
nothing at run time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs
import pytest

from runplane.adapters.drivers import docker_spec, process_spec
from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.api.schemas.specs import SPECS, DockerSpec, ProcessSpec
from runplane.domain.errors import InvalidSpec
from runplane.services.api_keys import ApiKeys
from runplane.testing.api_keys import InMemoryApiKeyStore
from runplane.testing.driver import InMemoryDriver
from tests.support.world import World

VALIDATORS = {
    "process": process_spec.validate_process_spec,
    "docker": docker_spec.validate_docker_spec,
}
GOOD_SPECS: dict[str, list[dict[str, Any]]] = {
    "process": [
        {"command": ["sleep", "30"]},
        {
            "command": ["python3", "-m", "http.server"],
            "env": {"A": "1"},
            "cwd": "work",
            "stop_signal": "INT",
            "stop_timeout_s": 2.5,
            "port": 8000,
            "health": {"type": "http", "path": "/", "period_s": 1},
            "restart_policy": {"mode": "on-failure", "max_retries": 3},
            "placement": {"host_labels": {"zone": "a"}},
        },
        {"command": ["true"], "stop_signal": 15, "env": None, "cwd": None},
    ],
    "docker": [
        {"image": "alpine:3"},
        {
            "image": "nginx:alpine",
            "command": ["nginx", "-g", "daemon off;"],
            "env": {"A": "1"},
            "labels": {"app": "web"},
            "memory_mb": 64,
            "cpus": 0.5,
            "network_mode": "bridge",
            "ports": [80, {"container_port": 443, "host_port": 8443}],
            "health": {"type": "tcp", "port": 80},
        },
    ],
}
BAD_SPECS = [
    {},
    {"command": "sleep 30"},
    {"command": []},
    {"command": ["sleep"], "stop_timeout_s": -1},
    {"command": ["sleep"], "port": 70000},
    {"command": ["sleep"], "surprise": 1},
    {"image": "alpine"},
]


@pytest.fixture
async def spec(world: World) -> dict[str, Any]:
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=ApiKeys(InMemoryApiKeyStore(), world.clock),
        readiness={},
    )
    app = create_app(context)
    document: dict[str, Any] = app.openapi()
    return document


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema validator for `schema` whose `#/components/...` refs resolve
    in the published document."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": spec["components"]})


def create_schema(spec: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = spec["paths"]["/v1/runtimes"]["post"]["requestBody"]
    schema: dict[str, Any] = body["content"]["application/json"]["schema"]
    return schema


def test_a_create_is_a_union_discriminated_by_driver(spec: dict[str, Any]) -> None:
    schema = create_schema(spec)
    mapping = schema["discriminator"]["mapping"]
    assert schema["discriminator"]["propertyName"] == "driver"
    assert set(mapping) == set(SPECS) == set(VALIDATORS)
    assert [v["$ref"] for v in schema["oneOf"]] == list(mapping.values())
    for driver, ref in mapping.items():
        variant = spec["components"]["schemas"][ref.rpartition("/")[2]]
        assert variant["properties"]["driver"]["enum"] == [driver]
        assert {"driver", "spec"} <= set(variant["required"])
        model = SPECS[driver].__name__
        assert variant["properties"]["spec"] == {"$ref": f"#/components/schemas/{model}"}
        assert variant["additionalProperties"] is False


def test_each_typed_spec_has_exactly_its_drivers_fields() -> None:
    # The validators' own field lists: the document cannot drift from them.
    assert set(ProcessSpec.model_fields) == set(process_spec._FIELDS)
    assert set(DockerSpec.model_fields) == set(docker_spec._FIELDS)


def test_every_published_example_is_valid_against_the_published_schema(
    spec: dict[str, Any],
) -> None:
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            media = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if media is None:
                continue
            check = validator(spec, media["schema"])
            examples = [e["value"] for e in media.get("examples", {}).values()]
            examples += [media["example"]] if "example" in media else []
            for example in examples:
                errors = [str(e) for e in check.iter_errors(example)]
                assert not errors, (method, path, example, errors)
                checked += 1
    with_examples = {n: c for n, c in spec["components"]["schemas"].items() if "examples" in c}
    assert {"ProcessSpec", "DockerSpec", "EventOut", "RuntimeOut", "ErrorBody"} <= set(
        with_examples
    )
    for name, component in with_examples.items():
        for example in component["examples"]:
            errors = [str(e) for e in validator(spec, component).iter_errors(example)]
            assert not errors, (name, example, errors)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    ("driver", "given"), [(d, s) for d, specs in GOOD_SPECS.items() for s in specs]
)
def test_the_schema_takes_what_the_driver_takes_given_and_normalised(
    spec: dict[str, Any], driver: str, given: dict[str, Any]
) -> None:
    normalised = VALIDATORS[driver](given)
    own = validator(spec, {"$ref": f"#/components/schemas/{SPECS[driver].__name__}"})
    assert own.is_valid(given)
    assert own.is_valid(normalised)  # what a runtime's record answers
    body = {"driver": driver, "spec": given}
    assert validator(spec, create_schema(spec)).is_valid(body)
    record_spec = spec["components"]["schemas"]["RuntimeOut"]["properties"]["spec"]
    assert validator(spec, record_spec).is_valid(normalised)


@pytest.mark.parametrize("driver", sorted(SPECS))
def test_a_spec_for_the_other_driver_is_refused_by_the_union(
    spec: dict[str, Any], driver: str
) -> None:
    other = next(d for d in SPECS if d != driver)
    body = {"driver": driver, "spec": GOOD_SPECS[other][-1]}
    assert not validator(spec, create_schema(spec)).is_valid(body)


@pytest.fixture
async def strict_http() -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    world = World.build(InMemoryDriver(validator=process_spec.validate_process_spec))
    keys = ApiKeys(InMemoryApiKeyStore(), world.clock)
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=keys,
        readiness={},
    )
    _, admin = await keys.issue(team_id=None, admin=True)
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        yield client, {"Authorization": f"Bearer {admin}"}


@pytest.mark.parametrize("bad", BAD_SPECS)
async def test_a_bad_spec_is_still_the_validators_400(
    strict_http: tuple[httpx.AsyncClient, dict[str, str]], bad: dict[str, Any]
) -> None:
    http, admin = strict_http
    with pytest.raises(InvalidSpec) as refused:
        process_spec.validate_process_spec(bad)
    answer = await http.post("/v1/runtimes", json={"spec": bad}, headers=admin)
    assert answer.status_code == 400
    assert answer.json()["error"] == {"code": "invalid_request", "message": str(refused.value)}
