"""The team policy body (domain/policy.py): what a team key may run, its quotas."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from runplane.domain.policy import MAX_QUOTA, MAX_TEMPLATES, TeamPolicy


class TeamPolicyBody(BaseModel):
    """Every field is optional; a quota left out is unlimited. The rules the
    shapes cannot say (an absolute executable, "..." only last) answer 400 too."""

    model_config = ConfigDict(extra="forbid", strict=True)

    commands: list[list[str]] = Field(
        default_factory=list,
        max_length=MAX_TEMPLATES,
        description="argv templates: one fnmatch pattern per argument, the executable "
        'first (an absolute path); a final "..." allows any further arguments',
    )
    images: list[str] = Field(
        default_factory=list,
        max_length=MAX_TEMPLATES,
        description='docker image patterns (fnmatch), e.g. "docker.io/library/nginx:*"',
    )
    networks: list[str] = Field(
        default_factory=list,
        max_length=MAX_TEMPLATES,
        description='docker networks the team may join besides "none" and "bridge"',
    )
    max_runtimes: int | None = Field(default=None, ge=0, le=MAX_QUOTA)
    max_running: int | None = Field(default=None, ge=0, le=MAX_QUOTA)


class TeamPolicyOut(TeamPolicyBody):
    team_id: str

    @classmethod
    def of(cls, team_id: str, policy: TeamPolicy) -> TeamPolicyOut:
        return cls(team_id=team_id, **policy.to_document())
