"""Serve an ASGI app with uvicorn inside the current event loop, for stand-ins, tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

import uvicorn


class LoopbackServer:
    """One uvicorn server in a task: `start` returns once it listens, `stop` once it has closed."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._server: PromptServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on `host:port` (0 picks a free port); returns the bound port."""
        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=2)
        self._server = PromptServer(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"the server on {host}:{port} stopped while starting")
            await asyncio.sleep(0.01)
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.exit()
            await self._task
        self._server = self._task = None


class PromptServer(uvicorn.Server):
    """uvicorn's server, closed as soon as its connections are: uvicorn looks for `should_exit` every
    0.1 s and then gives connections a fixed 0.1 s before it checks on them, which a stand-in started
    and stopped around every test would otherwise spend each time. Stop it with `exit()`."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit = asyncio.Event()

    def exit(self) -> None:
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864_000  # a multiple of 10: on_tick refreshes the Date header
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """As uvicorn's: stop accepting, ask every connection to finish, wait for them (and their tasks)
        up to the graceful timeout, then cancel what is left; but look every few milliseconds."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                while self.server_state.connections or self.server_state.tasks:
                    await asyncio.sleep(0.005)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()
