"""Issue 12's attacks, tried again as a hostile team would, against a real
`runplane serve` (process driver, runtimes as `nobody`, real Redis, SQLite).

Each attack returns what it saw and whether that is the wanted answer: a clear
4xx (or, for a stream entry, its result) and nothing changed for anyone else.
`tests/e2e/test_hostile_tenant.py` asserts every row; run this module to print
the table:

    .venv/bin/python -m tests.e2e.hostile
"""

from __future__ import annotations

import contextlib
import json
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.e2e.conftest import remove_everything
from tests.support.e2e_backend import raw_redis
from tests.support.isolation import work_root
from tests.support.output import folder_text
from tests.support.serve import RunplaneServer

SERVE_SETTINGS = {
    "runtime_user": "nobody",
    "rate_limit_per_s": "20",
    "rate_limit_burst": "40",
    "max_waits_per_key": "8",
    "max_streams_per_key": "8",
    "request_body_timeout_s": "3",
}
"""Small limits, so that each attack reaches its limit in a few seconds."""


@dataclass
class Row:
    attack: str
    answer: str
    ok: bool


@dataclass
class Arena:
    server: RunplaneServer
    redis: redis.Redis
    docker: bool = False
    """The docker driver is configured (on Podman's socket) beside the process one."""

    def admin(self) -> httpx.Client:
        return self.server.client()

    def team_key(self, team: str | None = None) -> tuple[str, str]:
        """A fresh team (its own rate budget) and a key for it."""
        team = team or f"t{uuid.uuid4().hex[:8]}"
        with self.admin() as http:
            made = http.post("/v1/keys", json={"team_id": team, "name": "hostile"})
            made.raise_for_status()
            return team, str(made.json()["key"])

    def as_team(self, key: str) -> httpx.Client:
        return self.server.client(key)

    def allow(self, team: str, **policy: Any) -> None:
        with self.admin() as http:
            http.put(f"/v1/teams/{team}/policy", json=policy).raise_for_status()

    def result_of(self, job_id: str, timeout_s: float = 20.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for _, fields in self.redis.xrange("runtime:job_results"):
                decoded = {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
                if decoded.get("job_id") == job_id:
                    return decoded
            time.sleep(0.1)
        raise AssertionError(f"no result for job {job_id}")


def patient(http: httpx.Client, method: str, url: str) -> httpx.Response:
    """A call after a flood: waits out the key's rate limit instead of failing on it."""
    for _ in range(30):
        response = http.request(method, url)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))
    return response


def error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "-"


def answer(response: httpx.Response) -> str:
    return f"{response.status_code} {error_code(response)}"


ATTACKS: list[tuple[str, Callable[[Arena], tuple[str, bool]]]] = []


def attack(name: str) -> Callable[[Callable[[Arena], tuple[str, bool]]], Any]:
    def register(function: Callable[[Arena], tuple[str, bool]]) -> Any:
        ATTACKS.append((name, function))
        return function

    return register


@attack("process runtime that reads admin.key (no policy)")
def read_admin_key_without_policy(arena: Arena) -> tuple[str, bool]:
    _, key = arena.team_key()
    admin_key = str(arena.server.data_dir / "admin.key")
    with arena.as_team(key) as http:
        made = http.post("/v1/runtimes", json={"spec": {"command": ["/bin/cat", admin_key]}})
    return answer(made), made.status_code == 403 and error_code(made) == "forbidden"


@attack("allowed command runs as nobody, clean env, own cwd, no data dir")
def allowed_command_is_confined(arena: Arena) -> tuple[str, bool]:
    team, key = arena.team_key()
    arena.allow(team, commands=[["/bin/sh", "-c", "*"]])
    admin_key = arena.server.data_dir / "admin.key"
    script = f"id -u; pwd; env | sort; cat {admin_key} 2>&1 || echo DENIED; sleep 30"
    with arena.as_team(key) as http:
        made = http.post(
            "/v1/runtimes",
            json={"runtime_id": f"{team}:peek", "spec": {"command": ["/bin/sh", "-c", script]}},
        )
        if made.status_code != 201:
            return answer(made), False
        log = _runtime_log(arena, f"{team}:peek", "DENIED")
        http.delete(f"/v1/runtimes/{team}:peek")
    uid = log.splitlines()[0] if log else "?"
    secret = admin_key.read_text().strip()
    clean = "RUNPLANE" not in log and secret not in log
    ok = uid == str(_nobody_uid()) and "DENIED" in log and clean
    return f"201; uid {uid}, admin.key denied, env clean: {clean}", ok


@attack("docker spec with host network, another's namespace, unlisted image")
def docker_escapes(arena: Arena) -> tuple[str, bool]:
    team, key = arena.team_key()
    arena.allow(team, images=["docker.io/library/busybox:*"])
    tries = [
        {"image": "docker.io/library/busybox:1.36", "network_mode": "host"},
        {"image": "docker.io/library/busybox:1.36", "network_mode": "container:victim"},
        {"image": "docker.io/library/alpine:3.20"},
        {"image": "docker.io/library/busybox:1.36", "privileged": True},
    ]
    with arena.as_team(key) as http:
        answers = [
            http.post("/v1/runtimes", json={"driver": "docker", "spec": spec}) for spec in tries
        ]
        listed = http.get("/v1/runtimes").json()["runtimes"]
    codes = [answer(a) for a in answers]
    ok = codes[:3] == ["403 forbidden"] * 3 and codes[3] == "400 invalid_request" and not listed
    return ", ".join(codes), ok and arena.docker


@attack("a start job over REST (POST /v1/jobs) outside the policy")
def job_outside_policy(arena: Arena) -> tuple[str, bool]:
    team, key = arena.team_key()
    arena.allow(team, commands=[["/bin/sleep", "*"]])
    admin_key = str(arena.server.data_dir / "admin.key")
    body = {
        "op": "start",
        "runtime_id": f"{team}:job",
        "spec": {"command": ["/bin/cat", admin_key]},
    }
    with arena.as_team(key) as http:
        sent = http.post("/v1/jobs", json=body)
        if sent.status_code != 202:
            return answer(sent), False
        result = arena.result_of(sent.json()["job_id"])
        got = http.get(f"/v1/runtimes/{team}:job")
    code = result.get("error_code", "?")
    return (
        f"202, then result {code}; runtime {got.status_code}",
        code == "forbidden" and got.status_code == 404,
    )


@attack("another team's Idempotency-Key")
def foreign_idempotency_key(arena: Arena) -> tuple[str, bool]:
    alpha, alpha_key = arena.team_key()
    beta, beta_key = arena.team_key()
    for team in (alpha, beta):
        arena.allow(team, commands=[["/bin/sleep", "*"]])
    idem = {"Idempotency-Key": f"shared-{uuid.uuid4().hex}"}
    body = {"spec": {"command": ["/bin/sleep", "300"]}, "start": False}
    with arena.as_team(beta_key) as b, arena.as_team(alpha_key) as a:
        first = b.post("/v1/runtimes", json=body, headers=idem)
        second = a.post("/v1/runtimes", json=body, headers=idem)
        beta_again = b.post("/v1/runtimes", json=body, headers=idem)
    ok = (
        first.status_code == 201
        and second.status_code == 201
        and second.json()["team_id"] == alpha
        and second.json()["runtime_id"] != first.json()["runtime_id"]
        and beta_again.json()["runtime_id"] == first.json()["runtime_id"]
    )
    return f"alpha {answer(second)} own runtime; beta's repeat replays beta's", ok


@attack("empty Idempotency-Key")
def empty_idempotency_key(arena: Arena) -> tuple[str, bool]:
    _, key = arena.team_key()
    with arena.as_team(key) as http:
        sent = http.post(
            "/v1/runtimes",
            json={"spec": {"command": ["/bin/sleep", "1"]}, "start": False},
            headers={"Idempotency-Key": ""},
        )
        listed = http.get("/v1/runtimes")
    ok = sent.status_code == 400 and listed.status_code == 200 and listed.json()["runtimes"] == []
    return answer(sent), ok


@attack("lone surrogate in a spec (REST)")
def lone_surrogate_rest(arena: Arena) -> tuple[str, bool]:
    team, key = arena.team_key()
    arena.allow(team, commands=[["/bin/sleep", "*"]])
    spec = '{"command": ["/bin/sleep", "\\ud800"]}'
    body = f'{{"runtime_id": "{team}:s", "start": false, "spec": {spec}}}'
    with arena.as_team(key) as http:
        sent = http.post("/v1/runtimes", content=body, headers={"Content-Type": "application/json"})
        got = http.get(f"/v1/runtimes/{team}:s")
        listed = http.get("/v1/runtimes")
    ok = sent.status_code == 400 and got.status_code == 404 and listed.status_code == 200
    return f"{answer(sent)}; later GET {got.status_code}, list {listed.status_code}", ok


@attack("lone surrogate in a spec (stream job)")
def lone_surrogate_stream(arena: Arena) -> tuple[str, bool]:
    job_id = f"surrogate-{uuid.uuid4().hex}"
    arena.redis.xadd(
        "runtime:start_jobs",
        {"runtime_id": "surr1", "job_id": job_id, "spec": '{"command": ["/bin/sleep", "\\ud800"]}'},
    )
    result = arena.result_of(job_id)
    return result.get("error_code", "?"), result.get("error_code") == "invalid_request"


@attack("10,000-deep spec (stream job)")
def deep_spec_stream(arena: Arena) -> tuple[str, bool]:
    job_id = f"deep-{uuid.uuid4().hex}"
    arena.redis.xadd(
        "runtime:start_jobs",
        {"runtime_id": "deep1", "job_id": job_id, "spec": "[" * 10_000 + "]" * 10_000},
    )
    result = arena.result_of(job_id)
    return result.get("error_code", "?"), result.get("error_code") == "invalid_request"


@attack("10,000-deep body (REST)")
def deep_body_rest(arena: Arena) -> tuple[str, bool]:
    _, key = arena.team_key()
    body = '{"spec": ' + "[" * 10_000 + "]" * 10_000 + "}"
    with arena.as_team(key) as http:
        sent = http.post("/v1/runtimes", content=body, headers={"Content-Type": "application/json"})
    return answer(sent), sent.status_code == 400


@attack("100 MB spec")
def huge_spec(arena: Arena) -> tuple[str, bool]:
    _, key = arena.team_key()
    body = json.dumps({"spec": {"command": ["/bin/sleep", "1"], "env": {"X": "x" * 100_000_000}}})
    with arena.as_team(key) as http:
        sent = http.post("/v1/runtimes", content=body, headers={"Content-Type": "application/json"})
    return answer(sent), sent.status_code == 413


@attack("100 KB spec (under the body limit)")
def large_spec(arena: Arena) -> tuple[str, bool]:
    team, key = arena.team_key()
    arena.allow(team, commands=[["/bin/sleep", "*"]])
    body = {"spec": {"command": ["/bin/sleep", "1"], "env": {"X": "x" * 100_000}}, "start": False}
    with arena.as_team(key) as http:
        sent = http.post("/v1/runtimes", json=body)
    return answer(sent), sent.status_code == 400


@attack("unauthenticated 300 MB body")
def unauthenticated_huge_body(arena: Arena) -> tuple[str, bool]:
    status = _raw_request(
        arena.server.port,
        b"POST /v1/runtimes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300000000\r\n\r\n" + b"{" * 65536,
    )
    return status, status.startswith("413")


@attack("body announced large, 1 byte sent")
def slow_body(arena: Arena) -> tuple[str, bool]:
    _, key = arena.team_key()
    started = time.monotonic()
    status = _raw_request(
        arena.server.port,
        f"POST /v1/runtimes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode(),
        read_timeout_s=60,
    )
    held = time.monotonic() - started
    return f"{status} after {held:.0f} s", status.startswith("408")


@attack("2,000 creates in a row")
def create_flood(arena: Arena) -> tuple[str, bool]:
    team, key = arena.team_key()
    arena.allow(team, commands=[["/bin/sleep", "*"]])
    statuses: dict[int, int] = {}
    retry_after = ""
    body = {"spec": {"command": ["/bin/sleep", "1"]}, "start": False}  # records, no processes
    with arena.as_team(key) as http:
        for _ in range(2_000):
            sent = http.post("/v1/runtimes", json=body)
            statuses[sent.status_code] = statuses.get(sent.status_code, 0) + 1
            if sent.status_code == 429:
                retry_after = sent.headers.get("retry-after", "")
    summary = ", ".join(f"{n}x{code}" for code, n in sorted(statuses.items()))
    ok = statuses.get(429, 0) > 0 and retry_after.isdigit() and 500 not in statuses
    return f"{summary}; Retry-After {retry_after}", ok


@attack("200 processes from one key (quota 5)")
def quota(arena: Arena) -> tuple[str, bool]:
    team, key = arena.team_key()
    arena.allow(team, commands=[["/bin/sleep", "*"]], max_runtimes=5, max_running=5)
    codes: dict[str, int] = {}
    with arena.as_team(key) as http:
        for _ in range(200):
            sent = http.post("/v1/runtimes", json={"spec": {"command": ["/bin/sleep", "300"]}})
            if sent.status_code == 429:
                time.sleep(float(sent.headers.get("retry-after", "1")))
                continue
            codes[answer(sent)] = codes.get(answer(sent), 0) + 1
        listed = patient(http, "GET", "/v1/runtimes").json()["runtimes"]
        running = [r for r in listed if r["status"] == "running"]
        for runtime in listed:
            patient(http, "DELETE", f"/v1/runtimes/{runtime['runtime_id']}")
    summary = ", ".join(f"{n}x {code}" for code, n in sorted(codes.items()))
    return f"{summary}; {len(running)} running", len(running) == 5 and "403 quota_exceeded" in codes


@attack("1,000 concurrent /wait calls")
def wait_flood(arena: Arena) -> tuple[str, bool]:
    team, key = arena.team_key()
    arena.allow(team, commands=[["/bin/sleep", "*"]])
    with arena.as_team(key) as http:
        http.post(
            "/v1/runtimes",
            json={
                "runtime_id": f"{team}:w",
                "spec": {"command": ["/bin/sleep", "1"]},
                "start": False,
            },
        ).raise_for_status()

    def one_wait(_: int) -> int:
        with arena.as_team(key) as client:
            return client.get(
                f"/v1/runtimes/{team}:w/wait", params={"status": "running", "timeout": 5}
            ).status_code

    with ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(one_wait, range(1_000)))
    counts = {code: statuses.count(code) for code in set(statuses)}
    summary = ", ".join(f"{n}x{code}" for code, n in sorted(counts.items()))
    return summary, counts.get(429, 0) > 0 and all(code in (200, 408, 429) for code in counts)


@attack("a garbage runtime:health_events entry")
def bad_health_entry(arena: Arena) -> tuple[str, bool]:
    arena.redis.xadd("runtime:health_events", {"junk": b"\xff\xfe", "payload": "{"})
    arena.redis.xadd("runtime:health_events", {"runtime_id": "hl1", "details": "[" * 5000})
    body = {"runtime_id": "hl1", "spec": {"command": ["/bin/sleep", "1"]}, "start": False}
    with arena.admin() as http:
        http.post("/v1/runtimes", json=body).raise_for_status()
        got = http.get("/v1/runtimes/hl1/health")
        http.delete("/v1/runtimes/hl1")
    return answer(got), got.status_code == 200


@attack("a garbage runplane:events entry")
def bad_event_entry(arena: Arena) -> tuple[str, bool]:
    arena.redis.xadd("runplane:events", {"junk": b"\xff\xfe", "data": "{"})
    _, key = arena.team_key()
    with arena.as_team(key) as http:
        got = http.get("/v1/events")
    return answer(got), got.status_code == 200


@attack("malformed dead-letter ids")
def bad_dead_letter_ids(arena: Arena) -> tuple[str, bool]:
    with arena.admin() as http:
        answers = [
            http.get("/v1/dead-letters", params={"after": "abc"}),
            http.post("/v1/dead-letters/abc/replay"),
            http.delete("/v1/dead-letters/abc"),
        ]
    return ", ".join(answer(a) for a in answers), all(a.status_code == 400 for a in answers)


@attack("create another team's runtime id")
def foreign_runtime_id(arena: Arena) -> tuple[str, bool]:
    beta, beta_key = arena.team_key()
    alpha, alpha_key = arena.team_key()
    for team in (alpha, beta):
        arena.allow(team, commands=[["/bin/sleep", "*"]])
    body = {"runtime_id": f"{beta}:db", "spec": {"command": ["/bin/sleep", "1"]}, "start": False}
    with arena.as_team(beta_key) as b, arena.as_team(alpha_key) as a:
        b.post("/v1/runtimes", json=body).raise_for_status()
        taken = a.post("/v1/runtimes", json=body)
        free = a.post("/v1/runtimes", json={**body, "runtime_id": f"{beta}:free"})
    same = (taken.status_code, error_code(taken)) == (free.status_code, error_code(free))
    return f"taken {answer(taken)}, free {answer(free)}", taken.status_code == 400 and same


@attack("operate on another team's runtime")
def foreign_runtime_calls(arena: Arena) -> tuple[str, bool]:
    beta, beta_key = arena.team_key()
    _, alpha_key = arena.team_key()
    arena.allow(beta, commands=[["/bin/sleep", "*"]])
    rid = f"{beta}:r"
    with arena.as_team(beta_key) as b, arena.as_team(alpha_key) as a:
        b.post(
            "/v1/runtimes",
            json={"runtime_id": rid, "spec": {"command": ["/bin/sleep", "1"]}, "start": False},
        ).raise_for_status()
        before = b.get(f"/v1/runtimes/{rid}/operations").json()
        calls = [
            ("POST", "/stop"),
            ("POST", "/start"),
            ("DELETE", ""),
            ("GET", ""),
            ("GET", "/operations"),
            ("GET", "/health"),
            ("GET", "/wait?status=running&timeout=1"),
        ]
        differ = []
        for method, suffix in calls:
            theirs = a.request(method, f"/v1/runtimes/{rid}{suffix}")
            missing = a.request(method, f"/v1/runtimes/{beta}:nothing{suffix}")
            seen = (theirs.status_code, theirs.json(), sorted(theirs.headers.keys()))
            unseen = (missing.status_code, missing.json(), sorted(missing.headers.keys()))
            if (seen[0], _without_ids(seen[1]), seen[2]) != (
                unseen[0],
                _without_ids(unseen[1]),
                unseen[2],
            ) or theirs.status_code != 404:
                differ.append(f"{method} {suffix or '/'} {answer(theirs)} vs {answer(missing)}")
        after = b.get(f"/v1/runtimes/{rid}/operations").json()
    ok = not differ and before == after
    summary = "7 calls: each 404 exactly as for a missing id" if not differ else "; ".join(differ)
    return f"{summary}; beta's log unchanged: {before == after}", ok


def _without_ids(body: Any) -> Any:
    """An error body with runtime ids and the (random) operation id masked, to
    compare two answers' shapes."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = {**body, "error": {**body["error"], "operation_id": "<op>"}}
    text = json.dumps(body)
    for marker in (":r", ":nothing"):
        text = text.replace(marker, ":<id>")
    return text


@attack("ids '.' and '..'")
def dot_ids(arena: Arena) -> tuple[str, bool]:
    with arena.admin() as http:
        answers = [
            http.post(
                "/v1/runtimes",
                json={"runtime_id": rid, "spec": {"command": ["/bin/sleep", "1"]}, "start": False},
            )
            for rid in (".", "..")
        ]
    return ", ".join(answer(a) for a in answers), all(a.status_code == 400 for a in answers)


@attack("a revoked key")
def revoked_key(arena: Arena) -> tuple[str, bool]:
    with arena.admin() as http:
        made = http.post("/v1/keys", json={"team_id": "revoked", "name": "soon gone"}).json()
        listed = http.get("/v1/keys").json()
        http.delete(f"/v1/keys/{made['key_id']}").raise_for_status()
    with arena.as_team(made["key"]) as http:
        after = http.get("/v1/runtimes")
    listed_ids = {
        k["key_id"] for k in (listed.get("keys", listed) if isinstance(listed, dict) else listed)
    }
    return (
        f"listed: {made['key_id'] in listed_ids}; after revoke {answer(after)}",
        after.status_code == 401,
    )


@attack("/metrics without a key")
def metrics_anonymous(arena: Arena) -> tuple[str, bool]:
    got = httpx.get(f"{arena.server.url}/metrics")
    return answer(got), got.status_code == 401


@attack("data dir and its files readable by others")
def data_dir_modes(arena: Arena) -> tuple[str, bool]:
    loose = []
    root = arena.server.data_dir
    for path in [root, *root.rglob("*")]:
        if path.name == "serve.log":
            continue  # written by the test harness, not by runplane
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            loose.append(f"{path.relative_to(root.parent)} {oct(mode)}")
    return ("none open to others" if not loose else "; ".join(loose[:3])), not loose


def _raw_request(port: int, request: bytes, read_timeout_s: float = 30) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout_s) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(request)
        try:
            head = sock.recv(4096).decode("latin-1")
        except OSError as exc:
            return f"no answer ({exc.__class__.__name__})"
    line = head.split("\r\n", 1)[0]
    if not line:
        return "closed without an answer"
    parts = line.split(" ", 2)
    body = head.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in head else ""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        return f"{parts[1]} {json.loads(body)['error']['code']}"
    return parts[1]


def _nobody_uid() -> int:
    import pwd

    return pwd.getpwnam("nobody").pw_uid


def _runtime_log(arena: Arena, runtime_id: str, marker: str, timeout_s: float = 15.0) -> str:
    """The runtime's output, as its driver keeps it, once `marker` appears."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        for folder in (arena.server.data_dir / "runtimes" / "containers").glob("p-*"):
            content = folder_text(folder)
            if marker in content:
                return content
            text = content
        time.sleep(0.1)
    return text


def run_all(arena: Arena) -> list[Row]:
    rows = []
    for name, function in ATTACKS:
        try:
            seen, ok = function(arena)
        except Exception as exc:
            seen, ok = f"raised {exc!r}"[:200], False
        rows.append(Row(name, seen, ok))
    return rows


def table(rows: list[Row]) -> str:
    width = max(len(row.attack) for row in rows)
    lines = [f"{'attack':<{width}}  ok   answer", f"{'-' * width}  ---  ------"]
    lines += [
        f"{row.attack:<{width}}  {'yes' if row.ok else 'NO ':<3}  {row.answer}" for row in rows
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def arena_on(redis_url: str, data_root: Path, docker_host: str | None = None) -> Iterator[Arena]:
    docker = {"docker_host": docker_host} if docker_host else {}
    with work_root() as work:
        server = RunplaneServer.launch(
            data_root / "data", redis_url=redis_url, work_dir=str(work), **SERVE_SETTINGS, **docker
        )
        client = raw_redis(redis_url)
        try:
            yield Arena(server, client, docker=bool(docker_host))
        finally:
            remove_everything(server)
            server.stop()
            client.close()


def main() -> None:
    from tests.support.podman import PodmanService
    from tests.support.redis import RedisServer

    with tempfile.TemporaryDirectory() as tmp:
        redis_server = RedisServer.start(Path(tmp) / "redis")
        podman = PodmanService.start(Path(tmp) / "podman")
        try:
            with arena_on(redis_server.url, Path(tmp), podman.url) as arena:
                print(table(run_all(arena)))
        finally:
            podman.stop()
            redis_server.stop()


if __name__ == "__main__":
    main()
