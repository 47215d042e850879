"""Sending a command without a task per send.

redis-py 8.1 bounds each socket write of a connection that has a
`socket_timeout` with `asyncio.wait_for`, which on Python 3.11 wraps the write
in a task of its own and runs it a loop turn later: some 15% of a Redis
command's Python time in serve's profiles, paid on every command runplane
sends (the raw floors in bench/ set no socket timeout and never pay it). The
class below sends the same bytes with the same checks and the same error
mapping, bounding the write with `asyncio.timeout` instead (a timer, no task);
the write itself goes out at once and only a full socket buffer waits.

Commands are packed by hiredis (C) when every argument is text, bytes or an
integer and the encoding is redis-py's default (UTF-8, strict): the same bytes
(tests/unit/test_lean_pack.py) for a fraction of the CPU of redis-py's Python
packing, which builds each argument's header in a loop; an XACK of 100 entry
ids cost ~5 µs per entry in the consumer's profile. Anything else (a float, a
command name with a space in it, another encoding) is packed by redis-py.

The pool applies it to whichever connection class the URL chose (TCP, TLS or
a Unix socket), see `lean_connection_class`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import hiredis
import redis.exceptions
from redis.asyncio.connection import AbstractConnection

_PACKABLE = frozenset({str, bytes, int})
"""Argument types hiredis packs exactly as redis-py's Encoder does (a bool is
an int to hiredis but an error to redis-py: exact types only)."""


def _plain_name(name: object) -> bool:
    """A command name redis-py sends as one argument (it splits "CONFIG GET")."""
    if type(name) is str:
        return " " not in name
    return type(name) is bytes and b" " not in name


class LeanSend:
    """Mixed in before a redis-py connection class; see the module's note."""

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        encoder = self.encoder
        if (
            encoder.encoding == "utf-8"
            and encoder.encoding_errors == "strict"
            and _plain_name(args[0])
            and all(type(arg) in _PACKABLE for arg in args)
        ):
            return [hiredis.pack_command(args)]
        return super().pack_command(*args)  # type: ignore[misc,no-any-return]

    async def send_packed_command(
        self: Any, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if not self.is_connected:
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()
        try:
            if isinstance(command, str):
                command = command.encode()
            if isinstance(command, bytes):
                command = [command]
            self._writer.writelines(command)
            if self.socket_timeout:
                async with asyncio.timeout(self.socket_timeout):
                    await self._writer.drain()
            else:
                await self._writer.drain()
        # From here on, redis-py's own mapping (redis/asyncio/connection.py).
        except TimeoutError:
            await self.disconnect(nowait=True)
            raise redis.exceptions.TimeoutError("Timeout writing to socket") from None
        except OSError as e:
            await self.disconnect(nowait=True)
            if len(e.args) == 1:
                err_no, errmsg = "UNKNOWN", e.args[0]
            else:
                err_no, errmsg = e.args[0], e.args[1]
            raise redis.exceptions.ConnectionError(
                f"Error {err_no} while writing to socket. {errmsg}."
            ) from e
        except BaseException:
            # A write cut short leaves the connection in an unknown state.
            await self.disconnect(nowait=True)
            raise


_LEAN: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def lean_connection_class(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """`base` with LeanSend's send (one class per base, so pools share it)."""
    if issubclass(base, LeanSend):
        return base
    if base not in _LEAN:
        _LEAN[base] = type(f"Lean{base.__name__}", (LeanSend, base), {})
    return _LEAN[base]
