"""The ports the command layer needs from the outside world, sized to what it uses.

`AccessBackend` is the slice of Teleport's Auth API the commands call; `Directory` maps chat users
to Teleport users; `Clock` is the time source (injected so tests never sleep); a `RequestGate` is a check
an outside system (a Jira ticket) makes before a request is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from commands.model import AccessRequest, Capabilities, ChatUser, RequestState, Review, Role, User
from commands.reply import Field


class AccessBackend(Protocol):
    async def create_request(
        self,
        *,
        user: str,
        roles: Sequence[str],
        reason: str = "",
        max_duration: timedelta | None = None,
        suggested_reviewers: Sequence[str] = (),
        dry_run: bool = False,
    ) -> AccessRequest:
        """Create a pending request; with `dry_run`, only validate it and return what Teleport computed."""
        ...

    async def get_request(self, request_id: str) -> AccessRequest:
        """The request with exactly this ID; raises `NotFound`."""
        ...

    async def list_requests(
        self, *, user: str = "", state: RequestState = RequestState.NONE
    ) -> list[AccessRequest]: ...

    async def delete_request(self, request_id: str) -> None:
        """Delete the request (`access_request: delete`); raises `NotFound`."""
        ...

    async def submit_review(self, request_id: str, review: Review) -> AccessRequest: ...

    async def set_state(
        self, request_id: str, *, state: RequestState, reason: str = "", delegator: str = ""
    ) -> None: ...

    async def get_user(self, name: str) -> User: ...

    async def get_role(self, name: str) -> Role: ...

    async def get_capabilities(self, user: str) -> Capabilities: ...

    async def plugin_value(self, request_id: str, key: str) -> str:
        """The bot's plugin data value under `key` on the request, "" when unset (`review.rules` counts)."""
        ...

    async def swap_plugin_value(self, request_id: str, key: str, *, expect: str, value: str) -> None:
        """Set `key` to `value` only if it still holds `expect` ("" for unset); raises `CompareFailed`."""
        ...


class Directory(Protocol):
    async def teleport_user(self, chat_user: ChatUser) -> str:
        """The Teleport user name of a chat user; raises `UnknownUserError` with how to get linked."""
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True)
class Proposal:
    """A request about to be created, as a gate sees it. `ticket` is what `--ticket` (or the form's Ticket
    field) gave, "" when nothing; `email` is the requester's chat e-mail when the platform gave one."""

    user: str
    roles: tuple[str, ...]
    reason: str
    ticket: str = ""
    email: str = ""


@dataclass(frozen=True)
class GateResult:
    """The reason to create the request with (a gate may add what it checked, such as the ticket key, so
    Teleport's audit log carries it), and a line for the requester's reply ("" says nothing)."""

    reason: str
    note: str = ""


class RequestGate(Protocol):
    def help(self) -> str:
        """What `/access help request` should add about this gate ("" when nothing)."""
        ...

    async def check(self, proposal: Proposal) -> GateResult:
        """Pass the proposal, possibly with a new reason, or raise `PermissionRefused` with the exact reason
        it may not be created (its system unreachable included: gates fail closed)."""
        ...


class CardDetail(Protocol):
    async def fields(self, request: AccessRequest) -> tuple[Field, ...]:
        """Lines an outside system adds to the request's card (its Jira ticket), as raw text the card
        neutralises; () when there is nothing to add. Never raises: a card is drawn whatever it says."""
        ...
