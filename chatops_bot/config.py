"""Reads config.yaml once into typed, frozen settings; each problem names its key path, never a secret."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from difflib import get_close_matches
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
    Strict,
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


class PendingSecret(SecretStr):
    """A secret a read-only command leaves unresolved (its ${ENV} is not set yet, or it lives in a file):
    it passes validation as it is, and the summary says where it will come from."""

    def __init__(self, source: str) -> None:
        super().__init__("")
        self.source = source


_Checked = TypeVar("_Checked", str, SecretStr)


def _check(test: Callable[[str], object], message: str) -> AfterValidator:
    """A validator refusing strings or secrets that fail `test`; the message never quotes the value."""

    def check(value: _Checked) -> _Checked:
        if isinstance(value, PendingSecret):
            return value
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
# Each address's message shows an example of its own kind, so it names the right port too.
AuthAddr = Annotated[
    str, _check(_is_host_port, "must be host:port, e.g. auth.example.com:3025 or teleport.example.com:443")
]
WebAddr = Annotated[str, _check(_is_host_port, "must be host:port, e.g. teleport.example.com:443")]
ListenAddr = Annotated[
    str, _check(_is_host_port, "must be host:port, e.g. 127.0.0.1:8080 (0.0.0.0:8080 in a container)")
]
# YAML reads `yes`, `1` or "true" happily; a setting that is not exactly true or false is a mistake.
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict()]
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
# Channel IDs (public C…, private G…), member IDs (U…, W…: a DM), or a channel by name (#name).
SLACK_CHANNEL_NAME = re.compile(r"#[a-z0-9][a-z0-9._-]{0,79}")
SlackRecipient = Annotated[
    str,
    _check(
        _matches(rf"[CG][A-Z0-9]{{6,}}|[UW][A-Z0-9]{{6,}}|{SLACK_CHANNEL_NAME.pattern}"),
        'must be a channel ID (C…, G…), a member ID (U…, W…) for a DM, or "#channel-name"',
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
    addr: AuthAddr
    identity_file: Path | None = None
    client_key_file: Path | None = None
    client_cert_file: Path | None = None
    root_cas_file: Path | None = None
    web_proxy_addr: WebAddr | None = None
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
    listen: ListenAddr = "127.0.0.1:8080"

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
    match_email: Flag = False
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
    approvals: Count = Field(default=1, ge=1)
    deny: Flag = False

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
    deny_reason_required: Flag = False
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
    slack: dict[str, tuple[SlackRecipient, ...]] = {}
    mattermost: dict[str, tuple[MattermostRecipient, ...]] = {}


class RoutingSettings(_Section):
    role_to_recipients: RoleToRecipients = RoleToRecipients()


class RemindersSettings(_Section):
    before_expiry: tuple[Duration, ...] = (timedelta(minutes=15), timedelta(minutes=5))
    on_expiry: Flag = True
    nudge_pending_after: Duration = timedelta(minutes=30)
    max_nudges: Count = Field(default=2, ge=0)


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
        """The effective config for `chatops-bot check-config --verbose`, as YAML; secrets appear only as
        (set), (not set), or where a read-only command left them to be read from."""
        return yaml.dump(_summary(self), Dumper=_SummaryDumper, sort_keys=False, allow_unicode=True,
                         width=1_000_000)

    def outline(self) -> str:
        """What this config turns on, in a few words: `slack (socket mode), mattermost; review.mode on_behalf`."""
        platforms = [
            *([f"slack ({'socket mode' if self.slack.socket_mode else 'HTTP'})"] if self.slack else []),
            *(["mattermost"] if self.mattermost else []),
        ]
        return f"{', '.join(platforms) or 'no chat platform yet'}; review.mode {self.review.mode}"

    def pending_secrets(self) -> list[tuple[str, str]]:
        """(key path, where it will come from) for each secret a read-only load left unresolved."""
        return list(_pending(self, ""))

    def slack_channel_names(self) -> list[str]:
        """The `#name` Slack recipients: finding them needs the `channels:read` scope."""
        routes = self.routing.role_to_recipients.slack.values()
        return sorted({name for names in routes for name in names if SLACK_CHANNEL_NAME.fullmatch(name)})


class _SummaryDumper(yaml.SafeDumper):
    """Sections as blocks, lists of plain values on one line (`before_expiry: [15m, 5m]`)."""

    def represent_list(self, data: Any) -> yaml.Node:
        flow = all(not isinstance(item, dict | list) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_SummaryDumper.add_representer(list, _SummaryDumper.represent_list)


def _summary(value: Any, annotation: Any = None) -> Any:
    if isinstance(value, PendingSecret):
        return f"({value.source})"
    if isinstance(value, SecretStr):
        return "(set)"
    if value is None:
        sections = [arg for arg in get_args(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)]
        return "(not set)" if _is_secret(annotation) else "disabled" if sections else None
    if isinstance(value, BaseModel):
        fields = type(value).model_fields.items()
        return {name: _summary(getattr(value, name), field.annotation) for name, field in fields}
    if isinstance(value, Mapping):
        return {str(key): _summary(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_summary(item) for item in value]
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value) if isinstance(value, Path) else value


def _pending(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, PendingSecret):
        yield where, value.source
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _pending(getattr(value, name), _join(where, name))
    elif isinstance(value, tuple) and any(isinstance(item, PendingSecret) for item in value):
        yield where, next(item.source for item in value if isinstance(item, PendingSecret))


def load_config(
    path: str | Path, *, env: Mapping[str, str] | None = None, registering: bool = False, secrets: bool = True
) -> Settings:
    """Read, resolve (`${ENV}`, `*_file`) and validate a config file; ConfigError lists every problem.
    `registering`: for `mattermost-register`, which may run before there is a command token.
    `secrets=False`: for commands that only read settings; a secret whose variable is not set yet, or
    that lives in a file, is left as a `PendingSecret` (`Settings.pending_secrets`), not an error."""
    label = str(path)
    resolver = _Resolver(os.environ if env is None else env, secrets=secrets)
    raw = _anchor_paths(_read_yaml(path, label), Path(path).resolve().parent)
    data = resolver.resolve(raw, Settings, "")
    found = resolver.found
    try:
        settings = Settings.model_validate(data, context={REGISTERING: registering})
    except ValidationError as exc:
        settings = None
        # A key whose ${ENV} or *_file could not be resolved was reported with its cause: say nothing more.
        reported = {key for where, _ in found for key in (where, where.removesuffix("_file"))}
        for error in exc.errors():
            where = _key_path(error["loc"]) or label
            if not any(where == key or where.startswith((key + ".", key + "[")) for key in reported):
                found.append((where, _message(error)))
    if found or settings is None:
        # One line each, whatever a quoted value held.
        raise ConfigError([" ".join(f"{where}: {problem}".split()) for where, problem in found])
    return settings


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (the second `review:` block would silently replace the first)
    and reads only true and false as booleans: `yes`, `no`, `on` and `off` stay words, so a flag
    written `yes` is refused by name rather than taken as true, and a role named `no` stays `no`."""

    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

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


_StrictLoader.add_implicit_resolver(  # type: ignore[no-untyped-call]
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


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


def _read_yaml(path: str | Path, label: str) -> dict[str, Any]:
    """The file's top-level mapping; a problem with the file as a whole is named by the file."""
    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 (safe)
    except OSError as exc:
        raise ConfigError([f"{label}: cannot read it: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{label}: cannot read it: not UTF-8 text"]) from None
    except yaml.MarkedYAMLError as exc:
        # The parser's own words only: str(exc) quotes the offending line, which may hold a secret.
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError([f"{label}: not valid YAML{line}: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{label}: not valid YAML: {' '.join(str(exc).split())}"]) from None
    if not isinstance(raw, dict | None):
        raise ConfigError([f"{label}: must be a mapping of sections (teleport:, slack:, ...)"])
    return raw or {}


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
Found = list[tuple[str, str]]
Env = Mapping[str, str]


class _Resolver:
    """Expands `${ENV}`, drops empty keys (they take their defaults) and reads secrets' `*_file` keys,
    collecting (key path, problem); with `secrets=False` a secret that is not at hand is left pending."""

    def __init__(self, env: Env, *, secrets: bool) -> None:
        self.env = env
        self.secrets = secrets
        self.found: Found = []

    def resolve(self, value: Any, model: type[BaseModel] | None, where: str) -> Any:
        if isinstance(value, str):
            return self._expand(value, where)
        if isinstance(value, list):
            return [self.resolve(item, None, f"{where}[{i}]") for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return value
        fields = model.model_fields if model else {}
        resolved = {}
        for key, item in value.items():
            if item is None:
                continue
            field = fields.get(key) if isinstance(key, str) else None
            if field is not None and not self.secrets and _is_secret(field.annotation):
                item = self._unless_pending(item, _join(where, key), get_origin(field.annotation) is tuple)
            if not isinstance(item, PendingSecret | tuple):
                item = self.resolve(item, _model_in(field.annotation) if field else None, _join(where, key))
            resolved[key] = item
        for name, field in fields.items():
            if f"{name}_file" in resolved and _is_secret(field.annotation):
                self._read_secret_file(resolved, name, get_origin(field.annotation) is tuple, where)
        return resolved

    def _expand(self, text: str, where: str) -> str:
        if text.count("${") != len(_ENV_REF.findall(text)):
            # Never quote the value: it may be a secret.
            self.found.append((where, "has a `${` that does not start a ${VARIABLE} reference (is a `}` "
                                      "missing, or the name not made of letters, digits and _?)"))
            return text

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) in self.env:
                return self.env[match.group(1)]
            self.found.append((where, f"environment variable {match.group(1)} is not set"))
            return match.group(0)

        return _ENV_REF.sub(substitute, text)

    def _unless_pending(self, item: Any, where: str, many: bool) -> Any:
        """`item`, or a PendingSecret (in a tuple when `many`) when it names a variable not set yet."""
        texts = item if isinstance(item, list) else [item]
        unset = [name for text in texts if isinstance(text, str) for name in _ENV_REF.findall(text)
                 if name not in self.env]
        if not unset:
            return item
        pending = PendingSecret(f"${{{unset[0]}}} not set yet")
        return (pending,) if many else pending

    def _read_secret_file(self, data: dict[str, Any], name: str, many: bool, where: str) -> None:
        file_key = _join(where, f"{name}_file")
        file_path = data.pop(f"{name}_file")
        if name in data:
            self.found.append((file_key, f"set {name} or {name}_file, not both"))
            return
        if not self.secrets:
            # The file may not exist yet, or be readable only by the bot's own user: read it when used.
            pending = PendingSecret(f"read from {file_path} when used")
            data[name] = (pending,) if many else pending
            return
        try:
            text = Path(str(file_path)).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            self.found.append((file_key, f"cannot read {file_path}: {reason}"))
            return
        data[name] = [line.strip() for line in text.splitlines() if line.strip()] if many else text


def _join(where: str, key: Any) -> str:
    return f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)


def _key_path(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        where = where if part == "[key]" else _join(where, part)
    return where


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
    if error["type"] == "extra_forbidden":
        return _unknown_key(error["loc"])
    if error["type"] == "literal_error":
        return "must be one of " + str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
    template = _MESSAGES.get(error["type"])
    return template.format(**ctx) if template else str(error["msg"])


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    """`unknown key`, with the nearest key the section does have when one is close (difflib)."""
    model: type[BaseModel] | None = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part) if model and isinstance(part, str) else None
        if field is not None:
            model = _model_in(field.annotation)
    key = str(loc[-1])
    if model is None:
        return "unknown key"
    if key.removesuffix("_file") in model.model_fields and key.endswith("_file"):
        return f"unknown key `{key}`: only secrets may be read from a file; set {key.removesuffix('_file')}"
    known = [name for name, field in model.model_fields.items() if name != key]
    known += [f"{name}_file" for name, field in model.model_fields.items() if _is_secret(field.annotation)]
    nearest = get_close_matches(key, known, n=1)
    return f"unknown key `{key}`; did you mean `{nearest[0]}`?" if nearest else "unknown key"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if get_origin(annotation) is None and isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((model for arg in get_args(annotation) if (model := _model_in(arg))), None)


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_is_secret(arg) for arg in get_args(annotation))
