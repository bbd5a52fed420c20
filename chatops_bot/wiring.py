"""Settings -> the objects the bot runs on: the Teleport client, the directory, the command context."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from chatops_bot.adapters.base import ChatAdapter
from chatops_bot.config import Settings
from chatops_bot.directory import TeleportDirectory
from chatops_bot.mirror import MirroredBackend, RequestMirror
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from chatops_bot.timer import REAL_TIME, Timer
from commands.context import CommandConfig, Context
from commands.ports import CardDetail, RequestGate

# How old the users and roles that read-only commands (list, show) see may be; reviews load them fresh.
RECENT_SECONDS = 5.0


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def teleport_client(settings: Settings, *, timer: Timer = REAL_TIME) -> TeleportClient:
    t = settings.teleport
    source = IdentitySource(
        identity_file=str(t.identity_file or ""),
        key_file=str(t.client_key_file or ""),
        cert_file=str(t.client_cert_file or ""),
        cas_file=str(t.root_cas_file or ""),
    )
    return TeleportClient(t.addr, source, timeout=t.timeout.total_seconds(), plugin_name=t.plugin_name,
                          timer=timer)


def directory(settings: Settings, client: TeleportClient) -> TeleportDirectory:
    users = settings.users
    return TeleportDirectory(
        client,
        traits={"slack": users.slack_user_id_trait, "mattermost": users.mattermost_user_id_trait},
        user_map=dict(users.map),
        match_email=users.match_email,
    )


def command_context(
    settings: Settings,
    client: TeleportClient,
    people: TeleportDirectory | None = None,
    mirror: RequestMirror | None = None,
    gates: Sequence[RequestGate] = (),
    details: Sequence[CardDetail] = (),
) -> Context:
    """`mirror`, when the watcher runs beside the commands: their listing then comes from its copy;
    `gates`, the integrations' checks a request must pass before it is created; `details`, what they add
    to request cards."""
    config = CommandConfig(
        review_mode=settings.review.mode,
        web_only_roles=frozenset(settings.review.web_only_roles),
        web_proxy_addr=settings.teleport.web_proxy_addr or "",
        deny_reason_required=settings.review.deny_reason_required,
        review_rules=settings.review.review_rules(),
    )
    people = people or directory(settings, client)
    backend = client if mirror is None else MirroredBackend(client, mirror)
    recent = MirroredBackend(client, mirror, ttl=RECENT_SECONDS)
    return Context(backend=backend, directory=people, clock=SystemClock(), config=config, recent=recent,
                   gates=tuple(gates), details=tuple(details))


def chat_adapters(settings: Settings, ctx: Context, *, timer: Timer = REAL_TIME) -> list[ChatAdapter]:
    """An adapter for every platform section present in the config; `timer` keeps their retries' waits."""
    adapters: list[ChatAdapter] = []
    if settings.slack is not None:
        from chatops_bot.adapters import slack

        adapters.append(slack.build(settings, ctx, timer=timer))
    if settings.mattermost is not None:
        from chatops_bot.adapters import mattermost

        adapters.append(mattermost.build(settings, ctx, timer=timer))
    return adapters
