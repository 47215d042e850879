"""Shared fixtures: throwaway servers (started here, never assumed) and tier markers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.podman import PodmanService, shared_service
from tests.support.postgres import PostgresServer
from tests.support.redis import RedisServer
from tests.support.redis_cluster import RedisClusterServer
from tests.support.redis_target import RedisTarget
from tests.support.xdist_groups import XdistGroupIds

TIERS = ("unit", "contract", "integration", "e2e")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(XdistGroupIds(), "runplane-xdist-group-ids")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked with the tier its folder names (tests/<tier>/...).
    Under xdist (`--dist loadgroup`) the tests on Podman all run on one worker:
    Podman instances share the host's bridge and its addresses, and one
    service started per run is cheaper than one per worker."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))
        if "podman" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("podman"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Debian redis-server on a free loopback port, for the whole session."""
    server = RedisServer.start(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServer]:
    """A real 3-node Redis Cluster (no replicas) on loopback, for the whole session."""
    cluster = RedisClusterServer.start(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=["plain", "cluster"])
def redis_target(request: pytest.FixtureRequest) -> RedisTarget:
    """The test runs twice: on the plain redis-server and on the 3-node cluster."""
    if request.param == "cluster":
        cluster: RedisClusterServer = request.getfixturevalue("redis_cluster")
        return RedisTarget(cluster.url, cluster.ports[0], cluster=True)
    server: RedisServer = request.getfixturevalue("redis_server")
    return RedisTarget(server.url, server.port, cluster=False)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on a free loopback port, for the whole session."""
    server = PostgresServer.start(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanService]:
    """Podman's Docker-compatible socket with the image `local/tiny`; started
    here (an error, never a skip, when podman is missing)."""
    service = shared_service(tmp_path_factory.mktemp("podman"))
    try:
        yield service
    finally:
        service.close()
