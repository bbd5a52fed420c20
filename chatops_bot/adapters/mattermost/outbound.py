"""The bot's calls to Mattermost's REST API through `mattermostautodriver.AsyncTypedDriver`, retried so
that nothing is dropped.

The driver already retries a 429 on every method (honouring `Retry-After` up to `retry_max_sleep`) and
502/503/504 on idempotent ones. It never retries a POST that failed with a 5xx, an HTML error page from
a proxy (`InvalidMattermostError`, not a `MattermostError`) or a lost connection, because the post may
have been created. Creating a post here is made idempotent instead: every attempt carries the same
`pending_post_id`, which Mattermost deduplicates for 30 seconds, so these failures are retried with
capped, jittered backoff until a time budget runs out, then logged as an error and raised. The budget and
the waits are kept on the outbound's `Timer` (real time but in the fault drills).
"""

from __future__ import annotations

import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote, urlsplit

import httpx
from mattermostautodriver import AsyncTypedDriver
from mattermostautodriver.exceptions import (
    InvalidMattermostError,
    MattermostError,
    NoAccessTokenProvided,
    NotEnoughPermissions,
    ResourceNotFound,
    TooManyRequests,
    UnknownMattermostError,
)

from chatops_bot import metrics
from chatops_bot.adapters.base import StartFailed
from chatops_bot.adapters.profiles import Profile
from chatops_bot.config import MattermostSettings
from chatops_bot.timer import REAL_TIME, Timer

logger = logging.getLogger(__name__)

T = TypeVar("T")
REQUEST_TIMEOUT = 10.0  # seconds per HTTP call; the driver's default (None) would wait forever
# The driver sleeps inside a call for a 429's Retry-After; keep that short so a command is never held up,
# and let `_retrying` wait longer where waiting is right (creating a post).
DRIVER_RETRY_MAX_SLEEP = 5


class StartError(StartFailed):
    """Mattermost cannot be used as configured; the message names the config key to fix."""


@dataclass(frozen=True)
class RetryPolicy:
    # Seconds for one post, under Mattermost's 30 s pending_post_id window, so a retry never duplicates.
    budget: float = 25.0
    first_delay: float = 0.5
    max_delay: float = 8.0
    # The driver's own retries inside each call: 429 always; 502-504 and lost connections on GET and PUT.
    driver_retries: int = 3


def driver_options(
    settings: MattermostSettings, *, timeout: float = REQUEST_TIMEOUT, retries: int = 3
) -> dict[str, Any]:
    """`mattermost.url` and the bot token as the driver wants them: scheme, host and port apart."""
    parts = urlsplit(settings.url)
    if parts.path.strip("/"):
        # The driver builds scheme://host:port + /api/v4/…; it has no way to add a path in between.
        raise StartError(f"mattermost.url: {settings.url} has a path; give the server's root URL")
    host = parts.hostname or ""
    return {
        "scheme": parts.scheme,
        "url": f"[{host}]" if ":" in host else host,
        "port": parts.port or (443 if parts.scheme == "https" else 80),
        "token": settings.bot_token.get_secret_value(),
        "request_timeout": timeout,
        "max_retries": retries,
        "retry_max_sleep": DRIVER_RETRY_MAX_SLEEP,
    }


class MattermostOutbound:
    """Posts, patches, DMs, users and dialogs, as the bot account. `login()` first."""

    def __init__(
        self, driver: AsyncTypedDriver, *, base_url: str, retry: RetryPolicy = RetryPolicy(),
        token_key: str = "mattermost.bot_token",
        timer: Timer = REAL_TIME,
    ) -> None:
        self.driver = driver
        self.base_url = base_url
        self.retry = retry
        self.token_key = token_key  # where the token came from, for error lines
        # Routed channels the bot cannot post in (not a member, cannot join): skipped, not retried forever.
        self.refused_channels: dict[str, str] = {}
        self.timer = timer
        self._direct_channels: dict[str, str] = {}
        # Every 429 is waited out and retried, by the driver or by `_retrying`: counted where it arrives.
        driver.client.client.event_hooks["response"].append(_count_rate_limited)

    @classmethod
    def from_settings(
        cls, settings: MattermostSettings, *, retry: RetryPolicy = RetryPolicy(), timer: Timer = REAL_TIME
    ) -> MattermostOutbound:
        driver = AsyncTypedDriver(driver_options(settings, retries=retry.driver_retries))
        return cls(driver, base_url=settings.url, retry=retry, timer=timer)

    @property
    def bot_user_id(self) -> str:
        return str(self.driver.client.userid)

    async def login(self) -> None:
        """`GET users/me` with the bot token; a refusal or no answer raises `StartError` naming the key."""
        try:
            await self.driver.login()
        except (NoAccessTokenProvided, NotEnoughPermissions) as err:
            raise StartError(
                f"{self.token_key}: Mattermost at {self.base_url} refused the token ({err}). Give the "
                "access token of a bot account (System Console > Integrations > Bot Accounts)."
            ) from None
        except (MattermostError, InvalidMattermostError) as err:
            status = getattr(err, "status_code", "?")
            raise StartError(
                f"mattermost.url: {self.base_url} answered {status} to GET users/me: {err}"
            ) from None
        except httpx.HTTPError as err:
            raise StartError(f"mattermost.url: cannot reach Mattermost at {self.base_url}: {err!r}") from None
        logger.info("logged in to Mattermost as %s (%s)", self.driver.client.username, self.bot_user_id)

    async def close(self) -> None:
        await self.driver.close()

    async def create_post(
        self, channel_id: str, message: str, *, props: dict[str, Any] | None = None, root_id: str = ""
    ) -> dict[str, Any]:
        """`POST posts`, retried until it lands; raises once the retry budget is spent (and logs it)."""
        options = {
            "channel_id": channel_id,
            "message": message,
            "props": props,
            "root_id": root_id or None,
            # Mattermost's own clients use `<user id>:<millis>`; uniqueness is what matters.
            "pending_post_id": f"{self.bot_user_id}:{time.time_ns() // 1_000_000}:{secrets.token_hex(4)}",
        }
        # Not `posts.create_post`: its typed signature has no `pending_post_id`.
        post = await self._retrying(
            f"POST posts in {channel_id}", lambda: self.driver.client.post("/api/v4/posts", options=options)
        )
        return cast(dict[str, Any], post)

    async def patch_post(
        self, post_id: str, *, message: str | None = None, props: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """`PUT posts/{id}/patch` (idempotent, so every transient failure is retried)."""
        # The generated hint types `props` as str; the server takes, and needs, an object.
        post = await self._retrying(
            f"PUT posts/{post_id}/patch",
            lambda: self.driver.posts.patch_post(post_id, message=message, props=cast(Any, props)),
        )
        return cast(dict[str, Any], post)

    async def direct_channel(self, user_id: str) -> str:
        """The ID of the bot's DM channel with this user (`POST channels/direct`, which is idempotent)."""
        if user_id not in self._direct_channels:
            channel = await self._retrying(
                f"POST channels/direct with {user_id}",
                lambda: self.driver.channels.create_direct_channel(options=[self.bot_user_id, user_id]),
            )
            self._direct_channels[user_id] = str(channel["id"])
        return self._direct_channels[user_id]

    async def direct_message(
        self, user_id: str, message: str, *, props: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.create_post(await self.direct_channel(user_id), message, props=props)

    async def user(self, user_id: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self.driver.users.get_user(user_id))

    async def profile(self, user_id: str) -> Profile:
        """`GET users/{id}`: e-mail (empty when the server hides it), user name and time zone, which is
        `automaticTimezone` when `useAutomaticTimezone` is "true" (the browser's), else `manualTimezone`."""
        user = await self.user(user_id)
        zone = user.get("timezone") if isinstance(user.get("timezone"), dict) else {}
        automatic = str(zone.get("useAutomaticTimezone", "true")).lower() == "true"
        tz = str(zone.get("automaticTimezone" if automatic else "manualTimezone") or "")
        return Profile(email=str(user.get("email") or ""), tz=tz, name=str(user.get("username") or ""))

    async def user_by_email(self, email: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], await self.driver.users.get_user_by_email(quote(email, safe="@")))
        except ResourceNotFound:
            return None

    async def client_config(self) -> dict[str, str]:
        """`GET config/client?format=old`: the settings every user may read (`ShowEmailAddress`, …)."""
        found = await self.driver.client.get("/api/v4/config/client", params={"format": "old"})
        return cast(dict[str, str], found)

    async def is_member(self, channel_id: str) -> bool:
        """Whether the bot is in the channel (`GET channels/{id}/members/me`; 403 or 404 when it is not)."""
        try:
            await self.driver.client.get(f"/api/v4/channels/{channel_id}/members/me")
        except (NotEnoughPermissions, ResourceNotFound):
            return False
        return True

    async def channel(self, channel_id: str) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], await self.driver.client.get(f"/api/v4/channels/{channel_id}"))
        except (NotEnoughPermissions, ResourceNotFound):
            return None

    async def channel_by_name(self, team_name: str, channel_name: str) -> dict[str, Any] | None:
        try:
            team = await self.driver.teams.get_team_by_name(team_name)
            found = await self.driver.channels.get_channel_by_name(team["id"], channel_name)
        except (NotEnoughPermissions, ResourceNotFound):
            return None
        return cast(dict[str, Any], found)

    async def join(self, channel_id: str) -> bool:
        """Join a channel (public ones only, on a default server); False when Mattermost refuses."""
        try:
            await self.driver.client.post(f"/api/v4/channels/{channel_id}/members",
                                          options={"user_id": self.bot_user_id})
        except (NotEnoughPermissions, ResourceNotFound):
            return False
        return True

    async def open_dialog(self, trigger_id: str, url: str, dialog: dict[str, Any]) -> None:
        # Not retried: a trigger ID is single-use and short-lived, and the person is waiting for the form.
        await self.driver.integration_actions.open_interactive_dialog(trigger_id, url, dialog)

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        started = self.timer.monotonic()
        attempt = 0
        while True:
            try:
                return await call()
            except Exception as err:
                wait = transient(err)
                if wait is None:
                    raise
                delay = wait or min(self.retry.max_delay, self.retry.first_delay * 2**attempt)
                delay *= 1 + random.random() / 4  # jitter, so replicas do not retry in step
                attempt += 1
                elapsed = self.timer.monotonic() - started
                if elapsed + delay > self.retry.budget:
                    logger.error("%s failed %d times in %.1f s; giving up: %r", what, attempt, elapsed, err)
                    raise
                logger.warning("%s failed (%r); retry %d in %.2f s", what, err, attempt, delay)
                await self.timer.sleep(delay)


async def _count_rate_limited(response: httpx.Response) -> None:
    if response.status_code == 429:
        metrics.RATE_LIMIT_RETRIES.labels("mattermost").inc()


def transient(err: BaseException) -> float | None:
    """None for a failure that a retry cannot fix; else how long the server asked us to wait (0: ours)."""
    if isinstance(err, TooManyRequests):
        return err.retry_after or 0.0
    if isinstance(err, (UnknownMattermostError, InvalidMattermostError)) and err.status_code >= 500:
        return 0.0
    if isinstance(err, httpx.TransportError):
        return 0.0
    return None
