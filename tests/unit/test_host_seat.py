"""The host seat and its token file: the same token takes the seat back at
once, another waits and gives up; an expired seat nobody took is kept; the
token file is made once (0600) and a damaged one is refused with a message."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from runplane.bootstrap.seat import seat_token
from runplane.domain.errors import StoreUnavailable
from runplane.services.hosts.seat import HostSeat
from runplane.testing.leases import InMemoryLeaseStore
from runplane.workers.host_presence import HostPresence
from tests.support.clock import FakeClock

NAME = "runplane:host-agent:h-1"


def seat(leases: InMemoryLeaseStore, token: str) -> HostSeat:
    return HostSeat(leases, NAME, "h-1", token, ttl_ms=10_000)


async def test_a_seat_has_one_holder_and_its_own_token_takes_it_back() -> None:
    clock = FakeClock()
    leases = InMemoryLeaseStore(clock)
    assert await seat(leases, "a").claim(wait_ms=0)
    assert await seat(leases, "a").claim(wait_ms=0)  # a restart on the same data dir
    assert not await seat(leases, "b").claim(wait_ms=0)
    clock.advance(11)  # the holder died: its seat expired
    assert await seat(leases, "b").claim(wait_ms=0)
    assert not await seat(leases, "a").keep()


async def test_an_expired_seat_nobody_took_is_kept() -> None:
    clock = FakeClock()
    leases = InMemoryLeaseStore(clock)
    held = seat(leases, "a")
    assert await held.claim(wait_ms=0)
    clock.advance(11)  # no renewal went through for a TTL (Redis was away)
    assert await held.keep()
    assert not await seat(leases, "b").claim(wait_ms=0)
    await held.release()
    assert await seat(leases, "b").claim(wait_ms=0)


class AwayLeases(InMemoryLeaseStore):
    async def renew(self, runtime_id: str, token: str, ttl_ms: int) -> bool:
        raise StoreUnavailable("redis away")


async def test_presence_does_not_count_an_unreachable_redis_as_a_lost_seat() -> None:
    announced: list[int] = []

    async def announce() -> None:
        announced.append(1)

    presence = HostPresence(
        seat(AwayLeases(FakeClock()), "a"), announce, lambda: None, interval_s=1
    )
    with pytest.raises(StoreUnavailable):
        await presence.once()  # the loop logs it and tries again
    assert (presence.lost, announced) == (False, [])


def test_the_token_file_is_made_once_and_kept_private(tmp_path: Path) -> None:
    token = seat_token(tmp_path)
    assert seat_token(tmp_path) == token
    assert stat.S_IMODE((tmp_path / "agent.id").stat().st_mode) == 0o600
    (tmp_path / "agent.id").write_text("not a token\n")
    with pytest.raises(SystemExit, match=r"agent\.id is not a runplane agent id"):
        seat_token(tmp_path)
