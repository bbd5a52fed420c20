"""`PagerDutyDecider`: approves a pending request whose requester is on call as `pagerduty.auto_approve` says.

It only ever approves, or says nothing (a human decides); when PagerDuty (or Teleport, for the requester's
e-mail) cannot be asked, it raises `Undecided` so the request is asked about again while it is pending,
and is never approved by mistake. A rule that was close but not met leaves no trace on the card.
"""

from __future__ import annotations

import logging
from typing import Protocol

from chatops_bot.automatic import Undecided, Verdict
from chatops_bot.integrations.pagerduty import rules
from chatops_bot.integrations.pagerduty.account import PagerDutyAccount
from chatops_bot.integrations.pagerduty.client import PagerDutyError
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from commands.errors import BackendError, NotFound
from commands.matchers import PolicyError
from commands.model import AccessRequest, RequestState, User

logger = logging.getLogger(__name__)


class Users(Protocol):
    """The slice of the Teleport client the decider needs: a user's traits."""

    async def get_user(self, name: str) -> User: ...


class PagerDutyDecider:
    name = "pagerduty"

    def __init__(self, settings: PagerDutySettings, account: PagerDutyAccount, users: Users) -> None:
        self.settings, self.account, self.users = settings, account, users

    def covers(self, request: AccessRequest) -> bool:
        try:
            return rules.covers(self.settings.auto_approve, request.roles)
        except PolicyError:
            return False  # a role name no matcher can judge safely: a human decides

    async def verdict(self, request: AccessRequest) -> Verdict | None:
        if request.state is not RequestState.PENDING or not self.covers(request):
            return None
        log = {"request_id": request.id}
        email = await self._email(request.user)
        if not email:
            logger.info("request %s: %s has no e-mail to find in PagerDuty; a human decides", request.id,
                        request.user, extra=log)
            return None
        try:
            person = await self.account.user_by_email(email)
            if person is None:
                logger.info("request %s: no PagerDuty user has %s's e-mail; a human decides", request.id,
                            request.user, extra=log)
                return None
            on_calls = await self.account.on_calls(person.id)
            services = rules.needs_incidents(self.settings.auto_approve, request.roles) if on_calls else []
            open_services = await self.account.open_incident_services(services)
        except PagerDutyError as err:
            raise Undecided(f"PagerDuty cannot be asked: {err}") from None
        matches = rules.decide(self.settings.auto_approve, request, on_calls, open_services)
        if matches is None:
            return None
        names = " and ".join(dict.fromkeys(match.on_call.name for match in matches))
        card = f"Auto-approved: {request.user} is on call for {names}"
        needed = request.approvals_needed
        if needed > 1:
            card = (f"Approved once by PagerDuty: {request.user} is on call for {names}; this request needs "
                    f"{needed} approvals, so {needed - 1} more must come from a reviewer")
        return Verdict(approve=True, reason=rules.reason(matches), source=self.name, card=card)

    async def _email(self, user_name: str) -> str:
        if self.settings.requester_email == "user_name":
            return user_name if "@" in user_name else ""
        try:
            user = await self.users.get_user(user_name)
        except NotFound:
            return ""
        except BackendError as err:
            raise Undecided(f"Teleport cannot be asked for {user_name}'s e-mail: {err.message}") from None
        values = user.traits.get(self.settings.email_trait, ())
        return values[0] if values else ""
