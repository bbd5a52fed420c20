"""The webhooks assembled: `build(settings, client)` gives the `Integration`: a watcher observer that sends
the events (`outbound.WebhookEvents` in a `WebhookFollower`), the decision hook as a `Decider` when
`webhooks.decide` is set, and a service whose `/readyz` detail names failing endpoints. `docs/webhooks.md`
is the user's side of it; `docs/webhook-event.schema.json` the payload's.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence

from starlette.routing import BaseRoute

from chatops_bot.integrations import Integration
from chatops_bot.integrations.webhooks.decide import DecisionHook
from chatops_bot.integrations.webhooks.delivery import LEASE, Delivery
from chatops_bot.integrations.webhooks.outbound import Endpoint, WebhookEvents
from chatops_bot.integrations.webhooks.send import Sender
from chatops_bot.integrations.webhooks.settings import WebhooksSettings
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import REAL_TIME, Timer
from chatops_bot.watcher import Follower
from chatops_bot.wiring import SystemClock
from commands.model import AccessRequest
from commands.ports import Clock

__all__ = ["WebhookFollower", "WebhooksService", "build"]

logger = logging.getLogger(__name__)


class WebhookFollower(Follower):
    """The events' lanes; after a resync, a request this process knew that Teleport no longer lists is
    closed (it was deleted, or expired, while the stream was down) once Teleport confirms it is gone."""

    def __init__(self, handler: WebhookEvents, *, timer: Timer = REAL_TIME) -> None:
        super().__init__(handler, timer=timer)
        self.handler = handler
        handler.follow(self)

    def reminded(self, request: AccessRequest, key: str) -> None:
        """The reminders' listener (`chatops_bot.reminders.ReminderListener`)."""
        self.handler.reminded(request, key)

    def resynced(self, requests: list[AccessRequest]) -> None:
        super().resynced(requests)
        listed = {request.id for request in requests}
        for request_id in self.handler.known_ids() - listed:
            self.lanes.delete(request_id)


class WebhooksService:
    """No routes: `/readyz` detail (an endpoint that keeps failing degrades, never blocks, the bot) and
    the HTTP connections' lifetime."""

    name = "webhooks"

    def __init__(self, endpoints: Sequence[Endpoint], sender: Sender) -> None:
        self.endpoints, self.sender = list(endpoints), sender

    def routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.sender.close()

    async def why_not_ready(self) -> str | None:
        return None  # a receiver's trouble is not the bot's: chat goes on

    async def degraded(self) -> str | None:
        """What `/readyz` shows beside "ready": the endpoints whose last tries all failed."""
        failing = [f"{e.name} ({e.health.last}, {e.health.failures} tries in a row)"
                   for e in self.endpoints if e.health.failing]
        return f"failing webhook endpoints: {'; '.join(failing)}" if failing else None


def build(settings: WebhooksSettings, client: TeleportClient, *, timer: Timer = REAL_TIME,
          web_proxy_addr: str = "", process: str | None = None,
          clock: Clock | None = None) -> Integration:
    """`timer` keeps the deliveries' waits; `clock` is Teleport's time (the system clock); `process` names
    this bot process in the delivery records (random by default)."""
    timeout = settings.timeout.total_seconds()
    sender = Sender(timeout=timeout)
    endpoints = [Endpoint(endpoint) for endpoint in settings.endpoints]
    delivery = Delivery(sender, timer, process or secrets.token_hex(6), retry_for=settings.retry_for,
                        lease=max(LEASE, timeout + 30.0))
    handler = WebhookEvents(client, endpoints, delivery, clock=clock or SystemClock(),
                            web_proxy_addr=web_proxy_addr)
    observers = [WebhookFollower(handler, timer=timer)] if endpoints else []
    deciders = [DecisionHook(settings.decide, sender, web_proxy_addr=web_proxy_addr)] if settings.decide else []
    return Integration("webhooks", observers=observers, deciders=deciders,
                       services=[WebhooksService(endpoints, sender)])
