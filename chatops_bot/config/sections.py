"""The sections of config.yaml and `load_config`: typed, frozen settings; each problem names its key path.

The sections are here; their value types are in `config.types`, the reading of the file (YAML, `${ENV}`,
`*_file`) in `config.source`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from chatops_bot.config.source import Resolver, anchor_paths, is_secret, join, key_path, message, read_yaml
from chatops_bot.config.types import (
    REGISTERING,
    SLACK_CHANNEL_NAME,
    AppToken,
    AuthAddr,
    BotToken,
    ConfigError,
    Count,
    Duration,
    Flag,
    ListenAddr,
    LogLevel,
    LongSecret,
    MattermostRecipient,
    PendingSecret,
    ReviewMode,
    RoleMatcher,
    Secret,
    Section,
    SlackRecipient,
    Text,
    UserMapKey,
    WebAddr,
    WebUrl,
    problem,
)
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings  # issue 16
from chatops_bot.integrations.webhooks.settings import WebhooksSettings
from chatops_bot.integrations.jira.settings import JiraSettings
from commands.durations import format_duration
from commands.rules import ReviewRule

__all__ = ["ConfigError", "ReviewMode", "Settings", "load_config"]


_TLS_FILES = ("client_key_file", "client_cert_file", "root_cas_file")


class TeleportSettings(Section):
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


class ServerSettings(Section):
    listen: ListenAddr = "127.0.0.1:8080"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class SlackSettings(Section):
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


class MattermostSettings(Section):
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
            raise problem("must not be empty (`chatops-bot mattermost-register` prints the token)")
        return tokens


class UsersSettings(Section):
    slack_user_id_trait: Text = "slack_user_id"
    mattermost_user_id_trait: Text = "mattermost_user_id"
    match_email: Flag = False
    map: dict[UserMapKey, Text] = {}


class ReviewersSettings(Section):
    """Who a review rule is about: Teleport roles of the reviewer and/or Teleport user names (matchers)."""

    roles: tuple[RoleMatcher, ...] = ()
    users: tuple[RoleMatcher, ...] = ()

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if data.get("roles") or data.get("users"):
            return []
        return [("", "name reviewer roles or users (or both)")]


class ReviewRuleSettings(Section):
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


class ReviewSettings(Section):
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


class RoleToRecipients(Section):
    slack: dict[str, tuple[SlackRecipient, ...]] = {}
    mattermost: dict[str, tuple[MattermostRecipient, ...]] = {}


class RoutingSettings(Section):
    role_to_recipients: RoleToRecipients = RoleToRecipients()


class RemindersSettings(Section):
    before_expiry: tuple[Duration, ...] = (timedelta(minutes=15), timedelta(minutes=5))
    on_expiry: Flag = True
    nudge_pending_after: Duration = timedelta(minutes=30)
    max_nudges: Count = Field(default=2, ge=0)


class LoggingSettings(Section):
    level: Annotated[LogLevel, BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = "INFO"
    format: Literal["plain", "json"] = "plain"


class Settings(Section):
    teleport: TeleportSettings
    server: ServerSettings = ServerSettings()
    slack: SlackSettings | None = None
    mattermost: MattermostSettings | None = None
    users: UsersSettings = UsersSettings()
    review: ReviewSettings = ReviewSettings()
    routing: RoutingSettings = RoutingSettings()
    reminders: RemindersSettings = RemindersSettings()
    logging: LoggingSettings = LoggingSettings()
    webhooks: WebhooksSettings | None = None
    pagerduty: PagerDutySettings | None = None  # issue 16
    jira: JiraSettings | None = None

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

    def warnings(self, *, files: bool = True) -> list[str]:
        """What is valid but will not work as it stands: files the Teleport identity needs that are not there
        yet (unless not `files`: `--connect` says so as an error), and plain-HTTP hops that leave this host
        (what travels on them can be read on the way)."""
        found = []
        for key in ("identity_file", *_TLS_FILES) if files else ():
            path = getattr(self.teleport, key)
            if path is not None and not path.exists():
                found.append(f"teleport.{key}: {path} does not exist yet (serve and --connect need it)")
        decide = self.webhooks.decide if self.webhooks is not None else None
        if decide is not None and _plain_http_off_host(decide.url):
            found.append("webhooks.decide.url is plain HTTP to another host: anyone on the way could answer "
                         "\"approve\" for it; use HTTPS")
        if self.mattermost is not None and _plain_http_off_host(self.mattermost.public_url):
            found.append("mattermost.public_url is plain HTTP to another host: Mattermost's calls to the bot "
                         "(who acted, reasons, request IDs) can be read on the way; serve it over HTTPS "
                         "(clicks stay unforgeable either way: docs/mattermost.md, section 7)")
        return found

    def slack_channel_names(self) -> list[str]:
        """The `#name` Slack recipients: finding them needs the `channels:read` scope."""
        routes = self.routing.role_to_recipients.slack.values()
        return sorted({name for names in routes for name in names if SLACK_CHANNEL_NAME.fullmatch(name)})


def _plain_http_off_host(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "http" and host not in ("localhost", "::1") and not host.startswith("127.")


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
        return "(not set)" if is_secret(annotation) else "disabled" if sections else None
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
            yield from _pending(getattr(value, name), join(where, name))
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
    resolver = Resolver(os.environ if env is None else env, secrets=secrets)
    raw = anchor_paths(read_yaml(path, label), Path(path).resolve().parent)
    data = resolver.resolve(raw, Settings, "")
    found = resolver.found
    try:
        settings = Settings.model_validate(data, context={REGISTERING: registering})
    except ValidationError as exc:
        settings = None
        # A key whose ${ENV} or *_file could not be resolved was reported with its cause: say nothing more.
        reported = {key for where, _ in found for key in (where, where.removesuffix("_file"))}
        for error in exc.errors():
            where = key_path(error["loc"]) or label
            if not any(where == key or where.startswith((key + ".", key + "[")) for key in reported):
                found.append((where, message(error, Settings)))
    if found or settings is None:
        # One line each, whatever a quoted value held.
        raise ConfigError([" ".join(f"{where}: {problem}".split()) for where, problem in found])
    return settings
