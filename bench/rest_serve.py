"""`runplane serve` for the REST benchmark: the real serve, every worker and the
same uvicorn, with the in-memory driver standing in for the process driver.

    RUNPLANE_... python bench/rest_serve.py [--profile FILE]

The only change is the one line of the composition root that builds the
drivers: `build_drivers` returns runplane.testing's InMemoryDriver under the
name `process`, so stop and start cost the control plane and nothing else (no
supervisor, no process). serve itself keeps no such switch: a test-only driver
is not a setting an operator should find. With --profile, serve runs under
cProfile and the stats are written there when it stops (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/rest.py --runplane-src runs another tree's runplane (an earlier commit's).
sys.path.insert(0, os.environ.get("BENCH_RUNPLANE_SRC") or str(ROOT / "src"))

from runplane.bootstrap import assembly  # noqa: E402
from runplane.bootstrap.serve import serve  # noqa: E402
from runplane.config import Settings  # noqa: E402
from runplane.ports.drivers import Driver  # noqa: E402
from runplane.testing.driver import InMemoryDriver  # noqa: E402


def memory_drivers(_settings: Settings, _stack: Any) -> dict[str, Driver]:
    return {"process": InMemoryDriver(name="process")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", help="write cProfile stats here at exit")
    args = parser.parse_args()
    assembly.build_drivers = memory_drivers  # type: ignore[assignment]
    settings = Settings()
    if not args.profile:
        serve(settings)
        return
    profile = cProfile.Profile()
    with contextlib.suppress(SystemExit):
        profile.runcall(serve, settings)
    profile.dump_stats(args.profile)


if __name__ == "__main__":
    main()
