"""The `pagerduty` section of config.yaml: how to reach PagerDuty and which on-call approves which roles."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from chatops_bot.config.types import Count, Duration, RoleMatcher, Secret, Section, Text, WebUrl, check

# PagerDuty object IDs: upper-case letters and digits, "P1X2Y3", "PDBAEP1".
PagerDutyId = Annotated[str, check(lambda s: re.fullmatch(r"[A-Z0-9]{2,20}", s),
                                   "must be a PagerDuty ID such as P1X2Y3 (upper-case letters and digits)")]


class AutoApproveRule(Section):
    """Requested roles matching `roles` are approved while the requester is on call in one of `schedules`
    or `escalation_policies` (at `max_level` or nearer the top), and, with `while_incident_on`, only while
    one of those services has a triggered or acknowledged incident; with `max_duration`, only requests
    whose access lasts no longer."""

    name: Text
    roles: tuple[RoleMatcher, ...]
    schedules: tuple[PagerDutyId, ...] = ()
    escalation_policies: tuple[PagerDutyId, ...] = ()
    max_level: Count | None = Field(default=None, ge=1)
    while_incident_on: tuple[PagerDutyId, ...] = ()
    max_duration: Duration | None = None

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        broken = []
        if data.get("roles") == []:
            broken.append(("roles", "must not be empty"))
        if not data.get("schedules") and not data.get("escalation_policies"):
            broken.append(("", "name the schedules or escalation_policies (or both) whose on-call counts"))
        return broken


Email = Annotated[str, check(lambda s: re.fullmatch(r"[^@\s]+@[^@\s]+", s), "must be an e-mail address")]


class IncidentSettings(Section):
    """An incident per request on the service its roles route to: role (or "*", the default) -> service ID."""

    services: dict[Text, PagerDutyId]

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [] if data.get("services") else [("services", 'must route at least one role (or "*") to a service')]


class WebhookSettings(Section):
    """PagerDuty's v3 webhook subscription to `/pagerduty/webhook`: its signing secret (two while rotating)."""

    secrets: tuple[Secret, ...]
    max_age: Duration = timedelta(minutes=5)

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [] if data.get("secrets") else [("secrets", "must name the subscription's signing secret")]


class PagerDutySettings(Section):
    api_url: WebUrl = "https://api.pagerduty.com"
    token: Secret
    # The PagerDuty user the bot acts as when it writes incidents and notes (the `From` header an account
    # token requires).
    from_email: Email | None = None
    # One call's budget, waits for PagerDuty's rate limit included.
    timeout: Duration = timedelta(seconds=10)
    # How a Teleport user's e-mail is found: a trait (`email_trait`), or the user name itself.
    requester_email: Literal["trait", "user_name"] = "trait"
    email_trait: Text = "email"
    auto_approve: tuple[AutoApproveRule, ...] = ()
    incidents: IncidentSettings | None = None
    # Decisions from PagerDuty: a responder's "approve"/"deny" note on a request's incident.
    webhook: WebhookSettings | None = None

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if "webhook" in data and "incidents" not in data:
            return [("webhook", "needs incidents: responders decide by a note on a request's incident")]
        if "incidents" in data and "from_email" not in data:
            return [("from_email", "required with incidents (PagerDuty needs a From user to write incidents)")]
        rules = data.get("auto_approve")
        if isinstance(rules, list):
            names = [rule.get("name") for rule in rules if isinstance(rule, Mapping)]
            if len(set(names)) != len(names):
                return [("auto_approve", "each rule needs a name of its own (the audit log quotes it)")]
        return []

    def schedule_ids(self) -> list[str]:
        return sorted({s for rule in self.auto_approve for s in rule.schedules})

    def policy_ids(self) -> list[str]:
        return sorted({p for rule in self.auto_approve for p in rule.escalation_policies})

    def service_ids(self) -> list[str]:
        routed = self.incidents.services.values() if self.incidents else ()
        return sorted({s for rule in self.auto_approve for s in rule.while_incident_on} | set(routed))
