"""The approvals counted for `review.rules`, kept in the request's plugin data under one key.

Teleport counts nothing when the bot resolves requests itself, so the bot counts: one JSON list of
approvals (who, from which platform, why) under `KEY`, changed only by compare-and-swap on the whole value.
Every approval is therefore counted once, whatever two bot processes or a double click do at the same
moment, and exactly one approval (the one that reaches the count) resolves the request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from commands.errors import CompareFailed
from commands.ports import AccessBackend

KEY = "approvals"
# Compare-and-swap attempts before giving up when others keep changing the count at the same moment.
RECORD_ATTEMPTS = 5


class LedgerError(Exception):
    """The recorded approvals cannot be read: the command refuses rather than guess."""


class Contended(Exception):
    """Others kept changing the count for `RECORD_ATTEMPTS` tries in a row."""


@dataclass(frozen=True)
class Approval:
    user: str  # Teleport user name
    platform: str  # where they approved: slack, mattermost, console
    reason: str = ""

    @property
    def delegator(self) -> str:
        return f"{self.platform}:{self.user}"


@dataclass(frozen=True)
class Tally:
    """What a pending request's card says under `review.rules`: who approved so far, and how many are needed."""

    approvals: tuple[Approval, ...]
    needed: int

    @property
    def count(self) -> int:
        return len(self.approvals)


def decode(value: str) -> tuple[Approval, ...]:
    if not value:
        return ()
    try:
        items = json.loads(value)
        if not isinstance(items, list):
            raise TypeError("not a list")
        approvals = tuple(
            Approval(user=str(item["user"]), platform=str(item["platform"]), reason=str(item.get("reason", "")))
            for item in items
        )
    except (ValueError, TypeError, KeyError) as err:
        raise LedgerError(f"the approvals recorded in plugin data key {KEY!r} cannot be read ({err})") from None
    return approvals


def encode(approvals: Sequence[Approval]) -> str:
    items = [{"user": a.user, "platform": a.platform, "reason": a.reason} for a in approvals]
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def delegator(approvals: Sequence[Approval]) -> str:
    """Teleport's `Delegator`: every approver, e.g. `slack:bob,mattermost:carol`."""
    return ",".join(approval.delegator for approval in approvals)


async def record(backend: AccessBackend, request_id: str, approval: Approval, needed: int) -> tuple[Tally, bool]:
    """Add `approval` to the request's count unless its author is in it: (the count now, whether added).
    Raises `LedgerError` or `Contended`."""
    for _ in range(RECORD_ATTEMPTS):
        held = await backend.plugin_value(request_id, KEY)
        recorded = decode(held)
        if any(a.user == approval.user for a in recorded):
            return Tally(recorded, needed), False
        counted = (*recorded, approval)
        try:
            await backend.swap_plugin_value(request_id, KEY, expect=held, value=encode(counted))
        except CompareFailed:
            continue  # someone else's approval landed first: read it and count again
        return Tally(counted, needed), True
    raise Contended
