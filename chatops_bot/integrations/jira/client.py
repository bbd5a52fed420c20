"""The bot's way to Jira: atlassian-python-api's `Jira` in a worker thread, with a deadline on every call and
429 `Retry-After` waits on the bot's `Timer`, turned into our own frozen `Ticket` and `JiraProblem`.

atlassian-python-api is synchronous (requests) and its own 429 handling sleeps in the calling thread with
`time.sleep`; both its retry paths are switched off here, so every wait is one the bot chooses, on a timer
tests and drills can quicken, and within the call's deadline. Jira Cloud signs in with Basic
`email:api_token`, Data Center with a Bearer personal access token; both through the REST API v2, whose text
bodies (comments, descriptions) need no Atlassian Document Format.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from atlassian import Jira

from chatops_bot.integrations.jira.settings import JiraSettings
from chatops_bot.timer import REAL_TIME, Timer

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A Retry-After with no number (or an HTTP date, which Jira does not send) waits this long.
DEFAULT_RETRY_AFTER = 5.0


class JiraProblem(Exception):
    """Jira could not answer usefully: unreachable, too slow, rate limiting past the deadline, or refusing
    the bot's credentials. The message is written for people and holds no secret."""


@dataclass(frozen=True)
class Ticket:
    """A Jira issue as the bot checks and shows it."""

    key: str
    summary: str
    status: str
    status_category: str  # new, indeterminate, done
    issue_type: str
    project: str
    assignee_email: str | None  # None: unassigned; "" assigned, but the e-mail is hidden from the bot
    assignee_name: str
    url: str


class JiraClient:
    def __init__(self, settings: JiraSettings, *, timer: Timer = REAL_TIME) -> None:
        self.base_url = settings.url.rstrip("/")
        self.deadline = settings.timeout.total_seconds()
        self.timer = timer
        # The library's own timeout (whole seconds) bounds the worker thread; `_request` keeps the deadline.
        common: dict[str, Any] = {"url": self.base_url, "api_version": "2",
                                  "timeout": max(1, math.ceil(self.deadline)),
                                  "backoff_and_retry": False, "retry_with_header": False}
        if settings.deployment == "cloud":
            assert settings.email and settings.api_token
            self._jira = Jira(username=settings.email, password=settings.api_token.get_secret_value(),
                              cloud=True, **common)
        else:
            assert settings.personal_access_token
            self._jira = Jira(token=settings.personal_access_token.get_secret_value(), **common)

    def close(self) -> None:
        self._jira.close()

    def browse_url(self, key: str) -> str:
        return f"{self.base_url}/browse/{key}"

    async def ticket(self, key: str) -> Ticket | None:
        """The issue with this key, or None when it does not exist or the bot may not see it (Jira answers
        both alike); raises `JiraProblem`."""
        found = await self._request(f"read {key}", lambda: self._jira.get_issue(
            key, fields="summary,status,issuetype,project,assignee"), missing_ok=True)
        return None if found is None else self._ticket(found)

    async def myself(self) -> dict[str, Any]:
        return await self._request("sign in", self._jira.myself)  # type: ignore[no-any-return]

    async def project(self, key: str) -> dict[str, Any] | None:
        """The project, None when there is none with this key that the bot may see."""
        return await self._request(f"read project {key}", lambda: self._jira.get_project(key), missing_ok=True)

    async def project_statuses(self, key: str) -> dict[str, list[str]]:
        """Issue type -> the statuses its workflow has, in the project."""
        types = await self._request(f"read the statuses of {key}", lambda: self._jira.get(
            self._jira.resource_url(f"project/{key}/statuses")))
        return {t["name"]: [s["name"] for s in t.get("statuses", [])] for t in types or []}

    async def find_issue(self, project: str, label: str) -> str | None:
        """The key of the first issue in `project` with `label`, None when there is none."""
        jql = f'project = "{project}" AND labels = "{label}"'
        found = await self._request(f"search {project} for {label}", lambda: self._jira.jql(
            jql, fields="status", limit=1))
        issues = (found or {}).get("issues") or []
        return str(issues[0]["key"]) if issues else None

    async def create_issue(self, *, project: str, issue_type: str, summary: str, description: str,
                           labels: list[str]) -> str:
        """Create an issue; its key."""
        fields = {"project": {"key": project}, "issuetype": {"name": issue_type}, "summary": summary,
                  "description": description, "labels": labels}
        created = await self._request(f"create an issue in {project}", lambda: self._jira.create_issue(
            fields=fields))
        return str(created["key"])

    async def comment(self, key: str, text: str) -> None:
        await self._request(f"comment on {key}", lambda: self._jira.issue_add_comment(key, text))

    async def move_to(self, key: str, status: str) -> bool:
        """Transition the issue to `status` by the transition leading there; False when it is already
        there. Raises `JiraProblem` when no transition available now leads there."""
        ticket = await self.ticket(key)
        if ticket is not None and ticket.status == status:
            return False
        transitions = await self._request(f"read the transitions of {key}",
                                          lambda: self._jira.get_issue_transitions_full(key))
        target = next((t["id"] for t in (transitions or {}).get("transitions", [])
                       if (t.get("to") or {}).get("name") == status), None)
        if target is None:
            raise JiraProblem(f"no transition of {key} leads to {status!r} now")
        await self._request(f"move {key} to {status}",
                            lambda: self._jira.set_issue_status_by_transition_id(key, target))
        return True

    def _ticket(self, issue: dict[str, Any]) -> Ticket:
        fields = issue.get("fields") or {}
        status = fields.get("status") or {}
        assignee = fields.get("assignee")
        return Ticket(
            key=str(issue.get("key", "")),
            summary=str(fields.get("summary") or ""),
            status=str(status.get("name", "")),
            status_category=str((status.get("statusCategory") or {}).get("key", "")),
            issue_type=str((fields.get("issuetype") or {}).get("name", "")),
            project=str((fields.get("project") or {}).get("key", "")),
            assignee_email=None if assignee is None else str(assignee.get("emailAddress") or ""),
            assignee_name=str((assignee or {}).get("displayName") or ""),
            url=self.browse_url(str(issue.get("key", ""))),
        )

    async def _request(self, doing: str, call: Callable[[], T], *, missing_ok: bool = False) -> Any:
        """Run `call` in a thread; on 429 wait `Retry-After` on the timer and try again, all within the
        deadline. Past the deadline, or when a wait would end past it, raise `JiraProblem`."""
        start = self.timer.monotonic()
        while True:
            left = self.deadline - (self.timer.monotonic() - start)
            try:
                return await asyncio.wait_for(asyncio.to_thread(call), timeout=self.timer.real(max(left, 0.001)))
            except TimeoutError:
                raise JiraProblem(f"Jira did not answer within {_seconds(self.deadline)} (trying to {doing})") \
                    from None
            except requests.HTTPError as err:
                status = err.response.status_code if err.response is not None else 0
                if status == 404 and missing_ok:
                    return None
                if status == 429:
                    wait = _retry_after(err.response)
                    left = self.deadline - (self.timer.monotonic() - start)
                    if wait >= left:
                        raise JiraProblem(f"Jira is rate limiting the bot for {_seconds(wait)} "
                                          f"(trying to {doing})") from None
                    logger.info("Jira rate limit: waiting %s before trying to %s again", _seconds(wait), doing)
                    await self.timer.sleep(wait)
                    continue
                if status in (401, 403):
                    raise JiraProblem(f"Jira refused the bot's credentials (HTTP {status}, trying to {doing})") \
                        from None
                raise JiraProblem(f"Jira answered HTTP {status} (trying to {doing}): {_first_line(err)}") \
                    from None
            except requests.RequestException as err:
                raise JiraProblem(f"cannot reach Jira at {self.base_url} (trying to {doing}): "
                                  f"{type(err).__name__}") from None


def _retry_after(response: requests.Response | None) -> float:
    value = (response.headers.get("Retry-After", "") if response is not None else "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def _first_line(err: Exception) -> str:
    return (str(err).splitlines() or [""])[0][:200]
