"""Every dependency of every route is `async def`: FastAPI runs a plain `def`
dependency in its thread pool, a thread hand-off on each request (issue 15)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.services.api_keys import ApiKeys
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.world import World


def plain_dependencies(dependant: Dependant) -> list[str]:
    found = []
    for sub in dependant.dependencies:
        call = sub.call
        if call is not None and not inspect.iscoroutinefunction(call):
            found.append(getattr(call, "__qualname__", repr(call)))
        found.extend(plain_dependencies(sub))
    return found


def api_routes(routes: Sequence[object]) -> list[APIRoute]:
    """The app's routes, those of included routers too."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        included = getattr(route, "original_router", None)
        if included is not None:
            found.extend(api_routes(included.routes))
    return found


def test_no_route_depends_on_a_plain_function(world: World) -> None:
    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=ApiKeys(InMemoryApiKeyStore(), world.clock),
        readiness={},
    )
    routes = api_routes(create_app(context).routes)
    offenders = {r.path: plain_dependencies(r.dependant) for r in routes}
    assert len(routes) > 20
    assert {path: deps for path, deps in offenders.items() if deps} == {}
