"""Every attack of issue 12, tried again as a hostile team would, against a real
serve: each gets a clear 4xx (or, on a stream, its result) and changes nothing
else. The attacks and the table live in tests/e2e/hostile.py."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.hostile import arena_on, run_all, table
from tests.support.podman import PodmanService


def test_every_attack_gets_a_clear_answer_and_changes_nothing(
    tmp_path: Path, redis_url: str, podman: PodmanService
) -> None:
    with arena_on(redis_url, tmp_path, podman.url) as arena:
        rows = run_all(arena)
    print("\n" + table(rows))
    failed = [row for row in rows if not row.ok]
    assert failed == [], "\n" + table(rows)
