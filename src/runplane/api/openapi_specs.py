"""The OpenAPI document's typed `spec`: per driver, as a discriminated union.

At run time a spec is a JSON object the driver's validator checks (answering
400 `invalid_request` with a message naming the field), so the request models
keep `spec: dict`. The document says more: `POST /v1/runtimes` takes one of
`CreateProcessRuntime` and `CreateDockerRuntime`, told apart by `driver`
(`discriminator`), each with its driver's spec (`api/schemas/specs.py`); a
stored spec (a runtime's, a snapshot's) and the spec of a start, a patch or a
job is either driver's (`anyOf`: which one is the runtime's driver's call).

`driver` is required in the document, though the API takes a create without it
(the server's RUNPLANE_DRIVER then decides): a body that names its driver is
one whose spec the document can check.
"""

from __future__ import annotations

import copy
from typing import Any

from runplane.api.schemas.specs import SPECS

_REF = "#/components/schemas/{model}"
CREATE_BODY = "CreateRuntimeBody"
ANY_SPEC = {"anyOf": [{"$ref": _REF.format(model=m.__name__)} for m in SPECS.values()]}
"""A spec of either driver."""
TYPED_SPECS: dict[str, tuple[str, bool]] = {
    "RuntimeOut": ("spec", False),
    "SnapshotOut": ("spec", False),
    "OperationBody": ("spec", True),
    "SubmitJobBody": ("spec", True),
}
"""Component -> (its spec property, whether null is allowed)."""


def variant_name(driver: str) -> str:
    return f"Create{driver.capitalize()}Runtime"


def type_specs(schema: dict[str, Any]) -> None:
    schemas: dict[str, Any] = schema["components"]["schemas"]
    for model in SPECS.values():
        generated = model.model_json_schema(ref_template=_REF)
        for name, definition in generated.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas[model.__name__] = generated
    for component, (field, nullable) in TYPED_SPECS.items():
        properties = schemas.get(component, {}).get("properties", {})
        if field in properties:
            typed: dict[str, Any] = copy.deepcopy(ANY_SPEC)
            if nullable:
                typed["anyOf"].append({"type": "null"})
            properties[field] = {**typed, "description": properties[field].get("description", "")}
            properties[field] = {k: v for k, v in properties[field].items() if v != ""}
    _create_union(schema, schemas)


def _create_union(schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    body = schema["paths"].get("/v1/runtimes", {}).get("post", {}).get("requestBody")
    create = schemas.pop(CREATE_BODY, None)
    if body is None or create is None:
        return
    mapping: dict[str, str] = {}
    for driver, model in SPECS.items():
        variant = copy.deepcopy(create)
        variant["title"] = f"a {driver} runtime"
        variant["properties"]["driver"] = {
            "type": "string",
            "enum": [driver],
            "description": "the driver that runs it (left out: the server's RUNPLANE_DRIVER)",
        }
        variant["properties"]["spec"] = {"$ref": _REF.format(model=model.__name__)}
        variant["required"] = sorted({*variant.get("required", ()), "driver", "spec"})
        schemas[variant_name(driver)] = variant
        mapping[driver] = _REF.format(model=variant_name(driver))
    body["content"]["application/json"]["schema"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "driver", "mapping": mapping},
    }
