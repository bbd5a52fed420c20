"""The building blocks of the config's typed sections: `Section`, the value types every section uses
(durations, addresses, URLs, secrets, strict flags) and `ConfigError`. An integration's own section
(`chatops_bot/integrations/<system>/settings.py`) is made of these too."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    SecretStr,
    Strict,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from commands.durations import parse_duration
from commands.errors import UsageError
from commands.matchers import PolicyError, compile_matcher

REGISTERING = "registering"


class ConfigError(Exception):
    """The config cannot be used; `problems` holds one `key.path: problem` line per problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems




def problem(message: str, **context: Any) -> PydanticCustomError:
    # Values travel as context, not in the template, so braces in user input cannot break formatting.
    return PydanticCustomError("config", message, context or None)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta) and value > timedelta(0):
        return value
    try:
        return parse_duration(value.strip() if isinstance(value, str) else f"{value}", maximum=None)
    except UsageError as exc:
        raise problem("{reason}", reason=exc.message) from None


class PendingSecret(SecretStr):
    """A secret a read-only command leaves unresolved (its ${ENV} is not set yet, or it lives in a file):
    it passes validation as it is, and the summary says where it will come from."""

    def __init__(self, source: str) -> None:
        super().__init__("")
        self.source = source


_Checked = TypeVar("_Checked", str, SecretStr)


def check(test: Callable[[str], object], message: str) -> AfterValidator:
    """A validator refusing strings or secrets that fail `test`; the message never quotes the value."""

    def check(value: _Checked) -> _Checked:
        if isinstance(value, PendingSecret):
            return value
        if not test(value.get_secret_value() if isinstance(value, SecretStr) else value):
            raise problem(message)
        return value

    return AfterValidator(check)


def _is_host_port(text: str) -> bool:
    host, _, port = text.rpartition(":")
    valid_host = re.fullmatch(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+", host)
    return bool(valid_host) and port.isdigit() and 0 < int(port) < 65536


def _is_web_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _matches(pattern: str) -> Callable[[str], object]:
    return lambda text: re.fullmatch(pattern, text)


def _role_matcher(value: str) -> str:
    """A Teleport matcher (literal, glob, `^regex$`) the bot can evaluate exactly as Teleport would."""
    try:
        compile_matcher(value)
    except PolicyError as exc:
        raise problem("{reason}", reason=str(exc)) from None
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
# Each address's message shows an example of its own kind, so it names the right port too.
AuthAddr = Annotated[
    str, check(_is_host_port, "must be host:port, e.g. auth.example.com:3025 or teleport.example.com:443")
]
WebAddr = Annotated[str, check(_is_host_port, "must be host:port, e.g. teleport.example.com:443")]
ListenAddr = Annotated[
    str, check(_is_host_port, "must be host:port, e.g. 127.0.0.1:8080 (0.0.0.0:8080 in a container)")
]
# YAML reads `yes`, `1` or "true" happily; a setting that is not exactly true or false is a mistake.
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict()]
WebUrl = Annotated[str, check(_is_web_url, "must be an http(s) URL")]
Text = Annotated[str, StringConstraints(min_length=1)]
UserMapKey = Annotated[
    str,
    check(
        _matches(r"(slack|mattermost|console):.+"),
        'must be "<platform>:<chat user id>" with platform slack, mattermost or console',
    ),
]
MattermostRecipient = Annotated[
    str,
    check(
        _matches(r"[^/\s]+/[^/\s]+|[^@\s]+@[^@\s]+|[a-z0-9]{26}"),
        'must be "team/channel", a channel ID or an e-mail address',
    ),
]
# Channel IDs (public C…, private G…), member IDs (U…, W…: a DM), or a channel by name (#name).
SLACK_CHANNEL_NAME = re.compile(r"#[a-z0-9][a-z0-9._-]{0,79}")
_SLACK_RECIPIENT = re.compile(rf"[CG][A-Z0-9]{{6,}}|[UW][A-Z0-9]{{6,}}|{SLACK_CHANNEL_NAME.pattern}")


def _slack_recipient(value: str) -> str:
    if _SLACK_RECIPIENT.fullmatch(value):
        return value
    hint = ""
    if SLACK_CHANNEL_NAME.fullmatch("#" + value):  # a channel's name without its `#` (not a secret: quoted)
        hint = f'; did you mean "#{value}"?'
    raise problem('must be a channel ID (C…, G…), a member ID (U…, W…) for a DM, or "#channel-name"{hint}',
                  hint=hint)


SlackRecipient = Annotated[str, AfterValidator(_slack_recipient)]
Secret = Annotated[SecretStr, check(bool, "must not be empty")]
BotToken = Annotated[Secret, check(lambda s: s.startswith("xoxb-"), "must start with xoxb-")]
AppToken = Annotated[Secret, check(lambda s: s.startswith("xapp-"), "must start with xapp-")]
LongSecret = Annotated[Secret, check(lambda s: len(s) >= 32, "must be at least 32 characters")]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
ReviewMode = Literal["on_behalf", "as_bot", "resolve"]

RoleMatcher = Annotated[str, StringConstraints(min_length=1), AfterValidator(_role_matcher)]


class Section(BaseModel):
    """Frozen, unknown keys refused; `_rules` checks across keys without hiding the per-key errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(key, or "" for the whole section, problem) for each rule the section as written breaks."""
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _apply_rules(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        written = {k: v for k, v in data.items() if v is not None} if isinstance(data, Mapping) else None
        broken = cls._rules(written) if written is not None else []
        if not broken:
            return handler(data)
        errors: list[InitErrorDetails] = []
        try:
            handler(data)
        except ValidationError as exc:
            for e in exc.errors():
                error = PydanticCustomError(e["type"], e["msg"], e.get("ctx"))
                errors.append({"type": error, "loc": e["loc"], "input": e["input"]})
        for key, text in broken:
            errors.append({"type": problem(text), "loc": (key,) if key else (), "input": data})
        raise ValidationError.from_exception_data(cls.__name__, errors)
