"""The process driver's record of which runtime each container belongs to:
read once per container, and after one listing, "has this runtime another
container?" answered from counts kept by starts and removes."""

from __future__ import annotations

from runplane.adapters.drivers.process_owners import Owners


class Disk:
    """Container folders and the runtime each names; counts listings and reads."""

    def __init__(self, **owners: str | None) -> None:
        self.owners = dict(owners)
        self.listings = 0
        self.reads = 0

    def read(self, container_id: str) -> str | None:
        self.reads += 1
        return self.owners.get(container_id)

    def listing(self) -> list[str]:
        self.listings += 1
        return sorted(self.owners)


def test_the_first_question_lists_and_reads_once_then_counts_answer() -> None:
    disk = Disk(c1="a", c2="a", c3="b", c4=None)  # c4: a state file not readable
    owners = Owners(disk.read, disk.listing)
    assert owners.has_any("a")
    assert owners.has_any("b")
    assert not owners.has_any("z")
    assert (disk.listings, disk.reads) == (1, 4)
    owners.forget("c1")
    assert owners.has_any("a")
    owners.forget("c2")
    assert not owners.has_any("a")
    assert owners.of("c3") == "b"
    assert (disk.listings, disk.reads) == (1, 4)


def test_starts_and_removes_keep_the_counts() -> None:
    disk = Disk()
    owners = Owners(disk.read, disk.listing)
    assert not owners.has_any("a")
    owners.note("c1", "a")
    owners.note("c1", "a")  # noted twice, counted once
    assert owners.has_any("a")
    assert owners.known("c1") == "a"
    owners.forget("c1")
    owners.forget("c1")
    assert not owners.has_any("a")
    assert owners.known("c1") is None
    assert disk.listings == 1


def test_a_listing_forgets_what_is_gone_but_not_what_started_after_it_began() -> None:
    disk = Disk(c1="a")
    owners = Owners(disk.read, disk.listing)
    assert owners.has_any("a")
    began = owners.listing_begins()
    owners.note("c2", "a")  # started while the listing ran: not in it
    del disk.owners["c1"]  # removed by hand meanwhile
    owners.keep_only(disk.listing(), began)
    assert owners.known("c1") is None
    assert owners.known("c2") == "a"
    owners.forget("c2")
    assert not owners.has_any("a")
