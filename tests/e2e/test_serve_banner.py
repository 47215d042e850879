"""`serve` says where it is once it answers, in a banner on stdout and one
`runplane serving` line, and prints no line per worker, stream or lease."""

from __future__ import annotations

import time

from tests.support.serve import RunplaneServer


def test_serve_prints_its_banner_and_no_start_up_chatter(serve: RunplaneServer) -> None:
    deadline = time.monotonic() + 30
    while "  try        " not in serve.log_path.read_text():
        assert time.monotonic() < deadline, serve.log_path.read_text()
        time.sleep(0.1)
    log = serve.log_path.read_text()
    key = (serve.data_dir / "admin.key").resolve()
    for line in (
        f"  dashboard  {serve.url}/ui",
        f"  API docs   {serve.url}/docs",
        f"  admin key  {key} (the CLI reads it from there)",
        f"  try        RUNPLANE_URL={serve.url} RUNPLANE_DATA_DIR={serve.data_dir.resolve()} "
        'runplane runtime create demo --command "python3 -m http.server 9000" --port 9000',
    ):
        assert line in log.splitlines()
    assert f" is serving on {serve.url}\n" in log
    [serving] = [line for line in log.splitlines() if " runplane serving " in line]
    assert f" url={serve.url} " in serving
    for chatter in ("worker started", "stream consumer started", "leadership taken", "Uvicorn"):
        assert chatter not in log
