"""The bot's HTTP server: each enabled platform's routes, `/healthz`, and an orderly start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatops_bot.adapters.base import ChatAdapter

logger = logging.getLogger(__name__)


async def healthz(_: Request) -> Response:
    """The process is alive and serving HTTP."""
    return JSONResponse({"status": "ok"})


def build_app(adapters: Sequence[ChatAdapter]) -> Starlette:
    routes = [Route("/healthz", healthz, methods=["GET"])]
    for adapter in adapters:
        routes.extend(adapter.routes())
    return Starlette(routes=routes)


async def serve(adapters: Sequence[ChatAdapter], *, host: str, port: int) -> None:
    """Start every adapter, serve until SIGTERM/SIGINT, then stop accepting and stop the adapters."""
    for adapter in adapters:
        await adapter.start()
    server = uvicorn.Server(
        uvicorn.Config(build_app(adapters), host=host, port=port, log_level="warning", lifespan="off")
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    # uvicorn would re-raise the signal once it stops, killing us before the adapters are stopped.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    logger.info("serving on %s:%s for %s", host, port, ", ".join(a.name for a in adapters) or "no platform")
    try:
        await server.serve()
    finally:
        for adapter in reversed(adapters):
            await adapter.stop()
