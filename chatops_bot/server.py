"""The bot's HTTP server: the platforms' routes, `/healthz`, `/readyz`, `/metrics`; orderly start and stop.

`/healthz` answers while the process serves HTTP; `/readyz` asks every service (Teleport, each platform,
the watcher) whether it can do its work now and answers 503 naming the ones that cannot, and why.
On SIGTERM (or SIGINT) the server stops accepting connections, lets requests under way finish (up to
`HTTP_GRACE` seconds), then stops the services in reverse order: the watcher closes its stream, and each
platform finishes the answers it promised ("Working on it…") within its own bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chatops_bot import metrics
from chatops_bot.adapters.base import ChatAdapter

logger = logging.getLogger(__name__)

HTTP_GRACE = 10  # seconds requests under way get to finish after SIGTERM before they are cancelled


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body of a call to one of the bot's routes, or None when it is larger than `limit`: read no
    further than that, so an unauthenticated caller cannot make the bot hold a large body in memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def healthz(_: Request) -> Response:
    """The process is alive and serving HTTP."""
    return JSONResponse({"status": "ok"})


async def metrics_endpoint(_: Request) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


async def why_not_ready(service: ChatAdapter) -> str | None:
    """The service's own answer; a service without a readiness check is ready once started."""
    check = getattr(service, "why_not_ready", None)
    if check is None:
        return None
    try:
        reason: str | None = await check()
    except Exception:
        logger.exception("the readiness check of %s failed", service.name)
        return "its readiness check failed (see the bot's log)"
    return reason


async def degraded(service: ChatAdapter) -> str | None:
    """What a service that is ready has to say about trouble it works around (a webhook endpoint that keeps
    failing): shown in `/readyz`'s detail, without making the bot unready."""
    check = getattr(service, "degraded", None)
    if check is None:
        return None
    try:
        detail: str | None = await check()
    except Exception:
        logger.exception("the degraded check of %s failed", service.name)
        return None
    return detail


def build_app(services: Sequence[ChatAdapter]) -> Starlette:
    async def readyz(_: Request) -> Response:
        reasons = await asyncio.gather(*(why_not_ready(service) for service in services))
        notes = await asyncio.gather(*(degraded(service) for service in services))
        checks = {service.name: reason or (f"ok, but {note}" if note else "ok")
                  for service, reason, note in zip(services, reasons, notes)}
        if any(reasons):
            return JSONResponse({"status": "not ready", "checks": checks}, status_code=503)
        return JSONResponse({"status": "ready", "checks": checks})

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    for service in services:
        routes.extend(service.routes())
    return Starlette(routes=routes)


async def serve(services: Sequence[ChatAdapter], *, host: str, port: int) -> None:
    """Start every service, serve until SIGTERM/SIGINT, then stop accepting and stop the services."""
    started: list[ChatAdapter] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
        # What start-up allocated lives as long as the process: kept out of the collector's full passes,
        # which otherwise show up as pauses of tens of milliseconds in answers under load.
        gc.collect()
        gc.freeze()
        await _serve_http(build_app(services), host=host, port=port,
                          names=", ".join(s.name for s in services) or "nothing")
    finally:
        for service in reversed(started):
            await service.stop()
        logger.info("stopped")


async def _serve_http(app: Starlette, *, host: str, port: int, names: str) -> None:
    # log_config=None: uvicorn would install its own handlers and formats on its loggers (`uvicorn`,
    # `uvicorn.error`, `uvicorn.access`); without them its lines go through the bot's handler (`logs`),
    # JSON when the bot logs JSON. log_level still quiets its per-connection INFO lines.
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                           log_config=None, timeout_graceful_shutdown=HTTP_GRACE))

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True  # a second signal: do not wait for requests under way
        server.should_exit = True
        logger.info("stopping: no new requests; finishing the ones under way")

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    # uvicorn would re-raise the signal once it stops, killing us before the services are stopped.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    logger.info("serving on %s:%s for %s", host, port, names)
    await server.serve()
