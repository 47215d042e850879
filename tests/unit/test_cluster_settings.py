"""Redis Cluster settings and readiness: the refusal without a URL, and the
detail /readyz shows for a cluster that cannot serve every slot."""

from __future__ import annotations

import httpx
import pytest

from runplane.api.app import create_app
from runplane.api.context import ApiContext
from runplane.bootstrap.serve import serve
from runplane.config import Settings
from runplane.domain.errors import NotReady
from runplane.services.api_keys import ApiKeys
from runplane.testing.stores import InMemoryApiKeyStore
from tests.support.world import World


def test_a_cluster_without_a_url_is_refused_before_anything_starts() -> None:
    settings = Settings(redis_cluster=True, redis_url=None)
    with pytest.raises(SystemExit) as stopped:
        serve(settings)
    assert str(stopped.value) == (
        "runplane: RUNPLANE_REDIS_CLUSTER=true needs RUNPLANE_REDIS_URL (any node of the "
        "cluster): the embedded Redis is never a cluster"
    )


def test_the_cluster_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RUNPLANE_REDIS_CLUSTER", raising=False)
    assert Settings().redis_cluster is False  # a plain Redis unless told
    monkeypatch.setenv("RUNPLANE_REDIS_CLUSTER", "true")
    assert Settings().redis_cluster is True


async def test_readyz_shows_a_not_ready_detail_and_only_the_type_of_other_faults(
    world: World,
) -> None:
    async def cluster_down() -> None:
        raise NotReady("cluster_state fail, 10923/16384 slots ok, 16384/16384 assigned")

    async def database_down() -> None:
        raise ConnectionError("could not reach 10.0.0.9:5432")

    context = ApiContext(
        lifecycle=world.lifecycle,
        runtimes=world.runtimes,
        operations=world.log,
        keys=ApiKeys(InMemoryApiKeyStore(), world.clock),
        readiness={"redis": cluster_down, "database": database_down},
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://runplane") as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {
            "redis": "failed: cluster_state fail, 10923/16384 slots ok, 16384/16384 assigned",
            "database": "failed: ConnectionError",
        },
    }
