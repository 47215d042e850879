"""What a runtime carries besides its spec (issue 16): labels, a timeout and an
idle rule. Values and their checks only; stores and workers act on them.

Labels follow Kubernetes' syntax so that selectors read the same as there: a
key is `[prefix/]name`, the name 1-63 characters of `[A-Za-z0-9._-]` starting
and ending with a letter or digit, the optional prefix a DNS subdomain of at
most 253 characters; a value is empty or a name. At most `MAX_LABELS` labels."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from runplane.domain.errors import ErrorCode, RunplaneError

MAX_LABELS = 64
MAX_SELECTOR_TERMS = 16
MAX_TIMEOUT_S = 30 * 24 * 3600
"""A month: a longer timeout is a forgotten one; leave `timeout_s` out instead."""
MIN_IDLE_AFTER_S = 1
MAX_IDLE_AFTER_S = 30 * 24 * 3600

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
LABEL_RULE = (
    "keys are [prefix/]name and values empty or a name: a name is 1-63 of "
    "[A-Za-z0-9._-] starting and ending with a letter or digit, a prefix a "
    f"lowercase DNS subdomain of at most 253 characters; at most {MAX_LABELS} labels"
)


class OnTimeout(StrEnum):
    STOP = "stop"
    PAUSE = "pause"
    REMOVE = "remove"


class IdleAction(StrEnum):
    STOP = "stop"
    PAUSE = "pause"


class SettingsRefused(RunplaneError):
    """A label, selector or timeout the caller must change: a stable code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_label_key(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and not (0 < len(prefix) <= 253 and _DNS_SUBDOMAIN.match(prefix)):
        return False
    return bool(_NAME.match(name))


def is_label_value(value: str) -> bool:
    return value == "" or bool(_NAME.match(value))


def checked_labels(raw: object) -> dict[str, str]:
    """`raw` as a label map; SettingsRefused(invalid_labels) otherwise."""
    if not isinstance(raw, Mapping):
        raise SettingsRefused(ErrorCode.INVALID_LABELS, "labels must be an object of strings")
    if len(raw) > MAX_LABELS:
        raise SettingsRefused(ErrorCode.INVALID_LABELS, f"at most {MAX_LABELS} labels")
    labels: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not is_label_key(key):
            raise SettingsRefused(
                ErrorCode.INVALID_LABELS, f"bad label key {key!r:.80}: {LABEL_RULE}"
            )
        if not isinstance(value, str) or not is_label_value(value):
            raise SettingsRefused(
                ErrorCode.INVALID_LABELS, f"bad value for label {key!r}: {LABEL_RULE}"
            )
        labels[key] = value
    return labels


class Match(StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    ABSENT = "!exists"


@dataclass(frozen=True, slots=True)
class LabelTerm:
    key: str
    match: Match
    value: str = ""

    def holds(self, labels: Mapping[str, str]) -> bool:
        """The term against one label map (Kubernetes' meaning: `k!=v` also
        holds where `k` is absent)."""
        match self.match:
            case Match.EQUALS:
                return labels.get(self.key) == self.value
            case Match.NOT_EQUALS:
                return labels.get(self.key) != self.value
            case Match.EXISTS:
                return self.key in labels
            case Match.ABSENT:
                return self.key not in labels


def parse_selector(terms: Sequence[str]) -> tuple[LabelTerm, ...]:
    """Each `label` parameter: `k=v`, `k!=v`, `k` (has the label) or `!k` (has
    it not). Several terms, or several in one parameter joined by commas, all
    hold (AND). SettingsRefused(invalid_selector) for anything else."""
    parsed: list[LabelTerm] = []
    for raw in terms:
        for text in raw.split(","):
            parsed.append(_term(text.strip()))
    if len(parsed) > MAX_SELECTOR_TERMS:
        raise SettingsRefused(
            ErrorCode.INVALID_SELECTOR, f"at most {MAX_SELECTOR_TERMS} label terms"
        )
    return tuple(parsed)


def _term(text: str) -> LabelTerm:
    if "!=" in text:
        key, _, value = text.partition("!=")
        term = LabelTerm(key.strip(), Match.NOT_EQUALS, value.strip())
    elif "=" in text:
        key, _, value = text.partition("=")
        term = LabelTerm(key.strip().removesuffix("="), Match.EQUALS, value.strip().lstrip("="))
    elif text.startswith("!"):
        term = LabelTerm(text[1:].strip(), Match.ABSENT)
    else:
        term = LabelTerm(text, Match.EXISTS)
    if not is_label_key(term.key) or not is_label_value(term.value):
        raise SettingsRefused(
            ErrorCode.INVALID_SELECTOR,
            f"bad label selector {text!r:.80}: k=v, k!=v, k or !k, where {LABEL_RULE}",
        )
    return term


@dataclass(frozen=True, slots=True)
class IdleRule:
    after_s: int
    action: IdleAction = IdleAction.STOP

    def check_period_s(self, floor_s: float, cap_s: float) -> float:
        """How often its host is asked: a quarter of `after_s`, within bounds,
        so a runtime is found idle at most a quarter late."""
        return min(max(self.after_s / 4, floor_s), cap_s)


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """What a create sets besides the spec."""

    labels: dict[str, str] = field(default_factory=dict)
    timeout_s: int | None = None
    on_timeout: OnTimeout = OnTimeout.STOP
    idle: IdleRule | None = None


def check_timeout_s(value: int) -> int:
    if not 1 <= value <= MAX_TIMEOUT_S:
        raise SettingsRefused(
            ErrorCode.INVALID_REQUEST, f"timeout_s must be from 1 to {MAX_TIMEOUT_S}"
        )
    return value


def check_idle(idle: IdleRule) -> IdleRule:
    if not MIN_IDLE_AFTER_S <= idle.after_s <= MAX_IDLE_AFTER_S:
        raise SettingsRefused(
            ErrorCode.INVALID_REQUEST,
            f"idle.after_s must be from {MIN_IDLE_AFTER_S} to {MAX_IDLE_AFTER_S}",
        )
    return idle


def new_deadline(
    current: datetime | None, wanted: datetime | None, *, allow_shorten: bool
) -> datetime | None:
    """The deadline a `POST .../timeout` leaves. None is no deadline (never
    fires), so clearing one always extends it. A deadline earlier than the
    current one is refused (`timeout_would_shorten`) unless `allow_shorten`."""
    if current is None or wanted is None or wanted >= current or allow_shorten:
        return wanted
    raise SettingsRefused(
        ErrorCode.TIMEOUT_WOULD_SHORTEN,
        f"the runtime's deadline is {current.isoformat()}; the new one would be earlier "
        "(send allow_shorten: true to shorten it)",
    )


def record_fields(settings: RuntimeSettings, now: datetime) -> dict[str, Any]:
    """A new record's label, timeout and idle fields (labels checked again:
    every door into a create passes here)."""
    timeout_s = None if settings.timeout_s is None else check_timeout_s(settings.timeout_s)
    idle = None if settings.idle is None else check_idle(settings.idle)
    return {
        "labels": checked_labels(settings.labels),
        "timeout_at": None if timeout_s is None else now + timedelta(seconds=timeout_s),
        "on_timeout": None if timeout_s is None else str(settings.on_timeout),
        "idle_after_s": None if idle is None else idle.after_s,
        "idle_action": None if idle is None else str(idle.action),
    }
