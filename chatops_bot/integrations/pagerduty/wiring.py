"""The `pagerduty` section -> the `Integration` the bot runs: the on-call decider, the incident keeper, and
the webhook route responders decide through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from chatops_bot.directory import TeleportDirectory
from chatops_bot.integrations import Integration
from chatops_bot.integrations.pagerduty.account import PagerDutyAccount
from chatops_bot.integrations.pagerduty.client import PagerDutyClient
from chatops_bot.integrations.pagerduty.decider import PagerDutyDecider
from chatops_bot.integrations.pagerduty.incidents import IncidentKeeper
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from chatops_bot.integrations.pagerduty.webhook import WebhookService
from chatops_bot.timer import REAL_TIME, Timer
from chatops_bot.watcher import Follower, Observer
from chatops_bot.wiring import command_context

if TYPE_CHECKING:
    from chatops_bot.config import Settings
    from chatops_bot.teleport.client import TeleportClient


def client(settings: PagerDutySettings, *, timer: Timer = REAL_TIME) -> PagerDutyClient:
    return PagerDutyClient(settings.api_url, settings.token.get_secret_value(), from_email=settings.from_email or "",
                           deadline=settings.timeout.total_seconds(), timer=timer)


def integration(everything: Settings, teleport: TeleportClient, *, timer: Timer = REAL_TIME) -> Integration:
    """The `pagerduty` section of `everything` at work, on the bot's Teleport client."""
    settings = everything.pagerduty
    assert settings is not None
    made = client(settings, timer=timer)
    decider = PagerDutyDecider(settings, PagerDutyAccount(made), teleport)
    observers: list[Observer] = []
    services: list[Any] = [PagerDutyService(made)]
    if settings.incidents is not None:
        keeper = IncidentKeeper(made, teleport, settings.incidents.services,
                                web_proxy_addr=everything.teleport.web_proxy_addr or "")
        observers.append(Follower(keeper, timer=timer))
    if settings.webhook is not None:
        ctx = command_context(everything, teleport, responders(settings, teleport))
        services.append(WebhookService(made, ctx, [s.get_secret_value() for s in settings.webhook.secrets],
                                       max_age=settings.webhook.max_age, bot_email=settings.from_email or ""))
    return Integration(name="pagerduty", deciders=[decider] if settings.auto_approve else [],
                       observers=observers, services=services)


def responders(settings: PagerDutySettings, teleport: TeleportClient) -> TeleportDirectory:
    """PagerDuty user (a `pagerduty` ChatUser whose id is their e-mail) -> Teleport user, the way requesters
    are matched: by the e-mail trait, or by a Teleport user name that is the e-mail."""
    if settings.requester_email == "user_name":
        return TeleportDirectory(teleport, traits={}, user_map={}, match_email=True)
    return TeleportDirectory(teleport, traits={"pagerduty": settings.email_trait}, user_map={})



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
