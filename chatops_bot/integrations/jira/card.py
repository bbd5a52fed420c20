"""The ticket on a request's card: key (a link to the issue), summary and status, read from Jira each time
the card is drawn, so a redrawn card shows the ticket as it is now."""

from __future__ import annotations

import logging

from chatops_bot.integrations.jira.client import JiraClient, JiraProblem
from chatops_bot.integrations.jira.gate import KEY
from chatops_bot.integrations.jira.settings import JiraSettings
from commands.model import AccessRequest
from commands.reply import Field

logger = logging.getLogger(__name__)

LABEL = "Ticket"


class TicketCard:
    """The `commands.ports.CardDetail` for Jira. The ticket is the first issue key in the request's reason
    in a project `require_ticket` names: the gate put it there. Without rules, no card shows a ticket (a
    reason's `UTF-8` is no issue key)."""

    def __init__(self, settings: JiraSettings, client: JiraClient) -> None:
        self.projects = {p for rule in settings.require_ticket for p in rule.projects}
        self.client = client

    async def fields(self, request: AccessRequest) -> tuple[Field, ...]:
        keys = [k for k in KEY.findall(request.reason) if k.rsplit("-", 1)[0] in self.projects]
        if not keys:
            return ()
        key = keys[0]
        try:
            ticket = await self.client.ticket(key)
        except JiraProblem as err:
            # The card still names the ticket and links to it; only what Jira would have added is missing.
            logger.warning("cannot read ticket %s for the card of request %s: %s", key, request.id, err)
            return (Field(LABEL, key, self.client.browse_url(key)),)
        if ticket is None:
            return (Field(LABEL, f"{key} (not found in Jira)"),)
        return (Field(LABEL, f"{ticket.key}: {ticket.summary} ({ticket.status})", ticket.url),)
