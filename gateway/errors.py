"""The API's one error type and the JSON shape every error takes:
``{"error": "<short code>", "detail": "<human reason>"}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from storesense.config import describe_validation_error

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 408: "request_timeout", 413: "too_large",
         415: "unsupported_media_type", 422: "invalid_request"}


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def _body(status: int, error: str, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error, "detail": detail}, status_code=status,
                        headers=headers)


def install(app: FastAPI) -> None:
    """Replace FastAPI's error bodies with the contract's shape."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return _body(exc.status, exc.error, exc.detail)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return _body(exc.status_code, CODES.get(exc.status_code, "error"), str(exc.detail))

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()))
            parts.append(f"{loc}: {e.get('msg')}")
        return _body(422, "invalid_request", "; ".join(parts) or "invalid request")

    async def overflow(_: Request, exc: Exception) -> JSONResponse:
        # the last net under date arithmetic: a date near datetime's limits is the caller's
        # mistake (400), not the server's (500); the routes bound dates before this
        return _body(400, "bad_request", f"date out of range: {exc}")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(OverflowError, overflow)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)


__all__ = ["ApiError", "describe_validation_error", "install"]
