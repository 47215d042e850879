"""Every Redis key and stream name runplane uses, in one place (DESIGN §4).
Stream names are defaults: Settings may rename them.

Keys that belong to one runtime or one consumer carry a Redis Cluster hash tag:
the part in braces decides the slot, so a multi-key script over one runtime's
keys never crosses slots. The braces are literal characters of the key.
"""

from __future__ import annotations

from runplane.domain.dead_letters import LIFECYCLE_EVENTS_STREAM

EVENTS_STREAM = LIFECYCLE_EVENTS_STREAM
"""Durable lifecycle events (field `event`: the CloudEvents JSON envelope)."""
EVENTS_CHANNEL = "runplane:events:live"
"""Pub/Sub mirror of EVENTS_STREAM, plus transient events."""
JOB_RESULTS_STREAM = "runtime:job_results"
DEAD_LETTER_STREAM = "runtime:dead_letters"
HEALTH_EVENTS_STREAM = "runtime:health_events"
SNAPSHOTS_STREAM = "runtime:snapshots"


RELAY_LEASE = "runplane:outbox-relay"
RECONCILER_LEASE = "runplane:reconciler"
MONITOR_LEASE = "runplane:health-monitor"
HEALTH_EVENTS_LEASE = "runplane:health-events"
HOST_MONITOR_LEASE = "runplane:host-monitor"
HOST_DRAIN_LEASE = "runplane:host-drain"
TIMERS_LEASE = "runplane:runtime-timers"
"""Leader leases of the singleton workers (keys `lease:{<name>}`)."""
HEALTH_EVENTS_CONSUMER = "runplane:health-events"
"""The offset consumer of `runtime:health_events` (its offsets key)."""
JOB_GROUP = "runplane"
"""The default consumer group of the job streams (RUNPLANE_JOB_GROUP)."""
WEBHOOK_GROUP = "webhooks"
WEBHOOKS_VERSION = "runplane:webhooks:version"
"""A counter moved after every change to the webhooks: an instance's cached
webhook set is good while the counter has not moved."""
"""The consumer group that turns lifecycle events into webhook deliveries."""


def job_stream(op: str) -> str:
    """The stream of one operation's jobs: `runtime:stop_jobs` for stop, ..."""
    return f"runtime:{op}_jobs"


LEASE_PREFIX = "lease:"
"""`lease:{<runtime_id>}` holds the token of the operation that owns the runtime."""

OFFSETS_PREFIX = "runplane:offsets:"
"""`runplane:offsets:{<consumer>}` is a hash: stream name -> last handled entry id."""


def hash_tag(value: str) -> str:
    """`value` wrapped in braces, so every key built from it lands in one slot."""
    return "{" + value + "}"


def slot_tag(key: str) -> str:
    """What Redis hashes to place `key`: the part between its first `{` and the
    first `}` after it when not empty, else the whole name (CLUSTER KEYSLOT)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1 : end] if end > start + 1 else key


PUBLISHED_IDS_SUFFIX = ":published"


def published_ids_key(stream: str) -> str:
    """`{runplane:events}:published` for `runplane:events`: a sorted set of the
    ids of the durable events already on `stream` (score: when, in ms), in the
    stream's own slot so one script touches both."""
    return hash_tag(slot_tag(stream)) + PUBLISHED_IDS_SUFFIX


def lease_key(runtime_id: str) -> str:
    return LEASE_PREFIX + hash_tag(runtime_id)


def offsets_key(consumer: str) -> str:
    return OFFSETS_PREFIX + hash_tag(consumer)


RATE_LIMIT_PREFIX = "runplane:ratelimit:"
"""`runplane:ratelimit:{<key_id>}` holds one API key's request budget (GCRA: the
theoretical arrival time in microseconds); it expires once the budget is full."""


def rate_limit_key(bucket: str) -> str:
    return RATE_LIMIT_PREFIX + hash_tag(bucket)


HOST_PREFIX = "runplane:host:"
"""Keys of one host's agent, hash-tagged by host so they share one slot:
`runplane:host:{<host_id>}:calls` (the stream of driver calls to it) and
`runplane:host:{<host_id>}:reply:<call_id>` (a list holding one call's answer)."""
AGENT_GROUP = "agent"
"""The consumer group (and consumer) of a host's call stream: its one agent."""


def host_calls_stream(host_id: str) -> str:
    return HOST_PREFIX + hash_tag(host_id) + ":calls"


def host_reply_key(host_id: str, call_id: str) -> str:
    return HOST_PREFIX + hash_tag(host_id) + ":reply:" + call_id


FENCE_PREFIX = "runplane:fence:"
"""`runplane:fence:{<runtime_id>}` holds the highest record version an agent
applied a call for; `runplane:fence:{<runtime_id>}:call:<call_id>` a call's
state (`claimed`, then its answer). Same slot as `lease:{<runtime_id>}`, so the
agent's check-and-claim is one script."""


def fence_key(runtime_id: str) -> str:
    return FENCE_PREFIX + hash_tag(runtime_id)


def fence_call_key(runtime_id: str, call_id: str) -> str:
    return FENCE_PREFIX + hash_tag(runtime_id) + ":call:" + call_id


def host_beat_key(host_id: str) -> str:
    """`runplane:host:{<host_id>}:beat`: an agent's last beat (its details as
    JSON), expiring by itself when the agent stops beating."""
    return HOST_PREFIX + hash_tag(host_id) + ":beat"


HOSTS_BEATING = "runplane:hosts:beating"
"""The set of host ids that have beaten: where the host monitor finds the beat
keys (one key per command, so any slot). Members whose beat expired are removed."""

HOST_AGENT_LEASE_PREFIX = "runplane:host-agent:"


def host_agent_lease(host_id: str) -> str:
    """The seat of a host's one agent: the lease `lease:{runplane:host-agent:<host_id>}`."""
    return HOST_AGENT_LEASE_PREFIX + host_id
