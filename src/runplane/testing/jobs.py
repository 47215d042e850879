"""In-memory job results and job queue, for tests and benchmarks."""

from __future__ import annotations

from runplane.domain.errors import StoreUnavailable
from runplane.domain.jobs import JobResult


class InMemoryJobResults:
    def __init__(self) -> None:
        self.results: list[JobResult] = []
        self.unavailable = False

    async def publish(self, result: JobResult) -> None:
        if self.unavailable:
            raise StoreUnavailable("job results stream unavailable")
        self.results.append(result)

    def for_job(self, job_id: str) -> list[JobResult]:
        return [r for r in self.results if r.job_id == job_id]
