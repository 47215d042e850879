"""`runplane teams policy set`: the body it sends, from a file or the options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runplane.cli.teams import policy_body


def test_the_options_build_a_whole_policy() -> None:
    body = policy_body(None, ["/bin/sleep *", "/usr/bin/env 'a b' ..."], ["x:*"], [], 3, None)
    assert body == {
        "commands": [["/bin/sleep", "*"], ["/usr/bin/env", "a b", "..."]],
        "images": ["x:*"],
        "networks": [],
        "max_runtimes": 3,
        "max_running": None,
    }


def test_a_file_is_sent_as_written_and_not_mixed_with_options(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"max_running": 2}))
    assert policy_body(path, [], [], [], None, None) == {"max_running": 2}
    with pytest.raises(ValueError, match="not both"):
        policy_body(path, ["/bin/true"], [], [], None, None)
