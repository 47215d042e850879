"""Every failure leaves the API as `{"error": {"code", "message"}}` with the
status of DESIGN §3, whatever raised it."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from runplane.api.routing import allowed_methods
from runplane.domain.api_keys import ApiKeyRejected
from runplane.domain.errors import HTTP_STATUS, ErrorCode, StoreUnavailable

logger = logging.getLogger(__name__)

_CODE_BY_HTTP = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    422: "invalid_request",
}


class ApiError(Exception):
    """Raised by a route to answer with a stable error body."""

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        status: int | None = None,
        operation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.status = status or HTTP_STATUS.get(ErrorCode(code), 500)
        self.operation_id = operation_id


RETRY_AFTER_S = 1
"""What a 503 (Redis, the database or the driver unreachable) tells a client to
wait before it tries again: a restarting database is back within seconds."""


def error_response(
    status: int,
    code: str,
    message: str,
    operation_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    detail: dict[str, str] = {"code": code, "message": message}
    if operation_id:
        detail["operation_id"] = operation_id
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    return JSONResponse({"error": detail}, status_code=status, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.operation_id)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
            for err in exc.errors()
        )
        return error_response(400, "invalid_request", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODE_BY_HTTP.get(exc.status_code, "internal" if exc.status_code >= 500 else "error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # `Allow`: every method the path takes (RFC 9110)
            methods = allowed_methods(request.app.routes, request.url.path)
            headers["Allow"] = ", ".join(methods) or headers.get("Allow", "")
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(ApiKeyRejected)
    async def _rejected_key(_: Request, exc: ApiKeyRejected) -> JSONResponse:
        return error_response(401, "unauthorized", str(exc))

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return error_response(503, "service_unavailable", str(exc))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("request crashed", extra={"path": request.url.path})
        return error_response(500, "internal", "internal error")
