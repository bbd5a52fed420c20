"""Jira: requests tied to the ticket they are for (`jira.require_ticket`), checked before they exist, and
the ticket shown on their cards.

`build` turns the `jira:` section into an `Integration` whose gate the `request` command asks and whose card
detail every card drawing asks; the client
(`client.py`) is the only place that talks to Jira. Nothing heavy is imported here, so reading the config
(which needs `settings.py`) does not load the Jira library.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from chatops_bot.integrations import Integration
from chatops_bot.timer import REAL_TIME, Timer
from commands.model import User

if TYPE_CHECKING:
    from chatops_bot.integrations.jira.settings import JiraSettings


def build(settings: JiraSettings, users: Callable[[str], Awaitable[User]] | None = None, *,
          timer: Timer = REAL_TIME) -> Integration:
    """`users` reads a Teleport user (for the `email` trait the assignee check accepts)."""
    from chatops_bot.integrations.jira.card import TicketCard
    from chatops_bot.integrations.jira.client import JiraClient
    from chatops_bot.integrations.jira.gate import TicketGate

    client = JiraClient(settings, timer=timer)
    return Integration("jira", gates=[TicketGate(settings, client, users)], details=[TicketCard(settings, client)])
