"""What the commands read from memory instead of Teleport: the watcher's copy of every access request, and
users and roles a few seconds old for the commands that change nothing.

`RequestMirror` follows the watcher (it is one of its observers) and answers `list_requests()` from memory
while the watch stream is up and has been resynced; before that, and from the moment the stream drops
until the next resync, it asks Teleport. Writes made through `MirroredBackend` go into the mirror as soon
as Teleport answers them, so whoever just requested or reviewed sees their change in `/access list` even
before its event arrives; a snapshot older than the one held (a late event, a slow listing) never
overwrites it. `get_request` always asks Teleport.

`MirroredBackend(..., ttl=N)` also keeps users and roles for `N` seconds. Only read-only commands read
through that one (`Context.recent`); a review loads the reviewer's roles fresh, so a role taken away
stops them at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from chatops_bot.notify import rank
from chatops_bot.teleport.client import TeleportClient, created_key  # the order Teleport lists in
from commands.errors import BackendError
from commands.model import AccessRequest, Capabilities, RequestState, Review, Role, User

logger = logging.getLogger(__name__)

T = TypeVar("T")


class RequestMirror:
    """Every access request Teleport holds, as the watcher last saw it (a `watcher.Observer`)."""

    def __init__(self, client: TeleportClient, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self.clock = clock
        self.stream: asyncio.Event | None = None  # the watcher's `synced`: set while its stream is up
        self._requests: dict[str, AccessRequest] = {}
        self._sorted: list[AccessRequest] | None = None
        self._resynced = False
        # Since the last resync: what events and writes changed, and which of those were deletions.
        self._touched: set[str] = set()
        self._deleted: set[str] = set()

    def follow(self, synced: asyncio.Event) -> None:
        """Serve from memory only while `synced` (the watcher's) is set: cleared, its stream is down."""
        self.stream = synced

    @property
    def serving(self) -> bool:
        """Whether `list_requests` answers from memory (else it asks Teleport)."""
        return self._resynced and self.stream is not None and self.stream.is_set()

    async def list_requests(
        self, *, user: str = "", state: RequestState = RequestState.NONE
    ) -> list[AccessRequest]:
        """As `TeleportClient.list_requests`: matching requests, newest first, expired ones left out."""
        if not self.serving:
            return await self.client.list_requests(user=user, state=state)
        if self._sorted is None:
            self._sorted = sorted(self._requests.values(), key=created_key, reverse=True)
        now = self.clock()
        return [
            r for r in self._sorted
            if (not user or r.user == user)
            and (state is RequestState.NONE or r.state is state)
            and (r.resource_expiry is None or r.resource_expiry > now)
        ]

    # --- watcher.Observer, and the bot's own writes ---------------------------------------------------

    def put(self, request: AccessRequest) -> None:
        if request.id in self._deleted:
            return  # a write's answer arriving after the request's deletion
        held = self._requests.get(request.id)
        if held is not None and rank(held) > rank(request):
            return  # an older snapshot: the created event after our own review was put, say
        self._requests[request.id] = request
        self._touched.add(request.id)
        self._sorted = None

    def delete(self, request_id: str) -> None:
        self._requests.pop(request_id, None)
        self._touched.add(request_id)
        self._deleted.add(request_id)
        self._sorted = None

    def resynced(self, requests: list[AccessRequest]) -> None:
        """Teleport's listing replaces the copy. While the stream is up (a periodic resync), what events
        and the bot's own writes brought since the last resync wins: the stream missed nothing, and the
        listing may predate a write whose event is still on its way."""
        listed = {r.id: r for r in requests}
        if self.serving:
            for request_id in self._touched:
                held = self._requests.get(request_id)
                if held is None:
                    listed.pop(request_id, None)
                elif request_id not in listed or rank(held) >= rank(listed[request_id]):
                    listed[request_id] = held
        self._requests = listed
        self._touched.clear()
        self._deleted.clear()
        self._sorted = None
        self._resynced = True


class MirroredBackend:
    """The `AccessBackend` the commands use: the listing from the mirror, writes noted in it, the rest
    from Teleport; users and roles kept for `ttl` seconds when it is above 0 (read-only commands only)."""

    def __init__(self, client: TeleportClient, mirror: RequestMirror | None = None, *,
                 ttl: float = 0.0) -> None:
        self.client = client
        self.mirror = mirror
        self._users: _Recent[User] = _Recent(ttl)
        self._roles: _Recent[Role] = _Recent(ttl)

    async def list_requests(
        self, *, user: str = "", state: RequestState = RequestState.NONE
    ) -> list[AccessRequest]:
        source = self.mirror or self.client
        return await source.list_requests(user=user, state=state)

    async def get_request(self, request_id: str) -> AccessRequest:
        return await self.client.get_request(request_id)

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
        created = await self.client.create_request(
            user=user, roles=roles, reason=reason, max_duration=max_duration,
            suggested_reviewers=suggested_reviewers, dry_run=dry_run,
        )
        if self.mirror is not None and not dry_run:
            self.mirror.put(created)
        return created

    async def submit_review(self, request_id: str, review: Review) -> AccessRequest:
        updated = await self.client.submit_review(request_id, review)
        if self.mirror is not None:
            self.mirror.put(updated)
        return updated

    async def set_state(
        self, request_id: str, *, state: RequestState, reason: str = "", delegator: str = ""
    ) -> None:
        await self.client.set_state(request_id, state=state, reason=reason, delegator=delegator)
        if self.mirror is None:
            return
        try:
            self.mirror.put(await self.client.get_request(request_id))
        except BackendError as err:
            # The decision stands; the request's own event brings the new state to the mirror.
            logger.warning("cannot re-read request %s after setting its state: %s", request_id,
                           err.detail or err.message)

    async def get_user(self, name: str) -> User:
        return await self._users.get(name, lambda: self.client.get_user(name))

    async def get_role(self, name: str) -> Role:
        return await self._roles.get(name, lambda: self.client.get_role(name))

    async def get_capabilities(self, user: str) -> Capabilities:
        return await self.client.get_capabilities(user)

    async def plugin_value(self, request_id: str, key: str) -> str:
        return await self.client.plugin_value(request_id, key)

    async def swap_plugin_value(self, request_id: str, key: str, *, expect: str, value: str) -> None:
        await self.client.swap_plugin_value(request_id, key, expect=expect, value=value)


class _Recent(Generic[T]):
    """Read-through for `ttl` seconds (0: every call asks). Callers asking at the same moment share one
    call; a failed call is not kept, so the next caller asks again."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, asyncio.Future[T]]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        if self.ttl <= 0:
            return await load()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is None or now - entry[0] > self.ttl:
            entry = (now, asyncio.ensure_future(load()))
            self._entries[key] = entry
            entry[1].add_done_callback(lambda done: self._forget_failed(key, done))
        # Shielded: one caller giving up must not cancel the call the others wait on.
        return await asyncio.shield(entry[1])

    def _forget_failed(self, key: str, done: asyncio.Future[T]) -> None:
        if done.cancelled() or done.exception() is not None:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is done:
                del self._entries[key]
