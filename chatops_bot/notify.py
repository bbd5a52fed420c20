"""Who hears about an access request and what they see, kept true to Teleport through plugin data.

`Notifier.sync(request)` brings every message about one request in line with the request as given. It
may run any number of times, in any number of bot processes: each step claims its work in the request's
plugin data with compare-and-swap, then sends, then records what it sent. Plugin data keys:

    claim                   `<process>@<unix time>` while that process posts the first cards, then `done`
    slack:C0ACCESS          a card in a channel: its message reference (`mattermost:<channel id>` alike)
    slack:@U0BOB            a card DMed to a suggested reviewer
    slack:C0ACCESS#reviews  how many reviews were relayed into that card's thread
    view                    `<resolved>:<reviews>:<approvals counted>` of the request as its cards last
                            showed it
    outcome#slack           `APPROVED@<process>@<unix time>` while that process DMs the requester the
                            outcome, then the state they were told about (`APPROVED`)

A request decided before its cards were all posted (a platform was down, or the bot was) still gets its
channel cards, drawn in their final state, and the requester the outcome DM; reviewers get no DM asking
them to review what is already decided. Without any claim (the bot never saw it pending) that holds only
for requests created since the oldest request a bot already claimed (so a first start, when no request
has a claim, posts none of the requests Teleport already holds), in the last `CATCH_UP`, and whose access
has not ended.

A claim (of the first cards, or of an outcome DM) left by a process that died is taken over once it is
`claim_lease` seconds old. Teleport drops
a deleted (or expired) request's plugin data with it, so what closing its cards takes is kept in memory
for each pending request this process has seen; cards of a request deleted before this process first
saw it (say, while it was down) stay as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from chatops_bot import automatic
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import Later
from commands import approvals, messages, rules
from commands.errors import BackendError, CompareFailed, NotFound
from commands.matchers import PolicyError
from commands.model import AccessRequest, RequestState
from commands.ports import CardDetail, Clock
from commands.reply import Field, RequestCard

logger = logging.getLogger(__name__)

CLAIM, DONE, VIEW, RELAYED, OUTCOME = "claim", "done", "view", "#reviews", "outcome#"
CLAIM_LEASE = 60.0
CATCH_UP = timedelta(hours=24)
RECIPIENT_TTL = 600.0  # seconds a resolved (or unresolvable) recipient name is remembered

Rank = tuple[int, int]
Send = Callable[[], Awaitable[str]]


class Outbound(Protocol):
    """What the notifier needs from one chat platform; message references are opaque strings."""

    platform: str

    async def post_card(self, recipient: str, card: RequestCard) -> str: ...

    async def update_card(self, ref: str, card: RequestCard) -> None: ...

    async def reply_in_thread(self, ref: str, text: str) -> None: ...

    async def dm(self, chat_user_id: str, text: str, card: RequestCard | None = None) -> str: ...

    async def resolve_recipient(self, name: str) -> str | None:
        """The channel ID for a configured recipient, or None when the platform knows no such place."""
        ...

    async def time_zone(self, chat_user_id: str) -> str:
        """The person's IANA time zone, "" when the platform does not say (their DMs are then in UTC)."""
        ...


class Incomplete(Exception):
    """Some messages could not be sent or updated; running `sync` again finishes the job."""


def rank(request: AccessRequest) -> Rank:
    """How far a request has come; it only grows, so an older snapshot never overwrites a newer card."""
    return (1 if request.state.resolved else 0, len(request.reviews))


def _view(request: AccessRequest, data: Mapping[str, str]) -> tuple[int, int, int]:
    """What the cards show of a request: its rank, and the approvals the bot counted under `review.rules`
    (which change the cards without Teleport changing the request). It only grows, like the rank."""
    try:
        counted = len(approvals.decode(data.get(approvals.KEY, ""))) if request.state is RequestState.PENDING else 0
    except approvals.LedgerError:
        counted = 0
    return (*rank(request), counted)


def _view_text(request: AccessRequest, data: Mapping[str, str]) -> str:
    return "{}:{}:{}".format(*_view(request, data))


def _parse_view(text: str) -> tuple[int, int, int]:
    parts = text.split(":")
    if len(parts) == 2:
        parts.append("0")  # written before approvals were part of it
    return (int(parts[0]), int(parts[1]), int(parts[2])) if len(parts) == 3 and all(p.isdigit() for p in parts) \
        else (-1, -1, -1)


@dataclass(frozen=True)
class CardSettings:
    web_proxy_addr: str = ""
    web_only_roles: frozenset[str] = frozenset()
    # `review.rules`: a pending card counts the approvals the bot recorded against what the rules need.
    review_rules: tuple[rules.ReviewRule, ...] = ()


@dataclass(frozen=True)
class _Known:
    """A pending request with cards, as last seen: enough to close its cards once Teleport deletes it."""

    request: AccessRequest
    cards: Mapping[str, str]
    owned: bool  # this process posted the cards, so it (alone) tells the requester


class ChatIds(Protocol):
    """Teleport user -> chat user ID per platform (`chatops_bot.directory.TeleportDirectory`)."""

    async def chat_ids(self, teleport_user: str) -> dict[str, str]: ...


class Notifier:
    def __init__(self, client: TeleportClient, outbounds: Sequence[Outbound], *,
                 routing: Mapping[str, Mapping[str, Sequence[str]]], chat_ids: ChatIds, clock: Clock,
                 cards: CardSettings = CardSettings(), claim_lease: float = CLAIM_LEASE,
                 details: Sequence[CardDetail] = ()) -> None:
        """`routing`: platform -> role (or "*") -> recipients, as in `routing.role_to_recipients`;
        `details`: what outside systems add to each card (a Jira ticket), asked each time one is drawn."""
        self.client, self.chat_ids, self.clock, self.settings = client, chat_ids, clock, cards
        self.details = tuple(details)
        self.outbounds = {outbound.platform: outbound for outbound in outbounds}
        self.routing, self.claim_lease = routing, claim_lease
        self.process = secrets.token_hex(6)
        self._known: dict[str, _Known] = {}
        self._seen: dict[str, tuple[Rank, bool]] = {}  # request -> (rank handled, whether completely)
        self._owned: set[str] = set()
        self._unsaved: dict[str, dict[str, str]] = {}  # sent, but not yet recorded in Teleport
        self._recipients: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._prefetched: dict[str, dict[str, str]] = {}  # see `prefetch`
        # The creation time of the oldest request a bot has claimed, as a resync found it: requests created
        # after it without a claim came while no bot was watching. None: this cluster had no bot before.
        self._watched_since: datetime | None = None

    async def prefetch(self, requests: Iterable[AccessRequest]) -> None:
        """Every request's plugin data in one call, for the `sync` of each request a resync is about to
        hand over (instead of a call per request). Possibly stale by the time it is used, which is safe:
        every write is a compare-and-swap that fails on stale data, and the retry reads it afresh. Not
        read at all when `sync` has nothing to do for any of them (a periodic resync, usually)."""
        requests = list(requests)
        request_ids = [request.id for request in requests if not self._up_to_date(request)]
        if not request_ids:
            return
        try:
            everything = await self.client.get_all_plugin_data()
        except BackendError as err:
            logger.info("cannot read all plugin data at once (%s); one request at a time", err.message)
            return
        self._prefetched = {request_id: everything.get(request_id, {}) for request_id in request_ids}
        claimed = [r.created for r in requests if r.created and everything.get(r.id, {}).get(CLAIM)]
        if claimed:
            oldest = min(claimed)
            self._watched_since = min(oldest, self._watched_since or oldest)

    def _up_to_date(self, request: AccessRequest) -> bool:
        """Whether this snapshot is older than what was handled (a listing racing an event), or nothing new."""
        seen = self._seen.get(request.id)
        return bool(seen) and (rank(request) < seen[0] or (rank(request) == seen[0] and seen[1]))

    def pending_ids(self) -> set[str]:
        """Pending requests with cards this process knows of: the ones to close if a listing lacks them."""
        return set(self._known)

    def retain(self, request_ids: Iterable[str]) -> None:
        """Forget what was noted about requests that Teleport no longer lists and that have no cards here."""
        keep = set(request_ids) | set(self._known)
        self._seen = {key: value for key, value in self._seen.items() if key in keep}

    def redraw(self, request_id: str) -> None:
        """Its cards show something that changed outside Teleport (the approvals counted under
        `review.rules`): the next `sync` of the request looks again, even at the same rank."""
        self._seen.pop(request_id, None)

    async def sync(self, request: AccessRequest) -> None:
        prefetched = self._prefetched.pop(request.id, None)  # good for this run only, used or not
        if self._up_to_date(request):
            return
        data: dict[str, str] = {}
        wait, gone = 0.0, False
        unsent: Incomplete | None = None
        try:
            data = prefetched if prefetched is not None else await self.client.get_plugin_data(request.id)
            if unsaved := self._unsaved.get(request.id):
                await self.client.update_plugin_data(request.id, set=unsaved)
                data.update(unsaved)
                self._unsaved.pop(request.id)
            if request.state is RequestState.PENDING or self._unfinished(request, data):
                try:
                    wait = await self._broadcast(request, data)
                except Incomplete as err:
                    unsent = err  # one platform down must not hold up the cards on the others
            cards = self.cards_of(data)
            if cards:
                await self._refresh(request, data, cards)
                await self._relay(request, data, cards)
                web_url = messages.web_link(self.settings.web_proxy_addr, request.id)
                outcome = partial(messages.request_outcome, request, web_url)
                if request.state.resolved and not await self._tell(request, outcome, data):
                    raise Incomplete(f"the outcome of {request.id} did not reach {request.user} everywhere")
            if unsent is not None:
                raise unsent
        except NotFound:
            gone = True  # deleted while we were at it
        finally:
            # Noted even when sending failed half-way, so that a deletion still closes what was posted.
            if request.state is RequestState.PENDING and self.cards_of(data):
                self._known[request.id] = _Known(request, self.cards_of(data), request.id in self._owned)
            elif data and not gone:
                self._forget(request.id)
        if gone:
            await self.closed(request.id)
            return
        self._seen[request.id] = (rank(request), not wait)
        if wait:
            raise Later(wait)

    def _unfinished(self, request: AccessRequest, data: Mapping[str, str]) -> bool:
        """A decided request whose first cards were never all posted, and that is still worth posting."""
        if data.get(CLAIM) == DONE:
            return False
        if data.get(CLAIM):
            return True  # a fan-out cut short: finish it
        if self._watched_since is None or request.created is None or request.created < self._watched_since:
            return False  # no bot was watching this cluster yet: nothing was missed
        now = self.clock.now()
        recent = now - request.created < CATCH_UP
        ended = request.state is RequestState.APPROVED and request.access_expires is not None \
            and request.access_expires <= now
        return recent and not ended

    async def closed(self, request_id: str) -> None:
        """Teleport deleted the request (or it expired): its cards say so; its poster DMs the requester."""
        known = self._known.pop(request_id, None)
        self._forget(request_id)
        self._unsaved.pop(request_id, None)
        if known is None:
            return
        # Gone before its pending lifetime ran out: deleted (`/access cancel`, tctl), not expired.
        lifetime = known.request.resource_expiry
        withdrawn = lifetime is not None and self.clock.now() < lifetime
        state = messages.withdrawn_state() if withdrawn else messages.expired_state()
        card = await self.detailed(replace(known.request, state=RequestState.NONE), state=state)
        failed = await self._each(request_id, "close card", known.cards.items(),
                                  lambda key, ref: self.outbound_for(key).update_card(ref, card))
        if known.owned:
            told = messages.request_withdrawn if withdrawn else messages.request_expired
            await self._tell(known.request, lambda _tz: told(known.request))
        if failed:
            self._known[request_id] = replace(known, owned=False)
            raise Incomplete(f"{failed} cards of deleted request {request_id} were not closed")

    def card(self, request: AccessRequest, *, state: str = "",
             data: Mapping[str, str] | None = None, details: Sequence[Field] = ()) -> RequestCard:
        """`data`: the request's plugin data, for the approvals counted under `review.rules`; `details`:
        what `detailed` found."""
        web_only = sorted(self.settings.web_only_roles.intersection(request.roles))
        web_url = messages.web_link(self.settings.web_proxy_addr, request.id)
        return messages.notice_card(request, now=self.clock.now(), web_url=web_url, web_only_roles=web_only,
                                    state=state, tally=self._tally(request, data or {}),
                                    note=automatic.card_note(request, data or {}), details=details)

    async def dm_requester(self, request: AccessRequest, text: Callable[[str], str]) -> bool:
        """DM the requester on every platform they are linked on, `text` made for their time zone there;
        True when one of them got it."""
        linked = await self.chat_ids.chat_ids(request.user)

        async def send(outbound: Outbound, chat_id: str) -> str:
            return await outbound.dm(chat_id, text(await outbound.time_zone(chat_id)))

        sends = [send(self.outbounds[platform], chat_id) for platform, chat_id in linked.items()
                 if platform in self.outbounds]
        results = await asyncio.gather(*sends, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                logger.warning("DM to %s failed: %r", request.user, result, extra={"request_id": request.id})
        return any(not isinstance(result, BaseException) for result in results)

    async def detailed(self, request: AccessRequest, *, state: str = "",
                       data: Mapping[str, str] | None = None) -> RequestCard:
        """The card with what outside systems add to it (a Jira ticket), read now."""
        found = await asyncio.gather(*(detail.fields(request) for detail in self.details))
        return self.card(request, state=state, data=data, details=[f for fields in found for f in fields])

    def _tally(self, request: AccessRequest, data: Mapping[str, str]) -> approvals.Tally | None:
        if not self.settings.review_rules or request.state is not RequestState.PENDING:
            return None
        try:
            needed = rules.approvals_needed(self.settings.review_rules, request)
            recorded = approvals.decode(data.get(approvals.KEY, ""))
        except (PolicyError, approvals.LedgerError) as err:
            logger.warning("cannot count the approvals of request %s: %s", request.id, err)
            return None
        return approvals.Tally(recorded, needed) if needed else None

    # --- the steps of `sync` ----------------------------------------------------------------------

    async def _broadcast(self, request: AccessRequest, data: dict[str, str]) -> float:
        """Claim, then post each missing card and reviewer DM, recording each as it is sent. Returns how
        long until another process's claim lapses (0 when this process posted, or nothing was left)."""
        claim = data.get(CLAIM, "")
        if claim == DONE:
            return 0.0
        owner, _, since = claim.partition("@")
        age = time.time() - int(since) if since.isdigit() else self.claim_lease
        if claim and owner != self.process and age < self.claim_lease:
            return self.claim_lease - age + 1.0
        mine = f"{self.process}@{int(time.time())}"
        try:
            await self.client.update_plugin_data(request.id, set={CLAIM: mine}, expect={CLAIM: claim})
        except CompareFailed:
            data.update(await self.client.get_plugin_data(request.id))  # another process claimed it first
            return 0.0 if data.get(CLAIM) == DONE else self.claim_lease
        data[CLAIM] = mine
        self._owned.add(request.id)
        card = await self.detailed(request, data=data)
        sends = [(key, send) for key, send in await self._destinations(request, card) if key not in data]

        async def send_and_record(key: str, send: Send) -> None:
            record = {key: await send()}
            if "@" not in key:
                record[key + RELAYED] = str(len(request.reviews))  # the card already shows these
            data.update(record)
            # Kept until Teleport has it: a later run records it instead of sending it again.
            self._unsaved.setdefault(request.id, {}).update(record)
            await self.client.update_plugin_data(request.id, set=record)
            unsaved = self._unsaved[request.id]
            for saved in record:
                unsaved.pop(saved, None)
            if not unsaved:
                self._unsaved.pop(request.id, None)

        failed = await self._each(request.id, "post", sends, send_and_record)
        if failed:
            raise Incomplete(f"{failed} of {len(sends)} messages about {request.id} were not sent")
        final = {CLAIM: DONE, VIEW: _view_text(request, data)}
        await self.client.update_plugin_data(request.id, set=final, expect={CLAIM: mine})
        data.update(final)
        return 0.0

    async def _refresh(self, request: AccessRequest, data: dict[str, str], cards: Mapping[str, str]) -> None:
        """Every card redrawn, unless they already show this much (or more: this snapshot is older)."""
        shown = data.get(VIEW, "")
        if _view(request, data) <= _parse_view(shown):
            return
        card = await self.detailed(request, data=data)
        failed = await self._each(request.id, "update card", cards.items(),
                                  lambda key, ref: self.outbound_for(key).update_card(ref, card))
        if failed:
            raise Incomplete(f"{failed} cards of {request.id} were not updated")
        with contextlib.suppress(CompareFailed):  # another process updated them at the same time
            view = {VIEW: _view_text(request, data)}
            await self.client.update_plugin_data(request.id, set=view, expect={VIEW: shown})
            data.update(view)

    async def _relay(self, request: AccessRequest, data: dict[str, str], cards: Mapping[str, str]) -> None:
        """Each new review into each channel card's thread, once: claim the count, post, or give it back."""

        async def relay(key: str, ref: str) -> None:
            counter = key + RELAYED
            while (done := int(data.get(counter) or 0)) < len(request.reviews):
                try:
                    await self.client.update_plugin_data(
                        request.id, set={counter: str(done + 1)}, expect={counter: data.get(counter, "")})
                except CompareFailed:
                    return  # another bot process relays into this thread
                data[counter] = str(done + 1)
                review = request.reviews[done]
                text = messages.review_relayed(review.author, review.proposed_state is RequestState.APPROVED,
                                               review.reason)
                try:
                    await self.outbound_for(key).reply_in_thread(ref, text)
                except Exception:
                    await self._release(request.id, counter, str(done + 1), str(done))
                    data[counter] = str(done)
                    raise

        threads = [(key, ref) for key, ref in cards.items() if "@" not in key]
        if await self._each(request.id, "relay review", threads, relay):
            raise Incomplete(f"reviews of {request.id} were not all relayed")

    async def _tell(self, request: AccessRequest, text: Callable[[str], str],
                    data: dict[str, str] | None = None) -> bool:
        """DM the requester on every platform they are linked on, `text(their time zone)`; with `data`, once
        per platform: claimed with a lease, sent, then confirmed, so a process that dies in between leaves it
        to another."""
        ok = True
        for platform, chat_id in (await self.chat_ids.chat_ids(request.user)).items():
            key = OUTCOME + platform
            if platform not in self.outbounds:
                continue
            claim = ""
            if data is not None:
                held = data.get(key, "")
                if held and "@" not in held:
                    continue  # told
                _, owner, since = (held.split("@") + ["", ""])[:3]
                age = time.time() - int(since) if since.isdigit() else self.claim_lease
                if held and owner != self.process and age < self.claim_lease:
                    ok = False  # another process is telling them; look again once its lease is over
                    continue
                claim = f"{request.state.name}@{self.process}@{int(time.time())}"
                try:
                    await self.client.update_plugin_data(request.id, set={key: claim}, expect={key: held})
                except CompareFailed:
                    continue
                data[key] = claim
            try:
                outbound = self.outbounds[platform]
                await outbound.dm(chat_id, text(await outbound.time_zone(chat_id)))
            except Exception as err:
                logger.warning("DM to %s on %s failed: %r", request.user, platform, err,
                               extra={"request_id": request.id})
                if data is not None:
                    await self._release(request.id, key, claim, "")
                    data.pop(key, None)
                ok = False
                continue
            if data is not None:
                with contextlib.suppress(CompareFailed):
                    await self.client.update_plugin_data(request.id, set={key: request.state.name},
                                                         expect={key: claim})
                data[key] = request.state.name
        return ok

    # --- helpers ----------------------------------------------------------------------------------

    async def _destinations(self, request: AccessRequest, card: RequestCard) -> list[tuple[str, Send]]:
        """(plugin data key, send) for each routed channel and each linked suggested reviewer."""
        out: list[tuple[str, Send]] = []
        for platform, outbound in self.outbounds.items():
            for channel in await self._channels(platform, request):
                out.append((f"{platform}:{channel}", partial(outbound.post_card, channel, card)))
        if request.state.resolved:
            return out  # nothing left to review: no one is asked to
        text = messages.review_requested(request)
        for reviewer in dict.fromkeys(request.suggested_reviewers):
            for platform, chat_id in (await self.chat_ids.chat_ids(reviewer)).items():
                if platform in self.outbounds and reviewer != request.user:
                    dm = partial(self.outbounds[platform].dm, chat_id, text, card)
                    out.append((f"{platform}:@{chat_id}", dm))
        return out

    async def _channels(self, platform: str, request: AccessRequest) -> list[str]:
        """The routed recipients for the request's roles (or "*"), resolved to channel IDs, de-duplicated."""
        table = self.routing.get(platform, {})
        names = [name for role in request.roles for name in table.get(role, table.get("*", ()))]
        found: list[str] = []
        for name in dict.fromkeys(names):
            cached = self._recipients.get((platform, name))
            if cached is None or time.monotonic() - cached[0] > RECIPIENT_TTL:
                try:
                    cached = (time.monotonic(), await self.outbounds[platform].resolve_recipient(name))
                except Exception as err:
                    logger.warning("cannot resolve %s recipient %r now, skipped: %r", platform, name, err,
                                   extra={"request_id": request.id})
                    continue
                if cached[1] is None:
                    logger.warning("%s has no recipient %r (routing.role_to_recipients); skipped",
                                   platform, name, extra={"request_id": request.id})
                self._recipients[(platform, name)] = cached
            if cached[1] is not None and cached[1] not in found:
                found.append(cached[1])
        return found

    async def _each(self, request_id: str, what: str, items: Iterable[tuple[str, Any]],
                    call: Callable[[str, Any], Awaitable[object]]) -> int:
        """`call(key, value)` for every item at once; failures are logged, not fatal to the others, counted.

        `NotFound` (Teleport no longer has the request) is raised once every call has finished."""
        pairs = list(items)
        results = await asyncio.gather(*(call(key, value) for key, value in pairs), return_exceptions=True)
        failed = 0
        for (key, _), result in zip(pairs, results):
            if isinstance(result, (asyncio.CancelledError, NotFound)):
                raise result  # cancelled, or the request is gone: no point in the rest
            if isinstance(result, BaseException):
                failed += 1
                logger.warning("%s %s failed: %r", what, key, result, extra={"request_id": request_id})
        return failed

    async def _release(self, request_id: str, key: str, held: str, previous: str) -> None:
        """Give back a claim whose message did not go out, so a later run sends it."""
        with contextlib.suppress(BackendError):
            await self.client.update_plugin_data(request_id, set={key: previous}, expect={key: held})

    def cards_of(self, data: Mapping[str, str]) -> dict[str, str]:
        """The message references in a request's plugin data: `platform:channel` (or `platform:@user`) -> ref."""
        return {key: ref for key, ref in data.items()
                if key.partition(":")[0] in self.outbounds and "#" not in key}

    def outbound_for(self, key: str) -> Outbound:
        return self.outbounds[key.partition(":")[0]]

    def _forget(self, request_id: str) -> None:
        self._known.pop(request_id, None)
        self._owned.discard(request_id)
