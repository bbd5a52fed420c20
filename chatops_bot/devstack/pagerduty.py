"""An honest stand-in for PagerDuty's REST API v2 and its v3 webhooks on loopback: who is on call, when.

Point the bot's PagerDuty client at `await pagerduty.start()`. It mirrors these pages of PagerDuty's
developer documentation (developer.pagerduty.com):
- "Authentication" (REST API): `Authorization: Token token=<key>`; anything else is HTTP 401.
- "Pagination" (classic): `offset`/`limit` in, `offset`, `limit`, `more` and `total` (null unless
  `total=true`) out; `limit` defaults to 25 and is capped at 100.
- "List all of the on-calls" (`GET /oncalls`): filters `schedule_ids[]`, `escalation_policy_ids[]`,
  `user_ids[]`, `earliest`; one entry per (escalation policy, level, target) with `escalation_level`
  counted from 1, `schedule` null for a user targeted directly, `start`/`end` null for those.
  On-calls exist only through escalation policies: a schedule no policy targets has none.
- "List users" (`query` matches name or e-mail), "Get a user", "List schedules", "List escalation
  policies" (`escalation_rules` with `targets`), "List services", and their "Get" pages.
- "Create an Incident" (`POST /incidents`): an account token must name the acting user in a `From`
  header (an e-mail of a user of the account), else HTTP 400; `incident_key` deduplicates against open
  incidents of the same service. "Update an Incident" (`PUT`), "Create a Note" (`POST …/notes`),
  "List notes", "List incidents" (`statuses[]`, `service_ids[]`, `incident_key`).
- "Rate Limiting": HTTP 429; this stand-in also sends `Retry-After` (seconds) when a test injects one.
- "Webhooks Overview" and "Verifying Signatures" (v3): a JSON body `{"event": {id, event_type,
  resource_type, occurred_at, agent, client, data}}`, signed `X-PagerDuty-Signature: v1=<hex
  HMAC-SHA256 of the raw body>`, one `v1=` per secret while a secret is being rotated (comma-separated),
  with `X-Webhook-Id`, `X-Webhook-Subscription` and `User-Agent: PagerDuty-Webhook/V3.0`.

Choices where the documentation is silent (UNCONFIRMED, kept here so they are easy to revisit): the
`error.code`/`message` numbers and wording of 400/401/404/429 answers; the 400 a second open incident
with the same `incident_key` gets; which agent a note written through the REST API carries (the `From`
user's reference, as for one written in the web app). Simplified on purpose: `/oncalls` ignores `since` and
`until` and always answers for now (PagerDuty's default when they are left out, which is how the bot asks);
escalation levels are whole (no delays or loops); a schedule is a list of shifts, not layers.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatops_bot.devstack.loopback import LoopbackServer

TOKEN = "devstack-pagerduty-token"
WEBHOOK_SECRET = "devstack-pagerduty-webhook-secret"
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
HTML = "https://devstack.pagerduty.com"


@dataclass(frozen=True)
class PdUser:
    id: str
    name: str
    email: str


@dataclass(frozen=True)
class Shift:
    """`user` is on call for the schedule from `start` (inclusive) to `end` (exclusive)."""

    user: str
    start: datetime
    end: datetime


@dataclass
class Schedule:
    id: str
    name: str
    shifts: list[Shift] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A user (`kind="user"`) or a schedule (`kind="schedule"`) an escalation level pages."""

    kind: str
    id: str


@dataclass
class EscalationPolicy:
    id: str
    name: str
    levels: list[list[Target]]  # levels[0] is escalation level 1


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    policy: str


@dataclass
class Incident:
    id: str
    number: int
    title: str
    service: str
    incident_key: str
    status: str
    created_at: datetime
    body: str = ""
    notes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Delivery:
    """One webhook POST the stand-in made and the status it got (0: no answer)."""

    event: dict[str, Any]
    status: int


OnCallEntry = tuple[EscalationPolicy, int, Schedule | None, PdUser, Shift | None]


class PagerDutyError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: Sequence[str] = (),
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, list(errors)
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "code": self.code, "errors": self.errors}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DevPagerDuty:
    """One PagerDuty account: people, schedules, escalation policies, services and incidents."""

    def __init__(self, *, token: str = TOKEN, account_token: bool = True,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """`account_token`: the token is an account's (incident writes need `From`), not a user's.
        `clock`: PagerDuty's now, which decides who is on call and how old a webhook event is."""
        self.token, self.account_token, self.clock = token, account_token, clock
        self.users: dict[str, PdUser] = {}
        self.schedules: dict[str, Schedule] = {}
        self.policies: dict[str, EscalationPolicy] = {}
        self.services: dict[str, Service] = {}
        self.incidents: dict[str, Incident] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every authenticated call
        self.deliveries: list[Delivery] = []
        self.webhook_url = ""
        self.webhook_secrets: list[str] = [WEBHOOK_SECRET]
        self.subscription_id = "PSUBDEV"
        self._rate_limited: list[int] = []  # Retry-After of each call still to refuse with 429
        self._down = False
        self._serial = itertools.count(1)
        self._tasks: set[asyncio.Task[int]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.root_url = ""
        route = Route
        self.app = Starlette(routes=[
            route("/users", self._list_of("users", lambda: self.users.values(), self._user)),
            route("/users/{id}", self._get_one("user", self.users, self._user)),
            route("/schedules", self._list_of("schedules", lambda: self.schedules.values(), self._schedule)),
            route("/schedules/{id}", self._get_one("schedule", self.schedules, self._schedule)),
            route("/escalation_policies", self._list_of("escalation_policies",
                                                        lambda: self.policies.values(), self._policy)),
            route("/escalation_policies/{id}", self._get_one("escalation_policy", self.policies, self._policy)),
            route("/services", self._list_of("services", lambda: self.services.values(), self._service)),
            route("/services/{id}", self._get_one("service", self.services, self._service)),
            route("/oncalls", self._api(self._oncalls)),
            route("/incidents", self._api(self._incidents), methods=["GET", "POST"]),
            route("/incidents/{id}", self._api(self._incident), methods=["GET", "PUT"]),
            route("/incidents/{id}/notes", self._api(self._notes), methods=["GET", "POST"]),
        ])
        self._loopback = LoopbackServer(self.app)

    # -- the account, as a test or the demo sets it up -----------------------------------------------

    def add_user(self, id: str, name: str, email: str) -> PdUser:
        self.users[id] = user = PdUser(id, name, email)
        return user

    def add_schedule(self, id: str, name: str, shifts: Iterable[Shift] = ()) -> Schedule:
        self.schedules[id] = schedule = Schedule(id, name, list(shifts))
        return schedule

    def add_policy(self, id: str, name: str, levels: Iterable[Iterable[Target]]) -> EscalationPolicy:
        self.policies[id] = policy = EscalationPolicy(id, name, [list(level) for level in levels])
        return policy

    def add_service(self, id: str, name: str, policy: str) -> Service:
        self.services[id] = service = Service(id, name, policy)
        return service

    def rate_limit(self, times: int = 1, *, retry_after: int = 1) -> None:
        """The next `times` calls answer 429 with `Retry-After: retry_after`."""
        self._rate_limited.extend([retry_after] * times)

    def go_down(self, down: bool = True) -> None:
        """Every call answers 503 until `go_down(False)`."""
        self._down = down

    def on_call(self, at: datetime | None = None) -> list[OnCallEntry]:
        """Every on-call at `at` (now): (policy, level from 1, schedule or None, user, shift or None)."""
        moment = at or self.clock()
        found: list[OnCallEntry] = []
        for policy in self.policies.values():
            for level, targets in enumerate(policy.levels, start=1):
                for target in targets:
                    if target.kind == "user" and target.id in self.users:
                        found.append((policy, level, None, self.users[target.id], None))
                    elif target.kind == "schedule" and target.id in self.schedules:
                        schedule = self.schedules[target.id]
                        for shift in schedule.shifts:
                            if shift.start <= moment < shift.end and shift.user in self.users:
                                found.append((policy, level, schedule, self.users[shift.user], shift))
        return found

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host:port` (0 picks a free port); returns the REST API base URL."""
        bound = await self._loopback.start(host, port)
        self.root_url = f"http://{host}:{bound}"
        return self.root_url

    async def stop(self) -> None:
        await self.settled()
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._loopback.stop()

    async def settled(self) -> None:
        """Returns once every webhook delivery under way has been answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- webhooks -------------------------------------------------------------------------------------

    def subscribe(self, url: str, secrets: Sequence[str] = (WEBHOOK_SECRET,)) -> None:
        """A v3 webhook subscription to `url`; each event is signed with every secret (rotation)."""
        self.webhook_url, self.webhook_secrets = url, list(secrets)

    def event(self, event_type: str, data: dict[str, Any], agent: PdUser | None,
              occurred_at: datetime | None = None) -> dict[str, Any]:
        """A v3 webhook event as PagerDuty words it."""
        return {"event": {
            "id": str(uuid.uuid4()), "event_type": event_type, "resource_type": event_type.split(".")[0],
            "occurred_at": _iso(occurred_at or self.clock()),
            "agent": None if agent is None else self._ref("user", agent.id, agent.name),
            "client": None, "data": data,
        }}

    def signed(self, body: bytes, secrets: Sequence[str] | None = None) -> dict[str, str]:
        """The headers PagerDuty sends with `body`."""
        signatures = ",".join(
            "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            for secret in (self.webhook_secrets if secrets is None else secrets))
        return {"Content-Type": "application/json", "User-Agent": "PagerDuty-Webhook/V3.0",
                "X-Webhook-Id": str(uuid.uuid4()), "X-Webhook-Subscription": self.subscription_id,
                "X-PagerDuty-Signature": signatures}

    async def deliver(self, body: bytes, headers: dict[str, str] | None = None) -> int:
        """POST `body` to the subscription (signed, unless `headers` says otherwise); returns the status."""
        if not self.webhook_url:
            return 0
        if self._session is None:
            self._session = aiohttp.ClientSession()
        event = json.loads(body)
        try:
            async with self._session.post(self.webhook_url, data=body,
                                          headers=self.signed(body) if headers is None else headers,
                                          timeout=aiohttp.ClientTimeout(total=10)) as answer:
                status = answer.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        self.deliveries.append(Delivery(event, status))
        return status

    def _emit(self, event: dict[str, Any]) -> None:
        if not self.webhook_url:
            return
        task = asyncio.create_task(self.deliver(json.dumps(event).encode()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def write_note(self, incident_id: str, user_id: str, content: str) -> int:
        """A responder writes a note on an incident in the web or mobile app: PagerDuty records it and
        sends `incident.annotated` with that responder as the agent. Returns the webhook's status."""
        incident, user = self.incidents[incident_id], self.users[user_id]
        note = self._add_note(incident, user, content)
        return await self.deliver(json.dumps(self._annotated(incident, user, note)).encode())

    # -- HTTP -----------------------------------------------------------------------------------------

    def _api(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                self._admit(request)
                status, body = await handler(request)
            except PagerDutyError as err:
                return err.response()
            return JSONResponse(body, status_code=status)

        return endpoint

    def _admit(self, request: Request) -> None:
        if request.headers.get("Authorization", "") != f"Token token={self.token}":
            raise PagerDutyError(401, 2006, "Unauthorized")
        self.requests.append((request.method, request.url.path))
        if self._down:
            raise PagerDutyError(503, 2000, "Service Unavailable")
        if self._rate_limited:
            retry_after = self._rate_limited.pop(0)
            raise PagerDutyError(429, 2020, "Rate Limit Exceeded", headers={"Retry-After": str(retry_after)})

    def _list_of(self, name: str, items: Callable[[], Iterable[Any]],
                 render: Callable[[Any], dict[str, Any]]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> tuple[int, dict[str, Any]]:
            query = request.query_params.get("query", "").lower()
            rendered = [render(item) for item in items()]
            if query:
                rendered = [item for item in rendered
                            if query in item.get("name", "").lower() or query in item.get("email", "").lower()]
            return 200, _page(request, name, rendered)

        return self._api(handler)

    def _get_one(self, name: str, table: dict[str, Any],
                 render: Callable[[Any], dict[str, Any]]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> tuple[int, dict[str, Any]]:
            item = table.get(request.path_params["id"])
            if item is None:
                raise PagerDutyError(404, 2100, "Not Found")
            return 200, {name: render(item)}

        return self._api(handler)

    async def _oncalls(self, request: Request) -> tuple[int, dict[str, Any]]:
        wanted = {key: set(request.query_params.getlist(f"{key}[]"))
                  for key in ("schedule_ids", "escalation_policy_ids", "user_ids")}
        entries, seen = [], set()
        for policy, level, schedule, user, shift in self.on_call():
            if wanted["escalation_policy_ids"] and policy.id not in wanted["escalation_policy_ids"]:
                continue
            if wanted["schedule_ids"] and (schedule is None or schedule.id not in wanted["schedule_ids"]):
                continue
            if wanted["user_ids"] and user.id not in wanted["user_ids"]:
                continue
            if request.query_params.get("earliest") == "true":
                key = (policy.id, level, user.id)
                if key in seen:
                    continue
                seen.add(key)
            entries.append({
                "escalation_policy": self._ref("escalation_policy", policy.id, policy.name),
                "escalation_level": level,
                "schedule": None if schedule is None else self._ref("schedule", schedule.id, schedule.name),
                "user": self._ref("user", user.id, user.name),
                "start": _iso(shift.start if shift else None), "end": _iso(shift.end if shift else None),
            })
        return 200, _page(request, "oncalls", entries)

    async def _incidents(self, request: Request) -> tuple[int, dict[str, Any]]:
        if request.method == "POST":
            return await self._create_incident(request)
        statuses = set(request.query_params.getlist("statuses[]"))
        services = set(request.query_params.getlist("service_ids[]"))
        key = request.query_params.get("incident_key")
        found = [self._incident_body(i) for i in self.incidents.values()
                 if (not statuses or i.status in statuses) and (not services or i.service in services)
                 and (key is None or i.incident_key == key)]
        return 200, _page(request, "incidents", found)

    async def _create_incident(self, request: Request) -> tuple[int, dict[str, Any]]:
        agent = self._from(request)
        spec = (await _json(request)).get("incident")
        if not isinstance(spec, dict) or spec.get("type") != "incident" or not spec.get("title"):
            raise PagerDutyError(400, 2001, "Invalid Input Provided", ["Incident must have a type and a title."])
        service = self.services.get((spec.get("service") or {}).get("id", ""))
        if service is None:
            raise PagerDutyError(400, 2001, "Invalid Input Provided", ["Service not found."])
        key = str(spec.get("incident_key") or "")
        if key and any(i.incident_key == key and i.service == service.id and i.status != "resolved"
                       for i in self.incidents.values()):
            raise PagerDutyError(400, 2001, "Invalid Input Provided",
                                 [f"Open incident with key '{key}' already exists on this service."])
        number = next(self._serial)
        incident = Incident(id=f"PINC{number:03d}", number=number, title=str(spec["title"]), service=service.id,
                            incident_key=key or uuid.uuid4().hex, status="triggered", created_at=self.clock(),
                            body=str((spec.get("body") or {}).get("details", "")))
        self.incidents[incident.id] = incident
        self._emit(self.event("incident.triggered", self._incident_body(incident), agent))
        return 201, {"incident": self._incident_body(incident)}

    async def _incident(self, request: Request) -> tuple[int, dict[str, Any]]:
        incident = self._find_incident(request)
        if request.method == "PUT":
            agent = self._from(request)
            status = ((await _json(request)).get("incident") or {}).get("status")
            if status not in ("acknowledged", "resolved"):
                raise PagerDutyError(400, 2001, "Invalid Input Provided", ["Status is invalid."])
            if incident.status != "resolved" and incident.status != status:
                incident.status = status
                self._emit(self.event(f"incident.{status}", self._incident_body(incident), agent))
        return 200, {"incident": self._incident_body(incident)}

    async def _notes(self, request: Request) -> tuple[int, dict[str, Any]]:
        incident = self._find_incident(request)
        if request.method == "GET":
            return 200, {"notes": list(incident.notes)}
        agent = self._from(request)
        content = ((await _json(request)).get("note") or {}).get("content")
        if not isinstance(content, str) or not content:
            raise PagerDutyError(400, 2001, "Invalid Input Provided", ["Note content is required."])
        if agent is None:
            raise PagerDutyError(400, 2001, "Invalid Input Provided", ["A note needs a user."])
        note = self._add_note(incident, agent, content)
        self._emit(self._annotated(incident, agent, note))
        return 201, {"note": note}

    def _from(self, request: Request) -> PdUser | None:
        """The acting user an incident write names in `From`; an account token must name one."""
        sender = request.headers.get("From", "").strip().lower()
        user = next((u for u in self.users.values() if u.email.lower() == sender), None)
        if self.account_token and user is None:
            raise PagerDutyError(400, 2001, "Invalid Input Provided", [
                "A valid 'From' header (the e-mail of a user in this account) is required with an account token."
                if sender else "The 'From' header is required when using an account-level API token."])
        return user

    def _find_incident(self, request: Request) -> Incident:
        incident = self.incidents.get(request.path_params["id"])
        if incident is None:
            raise PagerDutyError(404, 2100, "Not Found")
        return incident

    def _add_note(self, incident: Incident, user: PdUser, content: str) -> dict[str, Any]:
        note = {"id": f"PNOTE{secrets.token_hex(3).upper()}", "user": self._ref("user", user.id, user.name),
                "content": content, "created_at": _iso(self.clock())}
        incident.notes.append(note)
        return note

    def _annotated(self, incident: Incident, agent: PdUser, note: dict[str, Any]) -> dict[str, Any]:
        data = {"incident": self._ref("incident", incident.id, incident.title), "id": note["id"],
                "content": note["content"], "trimmed": False, "type": "incident_note"}
        return self.event("incident.annotated", data, agent)

    # -- PagerDuty's shapes ---------------------------------------------------------------------------

    def _ref(self, kind: str, id: str, summary: str) -> dict[str, Any]:
        plural = "escalation_policies" if kind == "escalation_policy" else f"{kind}s"
        return {"id": id, "type": f"{kind}_reference", "summary": summary,
                "self": f"{self.root_url}/{plural}/{id}", "html_url": f"{HTML}/{plural}/{id}"}

    def _object(self, kind: str, id: str, name: str, **fields: Any) -> dict[str, Any]:
        return {**self._ref(kind, id, name), "type": kind, "name": name, **fields}

    def _user(self, user: PdUser) -> dict[str, Any]:
        return self._object("user", user.id, user.name, email=user.email, time_zone="Etc/UTC", role="user")

    def _schedule(self, schedule: Schedule) -> dict[str, Any]:
        policies = [p for p in self.policies.values()
                    if any(t == Target("schedule", schedule.id) for level in p.levels for t in level)]
        users = sorted({s.user for s in schedule.shifts if s.user in self.users})
        return self._object("schedule", schedule.id, schedule.name, time_zone="Etc/UTC", description="",
                            escalation_policies=[self._ref("escalation_policy", p.id, p.name) for p in policies],
                            users=[self._ref("user", u, self.users[u].name) for u in users])

    def _policy(self, policy: EscalationPolicy) -> dict[str, Any]:
        rules = [{"id": f"{policy.id}R{level}", "escalation_delay_in_minutes": 30,
                  "targets": [self._target(t) for t in targets]}
                 for level, targets in enumerate(policy.levels, start=1)]
        services = [self._ref("service", s.id, s.name) for s in self.services.values() if s.policy == policy.id]
        return self._object("escalation_policy", policy.id, policy.name, escalation_rules=rules,
                            services=services, num_loops=0)

    def _target(self, target: Target) -> dict[str, Any]:
        table: dict[str, Any] = self.users if target.kind == "user" else self.schedules
        item = table.get(target.id)
        return self._ref(target.kind, target.id, item.name if item else target.id)

    def _service(self, service: Service) -> dict[str, Any]:
        policy = self.policies.get(service.policy)
        return self._object("service", service.id, service.name, status="active",
                            escalation_policy=self._ref("escalation_policy", service.policy,
                                                        policy.name if policy else service.policy))

    def _incident_body(self, incident: Incident) -> dict[str, Any]:
        service = self.services[incident.service]
        return {**self._ref("incident", incident.id, incident.title), "type": "incident",
                "incident_number": incident.number, "title": incident.title, "status": incident.status,
                "urgency": "high", "incident_key": incident.incident_key,
                "created_at": _iso(incident.created_at),
                "service": self._ref("service", service.id, service.name),
                "escalation_policy": self._ref("escalation_policy", service.policy, service.policy),
                "assignments": []}


def _page(request: Request, name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        raise PagerDutyError(400, 2001, "Invalid Input Provided", ["offset and limit must be integers."]) from None
    if offset < 0 or limit < 1:
        raise PagerDutyError(400, 2001, "Invalid Input Provided", ["offset and limit must be positive."])
    limit = min(limit, MAX_LIMIT)
    total = len(items) if request.query_params.get("total") == "true" else None
    return {name: items[offset:offset + limit], "offset": offset, "limit": limit,
            "more": offset + limit < len(items), "total": total}


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise PagerDutyError(400, 2001, "Invalid Input Provided", ["The body is not JSON."]) from None
    return body if isinstance(body, dict) else {}


def demo_account(pagerduty: DevPagerDuty, now: datetime) -> None:
    """The demo's account: alice is DBA primary (level 1) for the next 12 hours, bob DBA secondary (level
    2), carol on call for nothing; the Database service pages the DBA escalation policy."""
    for id, name in (("PALICE1", "alice"), ("PBOB001", "bob"), ("PCAROL1", "carol")):
        pagerduty.add_user(id, name.title(), f"{name}@example.com")
    pagerduty.add_user("PBOTUSR", "ChatOps Bot", "chatops-bot@example.com")
    pagerduty.add_schedule("P1X2Y3", "DBA primary", [Shift("PALICE1", now - timedelta(hours=1),
                                                           now + timedelta(hours=12))])
    pagerduty.add_schedule("P4Q5R6", "DBA secondary", [Shift("PBOB001", now - timedelta(hours=1),
                                                             now + timedelta(hours=12))])
    pagerduty.add_policy("PDBAEP1", "DBA", [[Target("schedule", "P1X2Y3")], [Target("schedule", "P4Q5R6")]])
    pagerduty.add_service("PDBSVC1", "Database", "PDBAEP1")


async def serve_forever(host: str, port: int, *, webhook_url: str = "") -> None:
    """`chatops-bot devstack pagerduty`: the demo account on `host:port` until interrupted."""
    pagerduty = DevPagerDuty()
    demo_account(pagerduty, datetime.now(UTC))
    url = await pagerduty.start(host, port)
    if webhook_url:
        pagerduty.subscribe(webhook_url)
    print(f"devstack PagerDuty serving on {url} (token {TOKEN!r}; alice is on call for DBA primary, "
          "schedule P1X2Y3, for 12 hours)", flush=True)
    if webhook_url:
        print(f"signed v3 webhooks go to {webhook_url} (secret {WEBHOOK_SECRET!r})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await pagerduty.stop()
