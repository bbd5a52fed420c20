"""Decisions that are not a person's click: an outside system's verdict on a pending request, applied once.

A `Decider` (PagerDuty on-call rules, a decision webhook) looks at a pending request and answers with a
`Verdict`, with nothing (a human decides), or raises `Undecided` (it cannot tell now: ask again later).
The `AutomaticReviewer` asks the deciders that cover each new pending request and applies the first verdict
exactly once, whatever restarts and replicas do: as the bot's own review (Teleport Enterprise), or by
setting the state with the decider as Delegator (`review.mode: resolve`, Community Edition).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from chatops_bot.timer import Backoff, Later
from commands import messages
from commands.approvals import KEY as APPROVALS
from commands.approvals import Approval, decode, delegator, record
from commands.errors import CompareFailed
from commands.messages import rules_approved_reason
from commands.model import AccessRequest, RequestState, Review, User
from commands.rules import ReviewRule, approvals_needed

logger = logging.getLogger(__name__)


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


# --- the record kept in the request's plugin data -----------------------------------------------------------

KEY = "auto"
CLAIM_LEASE = 60.0
NONE = "none"


@dataclass(frozen=True)
class Record:
    """What `KEY` holds: a claim (`by`, `at`) while a process asks and applies, then `done` with the outcome.
    A claim that carries the verdict (`applying`) is written before the verdict reaches Teleport, so that the
    cards Teleport's change redraws can already say why."""

    by: str = ""
    at: int = 0
    done: str = ""  # "approved", "denied" or "none" once settled
    verdict: Verdict | None = None

    @classmethod
    def parse(cls, text: str) -> Record:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            verdict = data.get("verdict")
            return cls(by=str(data.get("by", "")), at=int(data.get("at", 0)), done=str(data.get("done", "")),
                       verdict=Verdict(bool(verdict["approve"]), str(verdict["reason"]), str(verdict["source"]),
                                       str(verdict.get("card", ""))) if verdict else None)
        except (ValueError, TypeError, KeyError, AttributeError):
            # Unreadable: treat it as settled (fail closed), so nothing is applied twice on a guess.
            return cls(done="unreadable")

    def dump(self) -> str:
        data: dict[str, object] = {"by": self.by, "at": self.at} if not self.done else {"done": self.done}
        if self.verdict is not None:
            data["verdict"] = asdict(self.verdict)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def card_note(request: AccessRequest, plugin_data: Mapping[str, str]) -> str:
    """What a request's cards say about its automatic decision, once Teleport shows it: the verdict's `card`
    text, and, for an approval that is one of several needed, that a person must approve too."""
    record = Record.parse(plugin_data.get(KEY, ""))
    verdict = record.verdict
    if verdict is None or not verdict.card or record.done == NONE:
        return ""
    if request.state is RequestState.PENDING and not request.reviews:
        return ""  # written, but not yet in Teleport
    pending = verdict.approve and request.state is RequestState.PENDING
    return messages.automatic_note(verdict.card, request.approvals_needed if pending else 1)


# --- the reviewer -------------------------------------------------------------------------------------------


class Backend(Protocol):
    """The slice of `TeleportClient` the automatic reviewer uses."""

    async def get_request(self, request_id: str) -> AccessRequest: ...

    async def get_plugin_data(self, request_id: str) -> dict[str, str]: ...

    async def update_plugin_data(self, request_id: str, *, set: Mapping[str, str],
                                 expect: Mapping[str, str] | None = None) -> None: ...

    async def submit_review(self, request_id: str, review: Review) -> AccessRequest: ...

    async def set_state(self, request_id: str, *, state: RequestState, reason: str = "",
                        delegator: str = "") -> None: ...

    async def current_user(self) -> User: ...

    async def plugin_value(self, request_id: str, key: str) -> str: ...

    async def swap_plugin_value(self, request_id: str, key: str, *, expect: str, value: str) -> None: ...


class AutomaticReviewer:
    """A `chatops_bot.watcher.Handler`: asks the deciders covering each pending request, in order, and applies
    the first verdict once across processes. `mode` is `review.mode`; with `rules` (`review.rules`) an
    approval is counted like a person's and resolves only when it reaches the count."""

    def __init__(self, client: Backend, deciders: Sequence[Decider], *, mode: str,
                 rules: Sequence[ReviewRule] = (), claim_lease: float = CLAIM_LEASE,
                 retry: Backoff = Backoff(5.0, 120.0), changed: Callable[[str], None] | None = None) -> None:
        """`changed`: told a request's ID when an approval was counted short of what `rules` need (its cards
        change, Teleport's request does not)."""
        self.client, self.deciders, self.mode, self.rules = client, list(deciders), mode, tuple(rules)
        self.changed = changed
        self.claim_lease, self.retry = claim_lease, retry
        self.process = secrets.token_hex(6)
        self._settled: set[str] = set()
        self._tries: dict[str, int] = {}
        self._me = ""

    async def closed(self, request_id: str) -> None:
        self._settled.discard(request_id)
        self._tries.pop(request_id, None)

    async def sync(self, request: AccessRequest) -> None:
        if request.state is not RequestState.PENDING or request.id in self._settled:
            return
        deciders = [d for d in self.deciders if d.covers(request)]
        if not deciders:
            return
        data = await self.client.get_plugin_data(request.id)
        held = data.get(KEY, "")
        record = Record.parse(held)
        if record.done:
            self._settled.add(request.id)
            return
        age = time.time() - record.at
        if held and record.by != self.process and age < self.claim_lease:
            raise Later(self.claim_lease - age + 1.0)
        claim = Record(by=self.process, at=int(time.time()))
        try:
            await self.client.update_plugin_data(request.id, set={KEY: claim.dump()}, expect={KEY: held})
        except CompareFailed:
            raise Later(1.0) from None  # another process claimed it a moment ago: see what it settled
        current = await self.client.get_request(request.id)  # the snapshot may be old; a lapsed claim may have
        applied = "" if current.state is RequestState.PENDING else _outcome(record.verdict)
        applied = applied or await self._applied(current)
        if applied:
            await self._settle(request.id, claim, Record(done=applied, verdict=record.verdict))
            return
        try:
            verdict = await self._ask(deciders, current)
        except Undecided as why:
            await self._give_back(request.id, claim)
            tries = self._tries[request.id] = self._tries.get(request.id, 0) + 1
            delay = self.retry.delay(tries - 1)
            logger.warning("no automatic decision on request %s yet (%s); asking again in %.0f s", request.id,
                           why, delay, extra={"request_id": request.id})
            raise Later(delay, "undecided") from None
        self._tries.pop(request.id, None)
        if verdict is not None and verdict.approve and self.mode == "resolve" and self.rules \
                and approvals_needed(self.rules, current) < 1:
            # review.rules let nobody decide these roles: an automatic approval may not either (fail closed).
            logger.warning("request %s: %s would approve it, but review.rules name nobody who may decide %s; "
                           "left to a person", request.id, verdict.source, ", ".join(current.roles),
                           extra={"request_id": request.id})
            verdict = None
        if verdict is None:
            await self._settle(request.id, claim, Record(done=NONE))
            return
        applying = Record(by=self.process, at=int(time.time()), verdict=verdict)
        await self._swap(request.id, claim, applying)
        try:
            await self._apply(current, verdict)
        except BaseException:
            await self._give_back(request.id, applying)
            raise
        await self._settle(request.id, applying, Record(done=_outcome(verdict), verdict=verdict))
        logger.info("request %s %s automatically by %s: %s", request.id, _outcome(verdict), verdict.source,
                    verdict.reason, extra={"request_id": request.id})

    async def _ask(self, deciders: Sequence[Decider], request: AccessRequest) -> Verdict | None:
        """The first verdict of `deciders`; one that fails unexpectedly counts as no verdict (fail closed)."""
        for decider in deciders:
            try:
                verdict = await decider.verdict(request)
            except Undecided:
                raise
            except Exception:
                logger.exception("decider %s failed on request %s; leaving it to a person", decider.name,
                                 request.id, extra={"request_id": request.id})
                continue
            if verdict is not None:
                return verdict
        return None

    async def _apply(self, request: AccessRequest, verdict: Verdict) -> None:
        state = RequestState.APPROVED if verdict.approve else RequestState.DENIED
        if self.mode != "resolve":
            # The bot's own review: Teleport counts it as one, checks the bot's `review_requests`, and records
            # the reason in its audit log.
            await self.client.submit_review(request.id, Review(author="", proposed_state=state,
                                                               reason=verdict.reason))
            return
        if verdict.approve and self.rules:
            needed = approvals_needed(self.rules, request)
            approval = Approval(verdict.source, "automatic", verdict.reason)
            tally, added = await record(self.client, request.id, approval, needed)
            if tally.count < needed:
                if added and self.changed is not None:
                    self.changed(request.id)
                return
            await self.client.set_state(request.id, state=state, reason=rules_approved_reason(tally.approvals),
                                        delegator=delegator(tally.approvals))
            return
        await self.client.set_state(request.id, state=state, reason=verdict.reason,
                                    delegator=f"automatic:{verdict.source}")

    async def _applied(self, request: AccessRequest) -> str:
        """The outcome ("approved", "denied") when a verdict already reached Teleport for this pending request
        (a process died before it could say so); "" when it must be applied. Under review.rules an approval
        counted short of what the rules need has reached it; one that reached the count has not, until the
        state is set (setting it failed), so it is applied again: `record` counts it once."""
        if self.mode == "resolve":
            recorded = await self.client.plugin_value(request.id, APPROVALS)
            counted = [a for a in decode(recorded) if a.platform == "automatic"] if recorded else []
            if not counted or not self.rules:
                return ""
            return "approved" if len(decode(recorded)) < approvals_needed(self.rules, request) else ""
        if not request.reviews:
            return ""
        if not self._me:
            self._me = (await self.client.current_user()).name
        mine = [review for review in request.reviews if review.author == self._me]
        if not mine:
            return ""
        return "approved" if mine[-1].proposed_state is RequestState.APPROVED else "denied"

    async def _settle(self, request_id: str, claim: Record, final: Record) -> None:
        await self._swap(request_id, claim, final)
        self._settled.add(request_id)

    async def _swap(self, request_id: str, held: Record, new: Record) -> None:
        await self.client.update_plugin_data(request_id, set={KEY: new.dump()}, expect={KEY: held.dump()})

    async def _give_back(self, request_id: str, claim: Record) -> None:
        with contextlib.suppress(Exception):  # a lapsed claim is taken over anyway
            await asyncio.shield(self._swap(request_id, claim, Record()))


def _outcome(verdict: Verdict | None) -> str:
    if verdict is None:
        return NONE
    return "approved" if verdict.approve else "denied"
