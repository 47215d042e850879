"""`--dist loadgroup` on pytest 9: put the `xdist_group` into the test id again.

pytest-xdist (3.8) sends a grouped test to one worker by suffixing its id with
`@<group>`, which it writes to `item._nodeid`; pytest 9 keeps the id in
`item._id` and never reads `_nodeid`, so every group was silently ignored and
the Podman tests ran on every worker at once. This plugin, registered by
tests/conftest.py, adds the suffix after xdist's hook, and only where xdist's
did not take (a fixed xdist makes it a no-op).
"""

from __future__ import annotations

import pytest
from _pytest.nodeid import coerce_node_id


class XdistGroupIds:
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if not getattr(config.option, "loadgroup", False):  # set in xdist workers only
            return
        for item in items:
            names = sorted({_group(mark) for mark in item.iter_markers("xdist_group")})
            if names and "@" not in item.nodeid:
                item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(names)}")


def _group(mark: pytest.Mark) -> str:
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
