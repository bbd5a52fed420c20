"""One signed POST to a receiver, as the Standard Webhooks specification says, and what the receiver answered.

Headers: `webhook-id` (the event's, the same on every retry), `webhook-timestamp` (this attempt's, in
seconds since the epoch) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the
endpoint's `whsec_` secret; signed by the `standardwebhooks` package, so any Standard Webhooks verifier
accepts it. An answer is read up to `MAX_ANSWER` bytes, and never followed to another address.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from standardwebhooks import Webhook

MAX_ANSWER = 64 * 1024
USER_AGENT = "chatops-bot-webhooks/1"


@dataclass(frozen=True)
class Answer:
    """What came back: a status (None when nothing did: a timeout, a refused connection), the first
    `MAX_ANSWER` bytes of the body (`oversized` when there was more) and `Retry-After` in seconds."""

    status: int | None
    body: bytes = b""
    oversized: bool = False
    retry_after: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Worth another try: no answer, 408, 429 or 5xx. Any other refusal is the receiver's final word."""
        return self.status is None or self.status in (408, 429) or self.status >= 500

    def summary(self) -> str:
        """For the log and /readyz: `HTTP 503`, `no answer (timeout)`; never the body."""
        return f"HTTP {self.status}" if self.status is not None else f"no answer ({self.error})"


def retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def signed_headers(secret: str, webhook_id: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, timestamped `at` (now)."""
    stamp = datetime.fromtimestamp(int(at if at is not None else time.time()), tz=UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, stamp, body),
    }


class Sender:
    """Signed POSTs over one HTTP connection pool, made in the running event loop on first use."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, secret: str, webhook_id: str, body: bytes, *,
                   timeout: float | None = None) -> Answer:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        headers = {"content-type": "application/json", "user-agent": USER_AGENT,
                   **signed_headers(secret, webhook_id, body)}
        try:
            async with asyncio.timeout(timeout or self.timeout):
                async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as answer:
                    # To the end, or one byte past the limit: `read(n)` returns after the first chunk it gets.
                    content = b""
                    while len(content) <= MAX_ANSWER:
                        chunk = await answer.content.read(MAX_ANSWER + 1 - len(content))
                        if not chunk:
                            break
                        content += chunk
                    return Answer(answer.status, content[:MAX_ANSWER], len(content) > MAX_ANSWER,
                                  retry_after(answer.headers.get("retry-after"), time.time()))
        except TimeoutError:
            return Answer(None, error="timeout")
        except aiohttp.ClientConnectorError as err:
            return Answer(None, error=f"cannot connect: {err.os_error.strerror or 'refused'}")
        except aiohttp.ClientError as err:
            return Answer(None, error=type(err).__name__)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
