import datetime

from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import types_pb2 as _types_pb2
from . import wrappers_pb2 as _wrappers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccessRequestSort(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEFAULT: _ClassVar[AccessRequestSort]
    CREATED: _ClassVar[AccessRequestSort]
    STATE: _ClassVar[AccessRequestSort]
    USER: _ClassVar[AccessRequestSort]

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INIT: _ClassVar[Operation]
    PUT: _ClassVar[Operation]
    DELETE: _ClassVar[Operation]
DEFAULT: AccessRequestSort
CREATED: AccessRequestSort
STATE: AccessRequestSort
USER: AccessRequestSort
INIT: Operation
PUT: Operation
DELETE: Operation

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingResponse(_message.Message):
    __slots__ = ("ClusterName", "ServerVersion", "ServerFeatures", "ProxyPublicAddr", "IsBoring", "RemoteAddr", "LoadAllCAs", "LicenseExpiry")
    CLUSTERNAME_FIELD_NUMBER: _ClassVar[int]
    SERVERVERSION_FIELD_NUMBER: _ClassVar[int]
    SERVERFEATURES_FIELD_NUMBER: _ClassVar[int]
    PROXYPUBLICADDR_FIELD_NUMBER: _ClassVar[int]
    ISBORING_FIELD_NUMBER: _ClassVar[int]
    REMOTEADDR_FIELD_NUMBER: _ClassVar[int]
    LOADALLCAS_FIELD_NUMBER: _ClassVar[int]
    LICENSEEXPIRY_FIELD_NUMBER: _ClassVar[int]
    ClusterName: str
    ServerVersion: str
    ServerFeatures: Features
    ProxyPublicAddr: str
    IsBoring: bool
    RemoteAddr: str
    LoadAllCAs: bool
    LicenseExpiry: _timestamp_pb2.Timestamp
    def __init__(self, ClusterName: _Optional[str] = ..., ServerVersion: _Optional[str] = ..., ServerFeatures: _Optional[_Union[Features, _Mapping]] = ..., ProxyPublicAddr: _Optional[str] = ..., IsBoring: _Optional[bool] = ..., RemoteAddr: _Optional[str] = ..., LoadAllCAs: _Optional[bool] = ..., LicenseExpiry: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Features(_message.Message):
    __slots__ = ("AdvancedAccessWorkflows",)
    ADVANCEDACCESSWORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    AdvancedAccessWorkflows: bool
    def __init__(self, AdvancedAccessWorkflows: _Optional[bool] = ...) -> None: ...

class RequestStateSetter(_message.Message):
    __slots__ = ("ID", "State", "Delegator", "Reason", "Annotations", "Roles", "AssumeStartTime")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DELEGATOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    ASSUMESTARTTIME_FIELD_NUMBER: _ClassVar[int]
    ID: str
    State: _types_pb2.RequestState
    Delegator: str
    Reason: str
    Annotations: _wrappers_pb2.LabelValues
    Roles: _containers.RepeatedScalarFieldContainer[str]
    AssumeStartTime: _timestamp_pb2.Timestamp
    def __init__(self, ID: _Optional[str] = ..., State: _Optional[_Union[_types_pb2.RequestState, str]] = ..., Delegator: _Optional[str] = ..., Reason: _Optional[str] = ..., Annotations: _Optional[_Union[_wrappers_pb2.LabelValues, _Mapping]] = ..., Roles: _Optional[_Iterable[str]] = ..., AssumeStartTime: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RequestID(_message.Message):
    __slots__ = ("ID",)
    ID_FIELD_NUMBER: _ClassVar[int]
    ID: str
    def __init__(self, ID: _Optional[str] = ...) -> None: ...

class ListAccessRequestsRequest(_message.Message):
    __slots__ = ("Filter", "Sort", "Descending", "Limit", "StartKey")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STARTKEY_FIELD_NUMBER: _ClassVar[int]
    Filter: _types_pb2.AccessRequestFilter
    Sort: AccessRequestSort
    Descending: bool
    Limit: int
    StartKey: str
    def __init__(self, Filter: _Optional[_Union[_types_pb2.AccessRequestFilter, _Mapping]] = ..., Sort: _Optional[_Union[AccessRequestSort, str]] = ..., Descending: _Optional[bool] = ..., Limit: _Optional[int] = ..., StartKey: _Optional[str] = ...) -> None: ...

class ListAccessRequestsResponse(_message.Message):
    __slots__ = ("AccessRequests", "NextKey")
    ACCESSREQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXTKEY_FIELD_NUMBER: _ClassVar[int]
    AccessRequests: _containers.RepeatedCompositeFieldContainer[_types_pb2.AccessRequestV3]
    NextKey: str
    def __init__(self, AccessRequests: _Optional[_Iterable[_Union[_types_pb2.AccessRequestV3, _Mapping]]] = ..., NextKey: _Optional[str] = ...) -> None: ...

class GetRoleRequest(_message.Message):
    __slots__ = ("Name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    Name: str
    def __init__(self, Name: _Optional[str] = ...) -> None: ...

class PluginDataSeq(_message.Message):
    __slots__ = ("PluginData",)
    PLUGINDATA_FIELD_NUMBER: _ClassVar[int]
    PluginData: _containers.RepeatedCompositeFieldContainer[_types_pb2.PluginDataV3]
    def __init__(self, PluginData: _Optional[_Iterable[_Union[_types_pb2.PluginDataV3, _Mapping]]] = ...) -> None: ...

class Watch(_message.Message):
    __slots__ = ("Kinds", "AllowPartialSuccess")
    KINDS_FIELD_NUMBER: _ClassVar[int]
    ALLOWPARTIALSUCCESS_FIELD_NUMBER: _ClassVar[int]
    Kinds: _containers.RepeatedCompositeFieldContainer[_types_pb2.WatchKind]
    AllowPartialSuccess: bool
    def __init__(self, Kinds: _Optional[_Iterable[_Union[_types_pb2.WatchKind, _Mapping]]] = ..., AllowPartialSuccess: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("Type", "ResourceHeader", "User", "Role", "AccessRequest", "WatchStatus")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCEHEADER_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ACCESSREQUEST_FIELD_NUMBER: _ClassVar[int]
    WATCHSTATUS_FIELD_NUMBER: _ClassVar[int]
    Type: Operation
    ResourceHeader: _types_pb2.ResourceHeader
    User: _types_pb2.UserV2
    Role: _types_pb2.RoleV6
    AccessRequest: _types_pb2.AccessRequestV3
    WatchStatus: _types_pb2.WatchStatusV1
    def __init__(self, Type: _Optional[_Union[Operation, str]] = ..., ResourceHeader: _Optional[_Union[_types_pb2.ResourceHeader, _Mapping]] = ..., User: _Optional[_Union[_types_pb2.UserV2, _Mapping]] = ..., Role: _Optional[_Union[_types_pb2.RoleV6, _Mapping]] = ..., AccessRequest: _Optional[_Union[_types_pb2.AccessRequestV3, _Mapping]] = ..., WatchStatus: _Optional[_Union[_types_pb2.WatchStatusV1, _Mapping]] = ...) -> None: ...
