"""Examples in the OpenAPI document: named request bodies for the main creates
(Swagger UI offers each in "Try it out") and an example of the main answers.

Set on the finished document rather than on the models: FastAPI drops every
`None` from the document it builds, and a record's example needs its nulls
(`stopped_at: null`) to be valid against its own schema.
`tests/unit/test_openapi_specs.py` validates each against the published schema.
"""

from __future__ import annotations

import copy
from typing import Any

REQUEST_EXAMPLES: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("/v1/runtimes", "post"): {
        "process": {
            "runtime_id": "demo",
            "driver": "process",
            "spec": {"command": ["sleep", "30"], "stop_timeout_s": 5},
            "start": True,
        },
        "docker": {
            "runtime_id": "web",
            "driver": "docker",
            "spec": {
                "image": "docker.io/library/nginx:alpine",
                "network_mode": "bridge",
                "ports": [{"container_port": 80}],
                "memory_mb": 128,
            },
            "labels": {"app": "web"},
            "start": True,
        },
    },
    ("/v1/keys", "post"): {
        "team key": {"team_id": "alpha", "name": "ci", "expires_in_s": 2_592_000},
    },
    ("/v1/webhooks", "post"): {
        "stops and failures": {
            "url": "https://hooks.example.com/runplane",
            "event_types": ["runtime.stop", "runtime.unreachable"],
        },
    },
}
"""Working bodies for the main creates, by name (Swagger UI offers each)."""


RUNTIME_EXAMPLE: dict[str, Any] = {
    "runtime_id": "alpha:web",
    "team_id": "alpha",
    "status": "running",
    "version": 3,
    "driver": "process",
    "spec": {
        "command": ["python3", "-m", "http.server", "8000"],
        "env": {},
        "stop_signal": "SIGTERM",
        "stop_timeout_s": 10.0,
        "port": 8000,
    },
    "container_id": "p-48213-9912345",
    "engine_endpoint": "127.0.0.1:8000",
    "engine_health": "healthy",
    "created_at": "2026-11-30T05:20:00Z",
    "updated_at": "2026-11-30T05:20:01Z",
    "started_at": "2026-11-30T05:20:01Z",
    "stopped_at": None,
    "removed_at": None,
    "last_op_at": "2026-11-30T05:20:01Z",
    "status_deadline": None,
    "host_id": "local",
    "labels": {"app": "web"},
    "timeout": None,
    "idle": None,
}

COMPONENT_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "RuntimeOut": [RUNTIME_EXAMPLE],
    "OperationResultOut": [
        {
            "outcome": "success",
            "error_code": None,
            "error_message": "",
            "operation_id": "3f2b9c0e6d1a4e7b9c1d2e3f4a5b6c7d",
            "runtime": {**RUNTIME_EXAMPLE, "status": "stopped", "version": 4},
        },
        {
            "outcome": "failure",
            "error_code": "invalid_state",
            "error_message": "cannot stop a runtime that is starting",
            "operation_id": "8a1d4c2e9b7f4a3c8e6d5b4a3f2e1d0c",
            "runtime": None,
        },
    ],
    "ErrorBody": [
        {"error": {"code": "not_found", "message": "no such runtime"}},
        {
            "error": {
                "code": "invalid_request",
                "message": "command is required: a non-empty list of strings",
            }
        },
    ],
}
"""Answers as a client sees them, by component."""


def add_examples(schema: dict[str, Any]) -> None:
    for (path, method), examples in REQUEST_EXAMPLES.items():
        body = schema["paths"].get(path, {}).get(method, {}).get("requestBody", {})
        media = body.get("content", {}).get("application/json")
        if media is not None:
            media["examples"] = {name: {"value": value} for name, value in examples.items()}
    components = schema["components"]["schemas"]
    for name, values in COMPONENT_EXAMPLES.items():
        if name in components:
            components[name]["examples"] = copy.deepcopy(values)
