"""Extension hooks: the setting's syntax and one hook's handler (the retry loop
within a delivery). End to end with a real serve: tests/e2e/test_hooks.py."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from runplane.domain.hooks import BadHookSpec, parse_hook_setting
from runplane.streams import RetryLater
from runplane.streams.entries import StreamEntry
from runplane.workers.hooks import HookRunner, by_subject


def entry(event: dict[str, Any] | str, entry_id: str = "1-0") -> StreamEntry:
    raw = event if isinstance(event, str) else json.dumps(event)
    return StreamEntry("runplane:events", entry_id, {"event": raw})


EVENT = {"id": "ev-1", "type": "runtime.stop", "subject": "rt-1"}


def test_the_setting_names_hooks_and_their_code() -> None:
    specs = parse_hook_setting("billing=acme.hooks:bill, acme.audit:Shipper ,")
    assert [(s.name, s.target, s.origin) for s in specs] == [
        ("billing", "acme.hooks:bill", "settings"),
        ("shipper", "acme.audit:Shipper", "settings"),
    ]
    assert parse_hook_setting("") == []
    with pytest.raises(BadHookSpec, match="module:attribute"):
        parse_hook_setting("billing=acme.hooks")
    with pytest.raises(BadHookSpec, match="hook name"):
        parse_hook_setting("Bad Name=acme:x")


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[str] = []

    async def __call__(self, event: dict[str, Any]) -> None:
        self.calls.append(event["id"])
        if len(self.calls) <= self.failures:
            raise RuntimeError("billing API down")


def runner(hook: Any, sleeps: list[float], attempts: int = 3) -> HookRunner:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return HookRunner(
        "billing",
        hook,
        attempts=attempts,
        timeout_s=5,
        backoff_base_s=1,
        backoff_cap_s=8,
        sleep=sleep,
    )


async def test_a_failing_hook_is_tried_again_with_growing_delays() -> None:
    hook, sleeps = Flaky(failures=2), []
    await runner(hook, sleeps)(entry(EVENT))
    assert hook.calls == ["ev-1"] * 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1
    assert 1 <= sleeps[1] <= 2


async def test_a_delivery_whose_every_attempt_failed_stays_pending() -> None:
    hook, sleeps = Flaky(failures=10), []
    with pytest.raises(RetryLater, match="failed 3 times: RuntimeError: billing API down"):
        await runner(hook, sleeps)(entry(EVENT))
    assert len(hook.calls) == 3


async def test_a_plain_function_runs_off_the_event_loop() -> None:
    threads: list[str] = []

    def hook(event: dict[str, Any]) -> None:
        threads.append(threading.current_thread().name)

    await runner(hook, [])(entry(EVENT))
    assert threads
    assert threads[0] != threading.main_thread().name


@pytest.mark.parametrize("raw", ["{not json", json.dumps(["a"]), json.dumps({"no": "id"})])
async def test_an_entry_that_is_no_event_is_passed_over(raw: str) -> None:
    hook = Flaky(failures=0)
    await runner(hook, [])(entry(raw))
    assert hook.calls == []


def test_events_of_one_subject_share_an_ordering_key() -> None:
    assert by_subject(entry(EVENT, "1-0")) == by_subject(entry(EVENT, "2-0")) == "rt-1"
    assert by_subject(entry("{bad", "3-0")) == "3-0"


def test_entry_points_and_the_setting_are_both_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from runplane.bootstrap import hooks as bootstrap_hooks
    from runplane.config import Settings

    points = [EntryPoint("audit", "acme.audit:ship", "runplane.hooks")]
    monkeypatch.setattr(bootstrap_hooks, "entry_points", lambda group: points)
    specs = bootstrap_hooks.hook_specs(Settings(hooks="billing=acme.bill:Bill"))
    assert [(s.name, s.origin) for s in specs] == [
        ("audit", "entry point"),
        ("billing", "settings"),
    ]
    off = bootstrap_hooks.hook_specs(Settings(hooks="", hook_entry_points=False))
    assert off == []
    with pytest.raises(bootstrap_hooks.HookLoadError, match="named twice: audit"):
        bootstrap_hooks.hook_specs(Settings(hooks="audit=x:y"))


def test_a_hook_class_is_made_once_and_a_bad_target_is_refused() -> None:
    from runplane.bootstrap.hooks import HookLoadError, load_hook
    from runplane.domain.hooks import HookSpec

    hook = load_hook(HookSpec("flaky", "tests.unit.test_hooks:Made", "settings"))
    assert isinstance(hook, Made)
    with pytest.raises(HookLoadError, match="not callable"):
        load_hook(HookSpec("x", "tests.unit.test_hooks:EVENT", "settings"))
    with pytest.raises(HookLoadError, match="has no attribute"):
        load_hook(HookSpec("x", "tests.unit.test_hooks:missing", "settings"))


class Made:
    def __call__(self, event: dict[str, Any]) -> None:
        return None
