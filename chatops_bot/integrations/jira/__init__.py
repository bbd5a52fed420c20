"""Jira: requests tied to the ticket they are for (`jira.require_ticket`), checked before they exist, and
the ticket shown on their cards.

`build` turns the `jira:` section into an `Integration` whose gate the `request` command asks and whose card
detail every card drawing asks; the client
(`client.py`) is the only place that talks to Jira. Nothing heavy is imported here, so reading the config
(which needs `settings.py`) does not load the Jira library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatops_bot.integrations import Integration
from chatops_bot.timer import REAL_TIME, Timer

if TYPE_CHECKING:
    from chatops_bot.integrations.jira.settings import JiraSettings
    from chatops_bot.teleport.client import TeleportClient


def build(settings: JiraSettings, teleport: TeleportClient, *, web_proxy_addr: str = "",
          timer: Timer = REAL_TIME) -> Integration:
    """The gate (users' `email` trait read from `teleport`), the card detail, and with `jira.mirror` the
    mirror in lanes of its own; `web_proxy_addr` links each mirrored issue to its request."""
    from chatops_bot.integrations.jira.card import TicketCard
    from chatops_bot.integrations.jira.client import JiraClient
    from chatops_bot.integrations.jira.gate import TicketGate
    from chatops_bot.integrations.jira.mirror import JiraMirror
    from chatops_bot.watcher import Follower

    client = JiraClient(settings, timer=timer)
    observers = [] if settings.mirror is None else [
        Follower(JiraMirror(settings.mirror, client, teleport, web_proxy_addr=web_proxy_addr), timer=timer)]
    return Integration("jira", observers=observers, gates=[TicketGate(settings, client, teleport.get_user)],
                       details=[TicketCard(settings, client)])
