"""The app's routes, flat: what the OpenAPI customisation and the 405 answer read.

FastAPI nests included routers (`iter_route_contexts` flattens them where it
exists; older versions list every route in `app.routes`)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi.dependencies.models import Dependant


@dataclass(frozen=True, slots=True)
class RouteView:
    path_format: str
    path_regex: re.Pattern[str]
    methods: frozenset[str]
    dependant: Dependant | None
    """None for a plain Starlette route (`/docs`, `/openapi.json`)."""


def route_views(routes: Sequence[Any]) -> Iterator[RouteView]:
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in flatten(routes) if flatten is not None else routes:
        path = getattr(route, "path_format", None)
        regex = getattr(route, "path_regex", None)
        methods = getattr(route, "methods", None)
        dependant = getattr(route, "dependant", None)
        if isinstance(path, str) and isinstance(regex, re.Pattern) and methods:
            known = dependant if isinstance(dependant, Dependant) else None
            yield RouteView(path, regex, frozenset(methods), known)


def allowed_methods(routes: Sequence[Any], path: str) -> list[str]:
    """Every method some route takes at `path` (Starlette's own 405 names only
    the first matching route's)."""
    found = {m for view in route_views(routes) if view.path_regex.match(path) for m in view.methods}
    return sorted(found)
