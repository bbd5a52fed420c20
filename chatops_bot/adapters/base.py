"""What every chat platform adapter provides to the server (its HTTP routes, a start/stop lifecycle and its
readiness), and `run_command`, the one way adapters run what a person typed, clicked or submitted.

The outbound side that notify needs (post, update, reply in thread, DM, resolve user) is
`chatops_bot.notify.Outbound`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from starlette.routing import BaseRoute

from chatops_bot import metrics
from commands.context import Context
from commands.dispatch import error_reply, run
from commands.errors import CommandError
from commands.grammar import SUBCOMMANDS, Command, ListCommand, parse
from commands.model import ChatUser
from commands.ports import Directory
from commands.reply import Invocation, Reply

logger = logging.getLogger(__name__)


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

    async def why_not_ready(self) -> str | None:
        """None when this service can do its work now; else what stops it, for `/readyz` (never a secret).

        Optional: the server takes a service without it as ready."""
        ...


async def run_command(invocation: Invocation, ctx: Context, command: Command | None = None) -> Reply:
    """Run a `/access` line (or a submitted form, already parsed as `command`) through `commands`, and
    count, time and log it: one INFO line per command, with who asked, as whom in Teleport and how it went."""
    started = time.perf_counter()
    directory = _Noting(ctx.directory)
    try:
        command = command or parse(invocation.text)
    except CommandError as err:
        reply = error_reply(err, invocation)
    else:
        reply = await run(command, invocation, replace(ctx, directory=directory))
    outcome = "ok" if reply.ok else reply.outcome or "refused"
    seconds = time.perf_counter() - started
    subcommand = _subcommand(invocation.text)
    metrics.COMMANDS.labels(invocation.platform, subcommand, outcome).inc()
    metrics.COMMAND_SECONDS.labels(invocation.platform, subcommand).observe(seconds)
    _log(invocation, subcommand, outcome, seconds, teleport_user=directory.user,
         request_id=_request_id(command, reply))
    return reply


class _Noting:
    """The command's directory, noting the Teleport user it resolved the person to (for the log line)."""

    def __init__(self, inner: Directory) -> None:
        self.inner = inner
        self.user = ""

    async def teleport_user(self, chat_user: ChatUser) -> str:
        self.user = await self.inner.teleport_user(chat_user)
        return self.user


def _subcommand(text: str) -> str:
    """The subcommand a line asks for, from the fixed set (an empty line is help): a safe metric label."""
    words = text.split(maxsplit=1)
    word = words[0].lower() if words else "help"
    return word if word in SUBCOMMANDS else "unknown"


def _request_id(command: Command | None, reply: Reply) -> str:
    """The request the command was about: the one card it answered with, else the ID typed."""
    if len(reply.cards) == 1 and not isinstance(command, ListCommand):
        return reply.cards[0].request.id
    return str(getattr(command, "request_id", ""))


def _log(invocation: Invocation, subcommand: str, outcome: str, seconds: float, *, teleport_user: str,
         request_id: str) -> None:
    context = {"platform": invocation.platform, "chat_user": invocation.actor.id, "subcommand": subcommand,
               "outcome": outcome, "duration_seconds": round(seconds, 4)}
    about = ""
    if request_id:
        context["request_id"] = request_id
        about = f" {request_id}"
    who = f"{invocation.platform} user {invocation.actor.id}"
    if teleport_user:
        context["teleport_user"] = teleport_user
        who += f" (Teleport user {teleport_user})"
    logger.info("/access %s%s by %s: %s in %.3f s", subcommand, about, who, outcome, seconds, extra=context)
