"""Ticket-gated requests: before a request for a covered role is created, the Jira issue it cites must exist
and be in an allowed project, issue type and status, and, when a rule says so, be assigned to the requester.

The key comes from `--ticket` (or the form's Ticket field), else from the first issue key in the reason. It
is put in the reason the request is created with, so Teleport's audit log carries it. Every refusal says
exactly why; Jira's own text (statuses, names) is neutralised like anything a user typed. Jira unreachable,
slow or refusing the bot refuses the request too: the gate fails closed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence

from chatops_bot.integrations.jira.client import JiraClient, JiraProblem, Ticket
from chatops_bot.integrations.jira.settings import JiraSettings, TicketRule
from commands.errors import CommandError, PermissionRefused
from commands.matchers import compile_matcher
from commands.messages import name, names
from commands.model import User
from commands.ports import GateResult, Proposal

logger = logging.getLogger(__name__)

KEY = re.compile(r"(?<![A-Za-z0-9_-])([A-Z][A-Z0-9_]*-[1-9][0-9]{0,9})(?![A-Za-z0-9_-])")
EMAIL_TRAIT = "email"


class TicketGate:
    """The `commands.ports.RequestGate` for `jira.require_ticket`. `users` reads a Teleport user, for the
    `email` trait the assignee check accepts besides a user name that is an e-mail and the chat e-mail."""

    def __init__(self, settings: JiraSettings, client: JiraClient,
                 users: Callable[[str], Awaitable[User]] | None = None) -> None:
        self.settings = settings
        self.client = client
        self.users = users

    def help(self) -> str:
        lines = [("--ticket KEY: the Jira issue the request is for (its key may also be written in the "
                  "reason); the key goes into the request's reason.")]
        for rule in self.settings.require_ticket:
            # The operator's own role matchers, in code spans so a glob's `*` is not read as markup.
            lines.append(f"Requests for {', '.join(f'`{m}`' for m in rule.roles)} need a ticket: {_describe(rule)}.")
        return "\n".join(lines)

    async def check(self, proposal: Proposal) -> GateResult:
        rules = self.settings.ticket_rules(proposal.roles)
        key = proposal.ticket or _key_in(proposal.reason, rules)
        if not key:
            if not rules:
                return GateResult(proposal.reason)
            raise PermissionRefused(
                f"Requests for {names(_covered(rules, proposal.roles))} need a Jira ticket "
                f"({'; '.join(_describe(r) for r in rules)}): add `--ticket KEY`. Nothing was requested.")
        ticket = await self._ticket(key)
        emails = await self._emails(proposal) if any(r.assigned_to_requester for r in rules) else set()
        for rule in rules:
            problem = _problem(rule, ticket, emails, _covered([rule], proposal.roles))
            if problem:
                raise PermissionRefused(f"{problem}. Nothing was requested.")
        note = f"Ticket {name(ticket.key)} ({name(ticket.status)}) checked." if rules else ""
        return GateResult(_with_key(proposal.reason, ticket.key), note)

    async def _ticket(self, key: str) -> Ticket:
        try:
            ticket = await self.client.ticket(key)
        except JiraProblem as err:
            logger.warning("cannot check ticket %s: %s", key, err)
            raise PermissionRefused(
                f"Ticket {name(key)} could not be checked ({err}), so nothing was requested. Try again shortly."
            ) from None
        if ticket is None:
            raise PermissionRefused(f"There is no Jira issue {name(key)} that the bot can see. Nothing was requested.")
        return ticket

    async def _emails(self, proposal: Proposal) -> set[str]:
        """The requester's e-mail addresses the bot can vouch for, lower-cased."""
        found = {proposal.email} | ({proposal.user} if "@" in proposal.user else set())
        if self.users is not None:
            try:
                found |= set((await self.users(proposal.user)).traits.get(EMAIL_TRAIT, ()))
            except CommandError as err:
                logger.warning("cannot read the e-mail trait of %s: %s", proposal.user, err.message)
        return {e.strip().lower() for e in found if e and "@" in e}


def _problem(rule: TicketRule, ticket: Ticket, emails: set[str], roles: Sequence[str]) -> str:
    """Why `ticket` does not pass `rule`, in words; "" when it passes."""
    key, wanted = name(ticket.key), names(roles)
    if ticket.project not in rule.projects:
        return f"{key} is in project {name(ticket.project)}; {wanted} requests need a ticket in {_any(rule.projects)}"
    if rule.issue_types and ticket.issue_type not in rule.issue_types:
        return (f"{key} is of type {name(ticket.issue_type)}; {wanted} requests need an issue of type "
                f"{_any(rule.issue_types)}")
    if rule.statuses and ticket.status not in rule.statuses:
        return f"{key} is {name(ticket.status)}; tickets must be {_any(rule.statuses)}"
    if rule.assigned_to_requester:
        if ticket.assignee_email is None:
            return f"{key} is assigned to nobody; {wanted} requests need a ticket assigned to you"
        if not ticket.assignee_email:
            return (f"Jira hides the e-mail of {key}'s assignee, so the bot cannot tell it is you; "
                    f"{wanted} requests need a ticket assigned to you")
        if ticket.assignee_email.lower() not in emails:
            return (f"{key} is assigned to {name(ticket.assignee_name or 'someone else')}, not you; "
                    f"{wanted} requests need a ticket assigned to you")
    return ""


def _describe(rule: TicketRule) -> str:
    parts = [f"in {_any(rule.projects)}"]
    if rule.issue_types:
        parts.append(f"of type {_any(rule.issue_types)}")
    if rule.statuses:
        parts.append(_any(rule.statuses))
    if rule.assigned_to_requester:
        parts.append("assigned to you")
    return ", ".join(parts)


def _any(items: Iterable[str]) -> str:
    shown = [name(item) for item in items]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _covered(rules: Sequence[TicketRule], roles: Sequence[str]) -> list[str]:
    matchers = [compile_matcher(m) for rule in rules for m in rule.roles]
    return [role for role in roles if any(m.matches(role) for m in matchers)]


def _key_in(reason: str, rules: Sequence[TicketRule]) -> str:
    """The first issue key in the reason in a project the rules allow, else the first key at all."""
    keys = KEY.findall(reason)
    allowed = {p for rule in rules for p in rule.projects}
    return next((k for k in keys if k.rsplit("-", 1)[0] in allowed), keys[0] if keys else "")


def _with_key(reason: str, key: str) -> str:
    if key in KEY.findall(reason):
        return reason
    return f"{key}: {reason}" if reason else key
