"""Lifecycle events end to end: nothing committed is lost across a kill -9."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from cloudevents.v1.http import from_json

from tests.support.e2e_backend import raw_redis
from tests.support.serve import RunplaneServer

EVENTS = "runplane:events"


def stream_events(redis_url: str) -> list[dict[str, object]]:
    client = raw_redis(redis_url, decode_responses=True)
    return [json.loads(fields["event"]) for _, fields in client.xrange(EVENTS)]


def test_kill_9_in_a_burst_of_operations_loses_no_event(
    serve: RunplaneServer, redis_url: str
) -> None:
    ids = [f"ev-{i:02d}" for i in range(40)]
    with serve.client() as http:
        for runtime_id in ids:
            spec = {"command": ["sleep", "600"]}
            assert http.post(
                "/v1/runtimes", json={"runtime_id": runtime_id, "spec": spec}
            ).is_success

    done = Counter[str]()
    lock = threading.Lock()

    def churn(runtime_id: str) -> None:
        with httpx.Client(
            base_url=serve.url, timeout=10, headers={"Authorization": f"Bearer {serve.admin_key}"}
        ) as http:
            for n in range(25):
                op = "pause" if n % 2 == 0 else "resume"
                try:
                    http.post(f"/v1/runtimes/{runtime_id}/{op}")
                except httpx.HTTPError:
                    return  # the server died under us
                with lock:
                    done["calls"] += 1

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(churn, runtime_id) for runtime_id in ids]
        while done["calls"] < 300:
            time.sleep(0.01)
        serve.stop(signal.SIGKILL)
        for future in futures:
            future.result()
    assert done["calls"] < 40 * 25, "the burst finished before the kill; nothing was tested"
    serve.start()

    with serve.client() as http:
        effective: Counter[tuple[str, str]] = Counter()
        versions = {}
        for runtime_id in ids:
            record = http.get(f"/v1/runtimes/{runtime_id}").json()
            # A runtime the kill left in a transient status (pausing, say) has one
            # more version than its last durable event: entering it is transient.
            transient = record["status"] in {"pausing", "resuming"}
            versions[runtime_id] = record["version"] - (1 if transient else 0)
            for entry in http.get(
                f"/v1/runtimes/{runtime_id}/operations", params={"limit": 1000}
            ).json()["operations"]:
                if entry["outcome"] == "success" and entry["error_code"] is None:
                    effective[(runtime_id, entry["op"])] += 1

    deadline = time.monotonic() + 30
    while True:
        events = stream_events(redis_url)
        latest = {}
        for event in events:
            latest[event["subject"]] = max(
                latest.get(event["subject"], 0), int(str(event["sequence"]))
            )
        caught_up = all(latest.get(r, 0) >= versions[r] for r in ids)
        if caught_up or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    first_seen: dict[str, dict[str, object]] = {}
    for event in events:
        first_seen.setdefault(str(event["id"]), event)  # a repeat carries the same id
        assert from_json(json.dumps(event))["id"] == event["id"]
    unique = list(first_seen.values())
    published: Counter[tuple[str, str]] = Counter(
        (str(e["subject"]), str(e["type"]).removeprefix("runtime."))
        for e in unique
        if e["data"]["outcome"] == "success"  # type: ignore[index]
    )
    for (runtime_id, op), count in effective.items():
        assert published[(runtime_id, op)] == count, (runtime_id, op)
    for runtime_id in ids:
        sequences = [int(str(e["sequence"])) for e in unique if e["subject"] == runtime_id]
        assert sequences == sorted(sequences), runtime_id
        assert sequences[-1] == versions[runtime_id], runtime_id


def read_sse(response: httpx.Response, count: int) -> list[tuple[str, str, dict[str, object]]]:
    """(id, event, data) of the next `count` events of an SSE response."""
    frames: list[tuple[str, str, dict[str, object]]] = []
    frame: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if "data" in frame:
                frames.append(
                    (frame.get("id", ""), frame.get("event", ""), json.loads(frame["data"]))
                )
                if len(frames) == count:
                    return frames
            frame = {}
            continue
        name, _, value = line.partition(":")
        frame[name] = value.removeprefix(" ")
    return frames


def test_sse_resumes_from_last_event_id_and_serve_stops_with_clients_open(
    serve: RunplaneServer,
) -> None:
    with serve.client() as http:
        http.post(
            "/v1/runtimes", json={"runtime_id": "sse-1", "spec": {"command": ["sleep", "600"]}}
        )
        deadline = time.monotonic() + 10
        while True:  # the relay publishes within its poll interval
            listed = http.get("/v1/events", params={"runtime_id": "sse-1"}).json()["events"]
            if len(listed) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [e["event"]["type"] for e in listed] == ["runtime.create", "runtime.start"]
        last_seen = listed[-1]["id"]
        for op in ("pause", "resume", "pause", "resume"):
            assert http.post(f"/v1/runtimes/sse-1/{op}").is_success
        headers = {"Last-Event-ID": last_seen}
        with http.stream("GET", "/v1/events/stream", headers=headers, timeout=10) as stream:
            frames = read_sse(stream, 4)
    assert [event for _, event, _ in frames] == [
        "runtime.pause",
        "runtime.resume",
        "runtime.pause",
        "runtime.resume",
    ]
    assert all(frame_id > last_seen for frame_id, _, _ in frames)

    opened = threading.Event()

    def listen() -> None:
        with serve.client() as http, http.stream("GET", "/v1/events/stream", timeout=30) as live:
            opened.set()
            for _ in live.iter_lines():
                pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10)
    started = time.monotonic()
    serve.stop(signal.SIGTERM)
    assert serve.process is not None
    assert serve.process.returncode == 0
    assert time.monotonic() - started < 25  # not the clients' 30 s read timeout
