"""The decision hook (`webhooks.decide`): a `Decider` that asks another system (an on-call schedule in
ServiceNow, say) about each new pending request for its roles, and turns its answer into a `Verdict`.

The bot POSTs the same signed envelope as the outbound events (type `access_request.decide`) and reads
`{"decision": "approve" | "deny" | "none", "reason": "…"}`. Anything else — no answer in time, a non-2xx
status, a body that is not that JSON, one over `MAX_ANSWER` bytes — means "none": a human decides, and
the log says why. None of these is retried: the request is asked about once, when it is new.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from datetime import UTC, datetime

from prometheus_client import Counter

from chatops_bot import metrics
from chatops_bot.automatic import Verdict
from chatops_bot.integrations.webhooks import events
from chatops_bot.integrations.webhooks.send import Answer, Sender
from chatops_bot.integrations.webhooks.settings import DecideSettings
from commands.matchers import MatcherError, compile_matcher
from commands.model import AccessRequest

logger = logging.getLogger(__name__)

MAX_REASON = 500  # characters of the hook's reason kept for Teleport's audit trail and the cards

DECISIONS = Counter(
    "chatops_webhook_decisions_total",
    "Answers of the decision hook: approve, deny, none (the hook said so), or unusable (no answer in time, "
    "an error status, a body that is not a decision): a human decides.",
    ["hook", "decision"],
    registry=metrics.REGISTRY,
)


def clean(text: str) -> str:
    """The hook's reason made safe to show: control characters out, whitespace collapsed, capped."""
    printable = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    collapsed = " ".join(printable.split())
    return collapsed if len(collapsed) <= MAX_REASON else collapsed[: MAX_REASON - 1] + "…"


class Unusable(Exception):
    """The hook's answer cannot be taken as a decision; the message says why, for the log."""


def decision(answer: Answer) -> tuple[str, str]:
    """(decision, reason) from the hook's answer; raises `Unusable`."""
    if not answer.ok:
        raise Unusable(answer.summary())
    if answer.oversized:
        raise Unusable(f"the answer is longer than {len(answer.body)} bytes")
    try:
        document = json.loads(answer.body)
    except (UnicodeDecodeError, ValueError):
        raise Unusable("the answer is not JSON") from None
    if not isinstance(document, dict):
        raise Unusable("the answer is not a JSON object")
    verdict, reason = document.get("decision"), document.get("reason", "")
    if verdict not in ("approve", "deny", "none"):
        raise Unusable('"decision" is not "approve", "deny" or "none"')
    if not isinstance(reason, str):
        raise Unusable('"reason" is not a string')
    return verdict, clean(reason)


class DecisionHook:
    """A `chatops_bot.automatic.Decider` backed by a webhook."""

    def __init__(self, settings: DecideSettings, sender: Sender, *, web_proxy_addr: str = "") -> None:
        self.settings, self.sender, self.web_proxy_addr = settings, sender, web_proxy_addr
        self.name = f"webhook:{settings.name}"
        self._roles = [compile_matcher(role) for role in settings.roles]

    def covers(self, request: AccessRequest) -> bool:
        """Every requested role must match the hook's roles: it may not decide a role it was not given."""
        return bool(request.roles) and all(self._covered(role) for role in request.roles)

    def _covered(self, role: str) -> bool:
        try:
            return any(matcher.matches(role) for matcher in self._roles)
        except MatcherError:
            return False

    async def verdict(self, request: AccessRequest) -> Verdict | None:
        event = events.Event("access_request.decide", "decide", request, datetime.now(UTC))
        body = events.body(events.payload(event, web_proxy_addr=self.web_proxy_addr))
        answer = await self.sender.post(self.settings.url, self.settings.secret.get_secret_value(),
                                        event.webhook_id, body, timeout=self.settings.timeout.total_seconds())
        context = {"request_id": request.id, "hook": self.settings.name}
        try:
            said, reason = decision(answer)
        except Unusable as why:
            DECISIONS.labels(self.settings.name, "unusable").inc()
            logger.warning("decision hook %s gave no usable answer (%s): a human decides", self.settings.name,
                           why, extra=context)
            return None
        DECISIONS.labels(self.settings.name, said).inc()
        if said == "none":
            logger.info("decision hook %s leaves the request to a human%s", self.settings.name,
                        f" ({reason})" if reason else "", extra=context)
            return None
        approve = said == "approve"
        logger.info("decision hook %s %s the request", self.settings.name, "approved" if approve else "denied",
                    extra=context)
        because = reason or "no reason given"
        return Verdict(
            approve=approve,
            reason=f"{self.settings.name}: {because}",
            source=self.name,
            card=f"{'Auto-approved' if approve else 'Auto-denied'} by {self.settings.name}: {because}",
        )
