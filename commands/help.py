"""`/access help`: the grammar, from the one place it is written down (`commands.grammar.SUBCOMMANDS`)."""

from __future__ import annotations

from collections.abc import Sequence

from commands.context import Context
from commands.grammar import SUBCOMMANDS, HelpCommand
from commands.reply import Reply

INTRO = "Request, list and review Teleport access requests."


def text(topic: str | None = None, *, request_notes: Sequence[str] = ()) -> str:
    """`request_notes`: what the configured request gates add to `request`'s help (`--ticket`)."""
    if topic:
        spec = SUBCOMMANDS[topic]
        notes = "".join(f"\n{note}" for note in request_notes if note) if topic == "request" else ""
        return f"{spec.usage}\n{spec.summary}\n{spec.details}".rstrip() + notes
    lines = [INTRO, ""]
    lines += [f"{spec.usage}\n    {spec.summary}" for spec in SUBCOMMANDS.values()]
    lines += ["", "`/access help SUBCOMMAND` for details."]
    return "\n".join(lines)


async def run(command: HelpCommand, ctx: Context | None = None) -> Reply:
    notes = [gate.help() for gate in ctx.gates] if ctx is not None else []
    return Reply(text=text(command.topic, request_notes=notes))
