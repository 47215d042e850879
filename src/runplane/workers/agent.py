"""The agent's loop: execute the driver calls addressed to its host, exactly once,
and answer them (docs/hosts.md).

Calls of one runtime run one at a time, in the order they were sent; calls of
different runtimes run side by side (up to `max_calls`). A call that changes
something is fenced before it acts (its lease token must still hold the runtime,
no newer record version may have been applied) and its answer is kept, so a
repeated call_id replays it. Since this agent is the only one acting on its
host, and a runtime's calls are serialised here, what a call does happens as if
at its check: a newer lease holder's call waits for it, then is checked itself.

On start-up the calls a killed agent read and never acknowledged are read
again: one it had claimed is answered `interrupted` (whether it took effect is
unknown: it is never run twice); one it had not yet claimed is run.

Hostile input: an entry that is not a call is answered `malformed` when it names
a usable call_id, logged, and acknowledged; no entry stops the loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from runplane.domain.connection_calls import items_from_spec
from runplane.domain.errors import ContainerGone, DriverError, InvalidSpec, SpecRefused
from runplane.domain.host_calls import (
    AnswerError,
    CallOp,
    HostCall,
    MalformedCall,
    error_answer,
    info_to_wire,
    ok_answer,
    parse_call,
    salvage_call_id,
    started_to_wire,
)
from runplane.domain.runtime_output import (
    BadOutputQuery,
    chunk_to_wire,
    query_from_wire,
    window_of,
    window_to_wire,
)
from runplane.ports.connections import ConnectionCounter
from runplane.ports.drivers import Driver
from runplane.ports.host_calls import Admission, Delivery, HostCallInbox
from runplane.streams.parked import ParkedReads

logger = logging.getLogger(__name__)

READ_BLOCK_MS = 2000
ERROR_PAUSE_S = 1.0


class _RuntimeLocks:
    """One lock per runtime, dropped once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def run(self, key: str, work: Callable[[], Any]) -> Any:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await work()
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class AgentLoop:
    def __init__(
        self,
        inbox: HostCallInbox,
        drivers: Mapping[str, Driver],
        *,
        max_calls: int = 32,
        now: Callable[[], float] = time.time,
        connections: ConnectionCounter | None = None,
    ) -> None:
        self.inbox = inbox
        self.drivers = drivers
        self.connections = connections
        """Counts connections for the `connections` call (idle rule); None: refused."""
        self.max_calls = max_calls
        self._now = now
        self._slots = asyncio.Semaphore(max_calls)
        self._locks = _RuntimeLocks()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._parked = ParkedReads()  # a stop ends an idle read at once
        self._recheck_pending = True
        self.ready = asyncio.Event()
        """Set once the calls a previous agent left have been taken up."""

    def __repr__(self) -> str:
        return "AgentLoop"

    def request_stop(self) -> None:
        self._stopping.set()
        self._parked.stop()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    await self._step()
                except Exception:
                    logger.warning("agent read failed", exc_info=True)
                    self._recheck_pending = True
                    await asyncio.sleep(ERROR_PAUSE_S)
        finally:
            if self._in_flight:
                await asyncio.wait(list(self._in_flight.values()))

    async def _step(self) -> None:
        if self._recheck_pending:
            await self.inbox.ensure_group()
            await self._take_up_pending()
            self._recheck_pending = False
            self.ready.set()
        count = min(16, self.max_calls)
        read = await self._parked.read(lambda: self.inbox.read(count, READ_BLOCK_MS, after=None))
        for delivery in read or ():
            await self._dispatch(delivery)

    async def _take_up_pending(self) -> None:
        after = "0"
        while True:
            page = await self.inbox.read(64, 0, after=after)
            if not page:
                return
            for delivery in page:
                if delivery.entry_id not in self._in_flight:
                    await self._dispatch(delivery)
            after = page[-1].entry_id

    async def _dispatch(self, delivery: Delivery) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._handle(delivery), name=f"call {delivery.entry_id}")
        self._in_flight[delivery.entry_id] = task

    async def _handle(self, delivery: Delivery) -> None:
        try:
            answer = await self._answer_of(delivery)
            if answer is not None:
                call_id, text = answer
                await self.inbox.answer(call_id, text)
            await self.inbox.ack(delivery.entry_id)
        except Exception:
            # Redis failed: the entry stays pending and is taken up again; its
            # state in the fence (claimed, or its answer) decides what happens.
            logger.warning("call not answered", extra={"entry": delivery.entry_id}, exc_info=True)
            self._recheck_pending = True
        finally:
            del self._in_flight[delivery.entry_id]
            self._slots.release()

    async def _answer_of(self, delivery: Delivery) -> tuple[str, str] | None:
        """(call_id, answer), or None for an entry nobody can be answered for."""
        if delivery.raw is None:
            return None  # deleted from the stream: nothing left to do
        try:
            call = parse_call(delivery.raw)
        except MalformedCall as exc:
            call_id = salvage_call_id(delivery.raw)
            logger.warning("malformed call", extra={"entry": delivery.entry_id, "why": str(exc)})
            return (
                None
                if call_id is None
                else (call_id, error_answer(AnswerError.MALFORMED, str(exc)))
            )
        if not call.fenced:
            return call.call_id, await self._execute(call)
        answer = await self._locks.run(call.runtime_id, lambda: self._fenced(call))
        return call.call_id, answer

    async def _fenced(self, call: HostCall) -> str:
        if self._now() > call.deadline:
            return error_answer(AnswerError.EXPIRED, "the caller stopped waiting; not applied")
        admission, detail = await self.inbox.admit(call)
        if admission is Admission.REPLAY:
            return detail
        if admission is Admission.FENCED:
            logger.info("call fenced", extra=_fields(call) | {"why": detail})
            return error_answer(AnswerError.FENCED, detail)
        if admission is Admission.CLAIMED:
            answer = error_answer(
                AnswerError.INTERRUPTED,
                "the agent stopped during this call; it may have taken effect: inspect",
            )
        else:
            answer = await self._execute(call)
        await self.inbox.settle(call, answer)
        return answer

    async def _execute(self, call: HostCall) -> str:
        driver = self.drivers.get(call.driver)
        if driver is None:
            return error_answer(AnswerError.DRIVER_ERROR, f"no {call.driver!r} driver on this host")
        try:
            if call.op is CallOp.CONNECTIONS:
                return ok_answer(await self._count_connections(call))
            return ok_answer(await _on_driver(driver, call))
        except ContainerGone as exc:
            return error_answer(AnswerError.CONTAINER_GONE, str(exc))
        except InvalidSpec as exc:
            return error_answer(AnswerError.INVALID_SPEC, exc.message)
        except BadOutputQuery as exc:
            return error_answer(AnswerError.BAD_QUERY, str(exc))
        except SpecRefused as exc:
            return error_answer(AnswerError.SPEC_REFUSED, str(exc))
        except DriverError as exc:
            return error_answer(AnswerError.DRIVER_ERROR, str(exc))
        except Exception as exc:
            logger.exception("driver call crashed", extra=_fields(call))
            return error_answer(AnswerError.DRIVER_ERROR, f"{type(exc).__name__}: {exc}")

    async def _count_connections(self, call: HostCall) -> list[int | None]:
        if self.connections is None:
            raise DriverError("this agent does not count connections")
        try:
            items = items_from_spec(call.spec)
        except ValueError as exc:
            raise DriverError(f"malformed connections call: {exc}") from exc
        return await self.connections.count(call.driver, items)


async def _on_driver(driver: Driver, call: HostCall) -> Any:
    """What the call asks of the local driver, as a wire value."""
    cid = call.container_id
    match call.op:
        case CallOp.START:
            spec = driver.validate_spec(call.spec)
            return started_to_wire(await driver.start(call.runtime_id, spec))
        case CallOp.STOP:
            return info_to_wire(await driver.stop(cid, timeout_s=call.timeout_s))
        case CallOp.PAUSE:
            await driver.pause(cid)
        case CallOp.RESUME:
            await driver.resume(cid)
        case CallOp.REMOVE:
            await driver.remove(cid)
        case CallOp.INSPECT:
            return info_to_wire(await driver.inspect(cid))
        case CallOp.LIST:
            return [info_to_wire(info) for info in await driver.list_containers()]
        case CallOp.LOGS:
            return chunk_to_wire(await driver.logs(cid, query_from_wire(call.spec)))
        case CallOp.METRICS:
            return window_to_wire(await driver.metrics(cid, window_of(call.spec)))
    return None


def _fields(call: HostCall) -> dict[str, Any]:
    return {"call_id": call.call_id, "op": str(call.op), "runtime_id": call.runtime_id}
