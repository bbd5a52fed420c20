"""`/access help`: the grammar, from the one place it is written down (`commands.grammar.SUBCOMMANDS`)."""

from __future__ import annotations

from commands.grammar import SUBCOMMANDS, HelpCommand
from commands.reply import Reply

INTRO = "Request, list and review Teleport access requests."


def text(topic: str | None = None) -> str:
    if topic:
        spec = SUBCOMMANDS[topic]
        return f"{spec.usage}\n{spec.summary}\n{spec.details}".rstrip()
    lines = [INTRO, ""]
    lines += [f"{spec.usage}\n    {spec.summary}" for spec in SUBCOMMANDS.values()]
    lines += ["", "`/access help SUBCOMMAND` for details."]
    return "\n".join(lines)


async def run(command: HelpCommand) -> Reply:
    return Reply(text=text(command.topic))
