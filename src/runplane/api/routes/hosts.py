"""Hosts (admin keys only; a team key learns of hosts only the `host_id` its
own runtimes carry): list, read, and drain / cordon / uncordon.

Drain here sets the status only: placement skips a draining host, and moving
its runtimes off (stop + start elsewhere, by their policy) comes with placement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from runplane.api.auth import AdminKey, Context
from runplane.api.errors import ApiError
from runplane.api.schemas.errors import ErrorBody
from runplane.api.schemas.hosts import HostListOut, HostOut
from runplane.domain.errors import ErrorCode
from runplane.domain.hosts import (
    HostAction,
    HostConflict,
    HostStatus,
    InvalidHost,
    is_valid_host_id,
    parse_labels,
)
from runplane.domain.lifecycle_events import Actor
from runplane.services.hosts.registry import HostActionRefused, HostNotFound, HostRegistry

router = APIRouter(prefix="/v1/hosts", tags=["hosts"])

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 500, 503)
}
_ACTION_ERRORS: dict[int | str, dict[str, object]] = {
    **_ERRORS,
    409: {
        "model": ErrorBody,
        "description": "`invalid_state`: the host is down; `conflict`: it kept changing",
    },
}


def _hosts(ctx: Context) -> HostRegistry:
    if ctx.hosts is None:
        raise ApiError(ErrorCode.SERVICE_UNAVAILABLE, "hosts are not configured")
    return ctx.hosts


def _host_id(host_id: str) -> str:
    # An id no host can have is simply not found: the path is not a place to lecture.
    if not is_valid_host_id(host_id):
        raise ApiError(ErrorCode.NOT_FOUND, "no such host")
    return host_id


@router.get("", response_model=HostListOut, responses=_ERRORS)
async def list_hosts(
    ctx: Context,
    _: AdminKey,
    status: HostStatus | None = None,
    label: Annotated[
        list[str] | None,
        Query(max_length=32, description="`key=value`; every one given must match"),
    ] = None,
) -> HostListOut:
    """Every host, by host_id, with `status` and all of the `label`s given."""
    try:
        labels = parse_labels(",".join(label or []))
    except InvalidHost as exc:
        raise ApiError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
    found = await _hosts(ctx).list(status=status, labels=labels)
    return HostListOut(hosts=[HostOut.of(host) for host in found])


@router.get("/{host_id}", response_model=HostOut, responses=_ERRORS)
async def get_host(host_id: str, ctx: Context, _: AdminKey) -> HostOut:
    """One host: its status, labels, capacity and last heartbeat. Admin only."""
    try:
        return HostOut.of(await _hosts(ctx).get(_host_id(host_id)))
    except HostNotFound as exc:
        raise ApiError(ErrorCode.NOT_FOUND, "no such host") from exc


async def _act(ctx: Context, host_id: str, action: HostAction, key_id: str) -> HostOut:
    try:
        host = await _hosts(ctx).act(_host_id(host_id), action, actor=Actor("api_key", key_id))
    except HostNotFound as exc:
        raise ApiError(ErrorCode.NOT_FOUND, "no such host") from exc
    except HostActionRefused as exc:
        raise ApiError(ErrorCode.INVALID_STATE, str(exc)) from exc
    except HostConflict as exc:
        raise ApiError(ErrorCode.CONFLICT, str(exc)) from exc
    return HostOut.of(host)


@router.post("/{host_id}/drain", response_model=HostOut, responses=_ACTION_ERRORS)
async def drain_host(host_id: str, ctx: Context, key: AdminKey) -> HostOut:
    """`draining`: no new runtime is placed on it. (Moving its runtimes off is not
    built yet: they run on until stopped.) Refused (409) for a down host."""
    return await _act(ctx, host_id, HostAction.DRAIN, key.key_id)


@router.post("/{host_id}/cordon", response_model=HostOut, responses=_ACTION_ERRORS)
async def cordon_host(host_id: str, ctx: Context, key: AdminKey) -> HostOut:
    """`cordoned`: no new runtime is placed on it; its runtimes stay. 409 if down."""
    return await _act(ctx, host_id, HostAction.CORDON, key.key_id)


@router.post("/{host_id}/uncordon", response_model=HostOut, responses=_ACTION_ERRORS)
async def uncordon_host(host_id: str, ctx: Context, key: AdminKey) -> HostOut:
    """`up` again: placement may use it. 409 if down."""
    return await _act(ctx, host_id, HostAction.UNCORDON, key.key_id)
