"""A supervisor searches a program on the runtime's PATH as os.get_exec_path
would (supervisor_spawn._candidates), without that function's warnings
machinery."""

from __future__ import annotations

import os

import pytest

from runplane.adapters.drivers.supervisor_spawn import _candidates


@pytest.mark.parametrize(
    "env",
    [
        {"PATH": "/usr/local/bin:/usr/bin:/bin"},
        {"PATH": "/opt/tools::/bin:"},  # empty entries: the working directory
        {"PATH": ""},
        {"HOME": "/root"},  # no PATH: the default one
    ],
)
def test_the_candidates_are_get_exec_path_s(env: dict[str, str]) -> None:
    expected = [os.path.join(folder, "sh") for folder in os.get_exec_path(env)]
    assert _candidates("sh", env) == expected


def test_a_program_with_a_folder_is_its_only_candidate() -> None:
    assert _candidates("./bin/server", {"PATH": "/usr/bin"}) == ["./bin/server"]
