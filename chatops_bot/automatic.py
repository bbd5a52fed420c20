"""Decisions that are not a person's click: an outside system's verdict on a pending request, applied once.

A `Decider` (PagerDuty on-call rules, a decision webhook) looks at a pending request and answers with a
`Verdict`, with nothing (a human decides), or raises `Undecided` (it cannot tell now: ask again later).
The `AutomaticReviewer` asks the deciders that cover each new pending request and applies the first verdict
exactly once, whatever restarts and replicas do: as the bot's own review (Teleport Enterprise), or by
setting the state with the decider as Delegator (`review.mode: resolve`, Community Edition).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from commands.model import AccessRequest


@dataclass(frozen=True)
class Verdict:
    approve: bool
    # Teleport's review (or state) reason, the audit trail: "on call: DBA primary (PagerDuty schedule P1X2Y3), level 1".
    reason: str
    # Who decided, short: "pagerduty", "webhook:servicenow" (the Delegator when the bot resolves).
    source: str
    # What channel cards say: "Auto-approved: alice is on call for DBA primary"; "" says nothing.
    card: str = ""


class Undecided(Exception):
    """The decider cannot answer now (its system is unreachable, or answered in error): the request is asked
    about again later, while it is still pending. The message says why, for the log."""


class Decider(Protocol):
    name: str

    def covers(self, request: AccessRequest) -> bool:
        """Whether this decider has anything to say about the request at all (its role filter): cheap, no I/O."""
        ...

    async def verdict(self, request: AccessRequest) -> Verdict | None:
        """The verdict on a pending request, or None when a human must decide; raises `Undecided`."""
        ...
