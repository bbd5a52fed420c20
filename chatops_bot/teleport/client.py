"""The async Teleport Auth client: gRPC over mutual TLS, a deadline on every call, domain objects out.

It implements the `commands.ports.AccessBackend` port plus what the watcher and notifier need (plugin
data, the event stream), and re-reads the identity when Machine ID renews it on disk. It calls only RPCs
that Teleport 16-18 serve (teleport-wire.md §0; `tests/test_served_rpcs.py` holds it to that list):
users come from `teleport.users.v1.UsersService`, never from the legacy `proto.AuthService/GetUser*`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from chatops_bot import metrics
from chatops_bot.teleport import convert, routing
from chatops_bot.teleport.errors import UNREACHABLE, from_rpc_error
from chatops_bot.teleport.gen import (
    authservice_pb2,
    authservice_pb2_grpc,
    types_pb2,
    users_service_pb2,
    users_service_pb2_grpc,
)
from chatops_bot.teleport.identity import (
    Identity,
    IdentityError,
    identity_fingerprint,
    load_identity_file,
    load_tls_files,
)
from chatops_bot.timer import REAL_TIME, Timer
from commands.errors import BackendError, NotFound, Unavailable
from commands.model import (
    AccessRequest,
    Capabilities,
    ClusterInfo,
    RequestState,
    Review,
    Role,
    User,
)

logger = logging.getLogger(__name__)

SERVER_NAME = "teleport.cluster.local"
# The `version` header on every call: the Teleport API version whose wire the bot speaks (18.11 adds the
# on-behalf review flag). Teleport refuses clients more than one major behind it (lib/auth/middleware.go,
# ValidateClientVersion), so this decides the newest server that accepts the bot (19).
CLIENT_VERSION = "18.11.0"
# The services the bot calls, by the name `_call` takes.
AUTH = "proto.AuthService"
USERS = "teleport.users.v1.UsersService"
PAGE_SIZE = 1000  # Teleport answers at most this many per page (its default chunk size)
KEEPALIVE_MS = 300_000  # as often as Teleport permits client pings (its keep-alive period)
# Back within seconds once Teleport is: gRPC's own reconnect backoff grows to two minutes.
RECONNECT_BACKOFF = (1.0, 5.0)  # seconds: the first wait, and the longest
# How long a replaced channel lives on, so streams opened on it end by themselves, not mid-message.
OLD_CHANNEL_GRACE = 30.0
# Readiness: an answer from Teleport this recent counts (a probe pings only when there is none), and the
# probe's own Ping gets a short deadline, shorter than the probe's timeout.
CONTACT_FRESH_FOR = 5.0
PROBE_TIMEOUT = 2.0
# Deciding whether `addr` is Auth or a Proxy takes one or two TLS handshakes, each bounded by the smaller
# of this and half the call timeout, so an address that never answers costs at most half a timeout more.
ROUTE_PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class IdentitySource:
    """Where the bot's identity lives: one `tctl --format=file` path, or key, cert and CAs paths."""

    identity_file: str = ""
    key_file: str = ""
    cert_file: str = ""
    cas_file: str = ""

    @property
    def paths(self) -> tuple[str, ...]:
        if self.identity_file:
            return (self.identity_file,)
        return (self.key_file, self.cert_file, self.cas_file)

    def load(self) -> Identity:
        if self.identity_file:
            return load_identity_file(self.identity_file)
        return load_tls_files(self.key_file, self.cert_file, self.cas_file)

    def fingerprint(self) -> object:
        return identity_fingerprint(*self.paths)


@dataclass(frozen=True)
class WatchEvent:
    """One event of the access-request stream: `init`, `put` (with the request) or `delete`."""

    kind: str
    request_id: str = ""
    request: AccessRequest | None = None
    # Events of kind `user` (put with the user, delete with its name), when users are watched too.
    user: User | None = None
    user_name: str = ""


class TeleportClient:
    """One channel to the Auth service; safe to share across tasks."""

    def __init__(
        self,
        addr: str,
        identity: IdentitySource,
        *,
        timeout: float = 10.0,
        plugin_name: str = "chatops-bot",
        timer: Timer = REAL_TIME,
    ) -> None:
        """`timer` paces gRPC's reconnect backoff (`RECONNECT_BACKOFF` on it)."""
        self.addr = addr
        self.identity_source = identity
        self.timeout = timeout
        self.plugin_name = plugin_name
        self.timer = timer
        self._fingerprint: object = None
        self._channel: grpc.aio.Channel | None = None
        self._stubs: dict[str, Any] = {}
        self._identity: Identity | None = None
        # Channels replaced by an identity reload, each with the timer that closes it after the grace.
        self._retired: dict[grpc.aio.Channel, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # When Teleport last answered a call (or failed to), and why it could not be reached ("" if it did).
        self._contact: tuple[float, str] | None = None
        self._probing = asyncio.Lock()
        # Auth directly or through the Proxy's TLS routing: decided by the first call (`_ensure_route`).
        self._route: routing.Route | None = None
        self._forwarder: routing.Forwarder | None = None
        self._routing = asyncio.Lock()

    # --- channel ----------------------------------------------------------------------------------

    @property
    def identity(self) -> Identity:
        self._ensure_channel()
        assert self._identity is not None
        return self._identity

    def _ensure_channel(self) -> dict[str, Any]:
        """The stubs by service, rebuilt when the identity on disk changed (a cheap stat per call)."""
        fingerprint = self.identity_source.fingerprint()
        if self._stubs and fingerprint == self._fingerprint:
            return self._stubs
        try:
            identity = self.identity_source.load()
        except IdentityError as err:
            if self._stubs:
                # Machine ID may be midway through rewriting the file: keep the channel, retry next call.
                logger.warning("cannot reload the Teleport identity yet: %s", err)
                return self._stubs
            # The path and the problem are for the operator's log, not for chat.
            detail = f"the bot's Teleport identity cannot be loaded: {err}"
            raise Unavailable(UNREACHABLE, detail=detail) from None
        credentials = grpc.ssl_channel_credentials(
            root_certificates=identity.ca_pems,
            private_key=identity.private_key_pem,
            certificate_chain=identity.cert_pem,
        )
        options = [
            ("grpc.ssl_target_name_override", SERVER_NAME),
            ("grpc.default_authority", SERVER_NAME),
            # Teleport's Auth server refuses pings more often than its keep-alive period (5 minutes by
            # default) with GOAWAY "too_many_pings", which would drop the watch stream every few minutes.
            ("grpc.keepalive_time_ms", KEEPALIVE_MS),
            ("grpc.initial_reconnect_backoff_ms", round(self.timer.real(RECONNECT_BACKOFF[0]) * 1000)),
            ("grpc.max_reconnect_backoff_ms", round(self.timer.real(RECONNECT_BACKOFF[1]) * 1000)),
            ("grpc.keepalive_timeout_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ]
        old = self._channel
        self._channel = self._open_channel(identity, credentials, options)
        self._stubs = {
            AUTH: authservice_pb2_grpc.AuthServiceStub(self._channel),
            USERS: users_service_pb2_grpc.UsersServiceStub(self._channel),
        }
        if old is not None:
            logger.info("identity changed on disk; reconnecting to Teleport as %s", identity.username)
            self._retired[old] = asyncio.get_running_loop().call_later(
                OLD_CHANNEL_GRACE, self._close_retired, old
            )
        self._identity = identity
        self._fingerprint = fingerprint
        return self._stubs

    def _open_channel(
        self, identity: Identity, credentials: grpc.ChannelCredentials, options: list[tuple[str, Any]]
    ) -> grpc.aio.Channel:
        """mTLS straight to Auth, or plaintext to the loopback forwarder that does the TLS through the Proxy."""
        if self._forwarder is None:
            return grpc.aio.secure_channel(self.addr, credentials, options=options)
        self._forwarder.use_identity(identity)  # a renewed identity: new connections present it
        # A channel of its own subchannels: grpc would otherwise share the old channel's connection,
        # which still carries the previous certificate, with the new one (same target, same options).
        return grpc.aio.insecure_channel(
            self._forwarder.addr, options=[*options, ("grpc.use_local_subchannel_pool", 1)]
        )

    async def _ensure_route(self) -> None:
        """Decides, once, whether `addr` is an Auth server or a Proxy with TLS routing (as Teleport's plugins
        accept either). Until a handshake decides it, calls go directly and grpc reports what fails."""
        if self._route is not None:
            return
        async with self._routing:
            if self._route is not None:
                return
            try:
                identity = self.identity_source.load()
            except IdentityError:
                return  # `_ensure_channel` says why
            timeout = min(self.timeout / 2, ROUTE_PROBE_TIMEOUT)
            detection = await routing.detect_route(self.addr, identity, timeout=timeout)
            if detection.route is None:
                if detection.conclusive:
                    raise Unavailable(UNREACHABLE, detail=detection.reason)
                logger.debug("route to Teleport not decided yet: %s", detection.reason)
                return
            if detection.route is routing.Route.PROXY:
                forwarder = routing.Forwarder(self.addr, identity, connect_timeout=self.timeout)
                await forwarder.start()
                self._forwarder = forwarder
                if self._channel is not None:
                    # Opened for `identity` before the route was known; no call has used it.
                    await self._channel.close()
                    self._channel = None
                    self._stubs = {}
                    self._fingerprint = None
            # Said at INFO only for the proxy: the direct route is what `addr` has always meant.
            log = logger.info if detection.route is routing.Route.PROXY else logger.debug
            log("reaching Teleport at %s %s", self.addr, detection.route.value)
            self._route = detection.route

    def _close_retired(self, channel: grpc.aio.Channel) -> None:
        self._retired.pop(channel, None)
        # Keep a reference: the event loop holds tasks only weakly.
        task = asyncio.ensure_future(channel.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("version", CLIENT_VERSION),)

    def _error(self, err: grpc.aio.AioRpcError, method: str) -> BackendError:
        """The domain error, naming an expired or not-yet-valid certificate: TLS only says "Socket closed"."""
        error = from_rpc_error(err, method)
        if isinstance(error, Unavailable) and self._identity is not None:
            certificate = self._identity.certificate
            now = datetime.now(UTC)
            if certificate.not_valid_after_utc <= now:
                error.detail += (
                    f" (the bot's certificate for {self._identity.username} expired at "
                    f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC; renew the identity)"
                )
            elif certificate.not_valid_before_utc > now:
                error.detail += (
                    f" (the bot's certificate is not valid before "
                    f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC; check the clock)"
                )
        if isinstance(error, Unavailable) and self._forwarder is not None and self._forwarder.last_failure:
            error.detail += f" (through the Proxy's TLS routing: {self._forwarder.last_failure})"
        return error

    async def _call(self, method: str, request: Any, *, timeout: float | None = None, service: str = AUTH) -> Any:
        await self._ensure_route()
        stub = self._ensure_channel()[service]
        started = time.monotonic()
        try:
            answer = await getattr(stub, method)(
                request, timeout=timeout or self.timeout, metadata=self._metadata()
            )
        except grpc.aio.AioRpcError as err:
            error = self._error(err, method)
            self._noted(method, started, err.code(), error)
            raise error from None
        self._noted(method, started, grpc.StatusCode.OK)
        return answer

    def _noted(self, method: str, started: float, code: grpc.StatusCode,
               error: BackendError | None = None) -> None:
        """Times the call; notes that Teleport answered it (an error is an answer) or why it could not."""
        now = time.monotonic()
        metrics.TELEPORT_RPC_SECONDS.labels(method, code.name).observe(now - started)
        self._contact = (now, error.detail if isinstance(error, Unavailable) else "")

    async def why_unreachable(self, *, fresh_for: float = CONTACT_FRESH_FOR) -> str | None:
        """None when Teleport answered a call in the last `fresh_for` seconds (a refusal is an answer too),
        else why it could not be reached. Without a recent call it is pinged; concurrent probes share the
        ping, so readiness checks never add up to load on Teleport."""
        async with self._probing:
            if self._contact is None or time.monotonic() - self._contact[0] > fresh_for:
                try:
                    await self._call("Ping", authservice_pb2.PingRequest(), timeout=PROBE_TIMEOUT)
                except Unavailable as err:
                    self._contact = (time.monotonic(), err.detail)  # also when the identity cannot be loaded
                except BackendError:
                    pass  # Teleport answered; `_call` noted it
            assert self._contact is not None
            return self._contact[1] or None

    async def close(self) -> None:
        for channel, timer in list(self._retired.items()):
            timer.cancel()
            await channel.close()
        self._retired.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stubs = {}
        if self._forwarder is not None:
            await self._forwarder.close()
            self._forwarder = None
            self._route = None

    # --- cluster ----------------------------------------------------------------------------------

    async def ping(self) -> ClusterInfo:
        return convert.cluster_from_proto(await self._call("Ping", authservice_pb2.PingRequest()))

    # --- access requests --------------------------------------------------------------------------

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
        now = datetime.now(UTC)
        draft = AccessRequest(
            id=str(uuid.uuid4()),
            user=user,
            roles=tuple(roles),
            state=RequestState.PENDING,
            reason=reason,
            suggested_reviewers=tuple(suggested_reviewers),
            max_duration=now + max_duration if max_duration else None,
        )
        pb = convert.request_to_proto(draft, dry_run=dry_run)
        return convert.request_from_proto(await self._call("CreateAccessRequestV2", pb))

    async def get_request(self, request_id: str) -> AccessRequest:
        found = await self._list(types_pb2.AccessRequestFilter(ID=request_id))
        if not found:
            raise NotFound(f"There is no access request with ID {request_id}.")
        return found[0]

    async def list_requests(
        self, *, user: str = "", state: RequestState = RequestState.NONE
    ) -> list[AccessRequest]:
        """Every request the bot can see matching the filter, newest first."""
        return await self._list(types_pb2.AccessRequestFilter(User=user, State=state.value))

    async def _list(self, filter_: types_pb2.AccessRequestFilter) -> list[AccessRequest]:
        requests: list[AccessRequest] = []
        start_key = ""
        while True:
            page = await self._call(
                "ListAccessRequests",
                authservice_pb2.ListAccessRequestsRequest(
                    Filter=filter_,
                    Sort=authservice_pb2.AccessRequestSort.CREATED,
                    Descending=True,
                    Limit=PAGE_SIZE,
                    StartKey=start_key,
                ),
            )
            requests.extend(convert.request_from_proto(pb) for pb in page.AccessRequests)
            start_key = page.NextKey
            if not start_key:
                return requests

    async def submit_review(self, request_id: str, review: Review) -> AccessRequest:
        submission = types_pb2.AccessReviewSubmission(
            RequestID=request_id, Review=convert.review_to_proto(review)
        )
        return convert.request_from_proto(await self._call("SubmitAccessReview", submission))

    async def set_state(
        self, request_id: str, *, state: RequestState, reason: str = "", delegator: str = ""
    ) -> None:
        setter = authservice_pb2.RequestStateSetter(
            ID=request_id, State=state.value, Reason=reason, Delegator=delegator
        )
        await self._call("SetAccessRequestState", setter)

    async def delete_request(self, request_id: str) -> None:
        await self._call("DeleteAccessRequest", authservice_pb2.RequestID(ID=request_id))

    # --- users and roles --------------------------------------------------------------------------

    async def get_user(self, name: str) -> User:
        """One user by name: `user: read`, except for the bot's own user."""
        answer = await self._call("GetUser", users_service_pb2.GetUserRequest(name=name), service=USERS)
        return convert.user_from_proto(answer.user)

    async def current_user(self) -> User:
        """The bot's own user, as Teleport sees the caller (no rule needed)."""
        answer = await self._call("GetUser", users_service_pb2.GetUserRequest(current_user=True), service=USERS)
        return convert.user_from_proto(answer.user)

    async def list_users(self) -> list[User]:
        """Every user, a page at a time (`user: list, read`)."""
        users: list[User] = []
        token = ""
        while True:
            page = await self._call(
                "ListUsers", users_service_pb2.ListUsersRequest(page_size=PAGE_SIZE, page_token=token), service=USERS
            )
            users.extend(convert.user_from_proto(pb) for pb in page.users)
            token = page.next_page_token
            if not token:
                return users

    async def get_role(self, name: str) -> Role:
        return convert.role_from_proto(await self._call("GetRole", authservice_pb2.GetRoleRequest(Name=name)))

    async def get_capabilities(self, user: str) -> Capabilities:
        request = types_pb2.AccessCapabilitiesRequest(User=user, RequestableRoles=True, SuggestedReviewers=True)
        return convert.capabilities_from_proto(await self._call("GetAccessCapabilities", request))

    # --- plugin data ------------------------------------------------------------------------------

    async def get_plugin_data(self, request_id: str) -> dict[str, str]:
        filter_ = types_pb2.PluginDataFilter(Kind="access_request", Resource=request_id, Plugin=self.plugin_name)
        seq = await self._call("GetPluginData", filter_)
        for item in seq.PluginData:
            entry = item.Spec.Entries.get(self.plugin_name)
            if entry is not None:
                return dict(entry.Data)
        return {}

    async def get_all_plugin_data(self) -> dict[str, dict[str, str]]:
        """Request ID -> this plugin's data, for every request that has some: one call, not one each
        (a filter without a resource is a range read in Teleport)."""
        filter_ = types_pb2.PluginDataFilter(Kind="access_request", Plugin=self.plugin_name)
        seq = await self._call("GetPluginData", filter_)
        found: dict[str, dict[str, str]] = {}
        for item in seq.PluginData:
            entry = item.Spec.Entries.get(self.plugin_name)
            if entry is not None and item.Metadata.Name:
                found[item.Metadata.Name] = dict(entry.Data)
        return found

    async def update_plugin_data(
        self, request_id: str, *, set: Mapping[str, str], expect: Mapping[str, str] | None = None
    ) -> None:
        """Compare-and-swap: raises `CompareFailed` unless every `expect` key holds that value now."""
        params = types_pb2.PluginDataUpdateParams(
            Kind="access_request",
            Resource=request_id,
            Plugin=self.plugin_name,
            Set=dict(set),
            Expect=dict(expect or {}),
        )
        await self._call("UpdatePluginData", params)

    async def plugin_value(self, request_id: str, key: str) -> str:
        return (await self.get_plugin_data(request_id)).get(key, "")

    async def swap_plugin_value(self, request_id: str, key: str, *, expect: str, value: str) -> None:
        await self.update_plugin_data(request_id, set={key: value}, expect={key: expect})

    # --- events -----------------------------------------------------------------------------------

    async def watch_requests(self, *, users: bool = False) -> AsyncGenerator[WatchEvent, None]:
        """The access-request event stream (and user events, with `users`: `user: read`); INIT first.
        No deadline: it lives until cancelled.

        After an identity renewal the stream ends with `Unavailable` once the old channel's grace is
        over; the watcher then watches again with the new identity.
        """
        await self._ensure_route()
        stub = self._ensure_channel()[AUTH]
        kinds = [types_pb2.WatchKind(Kind="access_request")]
        if users:
            kinds.append(types_pb2.WatchKind(Kind="user"))
        watch = authservice_pb2.Watch(Kinds=kinds)
        call = stub.WatchEvents(watch, metadata=self._metadata())
        try:
            async for event in call:
                yield _watch_event(event)
        except grpc.aio.AioRpcError as err:
            raise self._error(err, "WatchEvents") from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # grpc cancels the calls of a channel we close (a renewal's grace ran out, or close()):
            # the watcher must see a stream to reopen, not mistake it for its own cancellation.
            raise Unavailable(
                UNREACHABLE, detail="WatchEvents: the client closed this stream's channel; watch again"
            ) from None
        finally:
            call.cancel()


def _watch_event(event: authservice_pb2.Event) -> WatchEvent:
    if event.Type == authservice_pb2.Operation.INIT:
        return WatchEvent("init")
    if event.Type == authservice_pb2.Operation.DELETE:
        name = event.ResourceHeader.Metadata.Name
        if event.ResourceHeader.Kind == "user":
            return WatchEvent("delete", user_name=name)
        return WatchEvent("delete", request_id=name)
    if event.WhichOneof("Resource") == "User":
        return WatchEvent("put", user=convert.user_from_proto(event.User), user_name=event.User.Metadata.Name)
    request = convert.request_from_proto(event.AccessRequest)
    return WatchEvent("put", request_id=request.id, request=request)


def created_key(request: AccessRequest) -> tuple[datetime, str]:
    # Ties broken by ID as ListAccessRequests does, so the mirror lists in the order Teleport does.
    return request.created or datetime.min.replace(tzinfo=UTC), request.id

