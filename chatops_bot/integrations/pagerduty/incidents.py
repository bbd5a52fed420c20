"""An incident per access request on the PagerDuty services its roles route to, kept in step with Teleport.

`IncidentKeeper` is a watcher `Handler` (run in a `Follower`'s lanes). For a pending request it opens one
incident on each routed service (role -> service with a `"*"` default, as chat routing), with
`incident_key` `teleport-access-request/<request ID>` so PagerDuty itself refuses a second open one; each
review becomes a note; when the request is approved or denied the incident is resolved, and when Teleport
deletes it (or its pending TTL runs out) every open incident with its key is resolved.

What was done is kept in the request's plugin data, one key per service, changed only by compare-and-swap:

    pagerduty:PDBSVC1    {"incident": "PINC001", "notes": 1, "resolved": false, "by": "<process>", "at": <unix>}

`by`/`at` is a claim, held while one process works on the incident and given back after; a claim left by a
process that died is taken over once `claim_lease` seconds old. Every step is recorded as soon as it is
done, so a retry continues where the last try stopped; an incident created but not recorded is found again
by its key. Requests already decided when first seen get no incident.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from chatops_bot.integrations.pagerduty.client import PagerDutyClient, PagerDutyRefused, PagerDutyUnavailable
from chatops_bot.timer import Later
from commands.errors import BackendError, CompareFailed
from commands.messages import web_link
from commands.model import AccessRequest, RequestState, Review

logger = logging.getLogger(__name__)

KEY_PREFIX = "pagerduty:"
INCIDENT_KEY = "teleport-access-request/"
CLAIM_LEASE = 60.0
OPEN = ("triggered", "acknowledged")
UNAVAILABLE_RETRY = 30.0


class PluginData(Protocol):
    async def get_plugin_data(self, request_id: str) -> dict[str, str]: ...

    async def update_plugin_data(self, request_id: str, *, set: Mapping[str, str],
                                 expect: Mapping[str, str] | None = None) -> None: ...


@dataclass(frozen=True)
class Record:
    incident: str = ""
    notes: int = 0
    resolved: bool = False
    by: str = ""
    at: int = 0

    @classmethod
    def parse(cls, text: str) -> Record:
        try:
            raw = json.loads(text) if text else {}
            return cls(incident=str(raw.get("incident", "")), notes=int(raw.get("notes", 0)),
                       resolved=bool(raw.get("resolved", False)), by=str(raw.get("by", "")),
                       at=int(raw.get("at", 0)))
        except (ValueError, TypeError, AttributeError):
            return cls()

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@contextmanager
def _pagerduty_trouble(request_id: str) -> Iterator[None]:
    """PagerDuty unreachable: look again in `UNAVAILABLE_RETRY` seconds, however long it lasts (the lane's
    backoff would give up). PagerDuty refusing: logged; the next event or resync of the request tries again."""
    try:
        yield
    except PagerDutyUnavailable as err:
        logger.warning("request %s: PagerDuty unavailable for its incident (%s); again in %.0f s", request_id, err,
                       UNAVAILABLE_RETRY, extra={"request_id": request_id})
        raise Later(UNAVAILABLE_RETRY, "PagerDuty unavailable") from None
    except PagerDutyRefused as err:
        logger.error("request %s: PagerDuty refused a write to its incident: %s", request_id, err,
                     extra={"request_id": request_id})


def services_for(routes: Mapping[str, str], roles: Sequence[str]) -> list[str]:
    """The services a request's roles route to: each role's own, else the `"*"` default; de-duplicated."""
    found = [routes.get(role) or routes.get("*") for role in roles]
    return list(dict.fromkeys(service for service in found if service))


def incident_key(request_id: str) -> str:
    return INCIDENT_KEY + request_id


def request_of(key: str) -> str:
    """The request ID an incident key names, or "" for an incident the bot did not open."""
    return key.removeprefix(INCIDENT_KEY) if key.startswith(INCIDENT_KEY) else ""


def note_text(review: Review) -> str:
    verb = "approved" if review.proposed_state is RequestState.APPROVED else "denied"
    return f"{review.author} {verb} in Teleport: {review.reason or 'no reason given'}"[:1000]


class IncidentKeeper:
    def __init__(self, client: PagerDutyClient, data: PluginData, routes: Mapping[str, str], *,
                 web_proxy_addr: str = "", claim_lease: float = CLAIM_LEASE) -> None:
        """`routes`: role (or "*") -> service ID. `web_proxy_addr`: Teleport's, for a link in the incident."""
        self.client, self.data, self.routes = client, data, dict(routes)
        self.web_proxy_addr, self.claim_lease = web_proxy_addr, claim_lease
        self.process = secrets.token_hex(6)

    async def sync(self, request: AccessRequest) -> None:
        services = services_for(self.routes, request.roles)
        if not services:
            return
        data = await self.data.get_plugin_data(request.id)
        for service in services:
            held = data.get(KEY_PREFIX + service, "")
            record = Record.parse(held)
            if record.resolved or (not record.incident and request.state is not RequestState.PENDING):
                continue  # done, or decided before any incident was opened: nothing to tell PagerDuty
            with _pagerduty_trouble(request.id):
                await self._keep(request, service, held, record)

    async def closed(self, request_id: str) -> None:
        """Teleport deleted the request (its plugin data went with it): resolve what its key still opens."""
        with _pagerduty_trouble(request_id):
            for incident in await self.client.listing("/incidents", "incidents", {
                    "incident_key": incident_key(request_id), "statuses[]": list(OPEN)}):
                await self._resolve(str(incident["id"]), "The access request was deleted or expired in Teleport.")

    async def _keep(self, request: AccessRequest, service: str, held: str, record: Record) -> None:
        key = KEY_PREFIX + service
        age = time.time() - record.at
        if record.by and record.by != self.process and age < self.claim_lease:
            raise Later(self.claim_lease - age + 1.0)
        current = replace(record, by=self.process, at=int(time.time()))
        await self._swap(request.id, key, held, current)
        try:
            if not current.incident:
                current = await self._record(request.id, key, current,
                                             replace(current, incident=await self._open(request, service)))
            for review in request.reviews[current.notes:]:
                await self._note(current.incident, note_text(review))
                current = await self._record(request.id, key, current, replace(current, notes=current.notes + 1))
            if request.state.resolved:
                outcome = "approved" if request.state is RequestState.APPROVED else "denied"
                await self._resolve(current.incident, f"The access request was {outcome} in Teleport.")
                current = await self._record(request.id, key, current, replace(current, resolved=True))
        finally:
            await self._give_back(request.id, key, current)

    async def _open(self, request: AccessRequest, service: str) -> str:
        """The open incident for this request on `service`: found by its key, or created."""
        key = incident_key(request.id)
        found = await self.client.listing("/incidents", "incidents", {"incident_key": key, "service_ids[]": [service],
                                                                      "statuses[]": list(OPEN)})
        if found:
            return str(found[0]["id"])
        roles = ", ".join(request.roles)
        link = web_link(self.web_proxy_addr, request.id)
        details = "\n".join(line for line in (
            f"{request.user} requests {roles}.", f"Reason: {request.reason or 'no reason given'}",
            f"Request ID: {request.id}",
            f"Review in Teleport: {link}" if link else "",
            'Write a note "approve [reason]" or "deny <reason>" to decide from PagerDuty.') if line)
        body = {"incident": {"type": "incident", "title": f"Access request: {request.user} requests {roles}"[:250],
                             "service": {"id": service, "type": "service_reference"}, "incident_key": key,
                             "body": {"type": "incident_body", "details": details[:4000]}}}
        created = await self.client.post("/incidents", body)
        incident = str(created["incident"]["id"])
        logger.info("request %s: opened PagerDuty incident %s on service %s", request.id, incident, service,
                    extra={"request_id": request.id})
        return incident

    async def _note(self, incident: str, text: str) -> None:
        await self.client.post(f"/incidents/{incident}/notes", {"note": {"content": text}})

    async def _resolve(self, incident: str, text: str) -> None:
        try:
            await self._note(incident, text)
        except PagerDutyRefused as err:
            logger.warning("cannot add the outcome note to PagerDuty incident %s: %s", incident, err)
        await self.client.put(f"/incidents/{incident}", {"incident": {"type": "incident_reference",
                                                                      "status": "resolved"}})

    async def _record(self, request_id: str, key: str, held: Record, new: Record) -> Record:
        await self._swap(request_id, key, held.dump(), new)
        return new

    async def _give_back(self, request_id: str, key: str, held: Record) -> None:
        try:
            await self._swap(request_id, key, held.dump(), replace(held, by="", at=0))
        except (Later, BackendError) as err:  # the claim then lapses after its lease; the work is recorded
            logger.warning("request %s: cannot release the PagerDuty claim (%r)", request_id, err)

    async def _swap(self, request_id: str, key: str, held: str, new: Record) -> None:
        try:
            await self.data.update_plugin_data(request_id, set={key: new.dump()}, expect={key: held})
        except CompareFailed:
            raise Later(1.0) from None  # another process changed it a moment ago: look again
