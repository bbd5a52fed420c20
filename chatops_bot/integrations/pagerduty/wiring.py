"""The `pagerduty` section -> the `Integration` the bot runs: the on-call decider and the incident keeper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.routing import BaseRoute

from chatops_bot.integrations import Integration
from chatops_bot.integrations.pagerduty.account import PagerDutyAccount
from chatops_bot.integrations.pagerduty.client import PagerDutyClient
from chatops_bot.integrations.pagerduty.decider import PagerDutyDecider, Users
from chatops_bot.integrations.pagerduty.incidents import IncidentKeeper, PluginData
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from chatops_bot.timer import REAL_TIME, Timer
from chatops_bot.watcher import Follower, Observer


def client(settings: PagerDutySettings, *, timer: Timer = REAL_TIME) -> PagerDutyClient:
    return PagerDutyClient(settings.api_url, settings.token.get_secret_value(), from_email=settings.from_email or "",
                           deadline=settings.timeout.total_seconds(), timer=timer)


def integration(settings: PagerDutySettings, teleport: Teleport, *, web_proxy_addr: str = "",
                timer: Timer = REAL_TIME) -> Integration:
    """`teleport`: the bot's Teleport client (the requester's e-mail trait, plugin data)."""
    made = client(settings, timer=timer)
    decider = PagerDutyDecider(settings, PagerDutyAccount(made), teleport)
    observers: list[Observer] = []
    if settings.incidents is not None:
        keeper = IncidentKeeper(made, teleport, settings.incidents.services, web_proxy_addr=web_proxy_addr)
        observers.append(Follower(keeper, timer=timer))
    return Integration(name="pagerduty", deciders=[decider] if settings.auto_approve else [],
                       observers=observers, services=[PagerDutyService(made)])


class Teleport(Users, PluginData, Protocol):
    """What the PagerDuty integration asks of the bot's Teleport client."""


class PagerDutyService:
    """Closes the PagerDuty client's connections when the bot stops; PagerDuty being down does not make
    the bot unready (requests then wait for a human, see `PagerDutyDecider`)."""

    name = "pagerduty"

    def __init__(self, client: PagerDutyClient) -> None:
        self.client = client

    def routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.client.close()

    async def why_not_ready(self) -> str | None:
        return None
