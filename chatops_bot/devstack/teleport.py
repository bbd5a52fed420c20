"""An honest stand-in for Teleport's Auth service: the bot's gRPC subset over mutual TLS, Teleport's rules.

It behaves like Teleport 18.11 *as served*, not as its .proto declares (teleport-wire.md §0): the legacy
user RPCs answer UNIMPLEMENTED and users come from `teleport.users.v1.UsersService`; reviews on behalf of
another user need the `submitted_on_behalf_of_author` flag and `review_requests.submit_for_users`; a client
whose `version` header is more than one major behind is refused; `edition="community"` refuses roles
with review rules or thresholds and says so in Ping; `version="17.4.0"` plays an older server.

The caller is the user named in its client certificate (Subject CN), so the bot and each human are
told apart as in Teleport; every RPC checks the caller's roles the way `ServerWithRoles` does
(teleport-wire.md §3.6). State lives in `devstack.store.Store`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from google.protobuf.empty_pb2 import Empty

from chatops_bot import preflight
from chatops_bot.devstack import semantics
from chatops_bot.devstack.pki import ClusterCA, write_identity_file
from chatops_bot.devstack.proxy import DevProxy
from chatops_bot.devstack.seed import Seed, SeedError
from chatops_bot.devstack.store import Store
from chatops_bot.teleport import convert
from chatops_bot.teleport.rbac import has_rule
from chatops_bot.teleport.gen import (
    authservice_pb2,
    authservice_pb2_grpc,
    types_pb2,
    users_service_pb2,
    users_service_pb2_grpc,
)
from chatops_bot.teleport.identity import Identity
from commands import policy
from commands.errors import (
    AccessDenied,
    AlreadyExists,
    BackendError,
    BadParameter,
    CompareFailed,
    NotFound,
    NotImplementedByServer,
)
from commands.model import AccessRequest, RequestState, Role, User

logger = logging.getLogger(__name__)

SERVER_VERSION = "18.11.0"
EDITIONS = ("enterprise", "community")
# Declared in Teleport's authservice.proto but not served since 16.0: the generated
# UnimplementedAuthServiceServer answers them (api/client/proto/authservice_grpc.pb.go; none is defined
# on GRPCServer in lib/auth/grpcserver.go).
LEGACY_USER_RPCS = ("GetUser", "GetUsers", "GetCurrentUser")
PAGE_SIZE = 1000  # apidefaults.DefaultChunkSize, the most ListUsers returns at once

_CODES: dict[type[BackendError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    AccessDenied: grpc.StatusCode.PERMISSION_DENIED,
    BadParameter: grpc.StatusCode.INVALID_ARGUMENT,
    CompareFailed: grpc.StatusCode.FAILED_PRECONDITION,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    NotImplementedByServer: grpc.StatusCode.UNIMPLEMENTED,
}
_WATCH_FILTER_KEYS = {"id", "user", "state"}
_WATCH_KINDS = ("access_request", "user")


def version_tuple(version: str) -> tuple[int, int, int]:
    """`18.11.0` (or `v18.11.0-dev`) -> (18, 11, 0); raises ValueError for anything else."""
    parsed = preflight.version_tuple(version)
    if parsed is None:
        raise ValueError(f"not a version: {version!r}")
    return parsed


def check_edition(seed: Seed, edition: str) -> None:
    """Community Edition refuses, at `tctl create`, any role with review rules, request thresholds or
    `request_access: reason|always` (lib/auth/auth_with_roles.go, checkRoleFeatureSupport)."""
    if edition == "enterprise":
        return
    for role in seed.roles.values():
        request = role.allow.request
        if role.allow.review_requests is not None and (
            role.allow.review_requests.roles or role.allow.review_requests.claims_to_roles
            or role.allow.review_requests.where or role.allow.review_requests.preview_as_roles
            or role.allow.review_requests.submit_for_users
        ):
            raise SeedError(f"role {role.name}: role field allow.review_requests is only available in "
                            "enterprise subscriptions")
        if request is not None and request.thresholds:
            raise SeedError(f"role {role.name}: role field allow.request.thresholds is only available in "
                            "enterprise subscriptions")
        if role.request_access in ("reason", "always"):
            raise SeedError(f"role {role.name}: role option request_access: {role.request_access} is only "
                            "available in enterprise subscriptions")


def without_submit_for_users(seed: Seed) -> Seed:
    """Before 18.11 Teleport does not know `submit_for_users`; its lenient role parsing drops the key
    without an error (teleport-wire.md §0), so `tctl create` succeeds and the grant is hollow."""
    def strip(role: Role) -> Role:
        allow, deny = role.allow, role.deny
        if allow.review_requests is not None:
            allow = replace(allow, review_requests=replace(allow.review_requests, submit_for_users=()))
        if deny.review_requests is not None:
            deny = replace(deny, review_requests=replace(deny.review_requests, submit_for_users=()))
        return replace(role, allow=allow, deny=deny)

    return Seed(users=dict(seed.users), roles={name: strip(role) for name, role in seed.roles.items()})


class ClientVersionCheck(grpc.aio.ServerInterceptor):
    """Refuses a client whose `version` header is older than one major below the server's; no header is
    let through (lib/auth/middleware.go, ValidateClientVersion; version.go MinClientSemVer)."""

    def __init__(self, server_version: str) -> None:
        self.oldest = (version_tuple(server_version)[0] - 1, 0, 0)

    async def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        sent = dict(details.invocation_metadata or ()).get("version")
        if sent is not None:
            try:
                ok = version_tuple(str(sent)) >= self.oldest
            except ValueError:
                ok = False  # an unparseable version is refused too
            if not ok:
                return _refusal(grpc.StatusCode.PERMISSION_DENIED, "client version is unsupported")
        return await continuation(details)


def _refusal(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(refuse)


def _legacy_user_rpcs() -> grpc.GenericRpcHandler:
    """`proto.AuthService/GetUser`, `GetUsers`, `GetCurrentUser`: UNIMPLEMENTED, as a real 18.x answers."""
    def handler(name: str) -> grpc.RpcMethodHandler:
        async def unimplemented(request: bytes, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"method {name} not implemented")

        return grpc.unary_unary_rpc_method_handler(unimplemented)

    return grpc.method_handlers_generic_handler("proto.AuthService", {n: handler(n) for n in LEGACY_USER_RPCS})


@functools.lru_cache(maxsize=256)
def _cert_expiry(pem: bytes) -> datetime | None:
    """The caller's certificate expiry: Teleport caps access by the requesting identity's TTL."""
    if not pem:
        return None
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc


class _Servicer:
    """What every service of the stand-in shares: who calls, and Teleport's errors as gRPC statuses."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- plumbing ---------------------------------------------------------------------------------

    def _caller(self, context: grpc.aio.ServicerContext) -> tuple[User, list[Role], datetime | None]:
        auth = context.auth_context()
        names = auth.get("x509_common_name") or []
        if not names:
            raise AccessDenied("client certificate has no user name")
        user = self.store.user(names[0].decode())
        pems = auth.get("x509_pem_cert") or [b""]
        return user, self.store.roles_of(user), _cert_expiry(pems[0])

    async def _run(self, context: grpc.aio.ServicerContext, method: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except BackendError as err:
            code = _CODES.get(type(err), grpc.StatusCode.UNKNOWN)
            await context.abort(code, err.message)

    def _require(self, roles: Sequence[Role], resource: str, *verbs: str) -> None:
        if not has_rule(roles, resource, *verbs):
            raise AccessDenied(f"access denied to perform action {verbs[-1]!r} on {resource!r}")


class UsersService(_Servicer, users_service_pb2_grpc.UsersServiceServicer):
    """`teleport.users.v1.UsersService`, read side (lib/auth/users/usersv1/service.go)."""

    async def GetUser(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def get() -> Any:
            caller, roles, _ = self._caller(context)
            if not request.name and request.current_user:
                return users_service_pb2.GetUserResponse(user=convert.user_to_proto(caller))
            if request.with_secrets:
                raise AccessDenied("this request can be only executed by an admin")
            if request.name != caller.name:  # everyone may read their own user
                self._require(roles, "user", "read")
            return users_service_pb2.GetUserResponse(user=convert.user_to_proto(self.store.user(request.name)))

        return await self._run(context, "GetUser", get)

    async def ListUsers(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def page() -> Any:
            _, roles, _ = self._caller(context)
            if request.with_secrets:
                raise AccessDenied("this request can be only executed by an admin")
            self._require(roles, "user", "list", "read")
            # Sorted by name (the backend's key order); the token resumes after the last name sent
            # (lib/services/local/users.go, ListUsers). A page size of 0 or over the chunk size is capped.
            size = request.page_size if 0 < request.page_size <= PAGE_SIZE else PAGE_SIZE
            names = sorted(n for n in self.store.seed.users if n > request.page_token)
            chunk = names[:size]
            more = len(names) > size
            return users_service_pb2.ListUsersResponse(
                users=[convert.user_to_proto(self.store.seed.users[n]) for n in chunk],
                next_page_token=chunk[-1] if more else "",
            )

        return await self._run(context, "ListUsers", page)


class AuthService(_Servicer, authservice_pb2_grpc.AuthServiceServicer):
    def __init__(self, store: Store, cluster_name: str, *, version: str = SERVER_VERSION,
                 edition: str = "enterprise") -> None:
        super().__init__(store)
        self.cluster_name = cluster_name
        self.version = version
        self.edition = edition
        # `submitted_on_behalf_of_author` and `submit_for_users` exist from 18.11 (PR #66230, #69386).
        self.on_behalf_reviews = version_tuple(version) >= (18, 11, 0)

    def _visible(self, caller: User, roles: Sequence[Role], request: AccessRequest) -> bool:
        if has_rule(roles, "access_request", "list", "read") or request.user == caller.name:
            return True
        return policy.review_decision(caller, roles, request).allowed

    # --- RPCs -------------------------------------------------------------------------------------

    async def Ping(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        # ServerFeatures.AdvancedAccessWorkflows: false without an Enterprise licence (lib/modules/modules.go,
        # defaultModules.Features sets no such feature).
        features = authservice_pb2.Features(AdvancedAccessWorkflows=self.edition == "enterprise")
        return authservice_pb2.PingResponse(ClusterName=self.cluster_name, ServerVersion=self.version,
                                            ServerFeatures=features)

    async def CreateAccessRequestV2(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run(context, "CreateAccessRequestV2", lambda: self._create(request, context, keep_id=False))

    def _create(self, pb: types_pb2.AccessRequestV3, context: grpc.aio.ServicerContext, *, keep_id: bool) -> Any:
        caller, roles, expires = self._caller(context)
        draft = convert.request_from_proto(pb)
        if not draft.user:
            draft = replace(draft, user=caller.name)
        if draft.state not in (RequestState.NONE, RequestState.PENDING):
            raise BadParameter("only pending access requests may be created")
        if draft.user != caller.name:
            self._require(roles, "access_request", "create")
        # The draft's creation time is the client's; Teleport measures max_duration from its own clock.
        prepared = self.store.prepare(draft, caller_expires=expires, keep_id=keep_id, dry_run=pb.Spec.DryRun)
        if pb.Spec.DryRun:
            return convert.request_to_proto(prepared, dry_run=True)
        return convert.request_to_proto(self.store.put(prepared))

    def _filtered(self, filter_: types_pb2.AccessRequestFilter, context: grpc.aio.ServicerContext) -> list[AccessRequest]:
        caller, roles, _ = self._caller(context)
        self.store.expire()
        out = []
        for request in self.store.requests.values():
            if filter_.ID and request.id != filter_.ID:
                continue
            if filter_.User and request.user != filter_.User:
                continue
            if filter_.State and request.state.value != filter_.State:
                continue
            if not self._visible(caller, roles, request) or not _in_scope(filter_.Scope, caller, roles, request):
                continue
            out.append(request)
        return out

    async def ListAccessRequests(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def page() -> Any:
            found = _sorted(self._filtered(request.Filter, context), request.Sort, request.Descending)
            start = 0
            if request.StartKey:
                ids = [r.id for r in found]
                if request.StartKey not in ids:
                    raise BadParameter(f"invalid start key {request.StartKey!r}")
                start = ids.index(request.StartKey)
            limit = request.Limit if request.Limit > 0 else 1000
            chunk = found[start : start + limit]
            following = found[start + limit : start + limit + 1]
            return authservice_pb2.ListAccessRequestsResponse(
                AccessRequests=[convert.request_to_proto(r) for r in chunk],
                NextKey=following[0].id if following else "",
            )

        return await self._run(context, "ListAccessRequests", page)

    async def SubmitAccessReview(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        return await self._run(context, "SubmitAccessReview", lambda: self._review(request, context))

    def _review(self, submission: types_pb2.AccessReviewSubmission, context: grpc.aio.ServicerContext) -> Any:
        caller, caller_roles, _ = self._caller(context)
        review = convert.review_from_proto(submission.Review)
        author_name = review.author or caller.name
        submitted_by = ""
        if author_name != caller.name:
            # A review for someone else needs the on-behalf flag (an unknown field before 18.11, so ignored
            # there) and the caller's review_requests.submit_for_users; the server records SubmittedBy
            # itself (lib/auth/auth_with_roles.go AuthorizeAccessReviewRequest, PR #66230).
            flagged = submission.Review.submitted_on_behalf_of_author and self.on_behalf_reviews
            if not flagged or not policy.may_submit_for(caller, caller_roles, author_name):
                raise AccessDenied(f'user "{caller.name}" cannot submit reviews on behalf of "{author_name}"')
            submitted_by = caller.name
        if submission.Review.Annotations.Values:
            raise NotImplementedByServer("review annotations are not supported")
        if review.proposed_state is RequestState.PROMOTED:
            # lib/auth/auth_with_roles.go: promotion goes only through Enterprise's access-list API.
            raise BadParameter("state promoted can be only set when promoting to access list")
        target = self.store.request(submission.RequestID)
        if review.roles and set(review.roles) != set(target.roles):
            raise BadParameter("reviews of a subset of the requested roles are not supported")
        author = self.store.user(author_name)
        author_roles = self.store.roles_of(author)
        decision = policy.review_decision(author, author_roles, target)
        if not decision.allowed:
            raise AccessDenied(f'user "{author.name}" cannot review this request: {decision.reason}')
        # A second review, or one of a resolved request, is refused by semantics.apply_review, in
        # Teleport's order and with its error kinds (lib/services/access_request.go).
        review = replace(
            review,
            author=author.name,
            submitted_by=submitted_by,
            created=review.created or self.store.clock(),
        )
        updated = semantics.apply_review(target, review, author, author_roles)
        if updated.state is RequestState.APPROVED:
            updated = replace(updated, resource_expiry=updated.access_expires)
        return convert.request_to_proto(self.store.put(updated))

    async def SetAccessRequestState(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def set_state() -> Any:
            caller, roles, _ = self._caller(context)
            self._require(roles, "access_request", "update")
            target = self.store.request(request.ID)
            if target.user == caller.name:
                raise AccessDenied("cannot set the state of your own access request")
            state = RequestState(request.State)
            if state not in (RequestState.APPROVED, RequestState.DENIED):
                raise BadParameter(f"cannot set request-state {state.name}")
            if target.state is RequestState.DENIED and state is not RequestState.DENIED:
                raise BadParameter(f"cannot set request-state {state.name} (already denied)")
            updated = replace(target, state=state, resolve_reason=request.Reason)
            if state is RequestState.APPROVED:
                updated = replace(updated, resource_expiry=updated.access_expires)
            self.store.audit.append({"event": "access_request.update", "id": target.id, "state": state.name,
                                     "delegator": request.Delegator, "updated_by": caller.name})
            self.store.put(updated)
            return Empty()

        return await self._run(context, "SetAccessRequestState", set_state)

    async def DeleteAccessRequest(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def delete() -> Any:
            _, roles, _ = self._caller(context)
            self._require(roles, "access_request", "delete")
            self.store.delete(request.ID)
            return Empty()

        return await self._run(context, "DeleteAccessRequest", delete)

    async def WatchEvents(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        def check() -> tuple[dict[str, str] | None, bool]:
            """The access request filter (None: not watched) and whether users are watched; each kind
            needs `read` on it, except a user's own requests (authorizeWatchRequest,
            hasWatchPermissionForKind in lib/auth/auth_with_roles.go)."""
            caller, roles, _ = self._caller(context)
            kinds = {k.Kind: k for k in request.Kinds}
            if not kinds:
                raise AccessDenied("can't setup global watch")
            if len(kinds) != len(request.Kinds) or set(kinds) - set(_WATCH_KINDS):
                raise BadParameter(f"the devstack watches only kinds {', '.join(_WATCH_KINDS)}, each once")
            filter_ = None
            if "access_request" in kinds:
                filter_ = dict(kinds["access_request"].Filter)
                unknown = set(filter_) - _WATCH_FILTER_KEYS
                if unknown:
                    raise BadParameter(f"unknown access request filter key {sorted(unknown)[0]!r}")
                if filter_.get("user") != caller.name:
                    self._require(roles, "access_request", "read")
            if "user" in kinds:
                self._require(roles, "user", "read")
            return filter_, "user" in kinds

        filter_, users = await self._run(context, "WatchEvents", check)
        queue = self.store.subscribe()
        try:
            status = types_pb2.WatchStatusV1(Kind="watch_status", Version="v1")
            status.Spec.Kinds.extend(request.Kinds)
            yield authservice_pb2.Event(Type=authservice_pb2.Operation.INIT, WatchStatus=status)
            while True:
                event = await queue.get()
                if event.user is not None:
                    if not users:
                        continue
                    if event.kind == "delete":
                        header = types_pb2.ResourceHeader(Kind="user", Version="v2")
                        header.Metadata.Name = event.user.name
                        yield authservice_pb2.Event(Type=authservice_pb2.Operation.DELETE, ResourceHeader=header)
                    else:
                        yield authservice_pb2.Event(Type=authservice_pb2.Operation.PUT,
                                                    User=convert.user_to_proto(event.user))
                    continue
                if filter_ is None or event.request is None or not _matches_watch(filter_, event.request):
                    continue
                if event.kind == "delete":
                    header = types_pb2.ResourceHeader(Kind="access_request", Version="v3")
                    header.Metadata.Name = event.request.id
                    yield authservice_pb2.Event(Type=authservice_pb2.Operation.DELETE, ResourceHeader=header)
                else:
                    yield authservice_pb2.Event(
                        Type=authservice_pb2.Operation.PUT, AccessRequest=convert.request_to_proto(event.request)
                    )
        finally:
            self.store.unsubscribe(queue)

    async def GetRole(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def get() -> Any:
            caller, roles, _ = self._caller(context)
            if request.Name not in caller.roles:
                self._require(roles, "role", "read")
            return convert.role_to_proto(self.store.role(request.Name))

        return await self._run(context, "GetRole", get)

    async def GetAccessCapabilities(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def get() -> Any:
            caller, roles, _ = self._caller(context)
            name = request.User or caller.name
            if name != caller.name:
                self._require(roles, "user", "read")
                self._require(roles, "role", "list", "read")
            user = self.store.user(name)
            user_roles = self.store.roles_of(user)
            out = types_pb2.AccessCapabilities()
            if request.RequestableRoles:
                out.RequestableRoles.extend(
                    r for r in self.store.seed.roles
                    if r not in user.roles and policy.request_permission(user, user_roles, [r]).allowed
                )
            requestable = list(out.RequestableRoles) or list(user.roles)
            settings = policy.request_settings(user, user_roles, requestable)
            if request.SuggestedReviewers:
                out.SuggestedReviewers.extend(settings.suggested_reviewers)
            out.RequireReason = settings.reason_required
            out.RequestPrompt = next((r.request_prompt for r in user_roles if r.request_prompt), "")
            return out

        return await self._run(context, "GetAccessCapabilities", get)

    async def GetPluginData(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def get() -> Any:
            _, roles, _ = self._caller(context)
            # Teleport checks list and read apart, each granted on access_request or on access_plugin_data.
            for verb in ("list", "read"):
                if not (has_rule(roles, "access_request", verb) or has_rule(roles, "access_plugin_data", verb)):
                    raise AccessDenied(f"access denied to perform action {verb!r} on 'access_plugin_data'")
            if request.Resource:
                self.store.request(request.Resource)
                names = [request.Resource]
            else:  # every request's: a range read
                self.store.expire()
                names = list(self.store.plugin_data)
            out = authservice_pb2.PluginDataSeq()
            for name in names:
                entries = self.store.plugin_data.get(name, {})
                if entries:
                    item = out.PluginData.add(Kind="plugin_data", SubKind="access_request", Version="v3")
                    item.Metadata.Name = name
                    for plugin, data in entries.items():
                        if not request.Plugin or plugin == request.Plugin:
                            item.Spec.Entries[plugin].Data.update(data)
            return out

        return await self._run(context, "GetPluginData", get)

    async def UpdatePluginData(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        def update() -> Any:
            _, roles, _ = self._caller(context)
            if not (has_rule(roles, "access_request", "update") or has_rule(roles, "access_plugin_data", "update")):
                raise AccessDenied("access denied to perform action 'update' on 'access_plugin_data'")
            self.store.update_plugin_data(request.Resource, request.Plugin, dict(request.Set), dict(request.Expect))
            return Empty()

        return await self._run(context, "UpdatePluginData", update)


def _in_scope(scope: int, caller: User, roles: Sequence[Role], request: AccessRequest) -> bool:
    if scope == types_pb2.AccessRequestScope.MY_REQUESTS:
        return request.user == caller.name
    if scope == types_pb2.AccessRequestScope.NEEDS_REVIEW:
        return (
            request.state is RequestState.PENDING
            and not any(r.author == caller.name for r in request.reviews)
            and policy.review_decision(caller, roles, request).allowed
        )
    if scope == types_pb2.AccessRequestScope.REVIEWED:
        return any(r.author == caller.name for r in request.reviews)
    return True


def _sorted(requests: list[AccessRequest], sort: int, descending: bool) -> list[AccessRequest]:
    epoch = datetime.min.replace(tzinfo=UTC)
    keys: dict[int, Callable[[AccessRequest], Any]] = {
        authservice_pb2.AccessRequestSort.STATE: lambda r: (r.state.value, r.id),
        authservice_pb2.AccessRequestSort.USER: lambda r: (r.user, r.id),
    }
    key = keys.get(sort, lambda r: (r.created or epoch, r.id))
    return sorted(requests, key=key, reverse=descending)


def _matches_watch(filter_: dict[str, str], request: AccessRequest) -> bool:
    return (
        filter_.get("id", request.id) == request.id
        and filter_.get("user", request.user) == request.user
        and filter_.get("state", request.state.name) == request.state.name
    )


class ListenError(OSError):
    """The devstack cannot serve on the address it was given."""


class ProxyListenError(ListenError):
    """The devstack Proxy cannot serve on the address it was given."""


class DevTeleport:
    """The stand-in as a whole: a store, a CA, and a gRPC server that can be stopped and started again."""

    def __init__(
        self,
        seed: Seed,
        *,
        cluster_name: str = "devstack.example.com",
        ca: ClusterCA | None = None,
        clock: Callable[[], datetime] | None = None,
        version: str = SERVER_VERSION,
        edition: str = "enterprise",
    ) -> None:
        """`version` and `edition` play another Teleport: a seed with roles that `edition` refuses raises
        `SeedError`, as `tctl create` would fail; before 18.11 `submit_for_users` is dropped from roles."""
        if edition not in EDITIONS:
            raise ValueError(f"edition must be one of {', '.join(EDITIONS)}")
        version_tuple(version)
        check_edition(seed, edition)
        if version_tuple(version) < (18, 11, 0):
            seed = without_submit_for_users(seed)
        self.cluster_name = cluster_name
        self.ca = ca or ClusterCA.generate(cluster_name)
        self.store = Store(seed, clock=clock) if clock else Store(seed)
        self.service = AuthService(self.store, cluster_name, version=version, edition=edition)
        self.users = UsersService(self.store)
        self._server: grpc.aio.Server | None = None
        self.addr = ""
        self.proxy: DevProxy | None = None

    async def start(self, listen: str = "127.0.0.1:0") -> str:
        """Serve on `listen` (port 0 picks one, then reused on restart); returns `host:port`."""
        if self.addr and listen.endswith(":0"):
            listen = self.addr
        key, cert = self.ca.server_credentials()
        credentials = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=self.ca.cert_pem, require_client_auth=True
        )
        # Without this, grpc shares a port with another process: two devstacks would split the clients.
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)],
                                 interceptors=[ClientVersionCheck(self.service.version)])
        authservice_pb2_grpc.add_AuthServiceServicer_to_server(self.service, server)
        users_service_pb2_grpc.add_UsersServiceServicer_to_server(self.users, server)
        server.add_generic_rpc_handlers([_legacy_user_rpcs()])
        try:
            port = server.add_secure_port(listen, credentials)
        except RuntimeError as err:  # grpc's word for an address it cannot parse or bind
            raise ListenError(f"cannot listen there ({err})") from None
        if port == 0:
            raise ListenError("cannot listen there (in use, or not an address of this machine)")
        await server.start()
        self._server = server
        self.addr = f"{listen.rsplit(':', 1)[0]}:{port}"
        return self.addr

    async def stop(self, grace: float | None = 0.2) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    async def start_proxy(self, listen: str = "127.0.0.1:0") -> str:
        """A TLS-routing Proxy in front of this Auth (Teleport Cloud's shape); returns its `host:port`.

        Started again after `stop_proxy`, it listens on the same port when `listen` ends in `:0`."""
        if self.proxy is None:
            self.proxy = DevProxy(cluster_name=self.cluster_name, auth_addr=self.addr)
        self.proxy.auth_addr = self.addr
        return await self.proxy.start(listen)

    async def stop_proxy(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()

    def identity(self, user: str, **kwargs: Any) -> Identity:
        roles = self.store.user(user).roles
        return self.ca.issue_identity(user, list(roles), **kwargs)

    def write_identities(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name in self.store.seed.users:
            path = directory / f"{name}.pem"
            write_identity_file(self.identity(name), path)
            written.append(path)
        return written


async def serve_forever(seed: Seed, *, listen: str, identity_out: Path, cluster_name: str,
                        edition: str = "enterprise", version: str = SERVER_VERSION,
                        proxy_listen: str = "") -> None:
    ca_dir = identity_out / "ca"
    ca = ClusterCA.load(ca_dir) if (ca_dir / "ca.crt").exists() else None
    if ca is None:
        ca = ClusterCA.generate(cluster_name)
        ca.save(ca_dir)
    teleport = DevTeleport(seed, cluster_name=cluster_name, ca=ca, edition=edition, version=version)
    addr = await teleport.start(listen)
    for path in teleport.write_identities(identity_out):
        print(f"wrote {path}", flush=True)
    edition_name = "Enterprise" if edition == "enterprise" else "Community Edition"
    print(f"devstack Teleport {version} {edition_name} {cluster_name!r} serving on {addr}", flush=True)
    try:
        if proxy_listen:
            try:
                proxy_addr = await teleport.start_proxy(proxy_listen)
            except (OSError, ValueError) as err:
                detail = err.strerror if isinstance(err, OSError) and err.strerror else err
                raise ProxyListenError(f"cannot listen there ({detail})") from None
            print(f"devstack Proxy (TLS routing to Auth) serving on {proxy_addr}", flush=True)
        await asyncio.Event().wait()
    finally:
        await teleport.stop_proxy()
        await teleport.stop()
