"""The bot's way to PagerDuty's REST API v2: token auth, every page of a listing, 429s waited out, a deadline.

Not PagerDuty's own `pagerduty` package (python-pagerduty 7.2): it is synchronous (httpx2) where the bot is
asyncio end to end; on a 429 it sleeps with `time.sleep` on a backoff of its own, ignoring `Retry-After`,
and retries without limit, so no call has a deadline and no test can quicken the wait; and it refuses a
base URL that is not `https://`, so it cannot reach the loopback stand-in. This client is small: GET with
classic pagination (`offset`/`limit`/`more`), POST and PUT with the `From` header incident writes need.

Errors, for callers to tell apart:

    PagerDutyError              anything that kept a call from an answer
    ├── PagerDutyUnavailable    no answer in time: network, 5xx, rate limited past the deadline
    └── PagerDutyRefused        PagerDuty answered no (4xx): `status` and PagerDuty's own `errors`
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from chatops_bot.timer import REAL_TIME, Timer

logger = logging.getLogger(__name__)

PAGE_SIZE = 100  # PagerDuty's largest page
MAX_PAGES = 100  # 10,000 items: PagerDuty's classic pagination stops there too
Params = Mapping[str, str | Sequence[str]]


class PagerDutyError(Exception):
    """A call that got no useful answer; the message says why (never the token)."""


class PagerDutyUnavailable(PagerDutyError):
    pass


class PagerDutyRefused(PagerDutyError):
    def __init__(self, message: str, status: int, errors: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status, self.errors = status, tuple(errors)


class PagerDutyClient:
    def __init__(self, base_url: str, token: str, *, from_email: str = "", deadline: float = 10.0,
                 timer: Timer = REAL_TIME) -> None:
        """`from_email`: the `From` header of incident writes (an account token's acting user).
        `deadline`: seconds one call may take in all, waits for rate limits included (on `timer`)."""
        self.base_url = base_url.rstrip("/")
        self.from_email, self.deadline, self.timer = from_email, deadline, timer
        self._headers = {"Authorization": f"Token token={token}",
                         "Accept": "application/vnd.pagerduty+json;version=2"}
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        return await self._exchange("GET", path, params=params)

    async def listing(self, path: str, key: str, params: Params | None = None) -> list[dict[str, Any]]:
        """Every item of a paginated listing, page after page while PagerDuty says there are `more`."""
        items: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            answer = await self._exchange("GET", path, params={**(params or {}), "limit": str(PAGE_SIZE),
                                                            "offset": str(page * PAGE_SIZE)})
            found = answer.get(key)
            if not isinstance(found, list):
                raise PagerDutyUnavailable(f"GET {path}: the answer has no {key!r} list")
            items.extend(item for item in found if isinstance(item, dict))
            if not answer.get("more") or not found:
                return items
        logger.warning("GET %s: more than %d pages; using the first %d items", path, MAX_PAGES, len(items))
        return items

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._exchange("POST", path, body=body, acting=True)

    async def put(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._exchange("PUT", path, body=body, acting=True)

    async def _exchange(self, method: str, path: str, *, params: Params | None = None,
                    body: Mapping[str, Any] | None = None, acting: bool = False) -> dict[str, Any]:
        started = self.timer.monotonic()
        headers = dict(self._headers)
        if acting and self.from_email:
            headers["From"] = self.from_email
        query = [(name, value) for name, values in (params or {}).items()
                 for value in ([values] if isinstance(values, str) else values)]
        while True:
            left = self.deadline - (self.timer.monotonic() - started)
            if left <= 0:
                raise PagerDutyUnavailable(f"{method} {path}: no answer within {self.deadline:.0f} s")
            try:
                status, answer, retry_after = await asyncio.wait_for(
                    self._send(method, path, query, body, headers), self.timer.real(left))
            except (aiohttp.ClientError, TimeoutError, OSError) as err:
                raise PagerDutyUnavailable(f"{method} {path}: {type(err).__name__}") from None
            if status == 429:
                wait = retry_after if retry_after is not None else 1.0
                if self.timer.monotonic() - started + wait >= self.deadline:
                    raise PagerDutyUnavailable(f"{method} {path}: rate limited for {wait:.0f} s more "
                                               f"than the {self.deadline:.0f} s deadline allows")
                logger.info("PagerDuty rate limit on %s %s; again in %.1f s", method, path, wait)
                await self.timer.sleep(wait)
                continue
            if status >= 500:
                raise PagerDutyUnavailable(f"{method} {path}: HTTP {status}")
            if status >= 400:
                found = answer.get("error")
                error: dict[str, Any] = found if isinstance(found, dict) else {}
                errors = [str(e) for e in error.get("errors") or []]
                detail = "; ".join(errors) or str(error.get("message") or "")
                raise PagerDutyRefused(f"{method} {path}: HTTP {status} {detail}".strip(), status, errors)
            return answer

    async def _send(self, method: str, path: str, query: list[tuple[str, str]], body: Mapping[str, Any] | None,
                    headers: dict[str, str]) -> tuple[int, dict[str, Any], float | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.request(method, self.base_url + path, params=query, json=body,
                                         headers=headers, allow_redirects=False) as response:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = {}
            return response.status, answer if isinstance(answer, dict) else {}, _seconds(
                response.headers.get("Retry-After"))


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None
