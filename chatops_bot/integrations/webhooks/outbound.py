"""Outbound webhooks: a watcher `Follower` handler that turns what Teleport shows of each request into
events, and hands each to every endpoint that wants it, in order, at least once.

`sync(request)` derives the events a snapshot shows (`events.from_snapshot`), plus any the reminders
reported (`reminded`), and takes one delivery step for each endpoint: the first event not yet delivered
to that endpoint is tried, or waited for; later ones wait behind it, so a receiver gets a request's
events in the order they happened. When something is left to try it raises `Later`, and the lane asks
again then. `closed(request_id)` adds `access_request.expired` or `.deleted` from the last snapshot this
process saw; a request deleted before this process ever saw it (while no bot watched) has no such event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from chatops_bot.integrations.webhooks import events
from chatops_bot.integrations.webhooks.delivery import PREFIX, Delivery, Health, MemoryLedger, final
from chatops_bot.integrations.webhooks.events import Event
from chatops_bot.integrations.webhooks.settings import EndpointSettings
from chatops_bot.notify import rank
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import Later
from chatops_bot.watcher import Follower
from commands.errors import CompareFailed, NotFound
from commands.matchers import MatcherError, compile_matcher
from commands.model import AccessRequest
from commands.ports import Clock

logger = logging.getLogger(__name__)

CHANGED = 1.0  # seconds before looking again at a record another process changed meanwhile


class Endpoint:
    """A configured receiver, its filters compiled, and how it has been doing."""

    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.health = Health(settings.name)
        self._roles = [compile_matcher(role) for role in settings.roles]

    def wants(self, event: Event) -> bool:
        if self.settings.events and event.type not in self.settings.events:
            return False
        return not self._roles or any(_matches(m.matches, role) for m in self._roles for role in event.request.roles)


def _matches(test: object, role: str) -> bool:
    try:
        return bool(test(role))  # type: ignore[operator]
    except MatcherError:
        return False


class RequestLedger:
    """A request's delivery records: its plugin data while Teleport has it, then this process's memory
    (what was last read and written carries over), for the events of a request just dropped."""

    def __init__(self, client: TeleportClient, request_id: str) -> None:
        self.client, self.request_id = client, request_id
        self.data: dict[str, str] = {}
        self.memory: MemoryLedger | None = None
        # Whether the records were ever read: until then, what a snapshot shows may have been sent.
        self.loaded = False

    async def read(self) -> None:
        if self.memory is not None:
            return
        try:
            self.data = await self.client.get_plugin_data(self.request_id)
            self.loaded = True
        except NotFound:
            self.gone()

    def gone(self) -> None:
        if self.memory is None:
            self.memory = MemoryLedger(self.data)
            self.data = self.memory.data

    async def swap(self, key: str, *, expect: str, value: str) -> None:
        if self.memory is None:
            try:
                await self.client.update_plugin_data(self.request_id, set={key: value}, expect={key: expect})
            except NotFound:
                self.gone()
            else:
                self.data[key] = value
                return
        assert self.memory is not None
        await self.memory.swap(key, expect=expect, value=value)


@dataclass
class _Known:
    request: AccessRequest
    ledger: RequestLedger
    extra: list[Event] = field(default_factory=list)  # reported by the reminders, or the request's end
    quiet: tuple[int, int] | None = None  # the rank of the last snapshot that left nothing to do


class WebhookEvents:
    """The `Handler` of the webhooks' `Follower`: one lane per request, never the chat side's."""

    def __init__(self, client: TeleportClient, endpoints: Sequence[Endpoint], delivery: Delivery, *,
                 clock: Clock, web_proxy_addr: str = "") -> None:
        """`clock`: Teleport's time, to tell a request that expired from one deleted before its time."""
        self.client, self.endpoints, self.delivery, self.clock = client, list(endpoints), delivery, clock
        self.web_proxy_addr = web_proxy_addr
        self.follower: Follower | None = None  # set by `follow`; the reminders' reports go through it
        self._known: dict[str, _Known] = {}

    # --- what the lanes run -----------------------------------------------------------------------

    async def sync(self, request: AccessRequest) -> None:
        known = self._known.get(request.id)
        if known is None:
            known = self._known[request.id] = _Known(request, RequestLedger(self.client, request.id))
        if rank(request) >= rank(known.request):
            known.request = request
        if known.quiet == rank(known.request) and not known.extra:
            return  # nothing new since everything was sent
        if not known.extra and self._long_past(known.request):
            known.quiet = rank(known.request)
            return  # nothing left that may still be sent: no need to read its records (a start-up's listing)
        await known.ledger.read()
        delay = await self._deliver(known, self._events(known))
        if delay is not None:
            raise Later(delay)
        known.quiet = rank(known.request)

    def _long_past(self, request: AccessRequest) -> bool:
        """Whether everything the request showed happened more than twice `retry_for` ago: no delivery of it
        may begin (that takes less than `retry_for` since it happened), and none that began goes on (that
        ends `retry_for` after it began). access.expiring comes only while the access lasts."""
        oldest = self.clock.now() - 2 * self.delivery.retry_for
        lasting = request.access_expires is not None and request.access_expires > oldest
        return not lasting and all(event.occurred < oldest for event in events.from_snapshot(request))

    def known_ids(self) -> set[str]:
        return set(self._known)

    async def closed(self, request_id: str) -> None:
        known = self._known.get(request_id)
        if known is None:
            return
        if known.ledger.memory is None:
            # A resync's listing may lag behind a request just made; a watch event's deletion is sure.
            try:
                await self.client.get_request(request_id)
            except NotFound:
                pass
            else:
                return
        known.ledger.gone()
        ending = events.gone(known.request, self.clock.now())
        found = self._events(known) + ([ending] if ending else [])
        delay = await self._deliver(known, found)
        if delay is not None:
            raise Later(delay)
        self._known.pop(request_id, None)

    # --- what the reminders report ----------------------------------------------------------------

    def follow(self, follower: Follower) -> None:
        self.follower = follower

    def reminded(self, request: AccessRequest, key: str) -> None:
        """The reminders claimed `key` for the request (`remind:<seconds>`: access.expiring; `ended`:
        access.ended): the events go out through the request's lane."""
        known = self._known.get(request.id)
        if known is None:
            known = self._known[request.id] = _Known(request, RequestLedger(self.client, request.id))
        if key == "ended":
            known.extra.append(events.ended(request))
        known.quiet = None
        if self.follower is not None:
            self.follower.put(known.request)

    # --- delivering ---------------------------------------------------------------------------------

    def _events(self, known: _Known) -> list[Event]:
        found = (events.from_snapshot(known.request, known.ledger.data) if known.ledger.loaded else []) + known.extra
        return sorted({event.key: event for event in found}.values(), key=lambda e: e.occurred)

    async def _deliver(self, known: _Known, found: Iterable[Event]) -> float | None:
        """One step for each endpoint's first event not yet done; the soonest time to look again."""
        oldest = self.clock.now() - self.delivery.retry_for  # on Teleport's clock, as the events' times are
        found = list(found)
        steps = [self._endpoint_step(known, endpoint, [e for e in found if endpoint.wants(e)], oldest)
                 for endpoint in self.endpoints]
        # Every step ends before this returns, even when one fails: a step left running would race the retry.
        results = await asyncio.gather(*steps, return_exceptions=True)
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            raise failed[0]
        delays = [result for result in results if result is not None and not isinstance(result, BaseException)]
        if known.extra and not delays:
            known.extra.clear()
        return min(delays) if delays else None

    async def _endpoint_step(self, known: _Known, endpoint: Endpoint, wanted: list[Event],
                             oldest: datetime) -> float | None:
        for event in wanted:
            key = f"{PREFIX}{endpoint.name}:{event.key}"
            value = known.ledger.data.get(key, "")
            if final(value):
                continue
            if not value and event.occurred < oldest:
                continue  # happened longer ago than any delivery is tried: never sent (a first start)
            document = events.payload(event, web_proxy_addr=self.web_proxy_addr)
            try:
                delay = await self.delivery.step(
                    known.ledger, key, value, url=endpoint.settings.url,
                    secret=endpoint.settings.secret.get_secret_value(), webhook_id=event.webhook_id,
                    body=events.body(document), health=endpoint.health,
                    context={"request_id": known.request.id, "event": event.type})
            except CompareFailed:
                await known.ledger.read()
                return CHANGED
            if delay is not None:
                return delay  # later events wait behind this one
        return None
