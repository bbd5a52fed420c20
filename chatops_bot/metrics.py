"""Every Prometheus metric the bot exports, in one registry of its own, served at `GET /metrics`.

The registry is the bot's own rather than prometheus_client's global one, so that a library registering
metrics of its own cannot clash with these names and `/metrics` shows only what is listed here (plus the
process, platform and garbage-collector collectors). Label values come from small fixed sets (platform,
subcommand, outcome, RPC method), never from what people type.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from chatops_bot.notify import Outbound
    from commands.reply import RequestCard

REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

COMMANDS = Counter(
    "chatops_commands_total",
    "`/access` commands and clicks handled, by platform, subcommand and outcome: ok; usage (the text "
    "could not be parsed); refused (understood but not done: the bot's checks, Teleport or the request's "
    "state said no); unavailable (Teleport could not be reached); error (a bug: the person was shown an "
    "error id).",
    ["platform", "subcommand", "outcome"],
    registry=REGISTRY,
)
COMMAND_SECONDS = Histogram(
    "chatops_command_duration_seconds",
    "Time from a parsed `/access` line to its reply, Teleport calls included.",
    ["platform", "subcommand"],
    registry=REGISTRY,
)
TELEPORT_RPC_SECONDS = Histogram(
    "chatops_teleport_rpc_duration_seconds",
    "Teleport Auth gRPC calls by method and status code (OK, UNAVAILABLE, NOT_FOUND…); streams included.",
    ["method", "code"],
    registry=REGISTRY,
)
WATCHER_RECONNECTS = Counter(
    "chatops_watcher_reconnects_total",
    "Times the access-request event stream was lost and watched again.",
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "chatops_notifications_total",
    "Messages the notifier sent to a platform, by kind (post, update, thread, dm) and outcome (ok, failed). "
    "A failed one is retried by the watcher.",
    ["platform", "kind", "outcome"],
    registry=REGISTRY,
)
REMINDERS_SENT = Counter(
    "chatops_reminders_sent_total",
    "Reminders sent, by kind.",
    ["kind"],
    registry=REGISTRY,
)
RATE_LIMIT_RETRIES = Counter(
    "chatops_rate_limit_retries_total",
    "Calls to a chat platform answered with HTTP 429 (rate limited), each tried again after the wait the "
    "platform asked for while the retry budget lasts.",
    ["platform"],
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


T = TypeVar("T")


class CountedOutbound:
    """A platform's `notify.Outbound` whose every post, update, thread reply and DM is counted."""

    def __init__(self, inner: Outbound) -> None:
        self.inner = inner
        self.platform = inner.platform

    async def post_card(self, recipient: str, card: RequestCard) -> str:
        return await self._counted("post", self.inner.post_card(recipient, card))

    async def update_card(self, ref: str, card: RequestCard) -> None:
        await self._counted("update", self.inner.update_card(ref, card))

    async def reply_in_thread(self, ref: str, text: str) -> None:
        await self._counted("thread", self.inner.reply_in_thread(ref, text))

    async def dm(self, chat_user_id: str, text: str, card: RequestCard | None = None) -> str:
        return await self._counted("dm", self.inner.dm(chat_user_id, text, card))

    async def resolve_recipient(self, name: str) -> str | None:
        return await self.inner.resolve_recipient(name)

    async def time_zone(self, chat_user_id: str) -> str:
        return await self.inner.time_zone(chat_user_id)

    async def _counted(self, kind: str, call: Awaitable[T]) -> T:
        try:
            result = await call
        except Exception:
            NOTIFICATIONS.labels(self.platform, kind, "failed").inc()
            raise
        NOTIFICATIONS.labels(self.platform, kind, "ok").inc()
        return result
