"""What the bot hears from Jira's webhook: decisions (a mirrored issue moved to the mirror's `approved` or
`denied` status becomes a review of its request by the Teleport user the Jira user is mapped to, through the
same command code as a chat click), and resolved tickets (the requester of each active access that cites the
ticket is told by DM, once, until when the access stays, or with `end_with_ticket` asked to drop it now).

Only a webhook the bot can verify is read: Jira signs each delivery of a webhook registered with a secret
with `X-Hub-Signature: sha256=<HMAC-SHA256 of the body>` (Cloud admin webhooks, and Data Center 10 and
later); anything unsigned or signed otherwise is answered 401 and nothing runs. The move is never taken as
the request's state: it becomes `/access approve ID` (or `deny`) typed by that person, so the reviewer check
and Teleport's own rules decide, as for a click in chat; when they refuse, the refusal is written on the
issue. A Jira user with no Teleport user (`jira.webhook.users`, else a Teleport user named as their e-mail)
decides nothing, and neither does the bot's own account moving the issue for an outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatops_bot.integrations.jira.client import JiraClient, JiraProblem
from chatops_bot.integrations.jira.gate import KEY
from chatops_bot.integrations.jira.mirror import LABEL
from chatops_bot.integrations.jira.settings import MirrorSettings
from chatops_bot.notify import Notifier
from chatops_bot.server import read_body
from chatops_bot.teleport.client import TeleportClient
from commands.context import Context
from commands.dispatch import dispatch
from commands.errors import CompareFailed, NotFound, UnknownUserError
from commands.messages import names, stamp
from commands.model import AccessRequest, ChatUser, RequestState
from commands.ports import AccessBackend
from commands.reply import Invocation

logger = logging.getLogger(__name__)

MAX_AGE = 300.0  # seconds a signed delivery stays acceptable; its body is remembered that long

PATH = "/jira/webhook"
PLATFORM = "jira"
MAX_BODY = 1 << 20
RESOLVED = "jira_resolved"  # plugin data: the ticket whose resolution the requester was told of


def signature_ok(secret: bytes, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


class JiraPeople:
    """The `commands.ports.Directory` for Jira users: `jira.webhook.users` (account ID on Cloud, user name on
    Data Center -> Teleport user), else the Teleport user named as the Jira user's e-mail."""

    def __init__(self, users: Mapping[str, str], teleport: AccessBackend) -> None:
        self.users, self.teleport = users, teleport

    async def teleport_user(self, chat_user: ChatUser) -> str:
        if chat_user.id in self.users:
            return self.users[chat_user.id]
        if chat_user.email:
            try:
                return (await self.teleport.get_user(chat_user.email)).name
            except NotFound:
                pass
        raise UnknownUserError(f"Jira user {chat_user.name or chat_user.id} is not linked to a Teleport user.")


class JiraWebhook:
    """The service (`routes`, `start`, `stop`, `why_not_ready`) serving `POST /jira/webhook`."""

    name = "jira webhook"

    def __init__(self, *, secret: bytes, mirror: MirrorSettings | None, ctx: Context, jira: JiraClient,
                 teleport: TeleportClient, end_with_ticket: bool = False) -> None:
        """`mirror`: decisions are read only with it (its statuses say what a move means)."""
        self.secret, self.mirror, self.ctx, self.jira = secret, mirror, ctx, jira
        self.teleport, self.end_with_ticket = teleport, end_with_ticket
        self.notifier: Notifier | None = None
        self._seen: dict[str, float] = {}  # digest of each accepted delivery -> when it happened (epoch s)

    def attach(self, notifier: Notifier) -> None:
        """The way to DM requesters, once it exists (it is built after the integrations)."""
        self.notifier = notifier

    def routes(self) -> Sequence[BaseRoute]:
        return [Route(PATH, self.receive, methods=["POST"])]

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def why_not_ready(self) -> str | None:
        return None

    async def receive(self, request: Request) -> Response:
        body = await read_body(request, MAX_BODY)  # no further than that, before anything is verified
        if body is None or not signature_ok(self.secret, body, request.headers.get("x-hub-signature", "")):
            logger.warning("refused a Jira webhook without a valid signature")
            return Response("invalid signature", status_code=401)
        try:
            event = json.loads(body)
        except ValueError:
            return Response("expected JSON", status_code=400)
        refused = self._stale_or_replayed(event, body)
        if refused:
            logger.warning("refused a signed Jira webhook: %s", refused)
            return Response(refused, status_code=409 if refused.startswith("a replay") else 400)
        if isinstance(event, dict) and event.get("webhookEvent") == "jira:issue_updated":
            moved_to = next((str(item.get("toString")) for item in (event.get("changelog") or {}).get("items", [])
                             if isinstance(item, dict) and item.get("field") == "status"), None)
            found = event.get("issue")
            issue: dict[str, Any] = found if isinstance(found, dict) else {}
            if moved_to is not None and self.mirror is not None:
                await self._decide(event, issue, moved_to, self.mirror)
            category = ((issue.get("fields") or {}).get("status") or {}).get("statusCategory") or {}
            mirrored = any(str(x).startswith(LABEL) for x in (issue.get("fields") or {}).get("labels") or [])
            if (moved_to is not None and category.get("key") == "done" and not mirrored
                    and KEY.fullmatch(str(issue.get("key")))):
                await self._resolved(str(issue["key"]))
        return Response(status_code=204)

    def _stale_or_replayed(self, event: Any, body: bytes) -> str:
        """Why a signed delivery is not acted on: its `timestamp` (epoch ms, signed with the body) more than
        `MAX_AGE` from now, or the same body accepted before (a replay); "" when it is fresh."""
        stamp = event.get("timestamp") if isinstance(event, dict) else None
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            return "no timestamp"
        now = time.time()
        if abs(now - stamp / 1000) > MAX_AGE:
            return "stale (more than 5 minutes from now)"
        self._seen = {digest: at for digest, at in self._seen.items() if now - at <= MAX_AGE}
        digest = hashlib.sha256(body).hexdigest()
        if digest in self._seen:
            return "a replay of a delivery already received"
        self._seen[digest] = stamp / 1000
        return ""

    async def _resolved(self, key: str) -> None:
        """Tell the requester of each active access citing `key`, once per request (claimed in plugin data
        before the DM goes out, so no restart or replica tells twice)."""
        if self.notifier is None:
            return
        now = self.ctx.clock.now()
        for request in await self.teleport.list_requests(state=RequestState.APPROVED):
            if key not in KEY.findall(request.reason) or not request.access_expires or request.access_expires <= now:
                continue
            try:
                await self.teleport.update_plugin_data(request.id, set={RESOLVED: key}, expect={RESOLVED: ""})
            except CompareFailed:
                continue  # told already
            await self.notifier.dm_requester(request, partial(self._resolved_text, key, request))
            logger.info("told %s that %s was resolved", request.user, key, extra={"request_id": request.id})

    def _resolved_text(self, key: str, request: AccessRequest, tz: str) -> str:
        """The DM, its time in the requester's zone `tz`."""
        assert request.access_expires is not None
        until = stamp(request.access_expires, tz)
        roles = names(request.roles)
        if self.end_with_ticket:
            return (f"{key} was resolved: please drop your {roles} access now (`tsh request drop {request.id}`, "
                    f"or switch back in the Web UI); otherwise it stays until {until}.")
        return f"{key} was resolved; your {roles} access stays until {until}."

    async def _decide(self, event: dict[str, Any], issue: dict[str, Any], moved_to: str,
                      mirror: MirrorSettings) -> None:
        verb = {mirror.approved: "approve", mirror.denied: "deny"}.get(moved_to)
        labels = (issue.get("fields") or {}).get("labels") or []
        request_ids = [str(x).removeprefix(LABEL) for x in labels if str(x).startswith(LABEL)]
        if verb is None or len(request_ids) != 1:
            return
        user = event.get("user") or {}
        actor = ChatUser(PLATFORM, str(user.get("accountId") or user.get("name") or ""),
                         str(user.get("displayName") or ""), str(user.get("emailAddress") or ""))
        key = str(issue.get("key", ""))
        try:
            await self.ctx.directory.teleport_user(actor)
        except UnknownUserError:
            # The bot's own account moving the issue for an outcome, or someone Jira lets move it who is no
            # Teleport user: either way, nothing to decide and nothing to say on the issue.
            logger.info("Jira move of %s by unlinked Jira user %s: ignored", key, actor.id)
            return
        invocation = Invocation(PLATFORM, actor, f"{verb} {request_ids[0]} moved to {moved_to} in Jira ({key})")
        reply = await dispatch(invocation, self.ctx)
        logger.info("Jira move of %s by %s: %s", key, actor.id, "reviewed" if reply.ok else "refused",
                    extra={"request_id": request_ids[0]})
        if not reply.ok:
            try:
                await self.jira.comment(key, f"Not {verb}d: {reply.text}")
            except JiraProblem as err:
                logger.warning("cannot comment the refusal on %s: %s", key, err)
