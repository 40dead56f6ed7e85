"""The KServe model server: kfp-rai's model as a ``kserve.Model`` behind KServe's own REST
endpoints (V1 and V2 / Open Inference Protocol, health, readiness, Prometheus ``/metrics``), run
by uvicorn, with what only kfp-rai adds in front of it (access, bounds and the audit of what
the model never sees live in :mod:`kfp_rai.serving._gate`):

- **access**: every endpoint but health and metrics needs ``Authorization: Bearer <token>``; the
  kill switch's endpoints need the separate admin token (see :class:`Tokens`);
- **bounds**: a request body is read whole before anything else sees it, refused (413) past
  :attr:`Limits.max_body_bytes` or announced larger, and refused (408) when it does not arrive in
  :attr:`Limits.body_seconds`; uvicorn bounds concurrent connections, header size and idle
  keep-alive; a request carries at most 1,000 instances;
- **batching**: requests that arrive while the model is busy are scored in one call
  (:class:`Batcher`), each still judged, answered and recorded on its own;
- **the audit trail**: predictions, rejections and refusals are recorded by the model service;
  what never reaches the model (a missing token, an unreadable or oversized body, an unknown path,
  a request line the HTTP parser refuses) is recorded here.

Endpoints (``{name}`` is the model's registered name)::

    GET  /v2/health/live, /v2/health/ready, /           open (probes)
    GET  /metrics                                       open (Prometheus: KServe's and kfp-rai's)
    POST /v1/models/{name}:predict                      {"instances": [{feature: value, ...}], "parameters": {...}}
    POST /v2/models/{name}/infer                        one input per feature, shape [n]
    GET  /v1/models/{name}, /v2/models/{name}[/ready]   model status and metadata
    GET  /kfp-rai/v1/model                              name, version, sha256, features, registration
    POST /kfp-rai/v1/disable {"reason": ...}, /kfp-rai/v1/enable, GET /kfp-rai/v1/status
                                                        (all of /kfp-rai/v1/: the admin token; off without one)

``"parameters": {"reason_codes": true}`` (either protocol) adds each instance's top three SHAP
contributions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import logging
import queue
import threading
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from threadpoolctl import threadpool_limits

from kfp_rai.core.kserve_sdk import without_argv
from kfp_rai.serving import _metrics as metrics
from kfp_rai.serving._gate import (
    _CURRENT,
    HEADERS_TOO_LARGE,
    Gate,
    Limits,
    Tokens,
    _InvalidHttpRecorder,
    _Request,
    _why,
)
from kfp_rai.serving._killswitch import disable, enable
from kfp_rai.serving._service import Job, ModelService, RequestRejected, ServingDisabled

with without_argv():
    import kserve
    from fastapi import FastAPI, Request
    from fastapi.exceptions import FastAPIDeprecationWarning, RequestValidationError
    from fastapi.responses import JSONResponse
    from kserve import InferOutput, InferRequest, InferResponse

# KServe's V1 endpoints answer with fastapi's ORJSONResponse, deprecated since fastapi 0.120; the
# warning is KServe's to fix and would otherwise print on every V1 request.
warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated", category=FastAPIDeprecationWarning)

logger = logging.getLogger(__name__)


def build_app(service: ModelService, tokens: Tokens, limits: Limits, batcher: Batcher) -> Any:
    """The ASGI app: KServe's REST endpoints and exception handlers for our model, kfp-rai's admin
    and model endpoints, behind the :class:`Gate`."""
    from kserve.errors import InvalidInput, ModelNotFound
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer

    model = RAIModel(str(service.meta.get("name") or "model"), service, batcher)
    model.load()
    repository = ModelRepository()
    repository.update(model)
    dataplane = DataPlane(model_registry=repository)
    rest = RESTServer("unused", dataplane, ModelRepositoryExtension(model_registry=repository), http_port=0)
    app = FastAPI(
        title=f"kfp-rai model server (KServe {_kserve_version()})",
        docs_url=None,
        redoc_url=None,
    )
    # KServe's own routes and error mapping, on an app of our own (KServe's module-level app is one
    # per process); these two are not public API, so kserve is pinned below 0.22 and a test builds
    # this app on every run.
    rest._register_endpoints(app)
    rest._add_exception_handlers(app)

    def quiet(status: int, message: Callable[[Exception], str]) -> Callable[[Request, Exception], Awaitable[Any]]:
        async def handler(_: Request, exc: Exception) -> Any:
            return JSONResponse(status_code=status, content={"error": message(exc)})

        return handler

    # Refusals are expected traffic: one JSON line to the caller, no traceback in the server's log,
    # and never a value from the request (FastAPI's own 422 body would echo the input).
    app.add_exception_handler(RequestRejected, quiet(400, str))
    app.add_exception_handler(ServingDisabled, quiet(503, str))
    app.add_exception_handler(InvalidInput, quiet(400, lambda e: _why(400)))
    app.add_exception_handler(ModelNotFound, quiet(404, lambda e: _why(404)))
    app.add_exception_handler(
        RequestValidationError,
        quiet(
            422,
            lambda e: (
                "not a V2 inference request: "
                + "; ".join(
                    f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
                    for err in getattr(e, "errors", list)()[:3]
                )
            ),
        ),
    )

    @app.get("/kfp-rai/v1/model")
    async def describe() -> dict[str, Any]:
        return service.describe()

    @app.get("/kfp-rai/v1/status")
    async def status() -> dict[str, Any]:
        reason = await asyncio.to_thread(service.observe_switch)
        return {"enabled": reason is None, "reason": reason, **service.describe()}

    @app.post("/kfp-rai/v1/disable")
    async def switch_off(request: Request) -> dict[str, Any]:
        try:
            reason = (await request.json()).get("reason", "")
        except (ValueError, AttributeError):
            reason = ""
        if not isinstance(reason, str) or not reason.strip():
            raise RequestRejected('say why: {"reason": "..."}')
        await asyncio.to_thread(disable, service.state_dir, reason, "admin token (HTTP)")
        return {"enabled": await asyncio.to_thread(service.observe_switch) is None}

    @app.post("/kfp-rai/v1/enable")
    async def switch_on() -> dict[str, Any]:
        await asyncio.to_thread(enable, service.state_dir, "admin token (HTTP)")
        return {"enabled": await asyncio.to_thread(service.observe_switch) is None}

    app.add_middleware(Gate, service=service, tokens=tokens, limits=limits)
    return app


class Batcher:
    """Dynamic batching, as KServe's batcher and Triton do it, inside the server: requests that
    arrive while the model is busy are judged and scored together in one call (each is still
    validated, answered and audited on its own; see :meth:`ModelService.predict_batch`). No
    request waits for others to arrive: a lone request is scored at once."""

    def __init__(self, service: ModelService, max_rows: int = 1000) -> None:
        self.service, self.max_rows = service, max_rows
        self._queue: queue.SimpleQueue[tuple[Job, concurrent.futures.Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="kfp-rai-batcher", daemon=True)
        self._thread.start()

    async def submit(self, job: Job) -> dict[str, Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((job, future))
        outcome = await asyncio.wrap_future(future)
        if isinstance(outcome, Exception):
            raise outcome
        return dict(outcome)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        # One OpenMP thread for the model: for the small batches a server sees, a second thread
        # only spins (HistGradientBoosting per tree), doubling CPU per request on the cores the
        # event loop needs (benchmarks/SERVING.md). Set here: OpenMP's limit is per calling thread.
        with threadpool_limits(limits=1):
            self._serve()

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            batch, rows = [item], len(item[0].rows)
            while rows < self.max_rows:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
                rows += len(more[0].rows)
            metrics.BATCH.observe(len(batch))
            try:
                outcomes = self.service.predict_batch([job for job, _ in batch])
            except BaseException as exc:  # noqa: BLE001 - every waiting request gets the failure
                outcomes = [exc] * len(batch)  # type: ignore[list-item]
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                future.set_result(outcome)


class RAIModel(kserve.Model):  # type: ignore[misc]
    """A kfp-rai registry version as a KServe model: V1 ``instances`` or V2 inputs (one per
    feature, an optional ``id``) in; probability, label, alerts and optional reason codes out."""

    def __init__(self, name: str, service: ModelService, batcher: Batcher) -> None:
        super().__init__(name)
        self.service, self.batcher = service, batcher

    def load(self) -> bool:
        self.ready = True  # verified and deserialized before the server was built
        return bool(self.ready)

    def validate(self, payload: Any) -> Any:
        return payload  # ours is stricter, and recorded (ModelService.frame)

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        request = _CURRENT.get() or _Request()
        try:
            protocol = "v2" if isinstance(payload, InferRequest) else "v1"
            try:
                if isinstance(payload, InferRequest):
                    rows, parameters = _v2_rows(payload, self.service.features), payload.parameters
                else:
                    _refuse_non_json(payload, headers)
                    rows, parameters = self.service.instances(payload), payload.get("parameters")
                reasons = isinstance(parameters, dict) and bool(parameters.get("reason_codes"))
            except RequestRejected as exc:
                await asyncio.to_thread(self.service.reject, str(exc), request.fingerprint, protocol)
                raise
            result = await self.batcher.submit(Job(rows, request.fingerprint, protocol, reasons))
            return _v2_response(self.name, payload, result) if protocol == "v2" else result
        finally:
            request.recorded = True  # the service recorded it: a prediction, a rejection or a refusal


def _refuse_non_json(payload: Any, headers: dict[str, str] | None) -> None:
    """KServe parses a body as JSON only when its Content-Type says JSON (or is absent); otherwise the
    raw bytes arrive here. Say that, not "the body must be {...}", which is what the caller sent."""
    if not isinstance(payload, bytes | str):
        return
    content_type = next((v for k, v in (headers or {}).items() if k.lower() == "content-type"), "")
    raise RequestRejected(
        f"the body was not read as JSON: its Content-Type is {content_type or 'missing'!r}; send "
        "Content-Type: application/json (curl: -H 'Content-Type: application/json')"
    )


def _v2_rows(payload: Any, features: list[str]) -> list[dict[str, Any]]:
    """V2 inputs (one per feature, shape [n] or [n, 1], and optionally ``id``) as instances."""
    inputs = {i.name: i for i in payload.inputs}
    missing = [f for f in features if f not in inputs]
    if missing:
        raise RequestRejected(f"the request lacks inputs {missing} (one input per feature, shape [n])")
    columns: dict[str, list[Any]] = {}
    for name in [*features, *(["id"] if "id" in inputs else [])]:
        tensor = inputs[name]
        shape = list(tensor.shape)
        data = list(tensor.data) if tensor.data is not None else []
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise RequestRejected(f"input {name!r} must have shape [n] or [n, 1], got {shape}")
        if shape[0] != len(data):
            raise RequestRejected(f"input {name!r} announces {shape[0]} values but carries {len(data)}")
        if tensor.datatype == "BYTES":
            data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in data]
        columns[name] = data
    sizes = {len(v) for v in columns.values()}
    if len(sizes) != 1:
        raise RequestRejected("every input must carry the same number of values")
    n = sizes.pop()
    rows = [{f: columns[f][i] for f in features} for i in range(n)]
    for row, id_ in zip(rows, columns.get("id", [None] * n), strict=True):
        if id_ is not None:
            row["id"] = id_
    return rows


def _v2_response(name: str, payload: Any, result: dict[str, Any]) -> Any:
    predictions = result["predictions"]
    n = len(predictions)
    outputs = [
        InferOutput("probability", [n], "FP64", [p["probability"] for p in predictions]),
        InferOutput("label", [n], "BYTES", [p["label"] for p in predictions]),
        InferOutput("alerts", [n], "BYTES", [json.dumps(p["alerts"]) for p in predictions]),
    ]
    if predictions and "reason_codes" in predictions[0]:
        outputs.append(InferOutput("reason_codes", [n], "BYTES", [json.dumps(p["reason_codes"]) for p in predictions]))
    return InferResponse(
        response_id=payload.id or "",
        model_name=name,
        model_version=str(result["model_version"]),
        infer_outputs=outputs,
        parameters={"audit": result["audit"]},
    )


class Server:
    """uvicorn running :func:`build_app` on ``host:port``; :meth:`run` blocks until SIGINT/SIGTERM
    (or :meth:`stop`), then returns after a graceful shutdown."""

    def __init__(
        self,
        service: ModelService,
        *,
        host: str,
        port: int,
        tokens: Tokens,
        limits: Limits | None = None,
        on_ready: Callable[[int], None] | None = None,
    ) -> None:
        import uvicorn

        self.service = service
        self.limits = limits or Limits()
        self.batcher = Batcher(service)
        app = build_app(service, tokens, self.limits, self.batcher)
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            limit_concurrency=self.limits.max_connections,
            timeout_keep_alive=self.limits.keep_alive_seconds,
            http=_bounded_httptools(self.limits),  # uvicorn's own limit binds only its h11 parser
            h11_max_incomplete_event_size=self.limits.max_header_bytes,
            timeout_graceful_shutdown=10,
            lifespan="off",
        )
        on_ready_ = on_ready

        class _Uvicorn(uvicorn.Server):
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets=sockets)
                if on_ready_ is not None and self.servers:
                    on_ready_(int(self.servers[0].sockets[0].getsockname()[1]))

        self._server = _Uvicorn(self.config)
        self._recorder = _InvalidHttpRecorder(service)

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def run(self) -> None:
        error_log = logging.getLogger("uvicorn.error")
        error_log.addHandler(self._recorder)
        # Everything loaded so far (model, sklearn, pandas, KServe) lives as long as the server: out
        # of the garbage collector's sight, a full collection no longer walks it, which took the
        # p99 latency of a 1-row prediction from 58.6 ms to the figure in benchmarks/SERVING.md.
        gc.collect()
        gc.freeze()
        try:
            self._server.run()
        finally:
            error_log.removeHandler(self._recorder)
            self.batcher.close()

    def stop(self) -> None:
        self._server.should_exit = True


_SILENT = logging.getLogger("kfp_rai.serving.refused_connection")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False


def _bounded_httptools(limits: Limits) -> type:
    """uvicorn's httptools protocol with the header bounds it lacks (its header limit applies to
    h11 only, and httptools buffers a header of any size): the bytes received before the headers
    end, and the number of headers, are bounded; past either the answer is 431 in one JSON line, the
    connection is closed and the refusal is recorded. Memory per connection stays within the limit
    plus one read."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    body = json.dumps(
        {
            "error": f"request headers too large: at most {limits.max_header_bytes} bytes and {limits.max_headers} "
            "headers"
        }  # fmt: skip
    ).encode()
    answer = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
    )

    class BoundedHttpTools(HttpToolsProtocol):
        _in_headers = True  # waiting for, or inside, a request's header block
        _received = 0  # bytes received since then, in reads that did not end a header block
        _blocks = 0  # header blocks and messages completed on this connection
        _refused = False

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            blocks = self._blocks
            super().data_received(data)
            if self._stopped():
                return
            if self._blocks != blocks:  # a header block or a message ended in this read: count afresh
                self._received = 0
            elif self._in_headers:
                self._received += len(data)
                if self._received > limits.max_header_bytes:
                    self._refuse()

        def on_header(self, name: bytes, value: bytes) -> None:
            super().on_header(name, value)
            if len(self.headers) > limits.max_headers:
                self._refuse()
                self.logger = _SILENT  # uvicorn would also log the parser's stop as an invalid request
                raise ValueError(HEADERS_TOO_LARGE)  # stops the parser; our answer is already sent

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._blocks += 1
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_headers = True  # the next request on this connection
            self._blocks += 1  # the read that ended it held body bytes, not header bytes

        def send_400_response(self, msg: str) -> None:
            if not self._refused:
                super().send_400_response(msg)

        def _stopped(self) -> bool:  # a method: the parser's callbacks may have refused meanwhile
            return self._refused

        def _refuse(self) -> None:
            self._refused = True
            self.logger.warning(HEADERS_TOO_LARGE)
            if not self.transport.is_closing():
                self.transport.write(answer)
                self.transport.close()

    return BoundedHttpTools


def start_in_thread(server: Server, timeout: float = 30.0) -> threading.Thread:
    """Run ``server`` in a daemon thread (tests, benchmarks) and wait until it listens."""
    import time

    thread = threading.Thread(target=server.run, name="kfp-rai-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the model server did not start")
        time.sleep(0.02)
    return thread


def _kserve_version() -> str:
    from importlib.metadata import version

    return version("kserve")
