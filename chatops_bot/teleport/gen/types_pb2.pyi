import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import wrappers_pb2 as _wrappers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RequestState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NONE: _ClassVar[RequestState]
    PENDING: _ClassVar[RequestState]
    APPROVED: _ClassVar[RequestState]
    DENIED: _ClassVar[RequestState]
    PROMOTED: _ClassVar[RequestState]

class AccessRequestScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEFAULT: _ClassVar[AccessRequestScope]
    MY_REQUESTS: _ClassVar[AccessRequestScope]
    NEEDS_REVIEW: _ClassVar[AccessRequestScope]
    REVIEWED: _ClassVar[AccessRequestScope]
NONE: RequestState
PENDING: RequestState
APPROVED: RequestState
DENIED: RequestState
PROMOTED: RequestState
DEFAULT: AccessRequestScope
MY_REQUESTS: AccessRequestScope
NEEDS_REVIEW: AccessRequestScope
REVIEWED: AccessRequestScope

class Metadata(_message.Message):
    __slots__ = ("Name", "Namespace", "Description", "Labels", "Expires", "Revision")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Namespace: str
    Description: str
    Labels: _containers.ScalarMap[str, str]
    Expires: _timestamp_pb2.Timestamp
    Revision: str
    def __init__(self, Name: _Optional[str] = ..., Namespace: _Optional[str] = ..., Description: _Optional[str] = ..., Labels: _Optional[_Mapping[str, str]] = ..., Expires: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., Revision: _Optional[str] = ...) -> None: ...

class ResourceHeader(_message.Message):
    __slots__ = ("Kind", "SubKind", "Version", "Metadata")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBKIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    Kind: str
    SubKind: str
    Version: str
    Metadata: Metadata
    def __init__(self, Kind: _Optional[str] = ..., SubKind: _Optional[str] = ..., Version: _Optional[str] = ..., Metadata: _Optional[_Union[Metadata, _Mapping]] = ...) -> None: ...

class BoolValue(_message.Message):
    __slots__ = ("Value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    Value: bool
    def __init__(self, Value: _Optional[bool] = ...) -> None: ...

class AccessRequestV3(_message.Message):
    __slots__ = ("Kind", "SubKind", "Version", "Metadata", "Spec")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBKIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    Kind: str
    SubKind: str
    Version: str
    Metadata: Metadata
    Spec: AccessRequestSpecV3
    def __init__(self, Kind: _Optional[str] = ..., SubKind: _Optional[str] = ..., Version: _Optional[str] = ..., Metadata: _Optional[_Union[Metadata, _Mapping]] = ..., Spec: _Optional[_Union[AccessRequestSpecV3, _Mapping]] = ...) -> None: ...

class AccessRequestSpecV3(_message.Message):
    __slots__ = ("User", "Roles", "State", "Created", "Expires", "RequestReason", "ResolveReason", "ResolveAnnotations", "SystemAnnotations", "Thresholds", "RoleThresholdMapping", "Reviews", "SuggestedReviewers", "RequestedResourceIDs", "LoginHint", "DryRun", "MaxDuration", "SessionTTL", "accessList", "AssumeStartTime", "ResourceExpiry")
    class RoleThresholdMappingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ThresholdIndexSets
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ThresholdIndexSets, _Mapping]] = ...) -> None: ...
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    REQUESTREASON_FIELD_NUMBER: _ClassVar[int]
    RESOLVEREASON_FIELD_NUMBER: _ClassVar[int]
    RESOLVEANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    SYSTEMANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    ROLETHRESHOLDMAPPING_FIELD_NUMBER: _ClassVar[int]
    REVIEWS_FIELD_NUMBER: _ClassVar[int]
    SUGGESTEDREVIEWERS_FIELD_NUMBER: _ClassVar[int]
    REQUESTEDRESOURCEIDS_FIELD_NUMBER: _ClassVar[int]
    LOGINHINT_FIELD_NUMBER: _ClassVar[int]
    DRYRUN_FIELD_NUMBER: _ClassVar[int]
    MAXDURATION_FIELD_NUMBER: _ClassVar[int]
    SESSIONTTL_FIELD_NUMBER: _ClassVar[int]
    ACCESSLIST_FIELD_NUMBER: _ClassVar[int]
    ASSUMESTARTTIME_FIELD_NUMBER: _ClassVar[int]
    RESOURCEEXPIRY_FIELD_NUMBER: _ClassVar[int]
    User: str
    Roles: _containers.RepeatedScalarFieldContainer[str]
    State: RequestState
    Created: _timestamp_pb2.Timestamp
    Expires: _timestamp_pb2.Timestamp
    RequestReason: str
    ResolveReason: str
    ResolveAnnotations: _wrappers_pb2.LabelValues
    SystemAnnotations: _wrappers_pb2.LabelValues
    Thresholds: _containers.RepeatedCompositeFieldContainer[AccessReviewThreshold]
    RoleThresholdMapping: _containers.MessageMap[str, ThresholdIndexSets]
    Reviews: _containers.RepeatedCompositeFieldContainer[AccessReview]
    SuggestedReviewers: _containers.RepeatedScalarFieldContainer[str]
    RequestedResourceIDs: _containers.RepeatedCompositeFieldContainer[ResourceID]
    LoginHint: str
    DryRun: bool
    MaxDuration: _timestamp_pb2.Timestamp
    SessionTTL: _timestamp_pb2.Timestamp
    accessList: PromotedAccessList
    AssumeStartTime: _timestamp_pb2.Timestamp
    ResourceExpiry: _timestamp_pb2.Timestamp
    def __init__(self, User: _Optional[str] = ..., Roles: _Optional[_Iterable[str]] = ..., State: _Optional[_Union[RequestState, str]] = ..., Created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., Expires: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., RequestReason: _Optional[str] = ..., ResolveReason: _Optional[str] = ..., ResolveAnnotations: _Optional[_Union[_wrappers_pb2.LabelValues, _Mapping]] = ..., SystemAnnotations: _Optional[_Union[_wrappers_pb2.LabelValues, _Mapping]] = ..., Thresholds: _Optional[_Iterable[_Union[AccessReviewThreshold, _Mapping]]] = ..., RoleThresholdMapping: _Optional[_Mapping[str, ThresholdIndexSets]] = ..., Reviews: _Optional[_Iterable[_Union[AccessReview, _Mapping]]] = ..., SuggestedReviewers: _Optional[_Iterable[str]] = ..., RequestedResourceIDs: _Optional[_Iterable[_Union[ResourceID, _Mapping]]] = ..., LoginHint: _Optional[str] = ..., DryRun: _Optional[bool] = ..., MaxDuration: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., SessionTTL: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., accessList: _Optional[_Union[PromotedAccessList, _Mapping]] = ..., AssumeStartTime: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ResourceExpiry: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AccessReview(_message.Message):
    __slots__ = ("Author", "Roles", "ProposedState", "Reason", "Created", "Annotations", "ThresholdIndexes", "accessList", "AssumeStartTime", "SubmittedBy", "submitted_on_behalf_of_author")
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    PROPOSEDSTATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDINDEXES_FIELD_NUMBER: _ClassVar[int]
    ACCESSLIST_FIELD_NUMBER: _ClassVar[int]
    ASSUMESTARTTIME_FIELD_NUMBER: _ClassVar[int]
    SUBMITTEDBY_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_ON_BEHALF_OF_AUTHOR_FIELD_NUMBER: _ClassVar[int]
    Author: str
    Roles: _containers.RepeatedScalarFieldContainer[str]
    ProposedState: RequestState
    Reason: str
    Created: _timestamp_pb2.Timestamp
    Annotations: _wrappers_pb2.LabelValues
    ThresholdIndexes: _containers.RepeatedScalarFieldContainer[int]
    accessList: PromotedAccessList
    AssumeStartTime: _timestamp_pb2.Timestamp
    SubmittedBy: str
    submitted_on_behalf_of_author: bool
    def __init__(self, Author: _Optional[str] = ..., Roles: _Optional[_Iterable[str]] = ..., ProposedState: _Optional[_Union[RequestState, str]] = ..., Reason: _Optional[str] = ..., Created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., Annotations: _Optional[_Union[_wrappers_pb2.LabelValues, _Mapping]] = ..., ThresholdIndexes: _Optional[_Iterable[int]] = ..., accessList: _Optional[_Union[PromotedAccessList, _Mapping]] = ..., AssumeStartTime: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., SubmittedBy: _Optional[str] = ..., submitted_on_behalf_of_author: _Optional[bool] = ...) -> None: ...

class AccessReviewSubmission(_message.Message):
    __slots__ = ("RequestID", "Review")
    REQUESTID_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
    RequestID: str
    Review: AccessReview
    def __init__(self, RequestID: _Optional[str] = ..., Review: _Optional[_Union[AccessReview, _Mapping]] = ...) -> None: ...

class AccessReviewThreshold(_message.Message):
    __slots__ = ("Name", "Filter", "Approve", "Deny")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    DENY_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Filter: str
    Approve: int
    Deny: int
    def __init__(self, Name: _Optional[str] = ..., Filter: _Optional[str] = ..., Approve: _Optional[int] = ..., Deny: _Optional[int] = ...) -> None: ...

class ThresholdIndexSet(_message.Message):
    __slots__ = ("Indexes",)
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    Indexes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, Indexes: _Optional[_Iterable[int]] = ...) -> None: ...

class ThresholdIndexSets(_message.Message):
    __slots__ = ("Sets",)
    SETS_FIELD_NUMBER: _ClassVar[int]
    Sets: _containers.RepeatedCompositeFieldContainer[ThresholdIndexSet]
    def __init__(self, Sets: _Optional[_Iterable[_Union[ThresholdIndexSet, _Mapping]]] = ...) -> None: ...

class PromotedAccessList(_message.Message):
    __slots__ = ("Name", "Title")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    Name: str
    Title: str
    def __init__(self, Name: _Optional[str] = ..., Title: _Optional[str] = ...) -> None: ...

class ResourceID(_message.Message):
    __slots__ = ("ClusterName", "Kind", "Name", "SubResourceName")
    CLUSTERNAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUBRESOURCENAME_FIELD_NUMBER: _ClassVar[int]
    ClusterName: str
    Kind: str
    Name: str
    SubResourceName: str
    def __init__(self, ClusterName: _Optional[str] = ..., Kind: _Optional[str] = ..., Name: _Optional[str] = ..., SubResourceName: _Optional[str] = ...) -> None: ...

class AccessRequestFilter(_message.Message):
    __slots__ = ("ID", "User", "State", "SearchKeywords", "Scope", "Requester")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SEARCHKEYWORDS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    ID: str
    User: str
    State: RequestState
    SearchKeywords: _containers.RepeatedScalarFieldContainer[str]
    Scope: AccessRequestScope
    Requester: str
    def __init__(self, ID: _Optional[str] = ..., User: _Optional[str] = ..., State: _Optional[_Union[RequestState, str]] = ..., SearchKeywords: _Optional[_Iterable[str]] = ..., Scope: _Optional[_Union[AccessRequestScope, str]] = ..., Requester: _Optional[str] = ...) -> None: ...

class AccessCapabilitiesRequest(_message.Message):
    __slots__ = ("User", "RequestableRoles", "SuggestedReviewers", "ResourceIDs", "Login", "FilterRequestableRolesByResource")
    USER_FIELD_NUMBER: _ClassVar[int]
    REQUESTABLEROLES_FIELD_NUMBER: _ClassVar[int]
    SUGGESTEDREVIEWERS_FIELD_NUMBER: _ClassVar[int]
    RESOURCEIDS_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FIELD_NUMBER: _ClassVar[int]
    FILTERREQUESTABLEROLESBYRESOURCE_FIELD_NUMBER: _ClassVar[int]
    User: str
    RequestableRoles: bool
    SuggestedReviewers: bool
    ResourceIDs: _containers.RepeatedCompositeFieldContainer[ResourceID]
    Login: str
    FilterRequestableRolesByResource: bool
    def __init__(self, User: _Optional[str] = ..., RequestableRoles: _Optional[bool] = ..., SuggestedReviewers: _Optional[bool] = ..., ResourceIDs: _Optional[_Iterable[_Union[ResourceID, _Mapping]]] = ..., Login: _Optional[str] = ..., FilterRequestableRolesByResource: _Optional[bool] = ...) -> None: ...

class AccessCapabilities(_message.Message):
    __slots__ = ("RequestableRoles", "SuggestedReviewers", "ApplicableRolesForResources", "RequestPrompt", "RequireReason", "AutoRequest")
    REQUESTABLEROLES_FIELD_NUMBER: _ClassVar[int]
    SUGGESTEDREVIEWERS_FIELD_NUMBER: _ClassVar[int]
    APPLICABLEROLESFORRESOURCES_FIELD_NUMBER: _ClassVar[int]
    REQUESTPROMPT_FIELD_NUMBER: _ClassVar[int]
    REQUIREREASON_FIELD_NUMBER: _ClassVar[int]
    AUTOREQUEST_FIELD_NUMBER: _ClassVar[int]
    RequestableRoles: _containers.RepeatedScalarFieldContainer[str]
    SuggestedReviewers: _containers.RepeatedScalarFieldContainer[str]
    ApplicableRolesForResources: _containers.RepeatedScalarFieldContainer[str]
    RequestPrompt: str
    RequireReason: bool
    AutoRequest: bool
    def __init__(self, RequestableRoles: _Optional[_Iterable[str]] = ..., SuggestedReviewers: _Optional[_Iterable[str]] = ..., ApplicableRolesForResources: _Optional[_Iterable[str]] = ..., RequestPrompt: _Optional[str] = ..., RequireReason: _Optional[bool] = ..., AutoRequest: _Optional[bool] = ...) -> None: ...

class PluginDataFilter(_message.Message):
    __slots__ = ("Kind", "Resource", "Plugin")
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    Kind: str
    Resource: str
    Plugin: str
    def __init__(self, Kind: _Optional[str] = ..., Resource: _Optional[str] = ..., Plugin: _Optional[str] = ...) -> None: ...

class PluginDataUpdateParams(_message.Message):
    __slots__ = ("Kind", "Resource", "Plugin", "Set", "Expect")
    class SetEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ExpectEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    EXPECT_FIELD_NUMBER: _ClassVar[int]
    Kind: str
    Resource: str
    Plugin: str
    Set: _containers.ScalarMap[str, str]
    Expect: _containers.ScalarMap[str, str]
    def __init__(self, Kind: _Optional[str] = ..., Resource: _Optional[str] = ..., Plugin: _Optional[str] = ..., Set: _Optional[_Mapping[str, str]] = ..., Expect: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PluginDataV3(_message.Message):
    __slots__ = ("Kind", "SubKind", "Version", "Metadata", "Spec")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBKIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    Kind: str
    SubKind: str
    Version: str
    Metadata: Metadata
    Spec: PluginDataSpecV3
    def __init__(self, Kind: _Optional[str] = ..., SubKind: _Optional[str] = ..., Version: _Optional[str] = ..., Metadata: _Optional[_Union[Metadata, _Mapping]] = ..., Spec: _Optional[_Union[PluginDataSpecV3, _Mapping]] = ...) -> None: ...

class PluginDataSpecV3(_message.Message):
    __slots__ = ("Entries",)
    class EntriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: PluginDataEntry
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[PluginDataEntry, _Mapping]] = ...) -> None: ...
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    Entries: _containers.MessageMap[str, PluginDataEntry]
    def __init__(self, Entries: _Optional[_Mapping[str, PluginDataEntry]] = ...) -> None: ...

class PluginDataEntry(_message.Message):
    __slots__ = ("Data",)
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DATA_FIELD_NUMBER: _ClassVar[int]
    Data: _containers.ScalarMap[str, str]
    def __init__(self, Data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UserV2(_message.Message):
    __slots__ = ("Kind", "SubKind", "Version", "Metadata", "Spec", "Status")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBKIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    Kind: str
    SubKind: str
    Version: str
    Metadata: Metadata
    Spec: UserSpecV2
    Status: UserStatusV2
    def __init__(self, Kind: _Optional[str] = ..., SubKind: _Optional[str] = ..., Version: _Optional[str] = ..., Metadata: _Optional[_Union[Metadata, _Mapping]] = ..., Spec: _Optional[_Union[UserSpecV2, _Mapping]] = ..., Status: _Optional[_Union[UserStatusV2, _Mapping]] = ...) -> None: ...

class UserSpecV2(_message.Message):
    __slots__ = ("OIDCIdentities", "SAMLIdentities", "GithubIdentities", "Roles", "Traits", "Expires")
    OIDCIDENTITIES_FIELD_NUMBER: _ClassVar[int]
    SAMLIDENTITIES_FIELD_NUMBER: _ClassVar[int]
    GITHUBIDENTITIES_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    TRAITS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    OIDCIdentities: _containers.RepeatedCompositeFieldContainer[ExternalIdentity]
    SAMLIdentities: _containers.RepeatedCompositeFieldContainer[ExternalIdentity]
    GithubIdentities: _containers.RepeatedCompositeFieldContainer[ExternalIdentity]
    Roles: _containers.RepeatedScalarFieldContainer[str]
    Traits: _wrappers_pb2.LabelValues
    Expires: _timestamp_pb2.Timestamp
    def __init__(self, OIDCIdentities: _Optional[_Iterable[_Union[ExternalIdentity, _Mapping]]] = ..., SAMLIdentities: _Optional[_Iterable[_Union[ExternalIdentity, _Mapping]]] = ..., GithubIdentities: _Optional[_Iterable[_Union[ExternalIdentity, _Mapping]]] = ..., Roles: _Optional[_Iterable[str]] = ..., Traits: _Optional[_Union[_wrappers_pb2.LabelValues, _Mapping]] = ..., Expires: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExternalIdentity(_message.Message):
    __slots__ = ("ConnectorID", "Username", "SAMLSingleLogoutURL", "UserID")
    CONNECTORID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    SAMLSINGLELOGOUTURL_FIELD_NUMBER: _ClassVar[int]
    USERID_FIELD_NUMBER: _ClassVar[int]
    ConnectorID: str
    Username: str
    SAMLSingleLogoutURL: str
    UserID: str
    def __init__(self, ConnectorID: _Optional[str] = ..., Username: _Optional[str] = ..., SAMLSingleLogoutURL: _Optional[str] = ..., UserID: _Optional[str] = ...) -> None: ...

class UserStatusV2(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RoleV6(_message.Message):
    __slots__ = ("Kind", "SubKind", "Version", "Metadata", "Spec")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBKIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    Kind: str
    SubKind: str
    Version: str
    Metadata: Metadata
    Spec: RoleSpecV6
    def __init__(self, Kind: _Optional[str] = ..., SubKind: _Optional[str] = ..., Version: _Optional[str] = ..., Metadata: _Optional[_Union[Metadata, _Mapping]] = ..., Spec: _Optional[_Union[RoleSpecV6, _Mapping]] = ...) -> None: ...

class RoleSpecV6(_message.Message):
    __slots__ = ("Options", "Allow", "Deny")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_FIELD_NUMBER: _ClassVar[int]
    DENY_FIELD_NUMBER: _ClassVar[int]
    Options: RoleOptions
    Allow: RoleConditions
    Deny: RoleConditions
    def __init__(self, Options: _Optional[_Union[RoleOptions, _Mapping]] = ..., Allow: _Optional[_Union[RoleConditions, _Mapping]] = ..., Deny: _Optional[_Union[RoleConditions, _Mapping]] = ...) -> None: ...

class RoleOptions(_message.Message):
    __slots__ = ("MaxSessionTTL", "RequestAccess", "RequestPrompt")
    MAXSESSIONTTL_FIELD_NUMBER: _ClassVar[int]
    REQUESTACCESS_FIELD_NUMBER: _ClassVar[int]
    REQUESTPROMPT_FIELD_NUMBER: _ClassVar[int]
    MaxSessionTTL: int
    RequestAccess: str
    RequestPrompt: str
    def __init__(self, MaxSessionTTL: _Optional[int] = ..., RequestAccess: _Optional[str] = ..., RequestPrompt: _Optional[str] = ...) -> None: ...

class RoleConditions(_message.Message):
    __slots__ = ("Logins", "Rules", "Request", "Impersonate", "ReviewRequests")
    LOGINS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    IMPERSONATE_FIELD_NUMBER: _ClassVar[int]
    REVIEWREQUESTS_FIELD_NUMBER: _ClassVar[int]
    Logins: _containers.RepeatedScalarFieldContainer[str]
    Rules: _containers.RepeatedCompositeFieldContainer[Rule]
    Request: AccessRequestConditions
    Impersonate: ImpersonateConditions
    ReviewRequests: AccessReviewConditions
    def __init__(self, Logins: _Optional[_Iterable[str]] = ..., Rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ..., Request: _Optional[_Union[AccessRequestConditions, _Mapping]] = ..., Impersonate: _Optional[_Union[ImpersonateConditions, _Mapping]] = ..., ReviewRequests: _Optional[_Union[AccessReviewConditions, _Mapping]] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("Resources", "Verbs", "Where", "Actions")
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    VERBS_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    Resources: _containers.RepeatedScalarFieldContainer[str]
    Verbs: _containers.RepeatedScalarFieldContainer[str]
    Where: str
    Actions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, Resources: _Optional[_Iterable[str]] = ..., Verbs: _Optional[_Iterable[str]] = ..., Where: _Optional[str] = ..., Actions: _Optional[_Iterable[str]] = ...) -> None: ...

class ImpersonateConditions(_message.Message):
    __slots__ = ("Users", "Roles", "Where")
    USERS_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    Users: _containers.RepeatedScalarFieldContainer[str]
    Roles: _containers.RepeatedScalarFieldContainer[str]
    Where: str
    def __init__(self, Users: _Optional[_Iterable[str]] = ..., Roles: _Optional[_Iterable[str]] = ..., Where: _Optional[str] = ...) -> None: ...

class AccessRequestConditions(_message.Message):
    __slots__ = ("Roles", "ClaimsToRoles", "Annotations", "Thresholds", "SuggestedReviewers", "SearchAsRoles", "MaxDuration", "Reason")
    ROLES_FIELD_NUMBER: _ClassVar[int]
    CLAIMSTOROLES_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    SUGGESTEDREVIEWERS_FIELD_NUMBER: _ClassVar[int]
    SEARCHASROLES_FIELD_NUMBER: _ClassVar[int]
    MAXDURATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    Roles: _containers.RepeatedScalarFieldContainer[str]
    ClaimsToRoles: _containers.RepeatedCompositeFieldContainer[ClaimMapping]
    Annotations: _wrappers_pb2.LabelValues
    Thresholds: _containers.RepeatedCompositeFieldContainer[AccessReviewThreshold]
    SuggestedReviewers: _containers.RepeatedScalarFieldContainer[str]
    SearchAsRoles: _containers.RepeatedScalarFieldContainer[str]
    MaxDuration: int
    Reason: AccessRequestConditionsReason
    def __init__(self, Roles: _Optional[_Iterable[str]] = ..., ClaimsToRoles: _Optional[_Iterable[_Union[ClaimMapping, _Mapping]]] = ..., Annotations: _Optional[_Union[_wrappers_pb2.LabelValues, _Mapping]] = ..., Thresholds: _Optional[_Iterable[_Union[AccessReviewThreshold, _Mapping]]] = ..., SuggestedReviewers: _Optional[_Iterable[str]] = ..., SearchAsRoles: _Optional[_Iterable[str]] = ..., MaxDuration: _Optional[int] = ..., Reason: _Optional[_Union[AccessRequestConditionsReason, _Mapping]] = ...) -> None: ...

class AccessRequestConditionsReason(_message.Message):
    __slots__ = ("Mode",)
    MODE_FIELD_NUMBER: _ClassVar[int]
    Mode: str
    def __init__(self, Mode: _Optional[str] = ...) -> None: ...

class ClaimMapping(_message.Message):
    __slots__ = ("Claim", "Value", "Roles")
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    Claim: str
    Value: str
    Roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, Claim: _Optional[str] = ..., Value: _Optional[str] = ..., Roles: _Optional[_Iterable[str]] = ...) -> None: ...

class AccessReviewConditions(_message.Message):
    __slots__ = ("Roles", "ClaimsToRoles", "Where", "PreviewAsRoles", "SubmitForUsers")
    ROLES_FIELD_NUMBER: _ClassVar[int]
    CLAIMSTOROLES_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    PREVIEWASROLES_FIELD_NUMBER: _ClassVar[int]
    SUBMITFORUSERS_FIELD_NUMBER: _ClassVar[int]
    Roles: _containers.RepeatedScalarFieldContainer[str]
    ClaimsToRoles: _containers.RepeatedCompositeFieldContainer[ClaimMapping]
    Where: str
    PreviewAsRoles: _containers.RepeatedScalarFieldContainer[str]
    SubmitForUsers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, Roles: _Optional[_Iterable[str]] = ..., ClaimsToRoles: _Optional[_Iterable[_Union[ClaimMapping, _Mapping]]] = ..., Where: _Optional[str] = ..., PreviewAsRoles: _Optional[_Iterable[str]] = ..., SubmitForUsers: _Optional[_Iterable[str]] = ...) -> None: ...

class UserFilter(_message.Message):
    __slots__ = ("SearchKeywords",)
    SEARCHKEYWORDS_FIELD_NUMBER: _ClassVar[int]
    SearchKeywords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, SearchKeywords: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchKind(_message.Message):
    __slots__ = ("Kind", "LoadSecrets", "Name", "Filter", "SubKind", "Version")
    class FilterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    LOADSECRETS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SUBKIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    Kind: str
    LoadSecrets: bool
    Name: str
    Filter: _containers.ScalarMap[str, str]
    SubKind: str
    Version: str
    def __init__(self, Kind: _Optional[str] = ..., LoadSecrets: _Optional[bool] = ..., Name: _Optional[str] = ..., Filter: _Optional[_Mapping[str, str]] = ..., SubKind: _Optional[str] = ..., Version: _Optional[str] = ...) -> None: ...

class WatchStatusV1(_message.Message):
    __slots__ = ("Kind", "SubKind", "Version", "Metadata", "Spec")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBKIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    Kind: str
    SubKind: str
    Version: str
    Metadata: Metadata
    Spec: WatchStatusSpecV1
    def __init__(self, Kind: _Optional[str] = ..., SubKind: _Optional[str] = ..., Version: _Optional[str] = ..., Metadata: _Optional[_Union[Metadata, _Mapping]] = ..., Spec: _Optional[_Union[WatchStatusSpecV1, _Mapping]] = ...) -> None: ...

class WatchStatusSpecV1(_message.Message):
    __slots__ = ("Kinds",)
    KINDS_FIELD_NUMBER: _ClassVar[int]
    Kinds: _containers.RepeatedCompositeFieldContainer[WatchKind]
    def __init__(self, Kinds: _Optional[_Iterable[_Union[WatchKind, _Mapping]]] = ...) -> None: ...
