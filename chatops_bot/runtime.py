"""The running bot assembled: Teleport client, chat adapters, notifier and watcher, served until SIGTERM.

`services(settings, client)` is what `chatops-bot serve` runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

from starlette.routing import BaseRoute

from chatops_bot import integrations
from chatops_bot.adapters.base import ChatAdapter
from chatops_bot.automatic import AutomaticReviewer
from chatops_bot.config import Settings
from chatops_bot.directory import TeleportDirectory
from chatops_bot.metrics import CountedOutbound
from chatops_bot.mirror import RequestMirror
from chatops_bot.notify import CardSettings, Notifier, Outbound
from chatops_bot.readiness import teleport_problem
from chatops_bot.reminders import ReminderListener, Reminders
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import REAL_TIME, Timer
from chatops_bot.watcher import Follower, Lanes, Observer, Watcher
from chatops_bot.wiring import SystemClock, chat_adapters, command_context, directory
from commands.errors import BackendError
from commands.ports import CardDetail

logger = logging.getLogger(__name__)


def outbounds(adapters: Sequence[ChatAdapter]) -> list[Outbound]:
    """The notifier's way out to each platform, over the clients its adapter signed in with, counted."""
    from chatops_bot.adapters.mattermost import MattermostAdapter
    from chatops_bot.adapters.mattermost.notify_outbound import MattermostNotifyOutbound
    from chatops_bot.adapters.slack import SlackAdapter
    from chatops_bot.adapters.slack.outbound import SlackOutbound

    found: list[Outbound] = []
    for adapter in adapters:
        if isinstance(adapter, SlackAdapter):
            found.append(SlackOutbound(adapter.client, adapter.profiles))
        elif isinstance(adapter, MattermostAdapter):
            found.append(MattermostNotifyOutbound(adapter.outbound, adapter.render, adapter.profiles))
    return [CountedOutbound(outbound) for outbound in found]


def notifier(
    settings: Settings,
    client: TeleportClient,
    ways_out: Sequence[Outbound],
    people: TeleportDirectory | None = None,
    details: Sequence[CardDetail] = (),
) -> Notifier:
    """`people` is the directory the commands use too: one user index, both ways; `details`, what
    integrations add to each card (a Jira ticket)."""
    routing = settings.routing.role_to_recipients
    if not routing.slack and not routing.mattermost:
        logger.warning("routing.role_to_recipients is empty: new requests reach suggested reviewers only")
    cards = CardSettings(web_proxy_addr=settings.teleport.web_proxy_addr or "",
                         web_only_roles=frozenset(settings.review.web_only_roles),
                         review_rules=settings.review.review_rules())
    return Notifier(client, ways_out, routing={"slack": routing.slack, "mattermost": routing.mattermost},
                    chat_ids=people or directory(settings, client), clock=SystemClock(), cards=cards,
                    details=details)


class Redraw:
    """`Context.changed`: every card of a request drawn again, through the watcher's lane for it, when the bot
    changed what they show without Teleport changing the request (an approval counted under review.rules)."""

    def __init__(self) -> None:
        self._to: tuple[Notifier, Lanes, TeleportClient] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connect(self, notifier: Notifier, lanes: Lanes, client: TeleportClient) -> None:
        self._to = (notifier, lanes, client)

    def __call__(self, request_id: str) -> None:
        task = asyncio.create_task(self._redraw(request_id), name=f"redraw {request_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _redraw(self, request_id: str) -> None:
        if self._to is None:
            return
        notifier, lanes, client = self._to
        try:
            request = await client.get_request(request_id)
        except BackendError as err:  # the next change of the request redraws them anyway
            logger.warning("cannot redraw the cards of request %s: %s", request_id, err.detail or err.message)
            return
        notifier.redraw(request_id)
        lanes.put(request)


class WatcherService:
    """The watcher (and the reminders it keeps in step) as one more thing `server.serve` starts after the
    adapters and stops before them."""

    name = "watcher"

    def __init__(self, watcher: Watcher, reminders: Reminders | None = None) -> None:
        self.watcher = watcher
        self.reminders = reminders
        self._task: asyncio.Task[None] | None = None

    def routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        if self.reminders is not None:
            self.reminders.start()
        self._task = asyncio.create_task(self.watcher.run(), name="access request watcher")

    async def stop(self) -> None:
        if self.reminders is not None:
            await self.reminders.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def why_not_ready(self) -> str | None:
        if self.watcher.problem:
            return self.watcher.problem
        if self.watcher.synced.is_set():
            return self.watcher.lanes.problem
        if self.watcher.resyncs:
            return "the access request stream was lost; watching again"
        return "not synced with Teleport yet (no access request listing since start)"


class TeleportService:
    """Teleport's reachability, for `/readyz`: the client itself is opened and closed by the CLI."""

    name = "teleport"

    def __init__(self, client: TeleportClient) -> None:
        self.client = client

    def routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def why_not_ready(self) -> str | None:
        return teleport_problem(await self.client.why_unreachable())  # in words: /readyz answers anyone


def services(settings: Settings, client: TeleportClient, *, timer: Timer = REAL_TIME) -> list[ChatAdapter]:
    """What `chatops-bot serve` runs: Teleport (for `/readyz`), an adapter per configured platform, then the
    watcher, which starts once the platforms are signed in (it needs them to post) and stops before them.
    `timer` keeps every retry's and backoff's waits (real time; the fault drills run it faster)."""
    people = directory(settings, client)
    mirror = RequestMirror(client)  # the commands list from the watcher's copy while it is synced
    systems = integrations.build(settings, client, timer=timer)
    gates = [gate for system in systems for gate in system.gates]
    details = [detail for system in systems for detail in system.details]
    redraw = Redraw()
    ctx = replace(command_context(settings, client, people, mirror, gates, details), changed=redraw)
    adapters = chat_adapters(settings, ctx, timer=timer)
    told = notifier(settings, client, outbounds(adapters), people, details)
    for hook in (hook for system in systems for hook in system.with_notifier):
        hook(told)
    reminders = Reminders(told, settings.reminders, SystemClock())
    follower = people if people.watches_users else None  # user events matter only to link by trait
    observers: list[Observer] = [mirror, reminders, *(o for system in systems for o in system.observers)]
    reminders.listeners.extend(o for o in observers if isinstance(o, ReminderListener))
    deciders = [decider for system in systems for decider in system.deciders]
    if deciders:
        automatic = AutomaticReviewer(client, deciders, mode=settings.review.mode,
                                      rules=settings.review.review_rules(), changed=redraw)
        observers.append(Follower(automatic, timer=timer))
    watcher = Watcher(client, told, observers=observers, users=follower, timer=timer)
    mirror.follow(watcher.synced)
    redraw.connect(told, watcher.lanes, client)
    if follower is not None:
        follower.follow(watcher.synced)
    reminders.follow(watcher.synced)
    # Started before the watcher and stopped after it: what the watcher's observers use stays up meanwhile.
    callbacks = [service for system in systems for service in system.services]
    return [TeleportService(client), *adapters, *callbacks, WatcherService(watcher, reminders)]
