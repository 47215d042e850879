"""`submission_problem` (domain/jobs.py) refuses at submit time exactly what a
job's consumer would answer with invalid_request (workers/jobs/codec.py),
with the same message."""

from __future__ import annotations

import itertools
import json

import pytest

from runplane.domain.jobs import submission_problem
from runplane.domain.operations import OpKind
from runplane.workers.jobs.codec import MalformedJob, decode_job

CASES = list(itertools.product(OpKind, ["", "idle", "bogus"], [False, True]))


@pytest.mark.parametrize(("op", "reason", "has_spec"), CASES)
def test_the_submit_check_and_the_consumer_agree(op: OpKind, reason: str, has_spec: bool) -> None:
    fields = {"runtime_id": "rt-1", "reason": reason}
    if has_spec:
        fields["spec"] = json.dumps({"command": ["sleep", "1"]})
    problem = submission_problem(op, reason, has_spec)
    if problem is None:
        decode_job(op, f"runtime:{op}_jobs", "1-0", fields)  # accepted: no raise
    else:
        with pytest.raises(MalformedJob) as refused:
            decode_job(op, f"runtime:{op}_jobs", "1-0", fields)
        assert str(refused.value) == problem


def test_the_problems_named() -> None:
    assert submission_problem(OpKind.STOP, "", False) == (
        "stop needs a reason, one of: admin, cancelled, finished, idle, orphaned, requested, "
        "shutdown, ttl_expired"
    )
    assert submission_problem(OpKind.PATCH, "", False) == "patch needs a spec (a JSON object)"
    assert submission_problem(OpKind.PAUSE, "", True) == "pause takes no spec"
    assert submission_problem(OpKind.START, "", True) is None
