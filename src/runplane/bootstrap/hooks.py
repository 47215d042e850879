"""Extension hooks: found (entry points `runplane.hooks`, RUNPLANE_HOOKS), loaded
at start, each run by a consumer group of its own on the events stream."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from importlib.metadata import entry_points
from typing import Any

import redis.asyncio

from runplane.adapters.redis.group_states import RedisGroupStates
from runplane.adapters.redis.names import EVENTS_STREAM
from runplane.bootstrap.streams import consumer_settings
from runplane.config import Settings
from runplane.domain.hooks import (
    HOOK_NAME_RULE,
    BadHookSpec,
    Hook,
    HookSpec,
    is_valid_hook_name,
    parse_hook_setting,
)
from runplane.services.hooks import HookDirectory, hook_group
from runplane.streams import GroupConsumer
from runplane.workers.hooks import HookRunner, by_subject

ENTRY_POINT_GROUP = "runplane.hooks"


class HookLoadError(Exception):
    """A configured hook cannot run: serve refuses to start rather than run
    without it (a billing hook left out silently would lose events)."""


def hook_specs(settings: Settings) -> list[HookSpec]:
    specs: list[HookSpec] = []
    if settings.hook_entry_points:
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if not is_valid_hook_name(point.name):
                raise HookLoadError(f"hook entry point {point.name!r}: {HOOK_NAME_RULE}")
            specs.append(HookSpec(point.name, point.value, "entry point"))
    try:
        specs += parse_hook_setting(settings.hooks)
    except BadHookSpec as exc:
        raise HookLoadError(f"RUNPLANE_HOOKS: {exc}") from exc
    names = [s.name for s in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise HookLoadError(f"hooks named twice: {', '.join(twice)}")
    return specs


def load_hook(spec: HookSpec) -> Hook:
    """The callable `spec` names; a class is instantiated once (no arguments)."""
    module_name, _, attribute = spec.target.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
        if inspect.isclass(target):
            target = target()
    except Exception as exc:  # an import error, a missing attribute, a failing __init__
        raise HookLoadError(f"hook {spec.name!r} ({spec.target}): {exc}") from exc
    if not callable(target):
        raise HookLoadError(f"hook {spec.name!r} ({spec.target}) is not callable")
    hook: Hook = target
    return hook


def build_hooks(
    settings: Settings, stream_client: redis.asyncio.Redis
) -> tuple[HookDirectory, list[GroupConsumer]]:
    specs = hook_specs(settings)
    worst_delivery_s = settings.hook_attempts * (
        settings.hook_timeout_s + settings.hook_backoff_cap_s
    )
    base = consumer_settings(settings)
    reading = dataclasses.replace(
        base,
        retention=None,  # the events stream's own retention loop trims it
        max_deliveries=settings.hook_max_deliveries,
        # Past this an entry still being handled could be claimed by another
        # instance: keep it well above the longest delivery.
        claim_idle_ms=max(base.claim_idle_ms, int(2_000 * worst_delivery_s)),
        handler_timeout_s=None,  # each attempt is bounded by hook_timeout_s
        group_start_id="0" if settings.hooks_from == "all" else "$",
    )
    consumers = [
        GroupConsumer(
            stream_client,
            stream=EVENTS_STREAM,
            group=hook_group(spec.name),
            consumer=settings.consumer_name,
            handler=HookRunner(
                spec.name,
                load_hook(spec),
                attempts=settings.hook_attempts,
                timeout_s=settings.hook_timeout_s,
                backoff_base_s=settings.hook_backoff_base_s,
                backoff_cap_s=settings.hook_backoff_cap_s,
            ),
            settings=reading,
            key_of=by_subject,
        )
        for spec in specs
    ]
    return HookDirectory(specs, RedisGroupStates(stream_client), EVENTS_STREAM), consumers
