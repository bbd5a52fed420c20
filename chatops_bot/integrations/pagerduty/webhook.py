"""`/pagerduty/webhook`: a responder's note on a request's incident ("approve …", "deny …") becomes their review.

PagerDuty's v3 webhooks carry the acting user as the event's `agent`; an `incident.annotated` event also
carries the note. Every call is verified before anything runs: a `v1=` HMAC-SHA256 of the raw body with a
configured secret (any of several, any of the `v1=` signatures: secrets rotate on both sides), an
`occurred_at` no more than `max_age` away, an event ID not seen before. Then the incident must be one the
bot opened (its `incident_key` names the request), and the agent a PagerDuty user whose e-mail maps to a
Teleport user. Only then is `approve <request> <reason>` (or `deny`) run through the same `commands` code as
a chat click, as that Teleport user: one reviewer check. A refusal is written back as a note on the incident.
Anything refused is logged and nothing is reviewed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from chatops_bot.adapters.base import run_command
from chatops_bot.server import read_body
from chatops_bot.integrations.pagerduty.client import PagerDutyClient, PagerDutyError
from chatops_bot.integrations.pagerduty.incidents import request_of
from commands.context import Context
from commands.model import ChatUser
from commands.reply import Invocation

logger = logging.getLogger(__name__)

PATH = "/pagerduty/webhook"
MAX_BODY = 256 * 1024
_DECISION = re.compile(r"\s*(approve|deny)\b[\s:,.-]*(.*)", re.IGNORECASE | re.DOTALL)
_SIGNATURE = re.compile(r"v1=([0-9a-fA-F]{64})")


def signed_by(body: bytes, header: str, secrets: Sequence[str]) -> bool:
    """Whether any `v1=` signature in the header is the HMAC-SHA256 of `body` with any of `secrets`."""
    offered = [m.group(1).lower() for part in header.split(",") if (m := _SIGNATURE.fullmatch(part.strip()))]
    expected = [hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() for secret in secrets if secret]
    return any(hmac.compare_digest(mine, theirs) for mine in expected for theirs in offered)


def decision(note: str) -> tuple[str, str] | None:
    """("approve" | "deny", reason) for a note that starts with the word approve or deny, else None."""
    found = _DECISION.fullmatch(note)
    if found is None:
        return None
    return found.group(1).lower(), " ".join(found.group(2).split())


class Refusal(Exception):
    """A call answered with `status` and nothing done; `why` goes to the log and the answer."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status, self.why = status, why


class WebhookService:
    """The route PagerDuty posts its v3 webhooks to; a `server` service like a chat adapter."""

    name = "pagerduty-webhook"

    def __init__(self, client: PagerDutyClient, ctx: Context, secrets: Sequence[str], *,
                 max_age: timedelta = timedelta(minutes=5), bot_email: str = "",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """`ctx`: the command context whose directory maps a `pagerduty` ChatUser (id = e-mail) to Teleport.
        `bot_email`: the bot's own PagerDuty user (`from_email`), whose notes are never decisions."""
        self.client, self.ctx, self.secrets = client, ctx, list(secrets)
        self.max_age, self.bot_email, self.clock = max_age, bot_email.lower(), clock
        self._seen: dict[str, datetime] = {}  # event ID -> when it occurred, kept while it is not stale

    def routes(self) -> Sequence[BaseRoute]:
        return [Route(PATH, self.receive, methods=["POST"])]

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def why_not_ready(self) -> str | None:
        return None

    async def receive(self, request: Request) -> Response:
        body = await read_body(request, MAX_BODY)
        if body is None:
            logger.warning("PagerDuty webhook refused: body too large")
            return JSONResponse({"error": "body too large"}, status_code=413)
        event: dict[str, Any] = {}
        try:
            event = self._verified(body, request.headers.get("X-PagerDuty-Signature", ""))
            outcome = await self._act(event)
        except Refusal as refusal:
            if refusal.status >= 500:
                # Not done for want of PagerDuty: PagerDuty's retry of this very event must not look like a replay.
                self._seen.pop(str(event.get("id")), None)
            logger.warning("PagerDuty webhook refused: %s", refusal.why)
            return JSONResponse({"error": refusal.why}, status_code=refusal.status)
        return JSONResponse({"outcome": outcome}, status_code=202)

    def _verified(self, body: bytes, signature: str) -> dict[str, Any]:
        if not signature:
            raise Refusal(401, "unsigned (no X-PagerDuty-Signature)")
        if not signed_by(body, signature, self.secrets):
            raise Refusal(401, "no v1 signature matches a configured secret (forged, or a secret not configured)")
        try:
            event = json.loads(body)["event"]
            event_id, occurred = str(event["id"]), _instant(str(event["occurred_at"]))
        except (ValueError, KeyError, TypeError):
            raise Refusal(400, "signed, but not a v3 webhook event") from None
        now = self.clock()
        if abs(now - occurred) > self.max_age:
            raise Refusal(400, f"event {event_id} is stale (occurred {occurred.isoformat()})")
        self._seen = {seen: at for seen, at in self._seen.items() if abs(now - at) <= self.max_age}
        if event_id in self._seen:
            raise Refusal(409, f"event {event_id} was already received (a replay)")
        self._seen[event_id] = occurred
        return dict(event)

    async def _act(self, event: dict[str, Any]) -> str:
        if event.get("event_type") != "incident.annotated":
            return "ignored: not a note"
        data, agent = event.get("data"), event.get("agent")
        if not isinstance(data, dict) or not isinstance(agent, dict) \
                or not isinstance(data.get("incident"), dict):
            raise Refusal(422, f"event {event.get('id')}: signed, but not shaped as PagerDuty's incident.annotated")
        wanted = decision(str(data.get("content", "")))
        if wanted is None:
            return "ignored: the note is no decision"
        incident_id = str(data["incident"].get("id", ""))
        if agent.get("type") != "user_reference" or not agent.get("id") or not incident_id:
            raise Refusal(422, f"event {event.get('id')}: no acting user or incident")
        try:
            incident = (await self.client.get(f"/incidents/{incident_id}"))["incident"]
            email = str((await self.client.get(f"/users/{agent['id']}"))["user"].get("email", ""))
        except (PagerDutyError, KeyError, TypeError, AttributeError) as err:
            raise Refusal(503, f"cannot read incident {incident_id} or user {agent['id']} from PagerDuty: "
                               f"{err}") from None
        if email.lower() == self.bot_email:
            return "ignored: the bot's own note"
        request_id = request_of(str(incident.get("incident_key", "")))
        if not request_id:
            return "ignored: not an access request's incident"
        if not email:
            raise Refusal(422, f"PagerDuty user {agent['id']} has no e-mail to map to a Teleport user")
        verb, reason = wanted
        invocation = Invocation(platform="pagerduty", actor=ChatUser("pagerduty", email, str(agent.get("summary", "")),
                                                                      email), text=f"{verb} {request_id} {reason}")
        reply = await run_command(invocation, self.ctx)
        if not reply.ok:
            logger.warning("PagerDuty user %s's %s of request %s refused: %s", agent["id"], verb, request_id,
                           reply.text, extra={"request_id": request_id})
            await self._tell(incident_id, f"The bot did not {verb} for this note: {reply.text}")
            return "refused"
        return verb

    async def _tell(self, incident_id: str, text: str) -> None:
        try:
            await self.client.post(f"/incidents/{incident_id}/notes", {"note": {"content": text[:1000]}})
        except PagerDutyError as err:
            logger.warning("cannot write back to PagerDuty incident %s: %s", incident_id, err)


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment
