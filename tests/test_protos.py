"""The .proto subset in protos/teleport/ against the wire facts of teleport-wire.md, and the stubs against it.

A wrong field number or wire type here would silently corrupt every message exchanged with a real
Teleport Auth server, so each row below is copied from the wire reference, not from our .proto files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.descriptor_pool import Default

from chatops_bot.teleport.gen import authservice_pb2, authservice_pb2_grpc, users_service_pb2

ROOT = Path(__file__).resolve().parent.parent
GEN_DIR = ROOT / "chatops_bot" / "teleport" / "gen"

TS = "google.protobuf.Timestamp"
LV = "wrappers.LabelValues"
_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_BYTES: "bytes",
}

# (message, field, number, type): the type is "enum X", a message's full name, a scalar, "map<K, V>",
# each prefixed with "repeated " when the field is repeated.
FIELDS: list[tuple[str, str, int, str]] = [
    ("types.Metadata", "Name", 1, "string"),
    ("types.Metadata", "Namespace", 2, "string"),
    ("types.Metadata", "Labels", 5, "map<string, string>"),
    ("types.Metadata", "Expires", 6, TS),
    ("types.Metadata", "Revision", 8, "string"),
    ("types.ResourceHeader", "Kind", 1, "string"),
    ("types.ResourceHeader", "Metadata", 4, "types.Metadata"),
    ("wrappers.StringValues", "Values", 1, "repeated string"),
    ("wrappers.LabelValues", "Values", 1, "map<string, wrappers.StringValues>"),
    ("types.BoolValue", "Value", 1, "bool"),
    ("types.AccessRequestV3", "Kind", 1, "string"),
    ("types.AccessRequestV3", "SubKind", 2, "string"),
    ("types.AccessRequestV3", "Version", 3, "string"),
    ("types.AccessRequestV3", "Metadata", 4, "types.Metadata"),
    ("types.AccessRequestV3", "Spec", 5, "types.AccessRequestSpecV3"),
    ("types.AccessRequestSpecV3", "User", 1, "string"),
    ("types.AccessRequestSpecV3", "Roles", 2, "repeated string"),
    ("types.AccessRequestSpecV3", "State", 3, "enum types.RequestState"),
    ("types.AccessRequestSpecV3", "Created", 4, TS),
    ("types.AccessRequestSpecV3", "Expires", 5, TS),
    ("types.AccessRequestSpecV3", "RequestReason", 6, "string"),
    ("types.AccessRequestSpecV3", "ResolveReason", 7, "string"),
    ("types.AccessRequestSpecV3", "ResolveAnnotations", 8, LV),
    ("types.AccessRequestSpecV3", "SystemAnnotations", 9, LV),
    ("types.AccessRequestSpecV3", "Thresholds", 10, "repeated types.AccessReviewThreshold"),
    ("types.AccessRequestSpecV3", "RoleThresholdMapping", 11, "map<string, types.ThresholdIndexSets>"),
    ("types.AccessRequestSpecV3", "Reviews", 12, "repeated types.AccessReview"),
    ("types.AccessRequestSpecV3", "SuggestedReviewers", 13, "repeated string"),
    ("types.AccessRequestSpecV3", "RequestedResourceIDs", 14, "repeated types.ResourceID"),
    ("types.AccessRequestSpecV3", "LoginHint", 15, "string"),
    ("types.AccessRequestSpecV3", "DryRun", 16, "bool"),
    ("types.AccessRequestSpecV3", "MaxDuration", 17, TS),
    ("types.AccessRequestSpecV3", "SessionTTL", 18, TS),
    ("types.AccessRequestSpecV3", "accessList", 20, "types.PromotedAccessList"),
    ("types.AccessRequestSpecV3", "AssumeStartTime", 21, TS),
    ("types.AccessRequestSpecV3", "ResourceExpiry", 22, TS),
    ("types.AccessReview", "Author", 1, "string"),
    ("types.AccessReview", "Roles", 2, "repeated string"),
    ("types.AccessReview", "ProposedState", 3, "enum types.RequestState"),
    ("types.AccessReview", "Reason", 4, "string"),
    ("types.AccessReview", "Created", 5, TS),
    ("types.AccessReview", "Annotations", 6, LV),
    ("types.AccessReview", "ThresholdIndexes", 7, "repeated uint32"),
    ("types.AccessReview", "accessList", 9, "types.PromotedAccessList"),
    ("types.AccessReview", "AssumeStartTime", 10, TS),
    ("types.AccessReview", "SubmittedBy", 11, "string"),
    ("types.AccessReview", "submitted_on_behalf_of_author", 12, "bool"),
    ("types.AccessReviewSubmission", "RequestID", 1, "string"),
    ("types.AccessReviewSubmission", "Review", 2, "types.AccessReview"),
    ("types.AccessReviewThreshold", "Name", 1, "string"),
    ("types.AccessReviewThreshold", "Filter", 2, "string"),
    ("types.AccessReviewThreshold", "Approve", 3, "uint32"),
    ("types.AccessReviewThreshold", "Deny", 4, "uint32"),
    ("types.ThresholdIndexSet", "Indexes", 1, "repeated uint32"),
    ("types.ThresholdIndexSets", "Sets", 1, "repeated types.ThresholdIndexSet"),
    ("types.PromotedAccessList", "Name", 1, "string"),
    ("types.PromotedAccessList", "Title", 2, "string"),
    ("types.ResourceID", "ClusterName", 1, "string"),
    ("types.ResourceID", "Kind", 2, "string"),
    ("types.ResourceID", "Name", 3, "string"),
    ("types.ResourceID", "SubResourceName", 4, "string"),
    ("types.AccessRequestFilter", "ID", 1, "string"),
    ("types.AccessRequestFilter", "User", 2, "string"),
    ("types.AccessRequestFilter", "State", 3, "enum types.RequestState"),
    ("types.AccessRequestFilter", "SearchKeywords", 4, "repeated string"),
    ("types.AccessRequestFilter", "Scope", 5, "enum types.AccessRequestScope"),
    ("types.AccessRequestFilter", "Requester", 6, "string"),
    ("proto.RequestStateSetter", "ID", 1, "string"),
    ("proto.RequestStateSetter", "State", 2, "enum types.RequestState"),
    ("proto.RequestStateSetter", "Delegator", 3, "string"),
    ("proto.RequestStateSetter", "Reason", 4, "string"),
    ("proto.RequestStateSetter", "Annotations", 5, LV),
    ("proto.RequestStateSetter", "Roles", 6, "repeated string"),
    ("proto.RequestStateSetter", "AssumeStartTime", 7, TS),
    ("proto.RequestID", "ID", 1, "string"),
    ("proto.ListAccessRequestsRequest", "Filter", 1, "types.AccessRequestFilter"),
    ("proto.ListAccessRequestsRequest", "Sort", 2, "enum proto.AccessRequestSort"),
    ("proto.ListAccessRequestsRequest", "Descending", 3, "bool"),
    ("proto.ListAccessRequestsRequest", "Limit", 4, "int32"),
    ("proto.ListAccessRequestsRequest", "StartKey", 5, "string"),
    ("proto.ListAccessRequestsResponse", "AccessRequests", 1, "repeated types.AccessRequestV3"),
    ("proto.ListAccessRequestsResponse", "NextKey", 2, "string"),
    ("types.AccessCapabilitiesRequest", "User", 1, "string"),
    ("types.AccessCapabilitiesRequest", "RequestableRoles", 2, "bool"),
    ("types.AccessCapabilitiesRequest", "SuggestedReviewers", 3, "bool"),
    ("types.AccessCapabilitiesRequest", "ResourceIDs", 4, "repeated types.ResourceID"),
    ("types.AccessCapabilitiesRequest", "Login", 5, "string"),
    ("types.AccessCapabilitiesRequest", "FilterRequestableRolesByResource", 6, "bool"),
    ("types.AccessCapabilities", "RequestableRoles", 1, "repeated string"),
    ("types.AccessCapabilities", "SuggestedReviewers", 2, "repeated string"),
    ("types.AccessCapabilities", "ApplicableRolesForResources", 3, "repeated string"),
    ("types.AccessCapabilities", "RequestPrompt", 4, "string"),
    ("types.AccessCapabilities", "RequireReason", 5, "bool"),
    ("types.AccessCapabilities", "AutoRequest", 6, "bool"),
    ("types.PluginDataFilter", "Kind", 1, "string"),
    ("types.PluginDataFilter", "Resource", 2, "string"),
    ("types.PluginDataFilter", "Plugin", 3, "string"),
    ("types.PluginDataUpdateParams", "Kind", 1, "string"),
    ("types.PluginDataUpdateParams", "Resource", 2, "string"),
    ("types.PluginDataUpdateParams", "Plugin", 3, "string"),
    ("types.PluginDataUpdateParams", "Set", 4, "map<string, string>"),
    ("types.PluginDataUpdateParams", "Expect", 5, "map<string, string>"),
    ("proto.PluginDataSeq", "PluginData", 1, "repeated types.PluginDataV3"),
    ("types.PluginDataV3", "Metadata", 4, "types.Metadata"),
    ("types.PluginDataV3", "Spec", 5, "types.PluginDataSpecV3"),
    ("types.PluginDataSpecV3", "Entries", 1, "map<string, types.PluginDataEntry>"),
    ("types.PluginDataEntry", "Data", 1, "map<string, string>"),
    ("types.UserV2", "Metadata", 4, "types.Metadata"),
    ("types.UserV2", "Spec", 5, "types.UserSpecV2"),
    ("types.UserV2", "Status", 6, "types.UserStatusV2"),
    ("types.UserSpecV2", "OIDCIdentities", 1, "repeated types.ExternalIdentity"),
    ("types.UserSpecV2", "SAMLIdentities", 2, "repeated types.ExternalIdentity"),
    ("types.UserSpecV2", "GithubIdentities", 3, "repeated types.ExternalIdentity"),
    ("types.UserSpecV2", "Roles", 4, "repeated string"),
    ("types.UserSpecV2", "Traits", 5, LV),
    ("types.UserSpecV2", "Expires", 7, TS),
    ("types.ExternalIdentity", "ConnectorID", 1, "string"),
    ("types.ExternalIdentity", "Username", 2, "string"),
    ("types.RoleV6", "Metadata", 4, "types.Metadata"),
    ("types.RoleV6", "Spec", 5, "types.RoleSpecV6"),
    ("types.RoleSpecV6", "Options", 1, "types.RoleOptions"),
    ("types.RoleSpecV6", "Allow", 2, "types.RoleConditions"),
    ("types.RoleSpecV6", "Deny", 3, "types.RoleConditions"),
    ("types.RoleOptions", "MaxSessionTTL", 2, "int64"),
    ("types.RoleOptions", "RequestAccess", 11, "string"),
    ("types.RoleOptions", "RequestPrompt", 12, "string"),
    ("types.RoleConditions", "Logins", 1, "repeated string"),
    ("types.RoleConditions", "Rules", 4, "repeated types.Rule"),
    ("types.RoleConditions", "Request", 6, "types.AccessRequestConditions"),
    ("types.RoleConditions", "Impersonate", 14, "types.ImpersonateConditions"),
    ("types.RoleConditions", "ReviewRequests", 15, "types.AccessReviewConditions"),
    ("types.Rule", "Resources", 1, "repeated string"),
    ("types.Rule", "Verbs", 2, "repeated string"),
    ("types.Rule", "Where", 3, "string"),
    ("types.Rule", "Actions", 4, "repeated string"),
    ("types.ImpersonateConditions", "Users", 1, "repeated string"),
    ("types.ImpersonateConditions", "Roles", 2, "repeated string"),
    ("types.ImpersonateConditions", "Where", 3, "string"),
    ("types.AccessRequestConditions", "Roles", 1, "repeated string"),
    ("types.AccessRequestConditions", "ClaimsToRoles", 2, "repeated types.ClaimMapping"),
    ("types.AccessRequestConditions", "Annotations", 3, LV),
    ("types.AccessRequestConditions", "Thresholds", 4, "repeated types.AccessReviewThreshold"),
    ("types.AccessRequestConditions", "SuggestedReviewers", 5, "repeated string"),
    ("types.AccessRequestConditions", "SearchAsRoles", 6, "repeated string"),
    ("types.AccessRequestConditions", "MaxDuration", 7, "int64"),
    ("types.AccessRequestConditions", "Reason", 9, "types.AccessRequestConditionsReason"),
    ("types.AccessRequestConditionsReason", "Mode", 1, "string"),
    ("types.ClaimMapping", "Claim", 1, "string"),
    ("types.ClaimMapping", "Value", 2, "string"),
    ("types.ClaimMapping", "Roles", 3, "repeated string"),
    ("types.AccessReviewConditions", "Roles", 1, "repeated string"),
    ("types.AccessReviewConditions", "ClaimsToRoles", 2, "repeated types.ClaimMapping"),
    ("types.AccessReviewConditions", "Where", 3, "string"),
    ("types.AccessReviewConditions", "PreviewAsRoles", 4, "repeated string"),
    ("types.AccessReviewConditions", "SubmitForUsers", 5, "repeated string"),
    ("types.WatchKind", "Kind", 1, "string"),
    ("types.WatchKind", "LoadSecrets", 2, "bool"),
    ("types.WatchKind", "Name", 3, "string"),
    ("types.WatchKind", "Filter", 4, "map<string, string>"),
    ("types.WatchKind", "SubKind", 5, "string"),
    ("types.WatchKind", "Version", 6, "string"),
    ("types.WatchStatusV1", "Metadata", 4, "types.Metadata"),
    ("types.WatchStatusV1", "Spec", 5, "types.WatchStatusSpecV1"),
    ("types.WatchStatusSpecV1", "Kinds", 1, "repeated types.WatchKind"),
    ("proto.Watch", "Kinds", 1, "repeated types.WatchKind"),
    ("proto.Watch", "AllowPartialSuccess", 2, "bool"),
    ("proto.Event", "Type", 1, "enum proto.Operation"),
    ("proto.Event", "ResourceHeader", 2, "types.ResourceHeader"),
    ("proto.Event", "User", 8, "types.UserV2"),
    ("proto.Event", "Role", 9, "types.RoleV6"),
    ("proto.Event", "AccessRequest", 14, "types.AccessRequestV3"),
    ("proto.Event", "WatchStatus", 43, "types.WatchStatusV1"),
    ("proto.PingResponse", "ClusterName", 1, "string"),
    ("proto.PingResponse", "ServerVersion", 2, "string"),
    ("proto.PingResponse", "ServerFeatures", 3, "proto.Features"),
    ("proto.PingResponse", "ProxyPublicAddr", 4, "string"),
    ("proto.PingResponse", "IsBoring", 5, "bool"),
    ("proto.PingResponse", "RemoteAddr", 7, "string"),
    ("proto.PingResponse", "LoadAllCAs", 8, "bool"),
    ("proto.PingResponse", "LicenseExpiry", 10, TS),
    ("proto.Features", "AdvancedAccessWorkflows", 7, "bool"),
    ("proto.GetRoleRequest", "Name", 1, "string"),
    ("types.UserFilter", "SearchKeywords", 1, "repeated string"),
    ("teleport.users.v1.GetUserRequest", "name", 1, "string"),
    ("teleport.users.v1.GetUserRequest", "current_user", 2, "bool"),
    ("teleport.users.v1.GetUserRequest", "with_secrets", 3, "bool"),
    ("teleport.users.v1.GetUserResponse", "user", 1, "types.UserV2"),
    ("teleport.users.v1.ListUsersRequest", "page_size", 1, "int32"),
    ("teleport.users.v1.ListUsersRequest", "page_token", 2, "string"),
    ("teleport.users.v1.ListUsersRequest", "with_secrets", 3, "bool"),
    ("teleport.users.v1.ListUsersRequest", "filter", 4, "types.UserFilter"),
    ("teleport.users.v1.ListUsersResponse", "users", 1, "repeated types.UserV2"),
    ("teleport.users.v1.ListUsersResponse", "next_page_token", 2, "string"),
]

# (method, input, output, server-streaming)
METHODS: list[tuple[str, str, str, bool]] = [
    ("Ping", "proto.PingRequest", "proto.PingResponse", False),
    ("CreateAccessRequestV2", "types.AccessRequestV3", "types.AccessRequestV3", False),
    ("ListAccessRequests", "proto.ListAccessRequestsRequest", "proto.ListAccessRequestsResponse", False),
    ("SubmitAccessReview", "types.AccessReviewSubmission", "types.AccessRequestV3", False),
    ("SetAccessRequestState", "proto.RequestStateSetter", "google.protobuf.Empty", False),
    ("DeleteAccessRequest", "proto.RequestID", "google.protobuf.Empty", False),
    ("WatchEvents", "proto.Watch", "proto.Event", True),
    ("GetRole", "proto.GetRoleRequest", "types.RoleV6", False),
    ("GetAccessCapabilities", "types.AccessCapabilitiesRequest", "types.AccessCapabilities", False),
    ("GetPluginData", "types.PluginDataFilter", "proto.PluginDataSeq", False),
    ("UpdatePluginData", "types.PluginDataUpdateParams", "google.protobuf.Empty", False),
]

ENUMS: dict[str, dict[str, int]] = {
    "types.RequestState": {"NONE": 0, "PENDING": 1, "APPROVED": 2, "DENIED": 3, "PROMOTED": 4},
    "types.AccessRequestScope": {"DEFAULT": 0, "MY_REQUESTS": 1, "NEEDS_REVIEW": 2, "REVIEWED": 3},
    "proto.AccessRequestSort": {"DEFAULT": 0, "CREATED": 1, "STATE": 2, "USER": 3},
    "proto.Operation": {"INIT": 0, "PUT": 1, "DELETE": 2},
}

# Numbers Teleport removed: declaring a field there could misread what a server sends.
UNUSED: list[tuple[str, int]] = [
    ("types.Metadata", 7),
    ("types.AccessRequestSpecV3", 19),
    ("types.AccessReview", 8),
]


def message(full_name: str) -> Descriptor:
    return Default().FindMessageTypeByName(full_name)


def describe(field: FieldDescriptor) -> str:
    """Renders a field's wire type and label in the notation of FIELDS."""
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
        entry = field.message_type.fields_by_name
        return f"map<{describe(entry['key'])}, {describe(entry['value'])}>"
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        base = field.message_type.full_name
    elif field.type == FieldDescriptor.TYPE_ENUM:
        base = f"enum {field.enum_type.full_name}"
    else:
        base = _SCALARS[field.type]
    return f"repeated {base}" if field.is_repeated else base


@pytest.mark.parametrize(("message_name", "field_name", "number", "kind"), FIELDS)
def test_field_matches_teleport_wire(message_name: str, field_name: str, number: int, kind: str) -> None:
    field = message(message_name).fields_by_name.get(field_name)
    assert field is not None, f"{message_name}.{field_name} is not declared"
    assert (field.number, describe(field)) == (number, kind)


@pytest.mark.parametrize(("message_name", "number"), UNUSED)
def test_unconfirmed_and_removed_numbers_stay_unused(message_name: str, number: int) -> None:
    assert number not in message(message_name).fields_by_number


def test_event_resources_share_one_oneof() -> None:
    oneofs = message("proto.Event").oneofs_by_name
    assert list(oneofs) == ["Resource"]
    members = {field.name for field in oneofs["Resource"].fields}
    assert members == {"ResourceHeader", "User", "Role", "AccessRequest", "WatchStatus"}


@pytest.mark.parametrize(("enum_name", "values"), ENUMS.items())
def test_enum_values(enum_name: str, values: dict[str, int]) -> None:
    enum = Default().FindEnumTypeByName(enum_name)
    assert {value.name: value.number for value in enum.values} == values


def test_service_declares_exactly_the_methods_the_bot_uses() -> None:
    service = authservice_pb2.DESCRIPTOR.services_by_name["AuthService"]
    assert service.full_name == "proto.AuthService"
    declared = {
        method.name: (method.input_type.full_name, method.output_type.full_name, method.server_streaming)
        for method in service.methods
    }
    assert declared == {name: (request, response, stream) for name, request, response, stream in METHODS}
    assert not any(method.client_streaming for method in service.methods)


def test_users_service_declares_the_read_side_of_teleport_users_v1() -> None:
    service = users_service_pb2.DESCRIPTOR.services_by_name["UsersService"]
    assert service.full_name == "teleport.users.v1.UsersService"
    assert {m.name: (m.input_type.full_name, m.output_type.full_name, m.server_streaming) for m in service.methods} == {
        "GetUser": ("teleport.users.v1.GetUserRequest", "teleport.users.v1.GetUserResponse", False),
        "ListUsers": ("teleport.users.v1.ListUsersRequest", "teleport.users.v1.ListUsersResponse", False),
    }


class RecordingChannel:
    """Stands in for a grpc.Channel and records the path and call kind of each stub method."""

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def unary_unary(self, path: str, **_: Any) -> None:
        self.paths[path] = "unary"

    def unary_stream(self, path: str, **_: Any) -> None:
        self.paths[path] = "stream"


def test_stub_calls_teleport_method_paths() -> None:
    channel = RecordingChannel()
    authservice_pb2_grpc.AuthServiceStub(channel)
    expected = {
        f"/proto.AuthService/{name}": "stream" if stream else "unary" for name, _, _, stream in METHODS
    }
    assert channel.paths == expected


def _files(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.is_file()}


def test_stubs_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh, committed = _files(tmp_path), _files(GEN_DIR)
    hint = "chatops_bot/teleport/gen/ is stale: run `python protos/generate.py` and commit the result"
    assert sorted(fresh) == sorted(committed), hint
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{hint} (differs: {', '.join(stale)})"
