"""The errors of chatops-bot. Every `CommandError` carries a message written for the person in chat.

    CommandError                 safe to show the user as it is
    ├── UsageError               the command text could not be parsed (wrong grammar, bad duration)
    │   └── NoSuchRequest        no request with that ID that this person may see
    ├── UnknownUserError         the chat user maps to no Teleport user
    ├── PermissionRefused        our own reviewer check refused (fail closed)
    └── BackendError             Teleport answered with an error or could not be reached
        ├── NotFound             NOT_FOUND
        ├── AccessDenied         PERMISSION_DENIED / UNAUTHENTICATED
        ├── BadParameter         INVALID_ARGUMENT / OUT_OF_RANGE
        ├── AlreadyExists        ALREADY_EXISTS
        ├── CompareFailed        FAILED_PRECONDITION: a compare-and-swap lost the race
        ├── LimitExceeded        RESOURCE_EXHAUSTED
        ├── NotImplementedByServer  UNIMPLEMENTED (an older Teleport)
        └── Unavailable          UNAVAILABLE / DEADLINE_EXCEEDED: Teleport is unreachable

Anything that is not a `CommandError` is a bug: it is logged with its traceback and the user sees a
short apology with a correlation id, never the exception text.
"""

from __future__ import annotations


class CommandError(Exception):
    """An error whose message is written for the user and safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CommandError):
    pass


class NoSuchRequest(UsageError):
    pass


class UnknownUserError(CommandError):
    pass


class PermissionRefused(CommandError):
    pass


class BackendError(CommandError):
    """Teleport refused or failed. `detail` keeps Teleport's own message."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class NotFound(BackendError):
    pass


class AccessDenied(BackendError):
    pass


class BadParameter(BackendError):
    pass


class AlreadyExists(BackendError):
    pass


class CompareFailed(BackendError):
    pass


class LimitExceeded(BackendError):
    pass


class NotImplementedByServer(BackendError):
    pass


class Unavailable(BackendError):
    pass
