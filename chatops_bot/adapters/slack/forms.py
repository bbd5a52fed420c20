"""What a submitted Slack form means: the `/access` line it stands for (`commands.forms`), or the fields
to correct, keyed by the modal's block IDs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatops_bot.adapters.slack.render import (
    DURATION_BLOCK,
    INPUT_ACTION,
    REASON_BLOCK,
    REVIEWERS_BLOCK,
    TICKET_BLOCK,
    ROLES_BLOCK,
)
from commands import messages
from commands.forms import DURATION, REASON, REVIEWERS, ROLES, TICKET, read_request_form
from commands.grammar import RequestCommand

_BLOCKS = {ROLES: ROLES_BLOCK, DURATION: DURATION_BLOCK, REVIEWERS: REVIEWERS_BLOCK, REASON: REASON_BLOCK,
           TICKET: TICKET_BLOCK}


@dataclass(frozen=True)
class Metadata:
    """What a form carries from where it was opened to its submission (Slack keeps it, users never see it)."""

    channel: str = ""
    response_url: str = ""
    request_id: str = ""

    def dump(self) -> str:
        return json.dumps({"c": self.channel, "r": self.response_url, "i": self.request_id})

    @classmethod
    def load(cls, text: object) -> Metadata:
        try:
            data = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return cls(*(str(data.get(key) or "") for key in ("c", "r", "i")))


@dataclass(frozen=True)
class Submission:
    """The line to run, the command it parses to, or errors keyed by the form's block IDs."""

    line: str = ""
    command: RequestCommand | None = None
    errors: Mapping[str, str] | None = None


def request_submission(values: Mapping[str, Any]) -> Submission:
    """The `request …` line a filled-in request form stands for, each field checked by the grammar."""
    result = read_request_form(
        _selected(values, ROLES_BLOCK),
        duration=_text(values, DURATION_BLOCK),
        reviewers=_text(values, REVIEWERS_BLOCK),
        reason=_text(values, REASON_BLOCK),
        ticket=_text(values, TICKET_BLOCK),
    )
    if result.errors or result.command is None:
        return Submission(errors={_BLOCKS[name]: text for name, text in result.errors.items()})
    return Submission(line=result.line, command=result.command)


def deny_line(request_id: str, values: Mapping[str, Any]) -> str:
    """`deny ID REASON`, the reason as free text exactly as the typed command takes it."""
    return f"deny {request_id} {_text(values, REASON_BLOCK).strip()}".rstrip()


def refusal_block(reply_text: str, command: RequestCommand) -> str:
    """Which field a refusal of a submitted request form belongs under."""
    if reply_text == messages.reason_required(command.roles):
        return REASON_BLOCK
    if command.ticket and command.ticket in reply_text:
        return TICKET_BLOCK  # a request gate's refusal names the ticket it refused
    return ROLES_BLOCK


def _state(values: Mapping[str, Any], block: str) -> Mapping[str, Any]:
    state = values.get(block)
    element = state.get(INPUT_ACTION) if isinstance(state, Mapping) else None
    return element if isinstance(element, Mapping) else {}


def _text(values: Mapping[str, Any], block: str) -> str:
    value = _state(values, block).get("value")
    return value if isinstance(value, str) else ""


def _selected(values: Mapping[str, Any], block: str) -> list[str]:
    options = _state(values, block).get("selected_options")
    if not isinstance(options, list):
        return []
    return [o["value"] for o in options if isinstance(o, Mapping) and isinstance(o.get("value"), str)]
