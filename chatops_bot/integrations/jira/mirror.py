"""`jira.mirror`: one Jira issue per access request, a comment for each review, a transition on each outcome.

A `chatops_bot.watcher.Handler`, run in lanes of its own (`Follower`), so a slow Jira never holds up the
cards. What was done is kept in the request's plugin data, written with compare-and-swap, so restarts and
replicas neither repeat nor lose it:
- `jira_issue`: the issue's key, or `creating:<process>@<unix time>` while one bot process creates it. That
  claim lapses after `CLAIM_LEASE`; whoever takes it over first searches Jira for the issue by its label
  (`teleport-access-request-<request ID>`, stored on the issue), so a process that died between creating the
  issue and recording its key costs no second issue.
- `jira_reviews`: how many of the request's reviews are commented; each comment is recorded as it is made.
- `jira_outcome`: the state (APPROVED, DENIED) the issue was moved for.
Requests first seen already decided get no issue, so turning the mirror on does not file the history.
When Teleport deletes a request (a pending one whose TTL ran out, or one withdrawn), its plugin data goes
with it: the issue is found by its label and moved to `expired`, unless it already shows an outcome.

The mirror only reports. Nothing done to the issue in Jira decides the request.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time

from chatops_bot.integrations.jira.client import JiraClient, JiraProblem
from chatops_bot.integrations.jira.settings import MirrorSettings
from chatops_bot.teleport.client import TeleportClient
from chatops_bot.timer import Later
from commands.errors import CompareFailed
from commands.messages import web_link
from commands.model import AccessRequest, RequestState

logger = logging.getLogger(__name__)

ISSUE, REVIEWS, OUTCOME = "jira_issue", "jira_reviews", "jira_outcome"
CREATING = "creating:"
CLAIM_LEASE = 120.0  # seconds a process may take to create an issue before another takes over
LABEL = "teleport-access-request-"


def label(request_id: str) -> str:
    return LABEL + request_id


class JiraMirror:
    def __init__(self, settings: MirrorSettings, jira: JiraClient, teleport: TeleportClient, *,
                 web_proxy_addr: str = "", claim_lease: float = CLAIM_LEASE) -> None:
        """`web_proxy_addr`: Teleport's Web UI, to link each issue to its request ("" links nothing)."""
        self.settings, self.jira, self.teleport = settings, jira, teleport
        self.web_proxy_addr, self.claim_lease = web_proxy_addr, claim_lease
        self.process = secrets.token_hex(6)

    async def sync(self, request: AccessRequest) -> None:
        if not self.settings.covers(request.roles):
            return
        data = await self.teleport.get_plugin_data(request.id)
        if ISSUE not in data and request.state is not RequestState.PENDING:
            return  # decided before the mirror saw it (a first start, say): no issue for the history
        try:
            key = await self._issue(request, data)
            await self._comment_reviews(request, key, data)
            await self._outcome(request, key, data)
        except JiraProblem as err:
            raise Later(30.0, f"Jira: {err}") from None

    async def closed(self, request_id: str) -> None:
        if self.settings.expired is None:
            return
        try:
            key = await self.jira.find_issue(self.settings.project, label(request_id))
            ticket = await self.jira.ticket(key) if key else None
            if ticket is None or ticket.status in (self.settings.approved, self.settings.denied):
                return
            await self.jira.move_to(ticket.key, self.settings.expired)
        except JiraProblem as err:
            raise Later(30.0, f"Jira: {err}") from None

    async def _issue(self, request: AccessRequest, data: dict[str, str]) -> str:
        """The request's issue, created (or found after a crash) and recorded once."""
        recorded = data.get(ISSUE, "")
        if recorded and not recorded.startswith(CREATING):
            return recorded
        if recorded:
            owner, _, since = recorded.removeprefix(CREATING).partition("@")
            age = time.time() - int(since) if since.isdigit() else self.claim_lease
            if owner != self.process and age < self.claim_lease:
                raise Later(self.claim_lease - age + 1.0, "another bot process is creating its Jira issue")
        mine = f"{CREATING}{self.process}@{int(time.time())}"
        try:
            await self.teleport.update_plugin_data(request.id, set={ISSUE: mine}, expect={ISSUE: recorded})
        except CompareFailed:
            raise Later(1.0, "another bot process claimed its Jira issue") from None
        try:
            key = await self.jira.find_issue(self.settings.project, label(request.id))
            if key is None:
                key = await self.jira.create_issue(
                    project=self.settings.project, issue_type=self.settings.issue_type,
                    summary=f"Access request from {request.user} for {', '.join(request.roles)}",
                    description=self._description(request), labels=[label(request.id)])
                logger.info("created Jira issue %s", key, extra={"request_id": request.id})
        except JiraProblem:
            # Given back at once, so the next try (here or in another process) need not wait out the lease;
            # an issue Jira created after all is found by its label then.
            with contextlib.suppress(CompareFailed):
                await self.teleport.update_plugin_data(request.id, set={ISSUE: ""}, expect={ISSUE: mine})
            raise
        await self.teleport.update_plugin_data(request.id, set={ISSUE: key}, expect={ISSUE: mine})
        data[ISSUE] = key
        return key

    async def _comment_reviews(self, request: AccessRequest, key: str, data: dict[str, str]) -> None:
        done = int(data.get(REVIEWS, "0") or 0)
        for n, review in enumerate(request.reviews[done:], start=done):
            verb = "approved" if review.proposed_state is RequestState.APPROVED else "denied"
            reason = f": {review.reason}" if review.reason else ""
            await self.jira.comment(key, f"{review.author} {verb} the request{reason}")
            try:
                await self.teleport.update_plugin_data(request.id, set={REVIEWS: str(n + 1)},
                                                       expect={REVIEWS: data.get(REVIEWS, "")})
            except CompareFailed:
                return  # another process commented at the same time: it records the rest
            data[REVIEWS] = str(n + 1)

    async def _outcome(self, request: AccessRequest, key: str, data: dict[str, str]) -> None:
        status = {RequestState.APPROVED: self.settings.approved,
                  RequestState.DENIED: self.settings.denied}.get(request.state)
        if status is None or data.get(OUTCOME) == request.state.name:
            return
        await self.jira.move_to(key, status)
        try:
            await self.teleport.update_plugin_data(request.id, set={OUTCOME: request.state.name},
                                                   expect={OUTCOME: data.get(OUTCOME, "")})
        except CompareFailed:
            return
        data[OUTCOME] = request.state.name

    def _description(self, request: AccessRequest) -> str:
        lines = [f"Teleport access request {request.id}", f"User: {request.user}",
                 f"Roles: {', '.join(request.roles)}", f"Reason: {request.reason or 'none given'}"]
        if link := web_link(self.web_proxy_addr, request.id):
            lines.append(f"Review it: {link}")
        lines.append("Decide it in chat or with tsh: moving this issue decides nothing.")
        return "\n".join(lines)
