"""Agents' heartbeats on Redis: `runplane:host:{<host_id>}:beat` holds the
host's details as JSON and expires by itself; the set `runplane:hosts:beating`
lists who has beaten. Every command touches one key, so one slot (Cluster-safe).

A beat key is written by an agent, so it is not trusted: a beat that is not
clean JSON of a valid host is logged (without its content) and skipped. The
client must keep bytes (`decode_responses=False`): with a decoding client one
non-UTF-8 member of the set would fail every read, and with it every look of
the host monitor."""

from __future__ import annotations

import logging

import redis.asyncio

from runplane.adapters.redis.client import connection_options, unavailable_on_connection_errors
from runplane.adapters.redis.names import HOSTS_BEATING, host_beat_key
from runplane.domain.host_details import HostDetails, details_from_json, details_to_json
from runplane.domain.hosts import InvalidHost, is_valid_host_id

logger = logging.getLogger(__name__)

MAX_MEMBER_BYTES = 128


class RedisHostBeats:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        if connection_options(client).get("decode_responses"):
            raise ValueError("RedisHostBeats needs a client that keeps bytes")
        self._client = client

    async def beat(self, details: HostDetails, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        payload = details_to_json(details.check())
        with unavailable_on_connection_errors("host_beats.beat"):
            await self._client.set(
                host_beat_key(details.host_id), payload, px=max(1, int(ttl_s * 1000))
            )
            await self._client.sadd(HOSTS_BEATING, details.host_id)

    async def read(self) -> dict[str, HostDetails]:
        with unavailable_on_connection_errors("host_beats.read"):
            members = await self._client.smembers(HOSTS_BEATING)
        beating: dict[str, HostDetails] = {}
        for member in members:
            host_id = _text(member)
            if host_id is None or not is_valid_host_id(host_id):
                logger.warning("host beat skipped: invalid host id")
                await self._forget(member)
                continue
            with unavailable_on_connection_errors("host_beats.read"):
                raw = await self._client.get(host_beat_key(host_id))
            if raw is None:
                # Expired: the host stopped beating. A beat landing meanwhile adds
                # it back on its next period; the monitor judges down by age.
                await self._forget(member)
                continue
            try:
                details = details_from_json(raw)
            except InvalidHost as exc:
                logger.warning("host beat skipped", extra={"host_id": host_id, "error": str(exc)})
                continue
            if details.host_id != host_id:
                logger.warning(
                    "host beat skipped: its key names another host", extra={"host_id": host_id}
                )
                continue
            beating[host_id] = details
        return beating

    async def _forget(self, member: str | bytes) -> None:
        with unavailable_on_connection_errors("host_beats.read"):
            await self._client.srem(HOSTS_BEATING, member)


def _text(member: str | bytes) -> str | None:
    if isinstance(member, bytes):
        if len(member) > MAX_MEMBER_BYTES:
            return None
        try:
            return member.decode()
        except UnicodeDecodeError:
            return None
    return member if len(member) <= MAX_MEMBER_BYTES else None
