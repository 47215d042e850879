"""Admission: whether a caller may create, start or patch a runtime with a spec.

Three gates, in order:
1. document limits (size, depth, valid Unicode) for every caller -> invalid_request;
2. the team's policy, for a restricted caller (a team key over REST) -> forbidden;
3. the team's quotas, for every door (REST and streams) -> quota_exceeded:
   `max_runtimes` when a record is added, `max_running` when a runtime that is
   not running yet is started (start, restart of a stopped one, create+start).

Quotas are counted, then acted on: concurrent creates of one team may each see
the count below the quota and overshoot it by at most the number in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runplane.domain.documents import InvalidDocument, check_spec
from runplane.domain.errors import ErrorCode
from runplane.domain.policy import TeamPolicy
from runplane.domain.policy_rules import PRESENT_STATUSES, RUNNING_STATUSES, spec_refusal
from runplane.domain.snapshots import SNAPSHOT_SPEC_KEY
from runplane.ports.lifecycle import RuntimeStore
from runplane.ports.snapshots import SnapshotStore
from runplane.ports.team_policies import TeamPolicyStore


@dataclass(frozen=True, slots=True)
class Refusal:
    code: ErrorCode
    message: str


@dataclass(frozen=True, slots=True)
class Admittance:
    """What is asked, for one team: a spec to run (normalised by `driver`), and
    whether the call adds a record or brings a runtime up."""

    team_id: str
    driver: str = ""
    spec: dict[str, Any] | None = None
    restricted: bool = False
    """A team key: `spec` must pass the team policy."""
    adds_record: bool = False
    starts: bool = False
    counts_quota: bool = True
    """False for runplane's own callers (reconciler, health): only doors count."""


def document_problem(spec: object) -> str | None:
    """Why a spec document breaks the limits every caller is held to, or None."""
    try:
        check_spec(spec)
    except InvalidDocument as exc:
        return f"spec: {exc}"
    return None


class Admission:
    def __init__(
        self,
        policies: TeamPolicyStore,
        runtimes: RuntimeStore,
        *,
        runs_as_root: bool,
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self.policies = policies
        self.runtimes = runtimes
        self.snapshots = snapshots
        self.runs_as_root = runs_as_root
        """Runtimes run as root: team process runtimes and exec probes are refused."""

    async def check(self, ask: Admittance) -> Refusal | None:
        """The refusal of `ask`, or None when it may go ahead."""
        if ask.spec is not None and ask.spec.get(SNAPSHOT_SPEC_KEY) is not None:
            refusal = await self._snapshot_refusal(ask, ask.spec[SNAPSHOT_SPEC_KEY])
            if refusal is not None:
                return refusal
        held_spec = ask.spec if ask.restricted else None
        checks_quota = ask.counts_quota and (ask.adds_record or ask.starts)
        if held_spec is None and not checks_quota:
            return None  # nothing a policy could refuse (a stop): no policy read
        policy = await self.policies.get(ask.team_id)
        if held_spec is not None:
            problem = spec_refusal(policy, ask.driver, held_spec, runs_as_root=self.runs_as_root)
            if problem:
                return Refusal(ErrorCode.FORBIDDEN, problem)
        if checks_quota and policy is not None:
            return await self._quota_refusal(ask, policy)
        return None

    async def _snapshot_refusal(self, ask: Admittance, snapshot_id: str) -> Refusal | None:
        """Whoever asks, a runtime starts only from a snapshot of its own team and
        driver: an id of another team's is as unknown as one that never was."""
        snapshot = await self.snapshots.get(snapshot_id) if self.snapshots is not None else None
        if snapshot is None or snapshot.team_id != ask.team_id:
            return Refusal(ErrorCode.INVALID_REQUEST, f"spec.snapshot: no snapshot {snapshot_id!r}")
        if snapshot.driver != ask.driver:
            return Refusal(
                ErrorCode.INVALID_REQUEST,
                f"spec.snapshot: {snapshot_id!r} is a {snapshot.driver} snapshot",
            )
        return None

    async def _quota_refusal(self, ask: Admittance, policy: TeamPolicy) -> Refusal | None:
        if ask.adds_record and policy.max_runtimes is not None:
            present = await self.runtimes.count_for_team(ask.team_id, PRESENT_STATUSES)
            if present >= policy.max_runtimes:
                return Refusal(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"quota max_runtimes: team {ask.team_id!r} has {present} runtimes "
                    f"of {policy.max_runtimes}; remove one first",
                )
        if ask.starts and policy.max_running is not None:
            running = await self.runtimes.count_for_team(ask.team_id, RUNNING_STATUSES)
            if running >= policy.max_running:
                return Refusal(
                    ErrorCode.QUOTA_EXCEEDED,
                    f"quota max_running: team {ask.team_id!r} has {running} running runtimes "
                    f"of {policy.max_running}; stop one first",
                )
        return None
