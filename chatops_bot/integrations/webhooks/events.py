"""What happened to an access request, as webhook events: derived from Teleport's snapshots of the request
(and the reminders' plugin data), each with a key that names it for good, and its versioned JSON payload.

An event's key is unique within its request (`created`, `reviewed.2`, `approved`, `expiring.900`) and
never changes, so the same event always goes out with the same `webhook-id`: `msg_<request id>_<key>`.
The payload carries what Teleport shows about the request; nothing from the bot's config or plugin data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from commands import messages
from commands.model import AccessRequest, RequestState, Review

VERSION = 1
REMIND_KEY = "remind:"  # the reminders' plugin data key of a before-expiry reminder (`remind:<seconds>`)
EXPIRING = "expiring."

STATES = {
    RequestState.NONE: "none",
    RequestState.PENDING: "pending",
    RequestState.APPROVED: "approved",
    RequestState.DENIED: "denied",
    RequestState.PROMOTED: "promoted",
}


@dataclass(frozen=True)
class Event:
    type: str  # "access_request.approved"
    key: str  # "approved": unique within the request, for good
    request: AccessRequest
    occurred: datetime
    review: Review | None = None
    lead: timedelta | None = None  # access.expiring: how long before the access ends

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.request.id}_{self.key}"


def _stamp(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z") if when else None


def _review(review: Review) -> dict[str, Any]:
    return {
        "author": review.author,
        "decision": "approve" if review.proposed_state is RequestState.APPROVED else "deny",
        "reason": review.reason,
        "created": _stamp(review.created),
        "submitted_by": review.submitted_by or None,
    }


def request_data(request: AccessRequest, *, web_proxy_addr: str = "") -> dict[str, Any]:
    """The request as a receiver sees it, in every event."""
    return {
        "id": request.id,
        "user": request.user,
        "roles": list(request.roles),
        "resources": list(request.resources),
        "state": STATES[request.state],
        "reason": request.reason,
        "resolve_reason": request.resolve_reason,
        "created": _stamp(request.created),
        "access_expires": _stamp(request.access_expires),
        "request_expires": _stamp(request.resource_expiry),
        "suggested_reviewers": list(request.suggested_reviewers),
        "approvals": request.approvals,
        "approvals_needed": request.approvals_needed,
        "reviews": [_review(review) for review in request.reviews],
        "web_url": messages.web_link(web_proxy_addr, request.id) or None,
    }


def payload(event: Event, *, web_proxy_addr: str = "") -> dict[str, Any]:
    """The JSON a receiver gets (docs/webhook-event.schema.json): Standard Webhooks' recommended
    `type`/`timestamp`/`data` shape, with the payload's `version`."""
    data: dict[str, Any] = {"request": request_data(event.request, web_proxy_addr=web_proxy_addr)}
    if event.review is not None:
        data["review"] = _review(event.review)
    if event.lead is not None:
        data["expires_in_seconds"] = int(event.lead.total_seconds())
    return {"version": VERSION, "type": event.type, "timestamp": _stamp(event.occurred), "data": data}


def body(document: dict[str, Any]) -> bytes:
    """The bytes signed and sent: compact, UTF-8, keys in a fixed order."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _decided(request: AccessRequest) -> datetime | None:
    return max((r.created for r in request.reviews if r.created), default=request.created)


def from_snapshot(request: AccessRequest, data: Mapping[str, str] | None = None) -> list[Event]:
    """Every event this snapshot of the request shows has happened, whether sent or not. `data`: the
    request's plugin data, whose claimed `remind:<seconds>` keys are the reminders that went out, and whose
    `webhook:<endpoint>:expiring.<seconds>` keys are access.expiring events whose delivery began."""
    created = request.created or datetime.now(UTC)
    found = [Event("access_request.created", "created", request, created)]
    for number, review in enumerate(request.reviews, start=1):
        found.append(Event("access_request.reviewed", f"reviewed.{number}", request, review.created or created,
                           review=review))
    if request.state in (RequestState.APPROVED, RequestState.DENIED):
        kind = STATES[request.state]
        found.append(Event(f"access_request.{kind}", kind, request, _decided(request) or created))
    if request.state is RequestState.APPROVED and request.access_expires is not None:
        leads: set[str] = set()
        for key, value in (data or {}).items():
            if key.startswith(REMIND_KEY) and value:
                leads.add(key.removeprefix(REMIND_KEY))
            elif key.startswith("webhook:") and key.rpartition(":")[2].startswith(EXPIRING):
                leads.add(key.rpartition(":")[2].removeprefix(EXPIRING))
        for seconds in sorted(text for text in leads if text.isdigit()):
            ahead = timedelta(seconds=int(seconds))
            found.append(Event("access.expiring", f"{EXPIRING}{seconds}", request,
                               request.access_expires - ahead, lead=ahead))
    return found


def gone(request: AccessRequest, now: datetime) -> Event | None:
    """The event for a request Teleport no longer has, from its last snapshot: a pending one whose
    lifetime ran out expired; one removed before its time was deleted. A decided request dropped when
    its time was up says nothing here (`access.ended` comes from the reminders)."""
    lifetime = request.resource_expiry
    ran_out = lifetime is not None and now >= lifetime
    if request.state is RequestState.PENDING:
        kind = "expired" if ran_out else "deleted"
        return Event(f"access_request.{kind}", kind, request, lifetime if ran_out and lifetime else now)
    ended = request.access_expires is not None and now >= request.access_expires
    if ran_out or ended:
        return None
    return Event("access_request.deleted", "deleted", request, now)


def ended(request: AccessRequest) -> Event:
    """The access the request gave has ended (the reminders' "your access has ended")."""
    return Event("access.ended", "ended", request, request.access_expires or datetime.now(UTC))
