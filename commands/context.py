"""What every command handler gets: the ports, the clock, the review settings, and shared look-ups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from commands import approvals, messages, policy, rules
from commands.errors import CommandError, NoSuchRequest, NotFound, PermissionRefused, UnknownUserError, UsageError
from commands.matchers import PolicyError
from commands.model import AccessRequest, RequestState, Role, User
from commands.ports import AccessBackend, CardDetail, Clock, Directory, RequestGate
from commands.reply import Action, Field, Invocation, RequestCard

logger = logging.getLogger(__name__)

REVIEW_MODES = ("on_behalf", "as_bot", "resolve")
FULL_ID_LENGTH = 36


@dataclass(frozen=True)
class CommandConfig:
    review_mode: str = "on_behalf"
    web_only_roles: frozenset[str] = field(default_factory=frozenset)
    web_proxy_addr: str = ""
    deny_reason_required: bool = False
    # `review.rules`: in resolve mode, who may decide what and how many approvals it takes, instead of the
    # reviewers' Teleport roles (which Community Edition cannot give review_requests).
    review_rules: tuple[rules.ReviewRule, ...] = ()

    def __post_init__(self) -> None:
        if self.review_mode not in REVIEW_MODES:
            raise ValueError(f"review mode must be one of {', '.join(REVIEW_MODES)}")
        if self.review_rules and self.review_mode != "resolve":
            raise ValueError("review rules apply only in review mode resolve")

    @property
    def uses_rules(self) -> bool:
        return bool(self.review_rules)


@dataclass(frozen=True)
class Context:
    backend: AccessBackend
    directory: Directory
    clock: Clock
    config: CommandConfig = CommandConfig()
    # The same Teleport, allowed to answer users and roles from a copy a few seconds old: for commands
    # that change nothing (`user_and_roles(fresh=False)`). None: `backend` answers.
    recent: AccessBackend | None = None
    # Told a request's ID when a command changed what its cards show without Teleport knowing (an approval
    # counted under `review.rules`), so that every card, not only the clicked one, is drawn again.
    changed: Callable[[str], None] | None = None
    # Checks a request must pass before it is created (a Jira ticket), asked in order by `request`.
    gates: tuple[RequestGate, ...] = ()
    # What outside systems add to a request's card (its Jira ticket), asked each time a card is drawn.
    details: tuple[CardDetail, ...] = ()

    async def card_details(self, request: AccessRequest) -> tuple[Field, ...]:
        found = await asyncio.gather(*(detail.fields(request) for detail in self.details))
        return tuple(field for fields in found for field in fields)

    def review_decision(self, user: User, roles: list[Role], request: AccessRequest) -> policy.Decision:
        """May `user` review `request`: by `review.rules` when configured, else by their Teleport roles."""
        if self.config.uses_rules:
            decision = rules.decide(self.config.review_rules, user, request)
            return policy.Decision(decision.allowed, decision.reason)
        return policy.review_decision(user, roles, request)

    async def tally(self, request: AccessRequest) -> approvals.Tally | None:
        """Under `review.rules`, a pending request's approvals so far and how many it needs; else None (its
        reviews in Teleport say it). None, logged, when the count cannot be read: the card then omits it."""
        if not self.config.uses_rules or request.state is not RequestState.PENDING:
            return None
        try:
            needed = rules.approvals_needed(self.config.review_rules, request)
            recorded = approvals.decode(await self.backend.plugin_value(request.id, approvals.KEY))
        except (PolicyError, approvals.LedgerError) as err:
            logger.warning("cannot count the approvals of request %s: %s", request.id, err)
            return None
        except CommandError as err:
            logger.warning("cannot read the approvals of request %s: %s", request.id, err.message)
            return None
        return approvals.Tally(recorded, needed) if needed else None

    async def teleport_user(self, invocation: Invocation) -> str:
        return await self.directory.teleport_user(invocation.actor)

    async def user_and_roles(self, name: str, *, fresh: bool = True) -> tuple[User, list[Role]]:
        """The user's statically assigned roles; a role we cannot load refuses (fail closed). Loaded fresh
        unless `fresh` is False, which only a command that changes nothing may ask for (a list may be a
        few seconds behind a role change; a review never is)."""
        source = self.backend if fresh or self.recent is None else self.recent
        try:
            user = await source.get_user(name)
        except NotFound:
            raise UnknownUserError(messages.no_teleport_user(name)) from None
        try:
            roles = await asyncio.gather(*(source.get_role(r) for r in user.roles))
        except NotFound:
            missing = [r for r in user.roles if not await self._role_exists(r)]
            raise PermissionRefused(messages.roles_not_loaded(missing)) from None
        return user, list(roles)

    async def _role_exists(self, name: str) -> bool:
        try:
            await self.backend.get_role(name)
        except NotFound:
            return False
        return True

    async def find_request(
        self,
        request_id: str,
        visible: Callable[[AccessRequest], bool] = lambda _: True,
        *,
        fresh: bool = True,
    ) -> AccessRequest:
        """A full ID, or the short ID (the last 8 characters), among the requests `visible` lets this
        person see. Every form of the ID of a request they may not see gets the same answer as an ID that
        does not exist (`NoSuchRequest`), so no form confirms that it exists. The request is read from
        Teleport itself unless `fresh` is False: the listing a short ID is matched in may be a moment
        behind (the watcher's copy), which only a command that changes nothing may use."""
        if len(request_id) == FULL_ID_LENGTH:
            try:
                request = await self.backend.get_request(request_id)
            except NotFound:
                raise NoSuchRequest(messages.not_found(request_id)) from None
            if not visible(request):
                raise NoSuchRequest(messages.not_found(request_id))
            return request
        short = request_id.lower()
        listed = [r for r in await self.backend.list_requests() if visible(r)]
        seen = [r for r in listed if r.id.endswith(short)]
        if not seen:
            # The start of an ID copied instead of its end (IDs are time-ordered: their starts collide, so
            # only the end is accepted): point to the short ID, for a request this person may see.
            started = [r for r in listed if r.id.startswith(short)]
            if len(started) == 1:
                raise UsageError(messages.start_not_short(request_id, started[0].id))
            raise NoSuchRequest(messages.not_found(request_id))
        if len(seen) > 1:  # 32 random bits: two alike among what one person sees is rare, not impossible
            raise UsageError(messages.ambiguous(request_id, seen, len(seen)))
        if not fresh:
            return seen[0]
        try:
            return await self.backend.get_request(seen[0].id)
        except NotFound:
            raise NoSuchRequest(messages.not_found(request_id)) from None

    def reviews_anything(self, user: User, roles: list[Role]) -> bool:
        """Whether this person may review some request at all: named in `review.rules`, else a role with
        `review_requests` that names roles (not merely preview or submit for others)."""
        if self.config.uses_rules:
            return rules.names_reviewer(self.config.review_rules, user)
        return any(
            r.allow.review_requests is not None
            and bool(r.allow.review_requests.roles or r.allow.review_requests.claims_to_roles)
            for r in roles
        )

    async def current_card(self, request_id: str) -> RequestCard | None:
        """The card as Teleport has it now (buttons only while pending), to redraw after a click; None,
        logged, when it cannot be read: the review itself already went through."""
        try:
            request = await self.backend.get_request(request_id)
            now, url = self.clock.now(), self.web_url(request_id)
            return messages.card(request, now=now, actions=(Action.APPROVE, Action.DENY), web_url=url,
                                 tally=await self.tally(request), details=await self.card_details(request))
        except CommandError as err:
            logger.warning("cannot re-read request %s to redraw its card: %s", request_id, err.message)
        except Exception:
            # A bug here must not turn the clicker's confirmation into a platform's "action failed".
            logger.exception("cannot build the card of request %s", request_id)
        return None

    def web_url(self, request_id: str) -> str:
        return messages.web_link(self.config.web_proxy_addr, request_id)
