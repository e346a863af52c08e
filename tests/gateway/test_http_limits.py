"""Request bounds and security headers on a real uvicorn server, over raw sockets: a hostile
client is answered before it has finished sending, and a stalled one is cut off."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from dashboards.demo import serve
from gateway.auth import create_token
from gateway.config import ApiSettings, GatewaySettings
from gateway.storage import Storage
from tests.gateway.helpers import store

TIMEOUT_S = 1.0
HUGE = 152_000_000  # the probe's body: 152 MB took the gateway to 1.1 GB before its 401


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int, str]]:
    """(host, port, hq token) of a real gateway whose body timeout is TIMEOUT_S."""
    storage = Storage(tmp_path / "g.db")
    storage.upsert_stores([store("a1")])
    token = create_token(storage, "hq", "hq")
    settings = GatewaySettings(db=storage.path, api=ApiSettings(body_timeout_s=TIMEOUT_S))
    try:
        with serve(storage, settings) as url:
            parts = urlsplit(url)
            assert parts.hostname and parts.port
            yield parts.hostname, parts.port, token
    finally:
        storage.close()


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: gateway", *(f"{k}: {v}" for k, v in
                                                              headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket, within_s: float) -> bytes:
    """Everything the server sends until it closes the connection or ``within_s`` pass."""
    sock.settimeout(within_s)
    got = b""
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return got


def _one_response(sock: socket.socket, within_s: float) -> bytes:
    """One whole response on a connection that stays open: headers, then Content-Length bytes
    (a busy server may send them in separate segments)."""
    sock.settimeout(within_s)
    got = b""
    while b"\r\n\r\n" not in got:
        got += sock.recv(65536)
    head, _, body = got.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                  if line.startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


@pytest.mark.parametrize("with_token", [False, True])
def test_a_152_mb_body_is_answered_after_its_first_64_kb(server, with_token: bool) -> None:
    host, port, token = server
    headers = {"Content-Type": "application/json", "Content-Length": str(HUGE)}
    if with_token:
        headers["Authorization"] = f"Bearer {token}"
    with socket.create_connection((host, port)) as sock:
        sock.sendall(_head("PUT", "/api/v1/stores/a1", headers) + b"[" * 65536)
        answer = _answer(sock, 5.0)
    # without a token: 401 before the body is looked at; with one: 413 on its length alone
    assert _status(answer) == (413 if with_token else 401), answer[:300]
    assert b"connection: close" in answer.lower()


def test_a_streamed_body_is_cut_off_just_past_the_limit(server) -> None:
    host, port, token = server
    limit = ApiSettings().max_body_bytes
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Transfer-Encoding": "chunked"}
    chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"  # 64 kB of JSON whitespace a chunk
    sent, answer = 0, b""
    with socket.create_connection((host, port)) as sock:
        sock.sendall(_head("PUT", "/api/v1/stores/a1", headers))
        # read the answer the moment it comes: once the server closes with our bytes unread,
        # its kernel resets the connection and what we had not read yet is lost
        while sent < 40 * limit and not answer:
            if select.select([sock], [], [], 0)[0]:
                answer = _answer(sock, 1.0)
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):  # closed on us: read what came
                answer = _answer(sock, 1.0)
                break
            sent += 0x10000
    assert _status(answer) == 413, answer[:300]
    assert b"larger than" in answer
    # the kernel's socket buffers let a few MB through before the answer is seen
    assert sent < 20 * limit


def test_a_stalled_body_is_answered_408_and_the_connection_closed(server) -> None:
    host, port, token = server
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Content-Length": "1000"}
    with socket.create_connection((host, port)) as sock:
        t0 = time.monotonic()
        sock.sendall(_head("PUT", "/api/v1/stores/a1", headers) + b'{"name": "x"')
        answer = _answer(sock, TIMEOUT_S + 5.0)  # returns when the server closes
        took = time.monotonic() - t0
    assert _status(answer) == 408, answer[:300]
    assert b"not received within" in answer
    assert TIMEOUT_S <= took < TIMEOUT_S + 3.0


def test_every_response_carries_the_security_headers(server) -> None:
    host, port, token = server
    base = f"http://{host}:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        answers = [client.get("/"), client.get("/store.html"), client.get("/api/v1/health"),
                   client.get("/static/js/api.js"), client.get("/api/v1/stores"),
                   client.get("/api/v1/nowhere"),
                   client.get("/api/v1/stores", headers={"Authorization": f"Bearer {token}"})]
        for r in answers:
            h = r.headers
            csp = h["content-security-policy"]
            for part in ("default-src 'self'", "script-src 'self'", "object-src 'none'",
                         "frame-ancestors 'none'", "base-uri 'none'"):
                assert part in csp, (r.url, csp)
            assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
            assert (h["x-content-type-options"], h["referrer-policy"], h["x-frame-options"]) == (
                "nosniff", "no-referrer", "DENY"), r.url
            # an ordinary request keeps its connection open for the next one
            assert h.get("connection", "").lower() != "close", r.url
        assert [r.status_code for r in answers] == [200, 200, 200, 200, 401, 404, 200]


@pytest.mark.parametrize(("method", "path", "kind", "start"), [
    ("PUT", "/api/v1/stores/a1", "application/json", b'{"name": '),
    ("POST", "/api/v1/pos", "application/json", b'[{"store_id": '),
    ("POST", "/api/v1/stores/import", "multipart/form-data; boundary=b",
     b'--b\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n\r\nstore_id'),
])
def test_a_body_with_a_bad_token_is_401_and_its_rest_not_waited_for(
        server, method: str, path: str, kind: str, start: bytes) -> None:
    """The token is checked before the body (JSON or a multipart form) is read."""
    host, port, _ = server
    headers = {"Authorization": "Bearer not-a-token", "Content-Type": kind,
               "Content-Length": "5000"}
    with socket.create_connection((host, port)) as sock:
        sock.sendall(_head(method, path, headers) + start)
        answer = _answer(sock, 5.0)
    assert _status(answer) == 401 and b"unknown or revoked token" in answer
    assert b"connection: close" in answer.lower()


@pytest.mark.parametrize("first", [b"", b"GET /api/v1/health HTTP/1.1\r\nHost: gw\r\n"])
def test_a_connection_whose_headers_stall_is_closed(server, first: bytes) -> None:
    """uvicorn alone keeps a connection with no (or half a) request open for ever."""
    host, port, _ = server
    t0 = time.monotonic()  # before the connection: the server's clock starts when it accepts
    with socket.create_connection((host, port)) as sock:
        sock.sendall(first)
        time.sleep(TIMEOUT_S / 2)
        sock.sendall(b"X-Slow: 1\r\n" if first else b"G")  # trickling does not extend it
        answer = _answer(sock, TIMEOUT_S + 5.0)
        took = time.monotonic() - t0
    assert answer == b"" and TIMEOUT_S <= took < TIMEOUT_S + 3.0, (answer, took)


def test_keep_alive_connections_still_serve_request_after_request(server) -> None:
    host, port, _ = server
    with socket.create_connection((host, port)) as sock:
        for _ in range(3):
            sock.sendall(_head("GET", "/api/v1/health", {}))
            got = _one_response(sock, 5.0)
            assert _status(got) == 200 and b'"status":"ok"' in got
            time.sleep(TIMEOUT_S * 1.5)  # idle between requests: keep-alive, not headers
