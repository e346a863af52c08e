"""HTTP hardening in front of the whole app, as pure ASGI so it acts before FastAPI reads or
parses a byte of a request body.

- Security headers on every response: a Content-Security-Policy the dashboards pass (no
  inline script, nothing from elsewhere), nosniff, no referrer, no framing.
- A request that carries a body to the API without a bearer token is refused (401) before
  its body is read: FastAPI parses a body before it runs the auth dependency.
- Bodies are bounded: a Content-Length over the limit is refused at once (413), a streamed
  body is cut off when it passes it (413), and a body that has not arrived within
  ``body_timeout_s`` of the request is answered 408. A response sent while the client is
  still owing body bytes closes the connection, so the rest is never waited for.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import h11
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway.config import ApiSettings

# ECharts writes its tooltips as HTML carrying style="" attributes: style-src-attr allows
# those (an attribute cannot run script or load anything: img-src and the rest stay 'self'),
# while <style> elements and style sheets from elsewhere stay refused.
PAGE_CSP = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'",
    "style-src-attr 'unsafe-inline'", "img-src 'self' blob: data:", "connect-src 'self'",
    "font-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
    "frame-ancestors 'none'",
])
# /docs loads Swagger UI from this gateway (gateway/api.py) and starts it with an inline
# script; it shows no device data.
DOCS_CSP = "; ".join([
    "default-src 'self'", "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "worker-src 'self' blob:",
    "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'",
])
DOCS_PATHS = ("/docs",)
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY")]
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PATHS = frozenset({"/api/v1/health"})
# Routes that take files (floor plan image, store and POS imports, models) get the larger
# limit.
UPLOAD_PATH = re.compile(
    r"^/api/v1/(stores/[^/]+/floorplan|stores/import|pos/upload|weather/upload|models)$")
BEARER = re.compile(rb"^bearer +[\x21-\x7e]{1,512}$", re.IGNORECASE)


def uvicorn_limits(api: ApiSettings) -> dict[str, Any]:
    """uvicorn's own bounds: idle keep-alive connections, connections at once (503 beyond),
    the most bytes of request line plus headers it buffers, and (its h11 protocol with a
    deadline) how long those headers may take."""

    class Protocol(HeaderDeadline):
        header_timeout_s = api.body_timeout_s

    return {"timeout_keep_alive": api.timeout_keep_alive_s,
            "limit_concurrency": api.limit_concurrency,
            "h11_max_incomplete_event_size": api.max_header_bytes, "http": Protocol}


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, but a connection whose request headers have not all arrived
    within ``header_timeout_s`` is closed. uvicorn itself waits for them forever (a client
    that sends half a request line, or nothing, holds its connection, and with
    limit_concurrency of them every other client gets 503s). The deadline is fixed when a
    request is awaited, so trickling a byte at a time does not extend it."""

    header_timeout_s = 30.0

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers(self.header_timeout_s)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the next request's headers: after uvicorn's keep-alive wait, the same deadline
        self._await_headers(self.timeout_keep_alive + self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self._header_timer is not None:
            self._header_timer.cancel()  # the headers are in: the body has its own deadline
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _await_headers(self, within_s: float) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(within_s, self._headers_late)

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((v for k, v in scope["headers"] if k == name), None)


class _Body:
    """``receive`` with the limit and the deadline: raises HTTPException(413 or 408), which
    FastAPI passes through its body parsing to the error handlers."""

    def __init__(self, receive: Receive, limit: int, timeout_s: float, expected: bool) -> None:
        self.receive, self.limit, self.timeout_s = receive, limit, timeout_s
        self.deadline = asyncio.get_running_loop().time() + timeout_s
        self.seen, self.done = 0, not expected  # done: nothing more is owed by the client

    async def __call__(self) -> Message:
        if self.done:  # later calls wait for the disconnect: no deadline on those
            return await self.receive()
        remaining = self.deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(remaining, 0.0)):
                message = await self.receive()
        except TimeoutError:
            raise HTTPException(408, f"request body not received within {self.timeout_s:g} s"
                                ) from None
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                raise HTTPException(413, f"request body larger than {self.limit} bytes")
            self.done = not message.get("more_body", False)
        else:
            self.done = True  # disconnected
        return message


class HttpLimits:
    def __init__(self, app: ASGIApp, api: ApiSettings) -> None:
        self.app, self.api = app, api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.api.max_upload_bytes if UPLOAD_PATH.match(path) else self.api.max_body_bytes
        length = _header(scope, b"content-length")
        expected = (length not in (None, b"0")
                    or _header(scope, b"transfer-encoding") is not None)
        body = _Body(receive, limit, self.api.body_timeout_s, expected)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": self._headers(path, message, body.done)}
            await send(message)

        refusal = self._refusal(scope, limit)
        if refusal is not None:
            await self._error(send_with_headers, *refusal)
            return
        try:
            await self.app(scope, body, send_with_headers)
        except HTTPException as e:  # raised by _Body where no handler turned it into a reply
            if started or e.status_code not in (408, 413):
                raise
            await self._error(send_with_headers, e.status_code, str(e.detail))

    def _refusal(self, scope: Scope, limit: int) -> tuple[int, str] | None:
        """(status, detail) for a request refused on its headers alone, before its body."""
        path: str = scope["path"]
        if (scope["method"] in BODY_METHODS and path.startswith("/api/")
                and path not in OPEN_PATHS
                and not BEARER.match(_header(scope, b"authorization") or b"")):
            return 401, "missing 'Authorization: Bearer <token>' header"
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "Content-Length is not a number"
            if int(length) > limit:
                return 413, f"request body larger than {limit} bytes"
        return None

    def _headers(self, path: str, message: Message, body_done: bool) -> list[tuple[bytes, bytes]]:
        headers = [(k, v) for k, v in message.get("headers", [])
                   if k.lower() not in (b"content-security-policy", b"x-frame-options")]
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else PAGE_CSP
        headers += [(b"content-security-policy", csp.encode()), *SECURITY_HEADERS]
        if not body_done:  # answered before the body was read: do not wait for the rest
            headers.append((b"connection", b"close"))
        return headers

    @staticmethod
    async def _error(send: Send, status: int, detail: str) -> None:
        codes = {400: "bad_request", 401: "unauthorized", 408: "request_timeout",
                 413: "too_large"}
        payload = json.dumps({"error": codes[status], "detail": detail}).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(payload)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
