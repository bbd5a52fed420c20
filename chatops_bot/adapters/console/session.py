"""A console session: read `/access …` lines as some chat user, print what the bot answers."""

from __future__ import annotations

from collections.abc import Callable

from chatops_bot.adapters.base import run_command
from chatops_bot.adapters.console.render import render
from commands.context import Context
from commands.errors import CommandError, NotFound
from commands.model import ChatUser
from commands.reply import Invocation, Reply

PROMPT_COMMAND = "/access"


class ConsoleSession:
    def __init__(self, ctx: Context, *, user: str, write: Callable[[str], None] = print) -> None:
        self.ctx = ctx
        self.user = user
        self.write = write

    async def _unknown_note(self) -> str:
        """What to know about a name the directory links to no Teleport user that exists (said at once, not at
        the first command); "" when it is one, or when Teleport cannot say now."""
        actor = ChatUser("console", self.user, self.user)
        try:
            await self.ctx.backend.get_user(await self.ctx.directory.teleport_user(actor))
        except NotFound:
            return f"; Teleport has no user {self.user}, so its commands will be refused"
        except CommandError:
            return ""
        return ""

    async def handle(self, line: str) -> Reply | None:
        """One line: `/access …` runs a command and returns its reply; `as NAME` switches who is typing."""
        line = line.strip()
        if not line or line.startswith("#"):
            return None
        word = line.split(maxsplit=1)[0]
        rest = line[len(word) :].strip()
        if word == "as":
            if not rest:
                self.write("Say who: `as NAME`.")
                return None
            self.user = rest
            self.write(f"(now typing as {self.user}){await self._unknown_note()}")
            return None
        if word != PROMPT_COMMAND:
            if word.startswith("/"):
                self.write(f"Unknown command {word}; this bot answers /access.")
            else:
                self.write("Type `/access …`, or `as NAME` to switch user.")
            return None
        actor = ChatUser("console", self.user, self.user)
        invocation = Invocation(platform="console", actor=actor, text=rest)
        reply = await run_command(invocation, self.ctx)
        self.write(render(reply))
        return reply
