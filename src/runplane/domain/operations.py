"""Operation kinds, their sources, stop reasons and outcomes."""

from __future__ import annotations

from enum import StrEnum


class OpKind(StrEnum):
    START = "start"
    STOP = "stop"
    RESTART = "restart"
    PATCH = "patch"
    PAUSE = "pause"
    RESUME = "resume"
    REMOVE = "remove"


class OpSource(StrEnum):
    REST = "rest"
    STREAM = "stream"
    RECONCILER = "reconciler"
    HEALTH = "health"
    CLI = "cli"


class StopReason(StrEnum):
    REQUESTED = "requested"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    TTL_EXPIRED = "ttl_expired"
    IDLE = "idle"
    ADMIN = "admin"
    ORPHANED = "orphaned"
    SHUTDOWN = "shutdown"


STOP_REASONS: frozenset[str] = frozenset(str(reason) for reason in StopReason)
"""The reasons a stop may name, as the strings requests carry."""


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
