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
    from chatops_bot.config import Settings
    from chatops_bot.teleport.client import TeleportClient


def build(settings: Settings, teleport: TeleportClient, *, timer: Timer = REAL_TIME) -> Integration:
    """The gate (users' `email` trait read from `teleport`) and the card detail; with `jira.mirror`, the
    mirror in lanes of its own; with `jira.webhook`, the service deciding from Jira through the commands."""
    import dataclasses

    from chatops_bot.integrations.jira.card import TicketCard
    from chatops_bot.integrations.jira.client import JiraClient
    from chatops_bot.integrations.jira.gate import TicketGate
    from chatops_bot.integrations.jira.mirror import JiraMirror
    from chatops_bot.integrations.jira.webhook import JiraPeople, JiraWebhook
    from chatops_bot.watcher import Follower
    from chatops_bot.wiring import command_context

    jira = settings.jira
    assert jira is not None
    client = JiraClient(jira, timer=timer)
    observers, services, hooks = [], [], []
    if jira.mirror is not None:
        mirror = JiraMirror(jira.mirror, client, teleport, web_proxy_addr=settings.teleport.web_proxy_addr or "")
        observers.append(Follower(mirror, timer=timer))
    if jira.webhook is not None:
        people = JiraPeople(dict(jira.webhook.users), teleport)
        ctx = dataclasses.replace(command_context(settings, teleport), directory=people)
        webhook = JiraWebhook(secret=jira.webhook.secret.get_secret_value().encode(), mirror=jira.mirror,
                              ctx=ctx, jira=client, teleport=teleport, end_with_ticket=jira.end_with_ticket)
        services.append(webhook)
        hooks.append(webhook.attach)
    return Integration("jira", observers=observers, services=services, with_notifier=hooks,
                       gates=[TicketGate(jira, client, teleport.get_user)], details=[TicketCard(jira, client)])
