"""gRPC status -> the `commands.errors` tree, keeping Teleport's own message as the detail.

Teleport converts its Go errors (gravitational/trace) to gRPC codes: AccessDenied -> PERMISSION_DENIED,
NotFound -> NOT_FOUND, BadParameter -> INVALID_ARGUMENT, CompareFailed -> FAILED_PRECONDITION,
AlreadyExists -> ALREADY_EXISTS, LimitExceeded -> RESOURCE_EXHAUSTED, NotImplemented -> UNIMPLEMENTED,
ConnectionProblem -> UNAVAILABLE. We match on the code and keep the text.
"""

from __future__ import annotations

import grpc

from commands import errors

UNREACHABLE = "Teleport is unreachable right now; nothing was changed. Try again in a minute."
# A write that timed out or was cancelled may still have been applied: never claim it was not.
NO_ANSWER = (
    "Teleport did not answer in time; the change may or may not have been made. Check before trying again."
)
_WRITES = frozenset(
    {
        "CreateAccessRequestV2",
        "SubmitAccessReview",
        "SetAccessRequestState",
        "DeleteAccessRequest",
        "UpdatePluginData",
    }
)
_IN_FLIGHT = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)

_BY_CODE: dict[grpc.StatusCode, type[errors.BackendError]] = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.PERMISSION_DENIED: errors.AccessDenied,
    grpc.StatusCode.UNAUTHENTICATED: errors.AccessDenied,
    grpc.StatusCode.INVALID_ARGUMENT: errors.BadParameter,
    grpc.StatusCode.OUT_OF_RANGE: errors.BadParameter,
    grpc.StatusCode.FAILED_PRECONDITION: errors.CompareFailed,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.LimitExceeded,
    grpc.StatusCode.UNIMPLEMENTED: errors.NotImplementedByServer,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.Unavailable,
    grpc.StatusCode.CANCELLED: errors.Unavailable,
}


def from_rpc_error(err: grpc.aio.AioRpcError, method: str) -> errors.BackendError:
    """The domain error for a failed call to `method`."""
    code = err.code()
    detail = err.details() or code.name
    kind = _BY_CODE.get(code, errors.BackendError)
    if kind is errors.Unavailable:
        message = NO_ANSWER if code in _IN_FLIGHT and method in _WRITES else UNREACHABLE
    elif kind is errors.NotImplementedByServer:
        message = f"This Teleport cluster does not support {method}; it may be too old for this bot."
    else:
        message = f"Teleport refused: {detail}"
    return kind(message, detail=f"{method}: {code.name}: {detail}")
