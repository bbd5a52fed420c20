"""The `pagerduty` section -> the `Integration` the bot runs: today, the on-call decider."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute

from chatops_bot.integrations import Integration
from chatops_bot.integrations.pagerduty.account import PagerDutyAccount
from chatops_bot.integrations.pagerduty.client import PagerDutyClient
from chatops_bot.integrations.pagerduty.decider import PagerDutyDecider, Users
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from chatops_bot.timer import REAL_TIME, Timer


def client(settings: PagerDutySettings, *, timer: Timer = REAL_TIME) -> PagerDutyClient:
    return PagerDutyClient(settings.api_url, settings.token.get_secret_value(),
                           deadline=settings.timeout.total_seconds(), timer=timer)


def integration(settings: PagerDutySettings, users: Users, *, timer: Timer = REAL_TIME) -> Integration:
    """`users`: the Teleport client, for the requester's e-mail trait."""
    made = client(settings, timer=timer)
    decider = PagerDutyDecider(settings, PagerDutyAccount(made), users)
    return Integration(name="pagerduty", deciders=[decider] if settings.auto_approve else [],
                       services=[PagerDutyService(made)])


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
