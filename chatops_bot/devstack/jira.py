"""An honest stand-in for Jira's REST API (Cloud and Data Center) on loopback, with Jira's errors and limits.

It answers the shapes of the Jira platform REST API v2 and v3 that the bot uses, as documented by Atlassian:
- issues, `GET /rest/api/{2,3}/issue/{key}` and `POST …/issue` (developer.atlassian.com/cloud/jira/platform/
  rest/v3/api-group-issues/): `fields.summary`, `fields.status` with `statusCategory`, `fields.issuetype`,
  `fields.project`, `fields.assignee` (Cloud: `accountId`, `emailAddress` unless the user hides it; Data
  Center: `name`, `key`, `emailAddress`);
- transitions, `GET`/`POST …/issue/{key}/transitions` (the same page); comments, `…/issue/{key}/comment`
  (api-group-issue-comments; v2 bodies are text, v3 bodies Atlassian Document Format);
- `GET …/myself`, `GET …/project/{key}`, `GET …/project/{key}/statuses` (api-group-myself,
  api-group-projects), `GET …/serverInfo` (`deploymentType` "Cloud" or "Server");
- search with a JQL subset: clauses `field = value` and `field in (a, b)` joined by `AND`, fields project,
  key, status, issuetype, labels, assignee (`currentUser()` too) (api-group-issue-search): Data Center's
  `GET`/`POST …/search`, and Cloud's `GET`/`POST …/search/jql` (`nextPageToken`, `isLast`), Cloud having
  retired `…/search` for it (changelog CHANGE-2046): there it answers 410;
- authentication (developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/ and Data Center's
  "Using personal access tokens"): Cloud takes Basic `email:api_token`, Data Center a Bearer personal access
  token; anything else is 401. An issue the caller may not see is 404, exactly as a missing one;
- errors as `{"errorMessages": [...], "errors": {...}}`; rate limits as 429 with `Retry-After` in seconds
  (developer.atlassian.com/cloud/jira/platform/rate-limiting/), injected with `rate_limit`;
- admin webhooks with a secret (developer.atlassian.com/cloud/jira/platform/webhooks/): each event is POSTed
  as JSON (`webhookEvent` jira:issue_created, jira:issue_updated, comment_created) signed with
  `X-Hub-Signature: sha256=<HMAC-SHA256 of the body>`.

Choices where Jira is not ours to copy: one workflow for every project (To Do, In Progress, In Review, Done,
Won't Do), each status reachable from any other by a transition named after it; `hang()` holds every answer
until `release()` or `stop()`, to play a Jira that accepts connections and never answers.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatops_bot.devstack.loopback import LoopbackServer

CLOUD, DATA_CENTER = "cloud", "data_center"
# name -> (id, statusCategory key, statusCategory name)
STATUSES: dict[str, tuple[str, str, str]] = {
    "To Do": ("10000", "new", "To Do"),
    "In Progress": ("3", "indeterminate", "In Progress"),
    "In Review": ("10001", "indeterminate", "In Progress"),
    "Done": ("10002", "done", "Done"),
    "Won't Do": ("10003", "done", "Done"),
}
_TRANSITION_IDS = {name: str(11 + 10 * n) for n, name in enumerate(STATUSES)}
_CATEGORY_IDS = {"new": 2, "indeterminate": 4, "done": 3}


@dataclass(frozen=True)
class JiraUser:
    """A Jira account. Cloud signs in with `email` and `api_token`; Data Center with `pat`."""

    account_id: str
    name: str
    email: str
    display_name: str
    api_token: str = ""
    pat: str = ""
    email_visible: bool = True  # Cloud profile visibility: hidden e-mails are left out of answers


@dataclass(frozen=True)
class JiraProject:
    key: str
    name: str
    id: str
    issue_types: tuple[str, ...] = ("Task", "Incident", "Change")


@dataclass
class JiraIssue:
    id: str
    key: str
    project: str
    summary: str
    issue_type: str = "Task"
    status: str = "To Do"
    assignee: str = ""  # account_id
    labels: list[str] = field(default_factory=list)
    description: str = ""
    comments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str
    events: tuple[str, ...] = ("jira:issue_created", "jira:issue_updated", "comment_created")


DEFAULT_USERS = (
    JiraUser("5b10a2844c20165700ede21g", "jira-bot", "chatops-bot@example.com", "ChatOps Bot",
             api_token="devstack-jira-api-token", pat="devstack-jira-pat"),
    JiraUser("5b10ac8d82e05b22cc7d4ef5", "alice", "alice@example.com", "Alice Example"),
    JiraUser("5b109f2e9729b51b54dc274d", "bob", "bob@example.com", "Bob Example"),
)
DEFAULT_PROJECTS = (JiraProject("OPS", "Operations", "10000"), JiraProject("INC", "Incidents", "10001"),
                    JiraProject("MKT", "Marketing", "10002"))


class JiraApiError(Exception):
    def __init__(self, status: int, *messages: str, errors: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, messages)
        self.status, self.messages, self.errors, self.headers = status, list(messages), errors or {}, headers

    def response(self) -> JSONResponse:
        return JSONResponse({"errorMessages": self.messages, "errors": self.errors}, status_code=self.status,
                            headers=self.headers)


class DevJira:
    """Jira on loopback: `url = await jira.start()`, then point a client at `url`."""

    def __init__(self, *, deployment: str = CLOUD, users: Sequence[JiraUser] = DEFAULT_USERS,
                 projects: Sequence[JiraProject] = DEFAULT_PROJECTS) -> None:
        if deployment not in (CLOUD, DATA_CENTER):
            raise ValueError(f"deployment must be {CLOUD} or {DATA_CENTER}")
        self.deployment = deployment
        self.users = {u.account_id: u for u in users}
        self.projects = {p.key: p for p in projects}
        self.issues: dict[str, JiraIssue] = {}
        self.webhooks: list[Webhook] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) as received, for tests to count
        self._ids = itertools.count(10100)
        self._numbers: dict[str, itertools.count[int]] = {}
        self._limited: list[int] = []  # Retry-After seconds of the next 429s to answer
        self._answer = asyncio.Event()
        self._answer.set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._server = LoopbackServer(self._app())

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; returns the base URL (`http://127.0.0.1:PORT`)."""
        self.port = await self._server.start(host, port)
        self.url = f"http://{host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        self._answer.set()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        await self._server.stop()

    # -- what tests and the demo arrange ------------------------------------------------------------------
    def add_issue(self, project: str, summary: str, *, issue_type: str = "Task", status: str = "To Do",
                  assignee: str = "", labels: Sequence[str] = ()) -> JiraIssue:
        """An issue in `project`; `assignee` is a user name (`alice`) or "" for unassigned."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        number = next(self._numbers.setdefault(project, itertools.count(1)))
        issue = JiraIssue(str(next(self._ids)), f"{project}-{number}", project, summary, issue_type, status,
                          self.user_named(assignee).account_id if assignee else "", list(labels))
        self.issues[issue.key] = issue
        return issue

    def set_status(self, key: str, status: str, *, by: str = "jira-bot") -> None:
        """Move an issue as the user named `by` would in Jira; webhooks hear of it."""
        self._transition(self.issues[key], status, self.user_named(by))

    def rate_limit(self, *retry_after: int) -> None:
        """The next calls answer 429, each with its `Retry-After`."""
        self._limited.extend(retry_after)

    def hang(self) -> None:
        """Accept calls and answer none of them until `release()`."""
        self._answer.clear()

    def release(self) -> None:
        self._answer.set()

    def add_webhook(self, url: str, secret: str) -> None:
        self.webhooks.append(Webhook(url, secret))

    async def delivered(self) -> None:
        """Returns once every webhook delivery under way has been answered."""
        while self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)

    def api_token_auth(self, user: str = "jira-bot") -> tuple[str, str]:
        u = self.user_named(user)
        return (u.email, u.api_token)

    # -- the HTTP side ------------------------------------------------------------------------------------
    def _app(self) -> Starlette:
        routes: list[tuple[str, Any, list[str]]] = [
            ("/myself", self._myself, ["GET"]), ("/serverInfo", self._server_info, ["GET"]),
            ("/project/{key}", self._project, ["GET"]), ("/project/{key}/statuses", self._statuses, ["GET"]),
            ("/issue", self._create, ["POST"]), ("/issue/{key}", self._issue, ["GET"]),
            ("/issue/{key}/transitions", self._transitions, ["GET", "POST"]),
            ("/issue/{key}/comment", self._comments, ["GET", "POST"]), ("/search", self._search, ["GET", "POST"]),
            ("/search/jql", self._search_jql, ["GET", "POST"]),
        ]
        return Starlette(routes=[Route("/rest/api/{version:int}" + path, self._handler(call), methods=methods)
                                 for path, call, methods in routes])

    def _handler(self, call: Any) -> Any:
        async def handle(request: Request) -> Response:
            self.requests.append((request.method, request.url.path))
            await self._answer.wait()
            try:
                if request.path_params["version"] not in (2, 3):
                    raise JiraApiError(404, "Not found.")
                if self._limited:
                    seconds = self._limited.pop(0)
                    raise JiraApiError(429, "Rate limit exceeded.", headers={"Retry-After": str(seconds)})
                caller = self._authenticate(request)
                body = await request.json() if request.method == "POST" else {}
                answer = await call(request, caller, body)
            except JiraApiError as err:
                return err.response()
            except (ValueError, AttributeError, TypeError, KeyError):
                return JiraApiError(400, "The request body is not valid JSON for this resource.").response()
            return answer if isinstance(answer, Response) else JSONResponse(answer)

        return handle

    def _authenticate(self, request: Request) -> JiraUser:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        for user in self.users.values():
            if self.deployment == CLOUD and scheme == "Basic" and user.api_token:
                expected = base64.b64encode(f"{user.email}:{user.api_token}".encode()).decode()
                if hmac.compare_digest(credentials, expected):
                    return user
            if (self.deployment == DATA_CENTER and scheme == "Bearer" and user.pat
                    and hmac.compare_digest(credentials, user.pat)):
                return user
        raise JiraApiError(401, "You are not authenticated. Authentication required to perform this operation.")

    async def _myself(self, request: Request, caller: JiraUser, _body: Any) -> dict[str, Any]:
        return self._user_json(caller, request)

    async def _server_info(self, _request: Request, _caller: JiraUser, _body: Any) -> dict[str, Any]:
        return {"baseUrl": self.url, "version": "1001.0.0" if self.deployment == CLOUD else "10.3.4",
                "deploymentType": "Cloud" if self.deployment == CLOUD else "Server"}

    async def _project(self, request: Request, _caller: JiraUser, _body: Any) -> dict[str, Any]:
        project = self._project_named(request.path_params["key"])
        return {"id": project.id, "key": project.key, "name": project.name,
                "self": f"{self.url}/rest/api/2/project/{project.id}",
                "issueTypes": [{"id": str(10000 + n), "name": name, "subtask": False}
                               for n, name in enumerate(project.issue_types)]}

    async def _statuses(self, request: Request, _caller: JiraUser, _body: Any) -> list[dict[str, Any]]:
        project = self._project_named(request.path_params["key"])
        return [{"id": str(10000 + n), "name": name, "subtask": False,
                 "statuses": [self._status_json(s) for s in STATUSES]}
                for n, name in enumerate(project.issue_types)]

    async def _issue(self, request: Request, _caller: JiraUser, _body: Any) -> dict[str, Any]:
        return self._issue_json(self._issue_keyed(request.path_params["key"]), request)

    async def _create(self, request: Request, caller: JiraUser, body: dict[str, Any]) -> Response:
        fields = body.get("fields") or {}
        errors: dict[str, str] = {}
        project = self.projects.get(str((fields.get("project") or {}).get("key", "")))
        if project is None:
            errors["project"] = "Specify a valid project ID or key"
        issue_type = str((fields.get("issuetype") or {}).get("name", ""))
        if project is not None and issue_type not in project.issue_types:
            errors["issuetype"] = "Specify a valid issue type"
        if not str(fields.get("summary") or "").strip():
            errors["summary"] = "You must specify a summary of the issue."
        if errors:
            raise JiraApiError(400, errors=errors)
        assert project is not None
        issue = self.add_issue(project.key, str(fields["summary"]), issue_type=issue_type,
                               labels=[str(label) for label in fields.get("labels") or []])
        issue.description = _plain(fields.get("description"))
        self._notify("jira:issue_created", issue, caller)
        return JSONResponse({"id": issue.id, "key": issue.key, "self": f"{self.url}/rest/api/2/issue/{issue.id}"},
                            status_code=201)

    async def _transitions(self, request: Request, caller: JiraUser, body: dict[str, Any]) -> Any:
        issue = self._issue_keyed(request.path_params["key"])
        if request.method == "GET":
            return {"expand": "transitions", "transitions": [
                {"id": _TRANSITION_IDS[name], "name": name, "to": self._status_json(name),
                 "hasScreen": False, "isGlobal": True, "isInitial": False, "isConditional": False}
                for name in STATUSES if name != issue.status]}
        wanted = str((body.get("transition") or {}).get("id", ""))
        target = next((name for name, tid in _TRANSITION_IDS.items() if tid == wanted), None)
        if target is None or target == issue.status:
            raise JiraApiError(400, f"Transition id '{wanted}' is not valid for this issue.")
        self._transition(issue, target, caller)
        return Response(status_code=204)

    async def _comments(self, request: Request, caller: JiraUser, body: dict[str, Any]) -> Any:
        issue = self._issue_keyed(request.path_params["key"])
        v3 = request.path_params["version"] == 3
        if request.method == "GET":
            shown = [{**c, "body": _adf(c["body"]) if v3 else c["body"]} for c in issue.comments]
            return {"startAt": 0, "maxResults": len(shown), "total": len(shown), "comments": shown}
        text = _plain(body.get("body")) if v3 else body.get("body")
        if not isinstance(text, str) or not text.strip():
            raise JiraApiError(400, errors={"comment": "Comment body can not be empty!"})
        comment = {"id": str(next(self._ids)), "body": text, "author": self._user_json(caller, request)}
        issue.comments.append(comment)
        self._notify("comment_created", issue, caller, comment=comment)
        return JSONResponse({**comment, "body": _adf(text) if v3 else text}, status_code=201)

    async def _search(self, request: Request, caller: JiraUser, body: dict[str, Any]) -> dict[str, Any]:
        if self.deployment == CLOUD:
            raise JiraApiError(410, "The requested API has been removed. Please use /rest/api/3/search/jql.")
        found = self._found(request, caller, body)
        return {"startAt": 0, "maxResults": 50, "total": len(found),
                "issues": [self._issue_json(i, request) for i in found[:50]]}

    async def _search_jql(self, request: Request, caller: JiraUser, body: dict[str, Any]) -> dict[str, Any]:
        if self.deployment != CLOUD:
            raise JiraApiError(404, "Not found.")
        found = self._found(request, caller, body)
        return {"issues": [self._issue_json(i, request) for i in found[:50]], "isLast": len(found) <= 50}

    def _found(self, request: Request, caller: JiraUser, body: dict[str, Any]) -> list[JiraIssue]:
        jql = str(body.get("jql") if request.method == "POST" else request.query_params.get("jql", ""))
        return [i for i in self.issues.values() if _matches(jql, i, self, caller)]

    # -- shapes -------------------------------------------------------------------------------------------
    def _issue_json(self, issue: JiraIssue, request: Request) -> dict[str, Any]:
        project = self.projects[issue.project]
        assignee = self.users.get(issue.assignee)
        return {"id": issue.id, "key": issue.key, "self": f"{self.url}/rest/api/2/issue/{issue.id}", "fields": {
            "summary": issue.summary, "labels": issue.labels,
            "status": self._status_json(issue.status),
            "issuetype": {"id": str(10000 + project.issue_types.index(issue.issue_type)), "name": issue.issue_type},
            "project": {"id": project.id, "key": project.key, "name": project.name},
            "assignee": self._user_json(assignee, request) if assignee else None,
            "description": _adf(issue.description) if request.path_params["version"] == 3 else issue.description,
        }}

    def _status_json(self, name: str) -> dict[str, Any]:
        status_id, category, category_name = STATUSES[name]
        return {"id": status_id, "name": name, "statusCategory": {
            "id": _CATEGORY_IDS[category], "key": category, "name": category_name}}

    def _user_json(self, user: JiraUser, _request: Request | None = None) -> dict[str, Any]:
        shown: dict[str, Any] = {"displayName": user.display_name, "active": True}
        if self.deployment == CLOUD:
            shown["accountId"] = user.account_id
            if user.email_visible:
                shown["emailAddress"] = user.email
        else:
            shown.update(name=user.name, key=user.name, emailAddress=user.email)
        return shown

    # -- state --------------------------------------------------------------------------------------------
    def _transition(self, issue: JiraIssue, status: str, caller: JiraUser) -> None:
        before = issue.status
        issue.status = status
        self._notify("jira:issue_updated", issue, caller, changelog={"items": [
            {"field": "status", "fieldtype": "jira", "fromString": before, "toString": status}]})

    def _notify(self, event: str, issue: JiraIssue, caller: JiraUser, **extra: Any) -> None:
        for hook in self.webhooks:
            if event in hook.events:
                # Jira's `timestamp`: when the event happened, in epoch milliseconds.
                payload = {"timestamp": int(time.time() * 1000), "webhookEvent": event, "user": self._user_json(caller),
                           "issue": {"id": issue.id, "key": issue.key, "fields": {
                               "summary": issue.summary, "status": self._status_json(issue.status),
                               "labels": issue.labels, "project": {"key": issue.project}}}, **extra}
                task = asyncio.create_task(_deliver(hook, json.dumps(payload).encode()))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)

    def _issue_keyed(self, key: str) -> JiraIssue:
        issue = self.issues.get(key.upper())
        if issue is None:
            raise JiraApiError(404, "Issue does not exist or you do not have permission to see it.")
        return issue

    def _project_named(self, key: str) -> JiraProject:
        project = self.projects.get(key.upper())
        if project is None:
            raise JiraApiError(404, f"No project could be found with key '{key}'.")
        return project

    def user_named(self, name: str) -> JiraUser:
        return next(u for u in self.users.values() if u.name == name)


class ListenError(Exception):
    """The address to listen on is malformed or taken."""


def seed_demo(jira: DevJira) -> None:
    """The demo's tickets: OPS-1 is alice's and In Progress (a dba request citing it passes), OPS-2 is
    Done, OPS-3 is bob's, MKT-1 is in a project no rule names."""
    jira.add_issue("OPS", "Replica lag on the primary", issue_type="Incident", status="In Progress",
                   assignee="alice")
    jira.add_issue("OPS", "Disk full on db-2", issue_type="Incident", status="Done", assignee="alice")
    jira.add_issue("OPS", "Rotate the replication password", issue_type="Change", status="In Progress",
                   assignee="bob")
    jira.add_issue("MKT", "Launch page copy", status="In Progress", assignee="alice")


async def serve_forever(*, listen: str, deployment: str = CLOUD) -> None:
    """`chatops-bot devstack jira`: the demo tickets on `listen` until interrupted."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ListenError("must be host:port, e.g. 127.0.0.1:8081")
    jira = DevJira(deployment=deployment)
    seed_demo(jira)
    try:
        url = await jira.start(host, int(port))
    except (OSError, SystemExit) as err:
        raise ListenError(str(err) or "cannot listen there") from None
    bot = jira.user_named("jira-bot")
    how = (f"email {bot.email}, api_token {bot.api_token}" if deployment == CLOUD
           else f"personal_access_token {bot.pat}")
    print(f"devstack Jira ({deployment}) serving on {url} (sign in with {how}); "
          f"tickets: {', '.join(sorted(jira.issues))}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await jira.stop()


async def _deliver(hook: Webhook, body: bytes) -> None:
    signature = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": signature}
    try:
        async with aiohttp.ClientSession() as session, session.post(hook.url, data=body, headers=headers) as r:
            await r.read()
    except aiohttp.ClientError:
        pass  # Jira retries failed deliveries later; a stand-in drops them


def _adf(text: str) -> dict[str, Any]:
    """Plain text as Atlassian Document Format, one paragraph per line."""
    return {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": line}] if line else []}
        for line in text.split("\n")]}


def _plain(value: Any) -> str:
    """The text of a v2 string or a v3 ADF document."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("type") == "doc":
        return "\n".join("".join(node.get("text", "") for node in para.get("content", []))
                         for para in value.get("content", []))
    raise ValueError("not a document")


_CLAUSE = re.compile(r'\s*(\w+)\s*(=|in)\s*(\([^)]*\)|"[^"]*"|[^\s()]+)\s*', re.IGNORECASE)


def _matches(jql: str, issue: JiraIssue, jira: DevJira, caller: JiraUser) -> bool:
    """Whether `issue` satisfies a JQL query of `field = value` / `field in (…)` clauses joined by AND."""
    query = re.split(r"\s+ORDER\s+BY\s+", jql, flags=re.IGNORECASE)[0]
    for clause in (c for c in re.split(r"\s+AND\s+", query, flags=re.IGNORECASE) if c.strip()):
        found = _CLAUSE.fullmatch(clause)
        if found is None:
            raise JiraApiError(400, f"Error in the JQL Query: cannot read {clause.strip()!r}.")
        name, value = found.group(1).lower(), found.group(3)
        wanted = {v.strip().strip('"').lower() for v in value.strip("()").split(",")}
        assignee = jira.users.get(issue.assignee)
        have = {
            "project": {issue.project.lower()}, "key": {issue.key.lower()}, "status": {issue.status.lower()},
            "issuetype": {issue.issue_type.lower()}, "labels": {label.lower() for label in issue.labels},
            "assignee": {assignee.account_id.lower(), assignee.name.lower(), assignee.email.lower()}
            if assignee else set(),
        }.get(name)
        if have is None:
            raise JiraApiError(400, f"Field '{name}' does not exist or you do not have permission to view it.")
        if "currentuser()" in wanted:
            wanted = (wanted - {"currentuser()"}) | {caller.account_id.lower()}
        if not have & wanted:
            return False
    return True

