"""What every chat platform adapter provides to the server: its HTTP routes and a start/stop lifecycle.

The outbound side that notify needs (post, update, reply in thread, DM, resolve user) joins this
interface with the watcher; until then an adapter only answers commands and clicks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.routing import BaseRoute


class StartFailed(Exception):
    """A platform refused the bot at start-up; the message names the config key at fault."""


class ChatAdapter(Protocol):
    name: str

    def routes(self) -> Sequence[BaseRoute]:
        """The HTTP endpoints this platform calls (empty for a connection the bot opens itself)."""
        ...

    async def start(self) -> None:
        """Authenticate with the platform (and open outbound connections); raise with a clear message."""
        ...

    async def stop(self) -> None: ...
