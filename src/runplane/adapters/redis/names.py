"""Redis key names, in one place.

Keys that belong to one runtime or one consumer carry a Redis Cluster hash tag:
the part in braces decides the slot, so a multi-key script over one runtime's
keys never crosses slots. The braces are literal characters of the key.
"""

from __future__ import annotations

LEASE_PREFIX = "lease:"
"""`lease:{<runtime_id>}` holds the token of the operation that owns the runtime."""

OFFSETS_PREFIX = "runplane:offsets:"
"""`runplane:offsets:{<consumer>}` is a hash: stream name -> last handled entry id."""


def hash_tag(value: str) -> str:
    """`value` wrapped in braces, so every key built from it lands in one slot."""
    return "{" + value + "}"


def lease_key(runtime_id: str) -> str:
    return LEASE_PREFIX + hash_tag(runtime_id)


def offsets_key(consumer: str) -> str:
    return OFFSETS_PREFIX + hash_tag(consumer)
