"""What stands in front of the model server: bearer tokens, request bounds, and the audit of every
request the model never sees (a missing token, an unreadable, oversized or too slow body, an
unknown path, a request line the HTTP parser refuses). A pure-ASGI middleware, so it runs before
FastAPI/KServe parse anything."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from kfp_rai.core.files import read_key_file
from kfp_rai.errors import InvalidParameterError
from kfp_rai.serving._service import ModelService

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TOKEN_ENV, TOKEN_FILE_ENV = "KFP_RAI_SERVING_TOKEN", "KFP_RAI_SERVING_TOKEN_FILE"
ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE_ENV = "KFP_RAI_ADMIN_TOKEN", "KFP_RAI_ADMIN_TOKEN_FILE"
MIN_TOKEN_CHARS = 16
OPEN_PATHS = ("/", "/v2/health/live", "/v2/health/ready", "/metrics")
ADMIN_PREFIX = "/kfp-rai/v1/"
ADMIN_PATHS = ("/kfp-rai/v1/disable", "/kfp-rai/v1/enable", "/kfp-rai/v1/status")


def _token(env: str, file_env: str, what: str) -> str | None:
    import os

    if value := os.environ.get(env):
        token = value.strip()
    elif path := os.environ.get(file_env):
        token = read_key_file(path, f"{file_env}=").decode("utf-8", "replace").strip()
    else:
        return None
    if len(token) < MIN_TOKEN_CHARS:
        raise InvalidParameterError(
            f"the {what} has {len(token)} characters, fewer than {MIN_TOKEN_CHARS}: use a random one, "
            "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token


@dataclass(frozen=True)
class Tokens:
    """Bearer tokens: ``predict`` for inference and model metadata, ``admin`` for the kill switch.
    None opens that door (development only: the CLI needs an explicit flag and warns)."""

    predict: str | None
    admin: str | None

    @classmethod
    def from_env(cls) -> Tokens:
        """``KFP_RAI_SERVING_TOKEN`` / ``_FILE`` and ``KFP_RAI_ADMIN_TOKEN`` / ``_FILE``; the two
        must differ (a caller who may predict may not switch the model off)."""
        tokens = cls(
            _token(TOKEN_ENV, TOKEN_FILE_ENV, "serving token"),
            _token(ADMIN_TOKEN_ENV, ADMIN_TOKEN_FILE_ENV, "admin token"),
        )
        if tokens.predict is not None and tokens.predict == tokens.admin:
            raise InvalidParameterError("the admin token must differ from the serving token")
        return tokens


HEADERS_TOO_LARGE = "Request headers too large"


@dataclass(frozen=True)
class Limits:
    """What one request may cost the server."""

    max_body_bytes: int = 1 << 20
    body_seconds: float = 10.0
    max_connections: int = 256  # uvicorn answers 503 beyond this many concurrent connections
    keep_alive_seconds: int = 5
    max_header_bytes: int = 16 * 1024  # the request line and every header, as received
    max_headers: int = 100


@dataclass
class _Request:
    """What the gate knows about the request in flight (shared with the model through a context
    variable): the keyed fingerprint of its body, and whether the model service recorded it."""

    fingerprint: str | None = None
    recorded: bool = False
    reason_codes: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_CURRENT: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("kfp_rai_request", default=None)


def _why(status: int) -> str:
    return {
        400: "unreadable request (not JSON, not UTF-8, or not the protocol's shape)",
        401: "missing or wrong bearer token",
        403: "missing or wrong admin token",
        404: "no such endpoint or model",
        405: "method not allowed",
        408: "the body did not arrive in time",
        411: "the body's length was not given",
        413: "the body is too large",
        422: "not an inference request of the protocol",
    }.get(status, f"refused by the server (HTTP {status})")


def _is_inference(path: str) -> bool:
    return path.endswith((":predict", ":explain", "/infer"))


class _TooLarge(Exception):
    pass


class Gate:
    """Pure ASGI middleware in front of KServe's app: access, bounds and the audit of whatever
    the model never sees."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, service: ModelService, tokens: Tokens, limits: Limits):
        self.app, self.service, self.tokens, self.limits = app, service, tokens, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        admin = path.startswith(ADMIN_PREFIX)
        expected = self.tokens.admin if admin else self.tokens.predict
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        # Without an admin token the admin endpoints are off (the kill switch is then `kfp-rai
        # disable` on the state directory); without a serving token prediction is open (development).
        closed = admin and expected is None
        if closed or (expected is not None and not _bearer_matches(headers.get("authorization", ""), expected)):
            status = 403 if admin else 401
            await self._refuse(scope, send, status, record=True)
            return
        try:
            body = await self._body(headers, receive)
        except _TooLarge:
            await self._refuse(scope, send, 413, record=True)
            return
        except (TimeoutError, asyncio.TimeoutError):  # one class from 3.11, two before
            await self._refuse(scope, send, 408, record=True)
            return
        request = _Request(fingerprint=self.service.audit.fingerprint(body))
        token = _CURRENT.set(request)

        async def replay() -> Message:
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}

        async def watch(message: Message) -> None:
            # What the model service did not record (KServe refused it before the model saw it) is
            # recorded before the caller hears the answer.
            if message["type"] == "http.response.start" and not request.recorded:
                status = int(message["status"])
                if status >= 400 and (_is_inference(path) or status in (404, 405)):
                    await asyncio.to_thread(self._record, scope, status)
                request.recorded = True
            await send(message)

        try:
            await self.app(scope, replay, watch)
        finally:
            _CURRENT.reset(token)

    async def _body(self, headers: dict[str, str], receive: Receive) -> bytes:
        announced = headers.get("content-length")
        if announced is not None and int(announced) > self.limits.max_body_bytes:  # the parser checked it's a number
            raise _TooLarge
        return await asyncio.wait_for(self._read(receive), self.limits.body_seconds)  # TimeoutError: 408

    async def _read(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:  # chunked, or more than announced
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _record(self, scope: Scope, status: int) -> None:
        route = scope["path"] if status != 404 else "(unknown)"
        event = "unauthorized" if status in (401, 403) else "malformed"
        self.service.record(event, status=status, method=scope["method"], route=route, why=_why(status))

    async def _refuse(self, scope: Scope, send: Send, status: int, *, record: bool) -> None:
        if record:
            await asyncio.to_thread(self._record, scope, status)
        body = json.dumps({"error": _why(status)}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        if status in (408, 413):
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _bearer_matches(header: str, expected: str) -> bool:
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), expected.encode())


class _InvalidHttpRecorder(logging.Handler):
    """uvicorn refuses a request its HTTP parser cannot read (``Content-Length: -1`` or ``abc``, a
    broken request line) before any application sees it, and says so in one log line: record it."""

    def __init__(self, service: ModelService) -> None:
        super().__init__(level=logging.WARNING)
        self.service = service

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Invalid HTTP request"):
            with contextlib.suppress(Exception):
                self.service.record("malformed", status=400, why="invalid HTTP (request line or headers)")
        elif message.startswith(HEADERS_TOO_LARGE):
            with contextlib.suppress(Exception):
                self.service.record("malformed", status=431, why="request headers too large")
