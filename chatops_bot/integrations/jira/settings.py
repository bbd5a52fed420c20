"""The `jira:` section of config.yaml: where Jira is, how the bot signs in, and which requests need a ticket."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field

from chatops_bot.config.types import Duration, Flag, LongSecret, RoleMatcher, Secret, Section, Text, WebUrl
from commands.matchers import compile_matcher

Deployment = Literal["cloud", "data_center"]


class TicketRule(Section):
    """Requests for any of `roles` must cite a Jira issue that passes every check written here."""

    roles: tuple[RoleMatcher, ...]
    projects: tuple[Text, ...]
    # Empty: any issue type, any status.
    issue_types: tuple[Text, ...] = ()
    statuses: tuple[Text, ...] = ()
    assigned_to_requester: Flag = False

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [(key, "must not be empty") for key in ("roles", "projects") if data.get(key) == []]


class MirrorSettings(Section):
    """One Jira issue per access request (for `roles`), commented with each review and moved to a status
    when the request is approved, denied or expires (a status left out: the issue stays where it is)."""

    project: Text
    issue_type: Text = "Task"
    roles: tuple[RoleMatcher, ...] = ("*",)
    approved: Text | None = None
    denied: Text | None = None
    expired: Text | None = None

    def covers(self, roles: tuple[str, ...] | list[str]) -> bool:
        return any(compile_matcher(m).matches(role) for m in self.roles for role in roles)


class WebhookSettings(Section):
    """Decisions from Jira: the secret Jira signs its webhook deliveries with, and who each Jira user is in
    Teleport (Cloud account ID or Data Center user name -> Teleport user; else their e-mail as a user name)."""

    secret: LongSecret
    users: dict[Text, Text] = Field(default_factory=dict)


class JiraSettings(Section):
    url: WebUrl
    deployment: Deployment = "cloud"
    # Cloud: the account's e-mail and an API token. Data Center: a personal access token.
    email: Text | None = None
    api_token: Secret | None = None
    personal_access_token: Secret | None = None
    # The longest one Jira call (with its rate-limit waits) may take before the bot gives up and says so.
    timeout: Duration = timedelta(seconds=10)
    require_ticket: tuple[TicketRule, ...] = Field(default=())
    mirror: MirrorSettings | None = None
    webhook: WebhookSettings | None = None
    # When a cited ticket is resolved while its access is active, the requester's DM asks them to drop the
    # access now (instead of only saying until when it stays). Never ends access by itself.
    end_with_ticket: Flag = False

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        return cls._credential_rules(data) + cls._webhook_rules(data)

    @classmethod
    def _credential_rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        # Keys written count as given: a secret a read-only check leaves unresolved reads as empty.
        if data.get("deployment", "cloud") == "cloud":
            missing = [key for key in ("email", "api_token") if key not in data]
            wrong = [("personal_access_token", "is for data_center; Jira Cloud takes email and api_token")
                     ] if "personal_access_token" in data else []
            return [(key, "required for deployment cloud") for key in missing] + wrong
        problems = [] if "personal_access_token" in data else [
            ("personal_access_token", "required for deployment data_center")]
        return problems + [(key, "is for cloud; Data Center takes personal_access_token")
                           for key in ("email", "api_token") if key in data]

    @classmethod
    def _webhook_rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if data.get("end_with_ticket") is True and "webhook" not in data:
            return [("end_with_ticket", "needs webhook: the bot hears of resolved tickets from Jira's webhook")]
        return []

    def ticket_rules(self, roles: tuple[str, ...] | list[str]) -> list[TicketRule]:
        """The rules that cover any of `roles`, in the order written."""
        return [rule for rule in self.require_ticket
                if any(compile_matcher(m).matches(role) for m in rule.roles for role in roles)]
