"""A network namespace per agent, so each host of a trial has a network of its
own: one veth pair joins it to this machine, and the agent reaches Redis over
it, as an agent on another machine reaches Redis over the network. Root only
(`ip netns`); `available()` says whether this machine allows it."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import dataclass


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def available() -> bool:
    """Root, `ip`, and a namespace can be made (a container may forbid it)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"rpprobe{random.randrange(1 << 30)}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError):
        return False
    _ip("netns", "delete", probe)
    return True


@dataclass(frozen=True, slots=True)
class Netns:
    name: str
    outer: str
    """This machine's end of the veth: the address Redis listens on for it."""
    inner: str
    """The namespace's end."""

    @property
    def prefix(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.name)

    @classmethod
    def create(cls, tag: str, index: int, subnet: int) -> Netns:
        """`10.<subnet>.<index>.0/30`; interface names fit in 15 characters."""
        name, outside, inside = f"rp{tag}{index}", f"rp{tag}o{index}", f"rp{tag}i{index}"
        outer, inner = f"10.{subnet}.{index}.1", f"10.{subnet}.{index}.2"
        _ip("netns", "add", name)
        try:
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", name)
            _ip("addr", "add", f"{outer}/30", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", name, "addr", "add", f"{inner}/30", "dev", inside)
            _ip("-n", name, "link", "set", inside, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        except BaseException:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
            raise
        return cls(name, outer, inner)

    def delete(self) -> None:
        """The namespace, and with it the veth pair."""
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, check=False)


def namespaces(count: int) -> list[Netns]:
    """`count` namespaces with a random tag and subnet: trials running side by
    side (CI shares the machine) do not collide."""
    tag = f"{random.randrange(36**3):03x}"[:3]
    subnet = random.randrange(100, 250)
    made: list[Netns] = []
    try:
        for index in range(1, count + 1):
            made.append(Netns.create(tag, index, subnet))
    except BaseException:
        for netns in made:
            netns.delete()
        raise
    return made
