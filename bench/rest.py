"""REST stop/start: `runplane serve` against a bare FastAPI app doing the same I/O.

    .venv/bin/python bench/rest.py [--database sqlite|postgres|both] [--seconds 8]
        [--connections 1,16] [--repeat 3] [--json] [--profile DIR] [--set NAME=VALUE]

Both servers run side by side in one run, each in a child process with its own
redis-server (tests/support), on SQLite under a temporary dir or, with
--database postgres, on databases of one throwaway PostgreSQL cluster:

- runplane: a real `runplane serve` (bench/rest_serve.py: every worker, the
  same uvicorn, the in-memory driver in place of the process driver, so the
  control plane is what is measured); a team key (not admin) and one runtime
  per connection, created over REST;
- baseline: bench/rest_baseline.py, a bare FastAPI app under the same uvicorn
  settings doing a stop/start's I/O: key read, lease SET NX PX, two CAS
  transactions with op-log and outbox rows, release.

Each phase drives every connection (one runtime each, so no lease is ever
contended) through alternating stop and start requests for --seconds, with a
minimal keep-alive HTTP/1.1 client (so the client's own CPU is small). The
phases alternate runplane and baseline. Server CPU is the server process's
user + system time (psutil, every thread) from the phase's start to its end
plus a short drain, so the work a request sets off in the background (outbox
relay, webhook matching, health) counts too. Printed: req/s, CPU per request,
p50/p99 latency, and the ratios runplane/baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support: the throwaway servers

import httpx  # noqa: E402
import psutil  # noqa: E402
from tests.support.postgres import PostgresServer  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402
from tests.support.serve import free_port  # noqa: E402

TEAM = "bench"
BASELINE_KEY = "rp_" + "b" * 43
DRAIN_S = 0.5
"""After a phase, how long its background work (outbox relay, webhooks) is
given before the CPU is read again."""
IDLE_S = 2.0


@dataclass
class Phase:
    system: str
    connections: int
    requests: int
    errors: int
    seconds: float
    cpu_s: float
    p50_ms: float
    p99_ms: float
    idle_cpu_pct: float
    """The server's CPU over IDLE_S with no request, just before the phase (% of a core)."""
    cores_stolen: float = 0.0
    """CPU the host gave other guests while this machine's virtual cores wanted
    it, over the phase, in cores (0 on bare metal): a slow phase with steal is
    the host's, not the server's."""

    @property
    def req_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_req(self) -> float:
        return 1000 * self.cpu_s / max(1, self.requests)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "req_per_s": round(self.req_per_s, 1),
            "cpu_ms_per_req": round(self.cpu_ms_per_req, 3),
            "busy_cpu_ms_per_req": round(self.busy_cpu_ms_per_req, 3),
        }

    @property
    def busy_cpu_ms_per_req(self) -> float:
        """CPU per request less what the server burns idle over the same time."""
        idle_s = self.idle_cpu_pct / 100 * self.seconds
        return 1000 * max(0.0, self.cpu_s - idle_s) / max(1, self.requests)


class Server:
    """A child process serving HTTP on `port`; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.name, self.port, self.log = name, port, log
        with log.open("ab") as out:
            self.process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.process.pid)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready:\n{self.log.read_text()[-3000:]}")

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def drive(
    port: int, key: str, runtime_ids: list[str], seconds: float
) -> tuple[list[float], int]:
    """Each runtime on its own keep-alive connection, alternating stop and start."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def one(runtime_id: str) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        requests = [
            (
                f"POST /v1/runtimes/{runtime_id}/{op} HTTP/1.1\r\nHost: bench\r\n"
                f"Authorization: Bearer {key}\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            for op in ("stop", "start")
        ]
        turn = 0
        try:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                writer.write(requests[turn % 2])
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                latencies.append((time.perf_counter() - began) * 1000)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
                    if errors <= 3:
                        print(
                            f"  {head.split(b' ', 2)[1].decode()} {body[:200]!r}", file=sys.stderr
                        )
                turn += 1
        finally:
            writer.close()

    await asyncio.gather(*(one(r) for r in runtime_ids))
    return latencies, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def measure(
    server: Server, key: str, runtime_ids: list[str], seconds: float, spy: str | None = None
) -> Phase:
    asyncio.run(drive(server.port, key, runtime_ids, seconds=0.0))  # connect, one request each
    asyncio.run(drive(server.port, key, runtime_ids[:1], seconds=0.3))
    time.sleep(DRAIN_S)
    idle_before = server.cpu_s()
    time.sleep(IDLE_S)
    idle_pct = 100 * (server.cpu_s() - idle_before) / IDLE_S
    recorder = None
    if spy:  # py-spy's raw (collapsed) stacks of the server, every thread
        argv = ["py-spy", "record", "-p", str(server.process.pid), "-f", "raw", "-o", spy]
        argv += ["--threads", "--gil", "-r", "200", "-d", str(int(seconds))]
        recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu_before, began = server.cpu_s(), time.perf_counter()
    stolen_before = psutil.cpu_times().steal
    latencies, errors = asyncio.run(drive(server.port, key, runtime_ids, seconds))
    elapsed = time.perf_counter() - began
    stolen = psutil.cpu_times().steal - stolen_before
    time.sleep(DRAIN_S)
    if recorder is not None:
        recorder.wait()
    cpu = server.cpu_s() - cpu_before
    return Phase(
        server.name,
        len(runtime_ids),
        len(latencies),
        errors,
        round(elapsed, 3),
        round(cpu, 3),
        round(percentile(latencies, 0.5), 2),
        round(percentile(latencies, 0.99), 2),
        round(idle_pct, 1),
        round(stolen / elapsed, 2),
    )


def start_runplane(
    stack: contextlib.ExitStack,
    tmp: Path,
    redis_url: str,
    database_url: str | None,
    runtimes: int,
    profile: str | None,
    src: str | None = None,
    extra: dict[str, str] | None = None,
) -> tuple[Server, str]:
    port = free_port()
    data_dir = tmp / "runplane"
    settings = {
        "DATA_DIR": str(data_dir),
        "PORT": str(port),
        "REDIS_URL": redis_url,
        "RUNTIME_USER": "nobody",  # no process runs; team keys need a non-root user
        "HOST_ID": f"bench-{port}",
        # The limiter still runs (its Redis call counts); it must not refuse the bench.
        "RATE_LIMIT_PER_S": "1000000",
        "RATE_LIMIT_BURST": "1000000",
    }
    if database_url:
        settings["DATABASE_URL"] = database_url
    settings |= extra or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
    env |= {f"RUNPLANE_{k}": v for k, v in settings.items()}
    env["PYTHONPATH"] = src or str(ROOT / "src")
    env["BENCH_RUNPLANE_SRC"] = src or ""
    argv = [sys.executable, str(ROOT / "bench" / "rest_serve.py")]
    if profile:
        argv += ["--profile", profile]
    server = Server("runplane", argv, env, port, tmp / "runplane.log")
    stack.callback(server.stop)
    server.wait_ready()
    admin = (data_dir / "admin.key").read_text().strip()
    with httpx.Client(base_url=server.url, timeout=60) as http:
        made = http.post(
            "/v1/keys", json={"team_id": TEAM}, headers={"Authorization": f"Bearer {admin}"}
        )
        made.raise_for_status()
        key = made.json()["key"]
        allowed = {"commands": [["/bin/true"]]}
        http.put(
            f"/v1/teams/{TEAM}/policy", json=allowed, headers={"Authorization": f"Bearer {admin}"}
        ).raise_for_status()
        for i in range(runtimes):
            body = {"runtime_id": f"{TEAM}:rest-{i:03d}", "spec": {"command": ["/bin/true"]}}
            created = http.post(
                "/v1/runtimes", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            if created.status_code != 201:
                raise RuntimeError(f"create failed: {created.status_code} {created.text}")
    return server, key


def start_baseline(
    stack: contextlib.ExitStack, tmp: Path, redis_url: str, database_url: str, runtimes: int
) -> Server:
    port = free_port()
    argv = [
        sys.executable,
        str(ROOT / "bench" / "rest_baseline.py"),
        *("--database", database_url, "--redis", redis_url, "--port", str(port)),
        *("--runtimes", str(runtimes), "--key", BASELINE_KEY),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPLANE_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    server = Server("baseline", argv, env, port, tmp / "baseline.log")
    stack.callback(server.stop)
    server.wait_ready()
    return server


def run_once(database: str, args: argparse.Namespace, repeat: int) -> list[Phase]:
    runtimes = max(args.connections)
    ids = {
        "runplane": [f"{TEAM}:rest-{i:03d}" for i in range(runtimes)],
        "baseline": [f"rest-{i:03d}" for i in range(runtimes)],
    }
    phases: list[Phase] = []
    with (
        tempfile.TemporaryDirectory(prefix="rest-bench-") as tmp_name,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        urls: dict[str, str | None] = {"runplane": None, "baseline": f"sqlite:///{tmp}/baseline.db"}
        if database == "postgres":
            postgres = PostgresServer.start(tmp / "postgres")
            stack.callback(postgres.stop)
            urls = {name: postgres.create_database(name) for name in ("runplane", "baseline")}
        redis_servers = {}
        for name in ("runplane", "baseline"):
            redis_servers[name] = RedisServer.start(tmp / f"redis-{name}")
            stack.callback(redis_servers[name].stop)
        profile = None
        if args.profile:
            profile = str(Path(args.profile).resolve() / f"runplane-{database}-{repeat}.prof")
        runplane, key = start_runplane(
            stack,
            tmp,
            redis_servers["runplane"].url,
            urls["runplane"],
            runtimes,
            profile,
            args.runplane_src,
            dict(item.split("=", 1) for item in args.set),
        )
        baseline_url = urls["baseline"]
        assert baseline_url is not None
        baseline = start_baseline(stack, tmp, redis_servers["baseline"].url, baseline_url, runtimes)
        for connections in args.connections:
            for server, token in ((runplane, key), (baseline, BASELINE_KEY)):
                spy = None
                if args.py_spy and server.name == "runplane":
                    spy = f"{args.py_spy}/runplane-{database}-c{connections}-{repeat}.txt"
                phase = measure(server, token, ids[server.name][:connections], args.seconds, spy)
                phases.append(phase)
                if not args.json:
                    print(
                        f"  {database:8} {phase.system:9} c={connections:<3} "
                        f"{phase.req_per_s:8.1f} req/s {phase.cpu_ms_per_req:7.3f} ms CPU/req "
                        f"p50 {phase.p50_ms:7.2f} ms p99 {phase.p99_ms:7.2f} ms "
                        f"idle {phase.idle_cpu_pct:4.1f}% errors {phase.errors} "
                        f"stolen {phase.cores_stolen:.2f} cores",
                        flush=True,
                    )
    return phases


def ratios(phases: list[Phase]) -> dict[str, float]:
    by = {(p.system, p.connections): p for p in phases}
    out: dict[str, float] = {}
    for (system, connections), p in by.items():
        if system != "runplane" or ("baseline", connections) not in by:
            continue
        b = by[("baseline", connections)]
        out[f"cpu_per_req_c{connections}"] = round(p.cpu_ms_per_req / b.cpu_ms_per_req, 2)
        out[f"p99_c{connections}"] = round(p.p99_ms / b.p99_ms, 2)
        out[f"req_per_s_c{connections}"] = round(p.req_per_s / b.req_per_s, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", default="1,16")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", help="a directory: runplane's serve runs under cProfile")
    parser.add_argument("--py-spy", help="a directory: py-spy records runplane's phases there")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a runplane setting for the run, without RUNPLANE_ (OUTBOX_BATCH_WINDOW_S=0)",
    )
    parser.add_argument("--runplane-rev", help="measure this git revision's runplane instead")
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",")]
    args.runplane_src = None
    with contextlib.ExitStack() as stack:
        if args.runplane_rev:
            unpacked = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rest-src-")))
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.runplane_rev, "src"],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(unpacked)], input=archive, check=True)
            args.runplane_src = str(unpacked / "src")
        run_all(args)


def run_all(args: argparse.Namespace) -> None:
    for directory in (args.profile, args.py_spy):
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
    databases = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    report: dict[str, Any] = {}
    for database in databases:
        runs: list[dict[str, Any]] = []
        for repeat in range(args.repeat):
            phases = run_once(database, args, repeat)
            stolen = max(p.cores_stolen for p in phases)
            runs.append(
                {
                    "phases": [p.as_dict() for p in phases],
                    "ratios": ratios(phases),
                    "cores_stolen_max": stolen,
                }
            )
            if not args.json:
                print(
                    f"  {database} run {repeat + 1}: ratios {runs[-1]['ratios']}"
                    f" (the host stole up to {stolen:.2f} cores in a phase)",
                    flush=True,
                )
        spread = {
            name: {
                "min": min(r["ratios"][name] for r in runs),
                "median": statistics.median(r["ratios"][name] for r in runs),
                "max": max(r["ratios"][name] for r in runs),
            }
            for name in runs[0]["ratios"]
        }
        report[database] = {"runs": runs, "ratios": spread}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for database, result in report.items():
            print(f"{database}: runplane / baseline (min / median / max over {args.repeat} runs)")
            for name, s in result["ratios"].items():
                print(f"  {name:18} {s['min']:6.2f} {s['median']:6.2f} {s['max']:6.2f}")


if __name__ == "__main__":
    main()
