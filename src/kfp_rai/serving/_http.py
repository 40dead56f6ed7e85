"""The HTTP layer of the serving app (standard library; one model, small JSON requests).

Endpoints: ``GET /healthz`` (process alive), ``GET /readyz`` (model loaded and enabled),
``GET /v1/model`` (version, hash, features), ``POST /v1/predict`` with
``{"instances": [{feature: value, ..., "id": optional}]}``.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kfp_rai.serving._service import ModelService

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


def make_handler(service: ModelService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kfp-rai"

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/healthz":
                self._send(HTTPStatus.OK, {"status": "ok"})
            elif self.path == "/readyz":
                reason = service.observe_switch()
                if reason is None:
                    self._send(HTTPStatus.OK, {"status": "ready", "model_version": service.meta.get("version")})
                else:
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"status": "disabled", "reason": reason})
            elif self.path == "/v1/model":
                self._send(HTTPStatus.OK, service.describe())
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/v1/predict":
                self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
                return
            # Every request is recorded, an unreadable one too (the HTTP layer itself is replaced by
            # KServe's server; this keeps the stdlib one honest meanwhile).
            raw = self.headers.get("Content-Length") or "0"
            if not raw.isdigit():
                self._send(*service.malformed("Content-Length is not a non-negative whole number"))
                return
            if int(raw) > MAX_BODY_BYTES:
                self._send(*service.malformed(f"body over {MAX_BODY_BYTES} bytes"))
                return
            try:
                payload = json.loads(self.rfile.read(int(raw)) or b"null")
            except (ValueError, RecursionError):  # not JSON, not UTF-8, a number past the digit limit
                self._send(*service.malformed("the body is not JSON"))
                return
            status, body = service.predict(payload)
            self._send(status, body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            logger.info("%s %s", self.address_string(), format % args)

    return Handler


def serve(service: ModelService, host: str, port: int) -> ThreadingHTTPServer:
    """A started-not-yet-serving HTTP server; call ``serve_forever()`` (or use a thread in tests)."""
    return ThreadingHTTPServer((host, port), make_handler(service))
