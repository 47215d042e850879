"""What serve and agent import at start-up: the docker client only with a
docker driver (aiodocker and aiohttp were a tenth of every start, issue 15)."""

from __future__ import annotations

import subprocess
import sys


def test_serve_and_agent_import_no_docker_client_without_a_docker_driver() -> None:
    code = (
        "import sys, runplane.bootstrap.serve, runplane.bootstrap.agent, runplane.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiodocker', 'aiohttp')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
