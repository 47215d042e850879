"""Job consumers: one handler per job stream. Each entry becomes a call of the
operation's `handle` (op_source=stream, source_ref=job id) and exactly one
result on `runtime:job_results` — malformed entries included.

A business failure is a result and the entry is acknowledged. An
infrastructure failure (database, Redis or driver unreachable) raises
RetryLater so the entry stays pending and is delivered again; the job id makes
the redelivery a replay, never a second effect."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from runplane.domain.documents import InvalidDocument, check_text
from runplane.domain.errors import ErrorCode, StoreUnavailable
from runplane.domain.jobs import Job, JobResult
from runplane.domain.operations import OpKind, OpSource, Outcome
from runplane.domain.results import OperationResult
from runplane.domain.seed_layout import SEED_ID_FIELD
from runplane.ports.lifecycle import RuntimeStore
from runplane.ports.streams import JobResultPublisher
from runplane.ports.system import Clock
from runplane.services.lifecycle.create import CreateRequest
from runplane.services.lifecycle.requests import OperationRequest
from runplane.services.lifecycle.service import Lifecycle
from runplane.streams.entries import StreamEntry
from runplane.streams.handler import RetryLater
from runplane.workers.jobs.codec import MalformedJob, decode_job, job_id_of

logger = logging.getLogger(__name__)

RETRY_CODES = frozenset({ErrorCode.SERVICE_UNAVAILABLE})
"""Outcomes that say the infrastructure, not the job, failed: deliver again."""


@dataclass(frozen=True, slots=True)
class JobHandler:
    op: OpKind
    lifecycle: Lifecycle
    runtimes: RuntimeStore
    results: JobResultPublisher
    clock: Clock
    lease_wait_ms: int
    max_deliveries: int

    async def __call__(self, entry: StreamEntry) -> None:
        try:
            job = self._decode(entry)
        except MalformedJob as exc:
            refused = self._malformed(entry, str(exc))
            # Its result says why to whoever sent it; the log tells the operator.
            logger.info(
                "job entry refused",
                extra={
                    "stream": entry.stream,
                    "entry_id": entry.entry_id,
                    "job_id": refused.job_id[:128],
                    "runtime_id": refused.runtime_id,
                    "error_code": str(refused.error_code),
                    "error": refused.error_message,
                },
            )
            await self._publish(refused)
            return
        except Exception:  # decoding is total: a bug here is this entry's failure
            # Retrying would only fail again the same way (and dead-letter the
            # entry without a result); DESIGN §4 wants one result per entry.
            logger.exception(
                "job entry could not be decoded",
                extra={"stream": entry.stream, "entry_id": entry.entry_id},
            )
            await self._publish(self._malformed(entry, "entry could not be decoded as a job"))
            return
        try:
            result = await self._run(job)
        except StoreUnavailable as exc:  # before the operation had its own answer
            raise RetryLater(str(exc)) from exc
        last_chance = entry.deliveries >= self.max_deliveries
        if result.error_code in RETRY_CODES and not last_chance:
            logger.warning(
                "job will be retried",
                extra={"stream": entry.stream, "entry_id": entry.entry_id, "job_id": job.job_id},
            )
            raise RetryLater(result.error_message)
        await self._publish(self._result_of(job, result))

    def _decode(self, entry: StreamEntry) -> Job:
        if entry.undecodable:
            raise MalformedJob("entry has fields that are not UTF-8 text")
        return decode_job(self.op, entry.stream, entry.entry_id, entry.fields)

    async def _run(self, job: Job) -> OperationResult:
        if self.op is OpKind.START and job.spec is not None:
            exists = await self.runtimes.get(job.runtime_id)
            if exists is None:
                created = await self._create(job)
                if created.error_code is not ErrorCode.CONFLICT:
                    return created
                # Created concurrently by another job: start it as a known runtime.
        request = OperationRequest(
            runtime_id=job.runtime_id,
            op_source=OpSource.STREAM,
            job_id=job.job_id,
            source_ref=job.job_id,  # the entry's correlation id (runplane.logs)
            reason=job.reason,
            actor=job.actor,
            team_scope=job.team_id,
            spec=job.spec,
            lease_wait_ms=self.lease_wait_ms,
            restricted=job.restricted,
        )
        return await self.lifecycle[self.op].handle(request)

    async def _create(self, job: Job) -> OperationResult:
        assert job.spec is not None
        return await self.lifecycle.create.handle(
            CreateRequest(
                spec=job.spec,
                op_source=OpSource.STREAM,
                runtime_id=job.runtime_id,
                team_id=job.team_id,
                actor=job.actor,
                job_id=job.job_id,
                lease_wait_ms=self.lease_wait_ms,
                restricted=job.restricted,
            )
        )

    def _result_of(self, job: Job, result: OperationResult) -> JobResult:
        record = result.record
        return JobResult(
            job_id=job.job_id,
            runtime_id=job.runtime_id,
            op=str(self.op),
            outcome=result.outcome,
            finished_at_ms=self._now_ms(),
            error_code=result.error_code,
            error_message=result.error_message,
            status=str(record.status) if record else "",
            container_id=(record.container_id or "") if record else "",
            engine_endpoint=(record.engine_endpoint or "") if record else "",
            seed_layout=job.seed_layout,
        )

    def _malformed(self, entry: StreamEntry, message: str) -> JobResult:
        seed_layout = SEED_ID_FIELD in entry.fields
        runtime_id = entry.fields.get(SEED_ID_FIELD if seed_layout else "runtime_id", "")[:128]
        job_id = job_id_of(entry.stream, entry.entry_id, entry.fields)
        if not is_unicode(job_id):  # echoed into the results stream: must encode
            job_id = f"{entry.stream}/{entry.entry_id}"
        return JobResult(
            job_id=job_id,
            runtime_id=runtime_id if not entry.undecodable and is_unicode(runtime_id) else "",
            op=str(self.op),
            outcome=Outcome.FAILURE,
            finished_at_ms=self._now_ms(),
            error_code=ErrorCode.INVALID_REQUEST,
            error_message=message,
            seed_layout=seed_layout,
        )

    async def _publish(self, result: JobResult) -> None:
        try:
            await self.results.publish(result)
        except StoreUnavailable as exc:
            raise RetryLater(f"job results stream: {exc}") from exc

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)


def is_unicode(text: str) -> bool:
    try:
        check_text("text", text)
    except InvalidDocument:
        return False
    return True
