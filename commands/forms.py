"""A filled-in request form (Slack modal, Mattermost dialog) read as the `/access request` line it stands for.

The form becomes the very line a person could type, parsed by the same grammar, so a form and the typed
command cannot drift apart. Each value travels as one `--option=` word quoted with `shlex.quote`, which
the grammar's lexer (POSIX, no escape character) reads back unchanged.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from commands import messages
from commands.errors import UsageError
from commands.grammar import RequestCommand, parse

ROLES, DURATION, REVIEWERS, REASON, TICKET = "roles", "duration", "reviewers", "reason", "ticket"
_USAGE_SUFFIX = "\nUsage: "
_REVIEWER_SEPARATORS = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class FormResult:
    """The command and its line, or what to correct, keyed by ROLES / DURATION / REVIEWERS / REASON / TICKET."""

    command: RequestCommand | None = None
    line: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)


def read_request_form(
    roles: Sequence[str], *, duration: str = "", reviewers: str = "", reason: str = "", ticket: str = ""
) -> FormResult:
    roles = [role for role in roles if role]
    if not roles:
        return FormResult(errors={ROLES: messages.request_form_no_roles()})
    base = "request " + shlex.quote(",".join(roles))
    options = [
        (DURATION, "--for", "".join(duration.split())),  # "1h 30m" means 1h30m
        (REVIEWERS, "--reviewers", ",".join(n for n in _REVIEWER_SEPARATORS.split(reviewers) if n)),
        (REASON, "--reason", reason.strip()),
        (TICKET, "--ticket", ticket.strip()),
    ]
    errors: dict[str, str] = {}
    line = base
    for name, option, value in options:
        if not value:
            continue
        word = f" {option}={shlex.quote(value)}"
        try:
            parse(base + word)  # each field on its own, so every error lands under its own field
        except UsageError as err:
            errors[name] = without_usage(err.message)
        line += word
    if errors:
        return FormResult(errors=errors)
    try:
        command = parse(line)
    except UsageError as err:
        return FormResult(errors={ROLES: without_usage(err.message)})
    assert isinstance(command, RequestCommand)
    return FormResult(command=command, line=line)


def without_usage(message: str) -> str:
    """A grammar refusal without its closing usage line, which is about typing, not a form."""
    return message.rsplit(_USAGE_SUFFIX, 1)[0]
