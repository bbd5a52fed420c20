"""What a submitted Slack form means: the `/access` line it stands for, or the fields to correct.

A form becomes the very line a person could type, read by the same grammar (`commands.grammar.parse`),
so the form and the typed command cannot drift apart. Each value travels as one `--option=` word quoted
with `shlex.quote`, which the grammar's lexer (POSIX, no escape character) reads back unchanged.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatops_bot.adapters.slack.render import (
    DURATION_BLOCK,
    INPUT_ACTION,
    REASON_BLOCK,
    REVIEWERS_BLOCK,
    ROLES_BLOCK,
)
from commands import messages
from commands.errors import UsageError
from commands.grammar import RequestCommand, parse

_USAGE_SUFFIX = "\nUsage: "
_REVIEWER_SEPARATORS = re.compile(r"[,\s]+")


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
    roles = _selected(values, ROLES_BLOCK)
    if not roles:
        return Submission(errors={ROLES_BLOCK: messages.request_form_no_roles()})
    base = "request " + shlex.quote(",".join(roles))
    reviewers = ",".join(name for name in _REVIEWER_SEPARATORS.split(_text(values, REVIEWERS_BLOCK)) if name)
    options = [
        (DURATION_BLOCK, "--for", "".join(_text(values, DURATION_BLOCK).split())),  # "1h 30m" means 1h30m
        (REVIEWERS_BLOCK, "--reviewers", reviewers),
        (REASON_BLOCK, "--reason", _text(values, REASON_BLOCK).strip()),
    ]
    errors: dict[str, str] = {}
    line = base
    for block, option, value in options:
        if not value:
            continue
        word = f" {option}={shlex.quote(value)}"
        try:
            parse(base + word)
        except UsageError as err:
            errors[block] = _without_usage(err.message)
        line += word
    if errors:
        return Submission(errors=errors)
    try:
        command = parse(line)
    except UsageError as err:
        return Submission(errors={ROLES_BLOCK: _without_usage(err.message)})
    assert isinstance(command, RequestCommand)
    return Submission(line=line, command=command)


def deny_line(request_id: str, values: Mapping[str, Any]) -> str:
    """`deny ID REASON`, the reason as free text exactly as the typed command takes it."""
    return f"deny {request_id} {_text(values, REASON_BLOCK).strip()}".rstrip()


def refusal_block(reply_text: str, command: RequestCommand) -> str:
    """Which field a refusal of a submitted request form belongs under."""
    if reply_text == messages.reason_required(command.roles):
        return REASON_BLOCK
    return ROLES_BLOCK


def _without_usage(message: str) -> str:
    """A grammar refusal without its closing usage line, which is about typing, not the form."""
    return message.rsplit(_USAGE_SUFFIX, 1)[0]


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
