"""The devstack Teleport's backend: users, roles, access requests and plugin data in memory, with events.

It decides nothing about permissions (see `devstack/teleport.py`); it keeps state consistent, computes
what Teleport computes on create (times, thresholds), expires requests, and fans events out to watchers.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from chatops_bot.devstack import semantics
from chatops_bot.devstack.seed import Seed
from commands import lifetimes, policy
from commands.errors import AccessDenied, AlreadyExists, BadParameter, CompareFailed, NotFound
from commands.model import AccessRequest, RequestState, Role, User

MAX_REASON_BYTES = 4096


def uuid7() -> str:
    """A UUIDv7 (time-ordered), as newer Auth servers assign to requests."""
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return str(uuid.UUID(int=value))


@dataclass
class Event:
    kind: str  # "put" or "delete"
    request: AccessRequest | None = None
    user: User | None = None  # an event of kind `user` instead of `access_request`


@dataclass
class Store:
    seed: Seed
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    requests: dict[str, AccessRequest] = field(default_factory=dict)
    plugin_data: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    audit: list[dict[str, str]] = field(default_factory=list)
    watchers: set[asyncio.Queue[Event]] = field(default_factory=set)

    # --- lookups ----------------------------------------------------------------------------------

    def user(self, name: str) -> User:
        try:
            return self.seed.users[name]
        except KeyError:
            raise NotFound(f'user "{name}" is not found') from None

    def role(self, name: str) -> Role:
        try:
            return self.seed.roles[name]
        except KeyError:
            raise NotFound(f'role "{name}" is not found') from None

    def roles_of(self, user: User) -> list[Role]:
        return [self.seed.roles[r] for r in user.roles if r in self.seed.roles]

    def request(self, request_id: str) -> AccessRequest:
        self.expire()
        try:
            return self.requests[request_id]
        except KeyError:
            raise NotFound(f'access request "{request_id}" is not found') from None

    # --- events -----------------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self.watchers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self.watchers.discard(queue)

    def _emit(self, kind: str, request: AccessRequest | None = None, user: User | None = None) -> None:
        for queue in self.watchers:
            queue.put_nowait(Event(kind, request, user))

    def put_user(self, user: User) -> User:
        """Create or update a user (`tctl users update --set-traits`, an SSO login): watchers of kind user
        see it."""
        self.seed.users[user.name] = user
        self._emit("put", user=user)
        return user

    def delete_user(self, name: str) -> None:
        self._emit("delete", user=self.user(name))
        del self.seed.users[name]

    # --- writes -----------------------------------------------------------------------------------

    def put(self, request: AccessRequest) -> AccessRequest:
        self.requests[request.id] = request
        self._emit("put", request)
        return request

    def delete(self, request_id: str) -> None:
        request = self.request(request_id)
        del self.requests[request_id]
        self.plugin_data.pop(request_id, None)
        self._emit("delete", request)

    def expire(self) -> None:
        """Drop requests whose object lifetime (pending TTL, or access expiry once approved) has passed."""
        now = self.clock()
        for request in [r for r in self.requests.values() if r.resource_expiry and r.resource_expiry <= now]:
            del self.requests[request.id]
            self.plugin_data.pop(request.id, None)
            self._emit("delete", request)

    def prepare(
        self, draft: AccessRequest, *, caller_expires: datetime | None, keep_id: bool, dry_run: bool = False
    ) -> AccessRequest:
        """Validate a new request and fill in what Teleport computes (teleport-wire.md §3.1, §3.4)."""
        if len(draft.reason.encode()) > MAX_REASON_BYTES:
            raise BadParameter(f"access request reason is too long, max {MAX_REASON_BYTES} bytes")
        user = self.user(draft.user)
        user_roles = self.roles_of(user)
        roles = list(dict.fromkeys(draft.roles))
        if roles == ["*"]:
            roles = [r for r in self.seed.roles if r not in user.roles and policy.request_permission(user, user_roles, [r]).allowed]
            if not roles:
                raise BadParameter(f'user "{user.name}" can not request any roles')
        if not roles:
            raise BadParameter("access request must specify at least one role")
        for role in roles:
            # BadParameter, naming the user and the role, as RequestValidator.Validate does
            # (lib/services/access_request.go, "verify that all requested roles are permissible").
            if not policy.request_permission(user, user_roles, [role]).allowed:
                raise BadParameter(f'user "{user.name}" can not request role "{role}"')
        settings = policy.request_settings(user, user_roles, roles)
        if settings.reason_required and not draft.reason.strip():
            raise BadParameter(f"request reason must be specified ({settings.reason_source})")
        thresholds, mapping = semantics.compute_thresholds(user, user_roles, roles)
        now = self.clock()
        request_id = draft.id if keep_id else uuid7()
        if keep_id:
            try:
                uuid.UUID(request_id)
            except ValueError:
                raise BadParameter(f'invalid access request id "{request_id}"') from None
            # The backend's Create refuses an existing key: a re-sent ID must not reset a reviewed request.
            if request_id in self.requests and not dry_run:
                raise AlreadyExists(f'access request "{request_id}" already exists')
        # validate() in lib/services/access_request.go: the session TTL, access duration and pending TTL
        # follow what the client asked for (max_duration, access expiry, pending expiry) within the
        # caller's identity, the requested roles' max_session_ttl and max_duration (commands.lifetimes).
        times = lifetimes.lifetimes(
            now=now,
            identity_expires=caller_expires,
            access_expires=draft.access_expires,
            max_duration=draft.max_duration,
            resource_expiry=draft.resource_expiry,
            role_ttls=[self.role(name).max_session_ttl for name in roles],
            role_max=[settings.role_max_durations.get(name) for name in roles],
            dry_run=dry_run,
        )
        return replace(
            draft,
            id=request_id,
            roles=tuple(roles),
            state=RequestState.PENDING,
            created=now,
            access_expires=times.access_expires,
            max_duration=times.max_duration,
            session_ttl=times.session_ttl,
            resource_expiry=times.resource_expiry,
            thresholds=thresholds,
            role_threshold_mapping=mapping,
            # Computed from the requester's roles, whatever the client sent: lib/services/access_request.go
            # (requestValidator.systemAnnotations, called from validate()).
            system_annotations=settings.system_annotations,
            suggested_reviewers=tuple(dict.fromkeys(draft.suggested_reviewers or settings.suggested_reviewers)),
            reviews=(),
            resolve_reason="",
        )

    def update_plugin_data(
        self, request_id: str, plugin: str, values: dict[str, str], expect: dict[str, str]
    ) -> None:
        self.request(request_id)
        current = self.plugin_data.setdefault(request_id, {}).setdefault(plugin, {})
        for key, want in expect.items():
            if current.get(key, "") != want:
                raise CompareFailed("plugin data mismatch", detail=f"key {key!r} changed")
        for key, value in values.items():
            if value:
                current[key] = value
            else:
                current.pop(key, None)

