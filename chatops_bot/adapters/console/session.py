"""A console session: read `/access …` lines as some chat user, print what the bot answers."""

from __future__ import annotations

from collections.abc import Callable

from chatops_bot.adapters.console.render import render
from commands.context import Context
from commands.dispatch import dispatch
from commands.model import ChatUser
from commands.reply import Invocation

PROMPT_COMMAND = "/access"


class ConsoleSession:
    def __init__(self, ctx: Context, *, user: str, write: Callable[[str], None] = print) -> None:
        self.ctx = ctx
        self.user = user
        self.write = write

    async def handle(self, line: str) -> None:
        """One line: `/access …` runs a command; `as NAME` switches who is typing."""
        line = line.strip()
        if not line or line.startswith("#"):
            return
        if line.startswith("as "):
            self.user = line[3:].strip()
            self.write(f"(now typing as {self.user})")
            return
        text = line
        if text.split(" ", 1)[0] == PROMPT_COMMAND:
            text = text[len(PROMPT_COMMAND):]
        elif not text.startswith("/"):
            self.write("Type `/access …`, or `as NAME` to switch user.")
            return
        else:
            self.write(f"Unknown command {text.split(' ', 1)[0]}; this bot answers /access.")
            return
        invocation = Invocation(platform="console", actor=ChatUser("console", self.user, self.user), text=text.strip())
        reply = await dispatch(invocation, self.ctx)
        self.write(render(reply))
