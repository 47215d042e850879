"""Team policies: an admin sets what a team's keys may run and its quotas; a
team key may read its own team's policy (so it knows what it may run)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from runplane.api.auth import AdminKey, Context, Key
from runplane.api.errors import ApiError
from runplane.api.routes.operations import ERRORS
from runplane.api.schemas.teams import TeamPolicyBody, TeamPolicyOut
from runplane.domain.documents import TEAM_ID_PATTERN, is_valid_team_id
from runplane.domain.errors import ErrorCode
from runplane.domain.policy import InvalidPolicy, policy_from_document
from runplane.ports.team_policies import TeamPolicyStore

router = APIRouter(prefix="/v1/teams", tags=["teams"])


def _policies(ctx: Context) -> TeamPolicyStore:
    if ctx.policies is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "team policies are not configured")
    return ctx.policies


def _team(team_id: str) -> str:
    if not is_valid_team_id(team_id):
        raise ApiError(ErrorCode.INVALID_REQUEST, f"team_id must match {TEAM_ID_PATTERN.pattern}")
    return team_id


@router.get(
    "/{team_id}/policy",
    response_model=TeamPolicyOut,
    responses=ERRORS,
    operation_id="get_team_policy",
)
async def get_policy(team_id: str, ctx: Context, key: Key) -> TeamPolicyOut:
    """404 when the team has none (it may run nothing), or for another team's key."""
    if not key.admin and team_id != key.team_id:
        raise ApiError(ErrorCode.NOT_FOUND, "no policy for this team")
    policy = await _policies(ctx).get(_team(team_id))
    if policy is None:
        raise ApiError(ErrorCode.NOT_FOUND, "no policy for this team: its keys may run nothing")
    return TeamPolicyOut.of(team_id, policy)


@router.put(
    "/{team_id}/policy",
    response_model=TeamPolicyOut,
    responses=ERRORS,
    operation_id="set_team_policy",
)
async def put_policy(
    team_id: str, body: TeamPolicyBody, ctx: Context, _: AdminKey
) -> TeamPolicyOut:
    """Set or replace the team's whole policy."""
    try:
        policy = policy_from_document(body.model_dump())
    except InvalidPolicy as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
    await _policies(ctx).put(_team(team_id), policy)
    return TeamPolicyOut.of(team_id, policy)


@router.delete(
    "/{team_id}/policy", status_code=204, responses=ERRORS, operation_id="delete_team_policy"
)
async def delete_policy(team_id: str, ctx: Context, _: AdminKey) -> Response:
    """The team's keys may run nothing again; 404 when it had no policy."""
    if not await _policies(ctx).delete(_team(team_id)):
        raise ApiError(ErrorCode.NOT_FOUND, "no policy for this team")
    return Response(status_code=204)
