"""docs/client.md's examples, run as written: every ```python block, in order,
in one namespace, against a real serve found through RUNPLANE_URL and
RUNPLANE_API_KEY as a reader's shell would have them."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import remove_everything
from tests.support.serve import RunplaneServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks() -> list[str]:
    return BLOCK.findall(DOC.read_text())


@pytest.fixture
def docs_serve(tmp_path: Path, redis_url: str) -> Iterator[RunplaneServer]:
    # The webhook example's receiver listens on loopback.
    server = RunplaneServer.launch(
        tmp_path / "data", redis_url=redis_url, webhook_allow_private="true"
    )
    try:
        yield server
    finally:
        remove_everything(server)
        server.stop()


def test_the_examples_in_docs_client_md_run(
    docs_serve: RunplaneServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPLANE_URL", docs_serve.url)
    monkeypatch.setenv("RUNPLANE_API_KEY", docs_serve.admin_key)
    examples = blocks()
    assert len(examples) >= 7
    namespace: dict[str, object] = {"__name__": "docs_client_md"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for number, source in enumerate(examples, 1):
            exec(compile(source, f"docs/client.md python block {number}", "exec"), namespace)
    lines = printed.getvalue().splitlines()
    # What the comments in the doc promise is what was printed.
    assert lines[0].startswith("demo running serve-")
    assert "not_found 404" in lines
    assert "runplane.webhook.test" in lines
    assert "paused" in lines
    assert "runtime.pause demo running -> paused" in lines
