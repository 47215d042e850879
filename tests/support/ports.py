"""Free loopback ports for test servers, never the same one to two xdist workers.

A port is found free here and bound later by a child (redis-server, serve,
Postgres). Asking the kernel (bind to port 0) leaves a gap in which another
worker can be handed the same port, or an outgoing connection take it (the
kernel's ephemeral range, 32768-60999 here, serves both). So ports come from
below that range, and each worker walks only its own residue class modulo
`CLASSES` (gw0: 1, gw1: 3, ...), from a random start (two runs side by side on
one machine rarely meet), checking each is free before handing it out.
`CLASSES` divides the Redis Cluster bus offset (10,000), so a node's bus port
falls in its worker's class too.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

LOW, HIGH = 15_000, 32_000
"""Below the ephemeral range: no outgoing connection is given these."""
CLASSES = 16
"""8 odd classes: up to 8 workers get disjoint ports (more share one, still free)."""


def worker_index() -> int:
    """0 outside xdist, else the worker's number (gw3 -> 3)."""
    digits = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def _walk() -> itertools.cycle[int]:
    residue = 2 * (worker_index() % (CLASSES // 2)) + 1
    ports = [p for p in range(LOW, HIGH) if p % CLASSES == residue]
    start = random.randrange(len(ports))
    return itertools.cycle(ports[start:] + ports[:start])


_ports: itertools.cycle[int] | None = None


def is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """The next free port of this worker's class; a port comes round again
    only after every other one of the class (~1,000) has been handed out."""
    global _ports
    if _ports is None:
        _ports = _walk()
    for _ in range((HIGH - LOW) // CLASSES + 1):
        port = next(_ports)
        if is_free(port):
            return port
    raise RuntimeError(f"no free loopback port between {LOW} and {HIGH} in this worker's class")
