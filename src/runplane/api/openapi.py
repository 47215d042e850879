"""The OpenAPI document, made to say what the API really answers.

FastAPI documents a 422 `HTTPValidationError` on every route with parameters,
but `api/errors.py` answers a validation failure 400 with the error body; and
what the auth, the middlewares and the error mapping answer (401, 408, 413,
429, 503...) appears on no route. `install_openapi` documents, on each route,
every code it can answer, each with the one `ErrorBody`, and the bearer scheme
(so `/docs` has an Authorize button). Schemathesis checks the result in
`tests/e2e/test_openapi_conformance.py`: a code a route answers but this
document does not name fails `make test`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from runplane.api.auth import admin_key, current_key
from runplane.api.openapi_examples import add_examples
from runplane.api.openapi_specs import type_specs
from runplane.api.routing import route_views
from runplane.api.schemas.errors import ErrorBody

SECURITY_SCHEME = "ApiKey"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}

EVERY_V1_CALL: dict[int, str] = {
    400: "`invalid_request`: a parameter, header or body fails validation",
    401: "`unauthorized`: no API key, or an unknown, revoked or expired one",
    408: "`request_timeout`: the request was not received in time",
    413: "`payload_too_large`: the body is over the size limit",
    429: "`rate_limited`: too many calls with this key; see `Retry-After`",
    500: "`internal`: a bug",
    503: "`service_unavailable`: Redis, the database or the driver is unreachable",
}
"""What any `/v1` call may answer, whatever its route: the auth dependency, the
request limits and the error mapping stand in front of every one."""

ADMIN_ONLY = "`forbidden`: this call needs an admin key"
POLICY = (
    "`forbidden`: an admin-only call, or what the team's policy does not allow; "
    "`quota_exceeded`: a team quota is reached"
)
NOT_FOUND = "`not_found`: no such resource (or one another team owns)"
CONFLICT = (
    "`invalid_state`: not from the current status; `conflict`: a concurrent change, "
    "or an id already taken"
)
READS_NEVER_ANSWER = ("403", "409")
"""Unless the read is admin-only (403) or its route says why (GET /metrics)."""


def operation_id_of(route: APIRoute) -> str:
    """Every operation's id is its route's name: the endpoint function's
    (`stop_runtime`, `list_runtimes`), or the `operation_id` its decorator gives
    where the function's name would read worse (`get_runtime_logs`). Readable
    and stable: no path or method fragments, so a client generated from the
    document keeps its method names when a path changes."""
    return route.name


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` with the corrected document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = truthful(schema, app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def truthful(schema: dict[str, Any], routes: Sequence[Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _add_error_body(schemas)
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key (`rp_...`); `/metrics` also takes the metrics token",
        }
    }
    for view in route_views(routes):
        if view.dependant is None:
            continue
        for method in view.methods:
            operation = schema["paths"].get(view.path_format, {}).get(method.lower())
            if operation is not None:
                _document(operation, view.path_format, method, view.dependant)
    _link_created_resources(schema)
    type_specs(schema)
    add_examples(schema)
    return schema


def _link_created_resources(schema: dict[str, Any]) -> None:
    """OpenAPI links from each create (`POST /v1/x` answering 201) to the calls on
    what it made (`/v1/x/{x_id}/...`): clients and Schemathesis' stateful phase
    follow them from a created runtime, webhook or key to its own calls."""
    paths: dict[str, Any] = schema["paths"]
    for collection, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        fields = _body_fields(schema, created)
        links: dict[str, Any] = {}
        for path, operations in paths.items():
            if not path.startswith(collection + "/{"):
                continue
            name = path.removeprefix(collection + "/{").partition("}")[0]
            field = name if name in fields else "id" if "id" in fields else None
            for method in operations if field else ():
                pointer = path.replace("~", "~0").replace("/", "~1")
                links[re.sub(r"\W+", "_", f"{method}{path}").strip("_")] = {
                    "operationRef": f"#/paths/{pointer}/{method}",
                    "parameters": {name: f"$response.body#/{field}"},
                }
        if links:
            created["links"] = links


def _body_fields(schema: dict[str, Any], response: dict[str, Any]) -> set[str]:
    ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
    if not isinstance(ref, str):
        return set()
    body = schema["components"]["schemas"].get(ref.rpartition("/")[2], {})
    return set(body.get("properties", {}))


def _add_error_body(schemas: dict[str, Any]) -> None:
    generated = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in generated.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault("ErrorBody", generated)


def _document(operation: dict[str, Any], path: str, method: str, dependant: Dependant) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    calls = set(_calls(dependant))
    if method == "GET":
        # A list finds nothing missing: an empty page, never a 404.
        nevers = READS_NEVER_ANSWER if "{" in path else (*READS_NEVER_ANSWER, "404")
        for never in nevers:
            # Named by a route's shared error list, with no word of its own: a read
            # refuses no policy and changes nothing, so it answers neither.
            if never in responses and _generic(int(never), responses[never]):
                del responses[never]
    if path.startswith("/v1/"):
        codes = dict(EVERY_V1_CALL)
        if admin_key in calls:
            codes[403] = ADMIN_ONLY
        elif method != "GET":
            codes[403] = POLICY
        if "{" in path:
            codes[404] = NOT_FOUND
        if "409" in responses:  # where the route declares it: only a route knows
            codes[409] = CONFLICT
        for code, description in codes.items():
            response = responses.setdefault(str(code), {"description": description})
            if _generic(code, response):
                response["description"] = description
    _document_replay(operation)
    if current_key in calls or path.startswith("/v1/"):
        operation["security"] = [{SECURITY_SCHEME: []}]
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            _as_error(int(status), response)
    operation["responses"] = dict(sorted(responses.items()))


def _generic(code: int, response: dict[str, Any]) -> bool:
    """Whether FastAPI filled the description in (the route gave none)."""
    filled = (None, "", "Additional Response", HTTPStatus(code).phrase)
    return response.get("description") in filled


def _document_replay(operation: dict[str, Any]) -> None:
    """A create that takes an Idempotency-Key answers a repeat 200, not 201."""
    headers = {p.get("name") for p in operation.get("parameters", []) if p.get("in") == "header"}
    created = operation["responses"].get("201")
    if "Idempotency-Key" in headers and created is not None:
        operation["responses"].setdefault(
            "200",
            {
                "description": "a repeat of an Idempotency-Key: the first result again",
                "content": created.get("content", {}),
                "headers": {
                    "Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}}
                },
            },
        )


def _as_error(code: int, response: dict[str, Any]) -> None:
    """Every error answers the error body, unless the route documented its own."""
    content = response.setdefault("content", {})
    current = content.get("application/json", {}).get("schema")
    if current is None or "HTTPValidationError" in str(current):
        content["application/json"] = {"schema": dict(_ERROR_REF)}
    headers = response.setdefault("headers", {})
    if code in (429, 503):
        headers.update(_RETRY_AFTER)
    if code == 401:
        headers["WWW-Authenticate"] = {"description": "`Bearer`", "schema": {"type": "string"}}
    if not headers:
        del response["headers"]


def _calls(dependant: Dependant) -> Iterable[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)
