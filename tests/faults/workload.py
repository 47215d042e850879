"""What a trial asks of runplane: process runtimes created over REST, stop/start
jobs on the job streams, and REST clients that retry with the same key."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import redis

from tests.faults.cluster import Cluster

STOP_STREAM = "runtime:stop_jobs"
START_STREAM = "runtime:start_jobs"
RESULTS_STREAM = "runtime:job_results"
RUNTIME_SPEC = {"command": ["sleep", "600"], "stop_timeout_s": 5}
REST_OP_DEADLINE_S = 120.0
"""How long a REST client keeps retrying one operation before it gives up."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    job_id: str
    runtime_id: str
    op: str  # "stop" | "start"


@dataclass(frozen=True, slots=True)
class Answer:
    """One result a job or a REST call got: its outcome and error code ("" for none)."""

    outcome: str
    error_code: str
    status: str = ""
    """The runtime's status the answer reports."""


def create_runtimes(cluster: Cluster, count: int, prefix: str = "rt") -> list[str]:
    """`count` running process runtimes (`sleep 600`), created over REST, 4 at a time."""
    ids = [f"{prefix}-{i:04d}" for i in range(count)]

    def create(runtime_id: str) -> None:
        body = {"runtime_id": runtime_id, "spec": RUNTIME_SPEC, "start": True}
        with cluster.client() as http:
            made = http.post("/v1/runtimes", json=body)
        if made.status_code != 201:
            raise RuntimeError(f"create {runtime_id}: {made.status_code} {made.text}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, ids))
    return ids


def interleaved_jobs(runtime_ids: list[str], count: int, prefix: str = "job") -> list[JobSpec]:
    """`count` jobs, stop then start then stop ... on each runtime, the runtimes
    taking turns: every runtime starts `running`, so each job has work to do."""
    jobs: list[JobSpec] = []
    rounds = -(-count // len(runtime_ids))
    for n in range(rounds):
        for runtime_id in runtime_ids:
            if len(jobs) == count:
                return jobs
            op = "stop" if n % 2 == 0 else "start"
            jobs.append(JobSpec(f"{prefix}-{n:03d}-{runtime_id}", runtime_id, op))
    return jobs


def submit_jobs(client: redis.Redis, jobs: list[JobSpec]) -> None:
    """XADD every job, pipelined, in order."""
    pipe = client.pipeline(transaction=False)
    for job in jobs:
        fields = {"runtime_id": job.runtime_id, "job_id": job.job_id}
        if job.op == "stop":
            pipe.xadd(STOP_STREAM, fields | {"reason": "requested"})
        else:
            pipe.xadd(START_STREAM, fields)
    pipe.execute()


class PacedProducer(threading.Thread):
    """Keeps one job in flight per runtime: a runtime's next job is added when its
    last one is answered (or after `stall_s` without an answer), so nearly every
    job finds its runtime in the state it changes and has an effect to make."""

    def __init__(self, client: redis.Redis, jobs: list[JobSpec], stall_s: float = 10.0) -> None:
        super().__init__(name="paced-producer", daemon=True)
        self.client = client
        self.stall_s = stall_s
        self.queues: dict[str, deque[JobSpec]] = {}
        for job in jobs:
            self.queues.setdefault(job.runtime_id, deque()).append(job)
        self.current: dict[str, tuple[str, float]] = {}
        self.submitted = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._produce()
        except BaseException as exc:
            self.error = exc

    def _produce(self) -> None:
        last_id = "0-0"
        self._submit(set(self.queues))
        while self.current:
            try:
                read = self.client.xread({RESULTS_STREAM: last_id}, count=1000, block=200)
            except (redis.RedisError, OSError):
                time.sleep(0.2)
                read = []
            ready: set[str] = set()
            for _, entries in read:
                for entry_id, fields in entries:
                    last_id = entry_id
                    rid = fields.get("runtime_id", "")
                    if self.current.get(rid, ("",))[0] == fields.get("job_id"):
                        ready.add(rid)
            now = time.monotonic()
            ready |= {rid for rid, (_, t) in self.current.items() if now - t > self.stall_s}
            self._submit(ready)

    def _submit(self, runtime_ids: set[str]) -> None:
        batch = []
        for rid in sorted(runtime_ids):
            queue = self.queues.get(rid)
            if queue:
                batch.append(queue[0])
            else:
                self.current.pop(rid, None)
        while batch:
            try:
                submit_jobs(self.client, batch)
                break
            except (redis.RedisError, OSError):
                time.sleep(0.2)  # Redis restarting: add them again (same job ids)
        now = time.monotonic()
        for job in batch:
            self.queues[job.runtime_id].popleft()
            self.current[job.runtime_id] = (job.job_id, now)
        self.submitted += len(batch)


def job_results(client: redis.Redis) -> dict[str, list[Answer]]:
    """Every result on runtime:job_results, by job_id (a redelivery may repeat one)."""
    found: dict[str, list[Answer]] = {}
    last = "-"
    while True:
        page = client.xrange(RESULTS_STREAM, min=last, count=5000)
        if last != "-":
            page = page[1:]
        if not page:
            return found
        for _, fields in page:
            answer = Answer(
                fields.get("outcome", ""), fields.get("error_code", ""), fields.get("status", "")
            )
            found.setdefault(fields.get("job_id", ""), []).append(answer)
        last = page[-1][0]


@dataclass
class RestClients:
    """`workers` threads, each owning some runtimes, each calling stop then start
    then stop ... with a fresh Idempotency-Key per operation, and retrying that
    same key on a lost connection, 5xx or `conflict` until a final answer."""

    cluster: Cluster
    runtime_ids: list[str]
    operations: int
    workers: int = 8
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[JobSpec] = field(default_factory=list)
    retries: int = 0
    done: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.calls = interleaved_jobs(self.runtime_ids, self.operations, prefix="rest")

    def run(self, while_running: Callable[[], None]) -> None:
        """Run the clients to the end; `while_running` is called meanwhile (the fault)."""
        shards: list[list[JobSpec]] = [[] for _ in range(self.workers)]
        owner = {rid: i % self.workers for i, rid in enumerate(self.runtime_ids)}
        for call in self.calls:
            shards[owner[call.runtime_id]].append(call)
        threads = [threading.Thread(target=self._client, args=(shard,)) for shard in shards]
        for thread in threads:
            thread.start()
        try:
            while_running()
        finally:
            for thread in threads:
                thread.join()

    def _client(self, calls: list[JobSpec]) -> None:
        with httpx.Client(timeout=30) as http:
            for call in calls:
                answer = self._call_until_final(http, call)
                with self._lock:
                    self.done += 1
                    if answer is not None:
                        self.answers[call.job_id] = [answer]

    def _call_until_final(self, http: httpx.Client, call: JobSpec) -> Answer | None:
        deadline = time.monotonic() + REST_OP_DEADLINE_S
        body = {"reason": "requested"} if call.op == "stop" else {}
        while time.monotonic() < deadline:
            try:
                reply = http.post(
                    f"{self.cluster.serve.url}/v1/runtimes/{call.runtime_id}/{call.op}",
                    json=body,
                    headers={
                        "Authorization": f"Bearer {self.cluster.serve.admin_key}",
                        "Idempotency-Key": call.job_id,
                    },
                )
            except (httpx.HTTPError, OSError):
                self._retried()
                continue
            answer = _answer_of(reply)
            if reply.status_code >= 500 or answer.error_code == "conflict":
                self._retried()
                continue
            return answer
        return None

    def _retried(self) -> None:
        with self._lock:
            self.retries += 1
        time.sleep(0.2)


def _answer_of(reply: httpx.Response) -> Answer:
    try:
        body = reply.json()
    except ValueError:
        return Answer("failure", f"http_{reply.status_code}")
    if reply.is_success:
        return Answer(body.get("outcome", ""), body.get("error_code") or "")
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code", "") if isinstance(error, dict) else ""
    return Answer("failure", code or f"http_{reply.status_code}")
