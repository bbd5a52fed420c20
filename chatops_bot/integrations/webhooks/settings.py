"""The `webhooks:` section of config.yaml: where events go (`endpoints`), who may decide requests (`decide`),
and how long a delivery is retried."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from chatops_bot.config.types import Duration, RoleMatcher, Secret, Section, Text, WebUrl, check

EventName = Literal[
    "access_request.created",
    "access_request.reviewed",
    "access_request.approved",
    "access_request.denied",
    "access_request.expired",
    "access_request.deleted",
    "access.expiring",
    "access.ended",
]
EVENTS: tuple[str, ...] = EventName.__args__  # type: ignore[attr-defined]


def _is_webhook_secret(text: str) -> bool:
    """`whsec_` then base64 of at least 24 bytes (Standard Webhooks: 24 to 64 random bytes)."""
    if not text.startswith("whsec_"):
        return False
    try:
        key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return False
    return 24 <= len(key) <= 64


WebhookSecret = Annotated[
    Secret,
    check(_is_webhook_secret, "must be whsec_ followed by base64 of 24 to 64 random bytes "
                              "(e.g. `echo whsec_$(openssl rand -base64 32)`)"),
]
Name = Annotated[
    Text,
    check(lambda text: re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", text),
          "must be 1 to 40 of a-z, 0-9, - and _ (it names the endpoint in the log, /readyz and /metrics)"),
]


class EndpointSettings(Section):
    """One receiver of events: each has its own secret, and hears only the events and roles it names."""

    name: Name
    url: WebUrl
    secret: WebhookSecret
    # Empty: every event. Otherwise the event types this endpoint hears.
    events: tuple[EventName, ...] = ()
    # Empty: every request. Otherwise a request is heard when one of its roles matches one of these.
    roles: tuple[RoleMatcher, ...] = ()


class DecideSettings(Section):
    """The decision hook: asked about each new pending request for matching roles; may approve or deny."""

    name: Name
    url: WebUrl
    secret: WebhookSecret
    roles: tuple[RoleMatcher, ...]
    timeout: Duration = timedelta(seconds=10)

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        if data.get("roles") == []:
            return [("roles", "must not be empty: name the roles the hook may decide (\"*\" for all)")]
        return []


class WebhooksSettings(Section):
    endpoints: tuple[EndpointSettings, ...] = ()
    decide: DecideSettings | None = None
    # How long an event is tried again, from when it happened; then it is given up (and logged).
    retry_for: Duration = timedelta(hours=24)
    # The deadline of each delivery attempt.
    timeout: Duration = timedelta(seconds=10)

    @classmethod
    def _rules(cls, data: Mapping[str, Any]) -> list[tuple[str, str]]:
        endpoints = data.get("endpoints") or []
        names = [e.get("name") for e in endpoints if isinstance(e, Mapping)]
        twice = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
        if twice:
            return [("endpoints", f"each endpoint needs a name of its own ({', '.join(twice)} is given twice)")]
        return []

    def endpoint(self, name: str) -> EndpointSettings | None:
        return next((e for e in self.endpoints if e.name == name), None)
