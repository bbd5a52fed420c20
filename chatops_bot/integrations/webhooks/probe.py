"""`chatops-bot webhook-test ENDPOINT`: one signed sample event to a configured endpoint (or the decision
hook), and what the receiver answered, in words for the operator who set it up."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from chatops_bot.integrations.webhooks import events
from chatops_bot.integrations.webhooks.decide import Unusable, decision
from chatops_bot.integrations.webhooks.send import Answer, Sender
from chatops_bot.integrations.webhooks.settings import WebhooksSettings
from commands.model import AccessRequest, RequestState

SHOWN = 2000  # characters of the receiver's answer printed


def sample_request(now: datetime) -> AccessRequest:
    """A request that exists nowhere, plainly a sample."""
    return AccessRequest(
        id="00000000-0000-7000-8000-000000000000", user="webhook-test", roles=("dba",), state=RequestState.PENDING,
        created=now, access_expires=now + timedelta(hours=1), resource_expiry=now + timedelta(hours=1),
        reason="chatops-bot webhook-test: a sample, no such request exists",
    )


@dataclass(frozen=True)
class Probe:
    target: str  # "siem (https://siem.example.com/hook)"
    webhook_id: str
    answer: Answer
    seconds: float
    verdict: str = ""  # for the decision hook: what the bot would make of the answer

    @property
    def ok(self) -> bool:
        return self.answer.ok and not self.verdict.startswith("not a decision")

    def report(self) -> str:
        lines = [f"sent a signed sample event to {self.target}, webhook-id {self.webhook_id}"]
        if self.answer.status is None:
            lines.append(f"no answer after {self.seconds:.2f} s: {self.answer.error}")
        else:
            lines.append(f"answered HTTP {self.answer.status} in {self.seconds:.2f} s")
            text = self.answer.body.decode("utf-8", "replace")
            shown = "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text[:SHOWN])
            lines.append(shown + (" [...]" if len(text) > SHOWN or self.answer.oversized else "")
                         if shown else "(an empty body)")
        if self.verdict:
            lines.append(self.verdict)
        return "\n".join(lines)


async def probe(settings: WebhooksSettings, name: str) -> Probe:
    """Raises LookupError when no endpoint (nor the decision hook) has that name."""
    now = datetime.now(UTC)
    request = sample_request(now)
    hook = settings.decide if settings.decide is not None and settings.decide.name == name else None
    endpoint = settings.endpoint(name)
    if hook is None and endpoint is None:
        names = [e.name for e in settings.endpoints] + ([settings.decide.name] if settings.decide else [])
        raise LookupError(f"no webhook endpoint is named {name!r}; configured: {', '.join(names) or 'none'}")
    kind = "access_request.decide" if hook is not None else "webhook.test"
    event = events.Event(kind, f"test-{secrets.token_hex(4)}", request, now)
    url, secret = (hook.url, hook.secret) if hook is not None else (endpoint.url, endpoint.secret)  # type: ignore[union-attr]
    timeout = (hook.timeout if hook is not None else settings.timeout).total_seconds()
    sender = Sender(timeout=timeout)
    started = time.monotonic()
    try:
        answer = await sender.post(url, secret.get_secret_value(), event.webhook_id,
                                   events.body(events.payload(event)))
    finally:
        await sender.close()
    verdict = ""
    if hook is not None:
        try:
            said, reason = decision(answer)
            verdict = f"as a decision: {said}" + (f" ({reason})" if reason else "")
        except Unusable as why:
            verdict = f"not a decision ({why}): a request would wait for a person"
    return Probe(f"{name} ({_site(url)})", event.webhook_id, answer, time.monotonic() - started, verdict)


def _site(url: str) -> str:
    """Scheme and host only: some receivers (Zapier's catch hooks, say) keep a secret in the path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
