"""Reads config.yaml once into typed, frozen settings; each problem names its key path, never a secret."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from commands.durations import format_duration, parse_duration
from commands.errors import UsageError
from commands.matchers import PolicyError, compile_matcher
from commands.rules import ReviewRule

__all__ = ["ConfigError", "Settings", "load_config", "parse_duration"]


REGISTERING = "registering"


class ConfigError(Exception):
    """The config cannot be used; `problems` holds one `key.path: problem` line per problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems




def _problem(message: str, **context: Any) -> PydanticCustomError:
    # Values travel as context, not in the template, so braces in user input cannot break formatting.
    return PydanticCustomError("config", message, context or None)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta) and value > timedelta(0):
        return value
    try:
        return parse_duration(value.strip() if isinstance(value, str) else f"{value}", maximum=None)
    except UsageError as exc:
        raise _problem("{reason}", reason=exc.message) from None


_Checked = TypeVar("_Checked", str, SecretStr)


def _check(test: Callable[[str], object], message: str) -> AfterValidator:
    """A validator refusing strings or secrets that fail `test`; the message never quotes the value."""

    def check(value: _Checked) -> _Checked:
        if not test(value.get_secret_value() if isinstance(value, SecretStr) else value):
            raise _problem(message)
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
        raise _problem("{reason}", reason=str(exc)) from None
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
HostPort = Annotated[str, _check(_is_host_port, "must be host:port, e.g. teleport.example.com:443")]
WebUrl = Annotated[str, _check(_is_web_url, "must be an http(s) URL")]
Text = Annotated[str, StringConstraints(min_length=1)]
UserMapKey = Annotated[
    str,
    _check(
        _matches(r"(slack|mattermost|console):.+"),
        'must be "<platform>:<chat user id>" with platform slack, mattermost or console',
    ),
]
MattermostRecipient = Annotated[
    str,
    _check(
        _matches(r"[^/\s]+/[^/\s]+|[^@\s]+@[^@\s]+|[a-z0-9]{26}"),
        'must be "team/channel", a channel ID or an e-mail address',
    ),
]
Secret = Annotated[SecretStr, _check(bool, "must not be empty")]
BotToken = Annotated[Secret, _check(lambda s: s.startswith("xoxb-"), "must start with xoxb-")]
AppToken = Annotated[Secret, _check(lambda s: s.startswith("xapp-"), "must start with xapp-")]
LongSecret = Annotated[Secret, _check(lambda s: len(s) >= 32, "must be at least 32 characters")]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
ReviewMode = Literal["on_behalf", "as_bot", "resolve"]


class _Section(BaseModel):
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
        for key, problem in broken:
            errors.append({"type": _problem(problem), "loc": (key,) if key else (), "input": data})
        raise ValidationError.from_exception_data(cls.__name__, errors)


_TLS_FILES = ("client_key_file", "client_cert_file", "root_cas_file")


class TeleportSettings(_Section):
    addr: HostPort
    identity_file: Path | None = None
    client_key_file: Path | None = None
    client_cert_file: Path | None = None
    root_cas_file: Path | None = None
    web_proxy_addr: HostPort | None = None
    timeout: Duration = timedelta(seconds=10)
    plugin_name: Text = "chatops-bot"

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        tls = [key for key in _TLS_FILES if key in data]
        if "identity_file" in data and tls:
            return [("", "set identity_file or client_key_file/client_cert_file/root_cas_file, not both")]
        if "identity_file" not in data and not tls:
            return [("", "set identity_file, or client_key_file, client_cert_file and root_cas_file")]
        return [(key, f"required with {' and '.join(tls)}") for key in _TLS_FILES if tls and key not in tls]


class ServerSettings(_Section):
    listen: HostPort = "127.0.0.1:8080"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class SlackSettings(_Section):
    bot_token: BotToken
    signing_secret: Secret | None = None
    app_token: AppToken | None = None
    api_url: WebUrl = "https://slack.com/api/"

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if "signing_secret" in data or "app_token" in data:
            return []
        return [("signing_secret", "required unless app_token is set")]

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None


class MattermostSettings(_Section):
    url: WebUrl
    bot_token: Secret
    command_tokens: tuple[Secret, ...] = Field(default=(), validate_default=True)
    action_secret: LongSecret
    public_url: WebUrl

    @field_validator("command_tokens")
    @classmethod
    def _some_token(cls, tokens: tuple[SecretStr, ...], info: ValidationInfo) -> tuple[SecretStr, ...]:
        # Empty only for `mattermost-register`, which prints the first token.
        if not tokens and not (info.context or {}).get(REGISTERING):
            raise _problem("must not be empty (`chatops-bot mattermost-register` prints the token)")
        return tokens


class UsersSettings(_Section):
    slack_user_id_trait: Text = "slack_user_id"
    mattermost_user_id_trait: Text = "mattermost_user_id"
    match_email: bool = False
    map: dict[UserMapKey, Text] = {}


RoleMatcher = Annotated[str, StringConstraints(min_length=1), AfterValidator(_role_matcher)]


class ReviewersSettings(_Section):
    """Who a review rule is about: Teleport roles of the reviewer and/or Teleport user names (matchers)."""

    roles: tuple[RoleMatcher, ...] = ()
    users: tuple[RoleMatcher, ...] = ()

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if data.get("roles") or data.get("users"):
            return []
        return [("", "name reviewer roles or users (or both)")]


class ReviewRuleSettings(_Section):
    roles: tuple[RoleMatcher, ...]
    reviewers: ReviewersSettings
    approvals: int = Field(default=1, ge=1)
    deny: bool = False

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if data.get("roles") == []:
            return [("roles", "must not be empty")]
        if data.get("deny") is True and "approvals" in data:
            return [("approvals", "only allow rules count approvals; a deny rule refuses its reviewers")]
        return []

    def rule(self) -> ReviewRule:
        return ReviewRule(roles=self.roles, reviewer_roles=self.reviewers.roles,
                          reviewer_users=self.reviewers.users, approvals=self.approvals, deny=self.deny)


class ReviewSettings(_Section):
    mode: ReviewMode = "on_behalf"
    web_only_roles: tuple[Text, ...] = ()
    deny_reason_required: bool = False
    rules: tuple[ReviewRuleSettings, ...] | None = None

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if "rules" in data and data.get("mode") != "resolve":
            return [("rules", "used only with mode: resolve (the bot then decides by these rules)")]
        rules = data.get("rules")
        if rules == []:
            return [("rules", "must not be empty (leave it out to let reviewers' Teleport roles decide)")]
        if isinstance(rules, list) and rules and all(isinstance(r, Mapping) and r.get("deny") is True
                                                     for r in rules):
            return [("rules", "needs at least one allow rule (without deny: true), or nobody may review")]
        return []

    def review_rules(self) -> tuple[ReviewRule, ...]:
        return tuple(rule.rule() for rule in self.rules or ())


class RoleToRecipients(_Section):
    slack: dict[str, tuple[Text, ...]] = {}
    mattermost: dict[str, tuple[MattermostRecipient, ...]] = {}


class RoutingSettings(_Section):
    role_to_recipients: RoleToRecipients = RoleToRecipients()


class RemindersSettings(_Section):
    before_expiry: tuple[Duration, ...] = (timedelta(minutes=15), timedelta(minutes=5))
    on_expiry: bool = True
    nudge_pending_after: Duration = timedelta(minutes=30)
    max_nudges: int = Field(default=2, ge=0)


class LoggingSettings(_Section):
    level: Annotated[LogLevel, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = "INFO"
    format: Literal["plain", "json"] = "plain"


class Settings(_Section):
    teleport: TeleportSettings
    server: ServerSettings = ServerSettings()
    slack: SlackSettings | None = None
    mattermost: MattermostSettings | None = None
    users: UsersSettings = UsersSettings()
    review: ReviewSettings = ReviewSettings()
    routing: RoutingSettings = RoutingSettings()
    reminders: RemindersSettings = RemindersSettings()
    logging: LoggingSettings = LoggingSettings()

    def summary(self) -> str:
        """The effective config for `chatops-bot check-config`; secrets appear only as (set) / (not set)."""
        return "\n".join(_summary_lines(self, ""))


def _summary_lines(model: BaseModel, pad: str) -> Iterator[str]:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield f"{pad}{name}:"
            yield from _summary_lines(value, pad + "  ")
        elif value is None and _model_in(field.annotation):
            yield f"{pad}{name}: disabled"
        elif isinstance(value, Mapping):
            yield f"{pad}{name}:" + ("" if value else " (none)")
            yield from (f"{pad}  {key}: {_shown(item)}" for key, item in value.items())
        else:
            yield f"{pad}{name}: {_shown(value)}"


def _shown(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "(set)"
    if isinstance(value, BaseModel):
        return "{" + ", ".join(f"{name}: {_shown(getattr(value, name))}" for name in type(value).model_fields) + "}"
    if value is None:
        return "(not set)"
    if isinstance(value, tuple):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None, registering: bool = False) -> Settings:
    """Read, resolve (`${ENV}`, `*_file`) and validate a config file; ConfigError lists every problem.
    `registering`: for `mattermost-register`, which may run before there is a command token."""
    found: list[tuple[str, str]] = []
    raw = _anchor_paths(_read_yaml(path), Path(path).resolve().parent)
    data = _resolve(raw, Settings, "", os.environ if env is None else env, found)
    try:
        settings = Settings.model_validate(data, context={REGISTERING: registering})
    except ValidationError as exc:
        settings = None
        # A key whose ${ENV} or *_file could not be resolved was reported with its cause: say nothing more.
        reported = {key for where, _ in found for key in (where, where.removesuffix("_file"))}
        for error in exc.errors():
            where = _key_path(error["loc"])
            if not any(where == key or where.startswith((key + ".", key + "[")) for key in reported):
                found.append((where, _message(error)))
    if found or settings is None:
        # One line each, whatever a quoted value held.
        raise ConfigError([" ".join(f"{where}: {problem}".split()) for where, problem in found])
    return settings


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice: the second `review:` block would silently replace the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _anchor_paths(value: Any, base: Path) -> Any:
    """Relative `*_file` paths are relative to the config file, not to wherever the bot was started."""
    if isinstance(value, list):
        return [_anchor_paths(item, base) for item in value]
    if not isinstance(value, dict):
        return value
    anchored = {}
    for key, item in value.items():
        if isinstance(key, str) and key.endswith("_file") and isinstance(item, str) and item:
            if not item.startswith(("/", "~", "${")):
                item = str(base / item)
        anchored[key] = _anchor_paths(item, base)
    return anchored


def _read_yaml(path: str | Path) -> dict[str, Any]:
    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (safe)
    except OSError as exc:
        raise ConfigError([f"(file): cannot read {path}: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"(file): cannot read {path}: not UTF-8 text"]) from None
    except yaml.MarkedYAMLError as exc:
        # The parser's own words only: str(exc) quotes the offending line, which may hold a secret.
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError([f"(file): not valid YAML{line}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"(file): not valid YAML: {' '.join(str(exc).split())}"]) from None
    if not isinstance(raw, dict | None):
        raise ConfigError(["(file): must be a mapping of sections (teleport:, slack:, ...)"])
    return raw or {}


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Found = list[tuple[str, str]]
Env = Mapping[str, str]


def _resolve(value: Any, model: type[BaseModel] | None, where: str, env: Env, found: Found) -> Any:
    """Expand `${ENV}` in strings, drop empty keys (they take their defaults), read secrets' `*_file` keys."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) in env:
                return env[match.group(1)]
            found.append((where, f"environment variable {match.group(1)} is not set"))
            return match.group(0)

        return _ENV_REF.sub(substitute, value)
    if isinstance(value, list):
        return [_resolve(item, None, f"{where}[{i}]", env, found) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    fields = model.model_fields if model else {}
    resolved = {}
    for key, item in value.items():
        if item is not None:
            section = _model_in(fields[key].annotation) if key in fields else None
            resolved[key] = _resolve(item, section, _join(where, key), env, found)
    for name, field in fields.items():
        if f"{name}_file" in resolved and _is_secret(field.annotation):
            _read_secret_file(resolved, name, get_origin(field.annotation) is tuple, where, found)
    return resolved


def _read_secret_file(data: dict[str, Any], name: str, many: bool, where: str, found: Found) -> None:
    file_key = _join(where, f"{name}_file")
    file_path = data.pop(f"{name}_file")
    if name in data:
        found.append((file_key, f"set {name} or {name}_file, not both"))
        return
    try:
        text = Path(str(file_path)).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        found.append((file_key, f"cannot read {file_path}: {reason}"))
        return
    data[name] = [line.strip() for line in text.splitlines() if line.strip()] if many else text


def _join(where: str, key: Any) -> str:
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)


def _key_path(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        where = where if part == "[key]" else _join(where, part)
    return where or "(file)"


_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown key",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "greater_than_equal": "must be at least {ge}",
}


def _message(error: Any) -> str:
    """Pydantic's error in our words; pydantic's messages never quote the input, so no secret shows."""
    ctx = error.get("ctx") or {}
    if error["type"] == "literal_error":
        return "must be one of " + str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
    template = _MESSAGES.get(error["type"])
    return template.format(**ctx) if template else str(error["msg"])


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is None and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((model for arg in get_args(annotation) if (model := _model_in(arg))), None)


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(arg) for arg in get_args(annotation))
