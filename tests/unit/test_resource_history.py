"""ResourceHistory with a fake sampler and clock: CPU % from the readings'
deltas, a history bounded to an hour, sampling only while someone watches, and
every runtime (with its series) when asked to."""

from __future__ import annotations

from collections.abc import Sequence

from runplane.adapters.drivers.resource_history import Reading, ResourceHistory
from runplane.domain.runtime_output import ResourceSample


class Host:
    def __init__(self) -> None:
        self.now = 1000.0
        self.cpu_s = 0.0
        self.running = {"c1", "c2"}
        self.asked: list[list[str]] = []

    async def sample(self, container_ids: Sequence[str]) -> dict[str, Reading | None]:
        self.asked.append(list(container_ids))
        return {
            cid: Reading(self.cpu_s, 1000, 5, 1) if cid in self.running else None
            for cid in container_ids
        }

    def tick(self, seconds: float, busy_s: float) -> None:
        self.now += seconds
        self.cpu_s += busy_s


async def test_cpu_percent_from_deltas_and_a_bounded_history() -> None:
    host = Host()
    history = ResourceHistory(host.sample, interval_s=5.0, watch_s=1e9, now=lambda: host.now)
    first = await history.window("c1", 60)  # two readings at the same (fake) instant
    assert first.samples == [ResourceSample(1000.0, 0.0, 1000, 5, 1)]
    for _ in range(2000):
        host.tick(5.0, 2.5)  # half a core
        await history._round()
    window = await history.window("c1", 3600)
    assert len(window.samples) == 720  # an hour at 5 s, the oldest forgotten
    assert {sample.cpu_percent for sample in window.samples} == {50.0}
    assert len((await history.window("c1", 12)).samples) == 3
    await history.aclose()


async def test_only_watched_runtimes_are_sampled_and_only_for_a_while() -> None:
    host = Host()
    history = ResourceHistory(host.sample, interval_s=5.0, watch_s=60.0, now=lambda: host.now)
    await history._round()
    assert host.asked == [[]]  # nobody asked: nothing read
    await history.window("c1", 60)
    host.asked.clear()
    host.tick(30, 0)
    await history._round()
    assert host.asked == [["c1"]]
    host.tick(31, 0)
    await history._round()
    assert history.watched() == 0  # not asked again within watch_s
    host.running.discard("c2")
    gone = await history.window("c2", 60)
    assert gone.running is False
    assert gone.samples == []
    await history.aclose()


async def test_every_runtime_with_its_series_when_asked() -> None:
    host = Host()
    exported: list[tuple[str, float | None]] = []

    async def listing() -> dict[str, str]:
        return {cid: f"rt-{cid}" for cid in host.running}

    history = ResourceHistory(
        host.sample,
        interval_s=5.0,
        everything=listing,
        export=lambda rid, s: exported.append((rid, None if s is None else s.cpu_percent)),
        now=lambda: host.now,
    )
    await history._round()
    host.tick(5, 5)
    await history._round()
    assert sorted(exported) == [("rt-c1", 100.0), ("rt-c2", 100.0)]
    exported.clear()
    host.running.discard("c2")
    host.tick(5, 5)
    await history._round()
    assert sorted(exported, key=str) == [("rt-c1", 100.0), ("rt-c2", None)]  # its series go
    await history.aclose()
