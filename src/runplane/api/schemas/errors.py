"""The one error body every failure answers with (DESIGN §6)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="a stable code: invalid_request, unauthorized, not_found, ...")
    message: str
    operation_id: str | None = Field(
        default=None, description="the operation-log entry a failed operation wrote"
    )


class ErrorBody(BaseModel):
    error: ErrorDetail
