"""Stream trimming that never drops an entry some consumer group still needs.

A policy gives a wanted cut (keep the newest `max_len` entries, or entries
younger than `max_age_ms`; with both, whichever keeps fewer). The cut is then
lowered to the safe bound: no group's oldest pending (delivered, unacknowledged)
entry and no entry after a group's last-delivered id may go. Everything runs in
one Lua script, so no group can deliver, claim or appear between computing the
bound and trimming, and it uses exact `XTRIM MINID`: entries below the bound go,
nothing at or above it does.

Offset-mode readers are not groups: the server cannot know their positions, so
a stream read that way is protected only by a generous policy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis.asyncio

logger = logging.getLogger(__name__)

MAX_LEN_STEP = 1_000
"""Entries a max_len trim looks at per script call: finding the cut point of a
length policy means walking the entries to drop, and a script must stay short
(it blocks the server). A long backlog is trimmed over several calls."""
MAX_CALLS = 100
"""Script calls per `trim`; what is left over goes on the next periodic trim."""

_TRIM_SCRIPT = """
local function less(a, b)
  local ams, aseq = string.match(a, '^(%d+)%-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)%-(%d+)$')
  if #ams ~= #bms then return #ams < #bms end
  if ams ~= bms then return ams < bms end
  if #aseq ~= #bseq then return #aseq < #bseq end
  return aseq < bseq
end

local function incr(digits)
  local i = #digits
  local out = ''
  while i > 0 do
    local d = string.byte(digits, i) - 48
    if d < 9 then
      return string.sub(digits, 1, i - 1) .. string.char(d + 49) .. out
    end
    out = '0' .. out
    i = i - 1
  end
  return '1' .. out
end

local function successor(id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  if seq == '18446744073709551615' then return incr(ms) .. '-0' end
  return ms .. '-' .. incr(seq)
end

local stream = KEYS[1]
local max_len = tonumber(ARGV[1])
local max_age_ms = tonumber(ARGV[2])
local step = tonumber(ARGV[3])
if redis.call('TYPE', stream)['ok'] ~= 'stream' then return {0, '', 0} end

local cut = nil
local more = 0
if max_age_ms >= 0 then
  local now = redis.call('TIME')
  local oldest_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - max_age_ms
  if oldest_ms > 0 then cut = string.format('%d', oldest_ms) .. '-0' end
end
if max_len >= 0 then
  local excess = redis.call('XLEN', stream) - max_len
  if excess > 0 then
    if excess > step then excess = step; more = 1 end
    local dropped = redis.call('XRANGE', stream, '-', '+', 'COUNT', excess)
    local by_len = successor(dropped[#dropped][1])
    if cut == nil or less(cut, by_len) then cut = by_len end
  end
end
if cut == nil then return {0, '', 0} end

for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local name, last_delivered
  for i = 1, #group, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then last_delivered = group[i + 1] end
  end
  local undelivered = successor(last_delivered)
  if less(undelivered, cut) then cut = undelivered; more = 0 end
  local pending = redis.call('XPENDING', stream, name)
  if pending[1] > 0 and less(pending[2], cut) then cut = pending[2]; more = 0 end
end
return {redis.call('XTRIM', stream, 'MINID', cut), cut, more}
"""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How much of a stream to keep; `None` leaves that bound off."""

    max_len: int | None = None
    max_age_ms: int | None = None

    def __post_init__(self) -> None:
        if self.max_len is not None and self.max_len < 0:
            raise ValueError(f"max_len must not be negative, got {self.max_len}")
        if self.max_age_ms is not None and self.max_age_ms < 0:
            raise ValueError(f"max_age_ms must not be negative, got {self.max_age_ms}")


async def trim(client: redis.asyncio.Redis, stream: str, policy: RetentionPolicy) -> int:
    """Trim `stream` by `policy` down to what no group still needs; the number
    of entries removed. A missing stream (or a key of another type) is left alone."""
    if policy.max_len is None and policy.max_age_ms is None:
        return 0
    args = [
        -1 if policy.max_len is None else policy.max_len,
        -1 if policy.max_age_ms is None else policy.max_age_ms,
        MAX_LEN_STEP,
    ]
    removed = 0
    for _ in range(MAX_CALLS):
        reply = await client.eval(_TRIM_SCRIPT, 1, stream, *args)
        count, more = int(reply[0]), int(reply[2])
        removed += count
        if not more or count == 0:
            break
    if removed:
        logger.info("stream trimmed", extra={"stream": stream, "removed": removed})
    return removed
