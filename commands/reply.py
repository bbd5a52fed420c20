"""What comes into the command layer (`Invocation`) and what goes out (`Reply`), platform-neutral.

Adapters build an `Invocation` from a typed command or a button click and render a `Reply` in their own
format; nothing in between knows which platform it is serving.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from commands.model import AccessRequest, ChatUser


class Action(enum.Enum):
    APPROVE = "approve"
    DENY = "deny"
    EXTEND = "extend"


@dataclass(frozen=True)
class Invocation:
    """One `/access …` line, typed or clicked. `text` is everything after `/access`."""

    platform: str
    actor: ChatUser
    text: str
    channel: str = ""


@dataclass(frozen=True)
class Field:
    """A label and an already-safe value, ready for any renderer; with `url`, the value links there."""

    label: str
    value: str
    url: str = ""


@dataclass(frozen=True)
class RequestCard:
    """An access request as people see it: title, fields, and the buttons that still make sense."""

    request: AccessRequest
    title: str
    fields: tuple[Field, ...]
    footer: str = ""
    actions: tuple[Action, ...] = ()
    web_url: str = ""


@dataclass(frozen=True)
class Reply:
    """Text for the person (or the channel), optionally with request cards. `outcome` says how a reply
    with `ok=False` came about (for metrics and logs): "usage", "refused", "unavailable" or "error"."""

    text: str
    ephemeral: bool = True
    cards: tuple[RequestCard, ...] = field(default=())
    ok: bool = True
    outcome: str = ""
