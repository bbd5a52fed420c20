"""Getting answers to Slack in time: the ack budget, work that outlives the ack, and `response_url` posts.

Slack waits 3 seconds for an ack. Work gets `ack_budget` seconds (2 by default, leaving room for the
network); what takes longer is acked with a short note and finishes in a background task, which posts
its answer to the `response_url` (5 uses within 30 minutes). Posts retry on 429 after `Retry-After`
and on 500/503 for up to `ANSWER_PATIENCE`, so a rate limit or an outage delays an answer but does not
drop it. Those waits, and the retry handlers' (slack_sdk's, with their sleep on our `Timer`), are kept on
the delivery's timer: real time but in the fault drills.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import aiohttp
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.webhook.async_client import AsyncWebhookClient

from chatops_bot import metrics
from chatops_bot.timer import REAL_TIME, Timer

logger = logging.getLogger(__name__)

ACK_BUDGET = 2.0
RATE_LIMIT_RETRIES = 5
SERVER_ERROR_RETRIES = 2
DRAIN_TIMEOUT = 10.0
# Seconds an answer keeps being offered to a response_url that answers 429 or 5xx once the client's own
# retries are spent (the URL itself lives 30 minutes), and the wait between offers after a 5xx.
ANSWER_PATIENCE = 600.0
SERVER_ERROR_WAIT = 5.0

T = TypeVar("T")


def retry_handlers(timer: Timer = REAL_TIME) -> list[AsyncRetryHandler]:
    """What every Slack call retries: lost connections, 429 (after `Retry-After`), 500 and 503."""
    return [
        _ConnectionErrorRetries(timer),
        _CountedRateLimitRetries(timer, max_retry_count=RATE_LIMIT_RETRIES),
        _ServerErrorRetries(timer, max_retry_count=SERVER_ERROR_RETRIES),
    ]


class _OnTimer(AsyncRetryHandler):
    """A slack_sdk retry handler that waits on `timer`: `AsyncRetryHandler`'s backoff, or `_wait`'s."""

    def __init__(self, timer: Timer, **options: Any) -> None:
        super().__init__(**options)
        self.timer = timer

    async def prepare_for_next_attempt_async(self, *, state: RetryState, request: HttpRequest,
                                             response: HttpResponse | None = None,
                                             error: Exception | None = None) -> None:
        wait = self._wait(state, response, error)
        state.next_attempt_requested = True
        await self.timer.sleep(wait)
        state.increment_current_attempt()

    def _wait(self, state: RetryState, response: HttpResponse | None, error: Exception | None) -> float:
        return float(self.interval_calculator.calculate_sleep_duration(state.current_attempt))


class _ConnectionErrorRetries(_OnTimer, AsyncConnectionErrorRetryHandler):
    """slack_sdk's handler for lost connections."""


class _ServerErrorRetries(_OnTimer, AsyncServerErrorRetryHandler):
    """slack_sdk's handler for 500 and 503."""


class _CountedRateLimitRetries(_OnTimer, AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler (wait `Retry-After`, try again), counting each retry for `/metrics`."""

    async def prepare_for_next_attempt_async(self, *, state: RetryState, request: HttpRequest,
                                             response: HttpResponse | None = None,
                                             error: Exception | None = None) -> None:
        metrics.RATE_LIMIT_RETRIES.labels("slack").inc()
        await super().prepare_for_next_attempt_async(state=state, request=request, response=response,
                                                     error=error)

    def _wait(self, state: RetryState, response: HttpResponse | None, error: Exception | None) -> float:
        # As slack_sdk's: `Retry-After` whole seconds (1 if it is missing) plus up to a second of jitter.
        if response is None:
            raise error  # type: ignore[misc]  # only a response can be rate limited
        retry_after = next((value for key, value in response.headers.items() if key.lower() == "retry-after"),
                           None)
        return (int(retry_after[0]) if retry_after is not None else 1) + random.random()


class Delivery:
    def __init__(self, *, ack_budget: float = ACK_BUDGET, timer: Timer = REAL_TIME) -> None:
        """`ack_budget` is Slack's deadline, in real time; `timer` keeps the retries' waits and patience."""
        self.ack_budget = ack_budget
        self.timer = timer
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retry_handlers = retry_handlers(timer)

    async def within_budget(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Starts `work` and waits for it at most the ack budget; the task is done if it made it in time."""
        task = asyncio.create_task(work)
        await asyncio.wait({task}, timeout=self.ack_budget)
        return task

    def later(self, work: Coroutine[Any, Any, Any]) -> None:
        """Runs `work` after the ack; kept referenced so it is neither collected nor forgotten at stop."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Slack work after the ack failed", exc_info=task.exception())

    async def drain(self, timeout: float = DRAIN_TIMEOUT) -> None:
        """Waits for work still running after its ack (answers already promised), then cancels the rest."""
        while self._tasks:
            pending = set(self._tasks)
            _, still = await asyncio.wait(pending, timeout=timeout)
            if still:
                logger.warning("cancelling %d Slack answers still running after %.0f s", len(still), timeout)
                for task in still:
                    task.cancel()
                await asyncio.gather(*still, return_exceptions=True)
                return

    async def post(self, response_url: str, payload: dict[str, Any]) -> bool:
        """POSTs `payload` to a `response_url`; False (and logged) when Slack did not take it."""
        if not response_url.startswith(("https://", "http://")):
            logger.warning("no usable response_url to answer on")
            return False
        webhook = AsyncWebhookClient(response_url, retry_handlers=self._retry_handlers)
        deadline = self.timer.monotonic() + ANSWER_PATIENCE
        while True:
            try:
                answer = await webhook.send_dict(payload)
            except (aiohttp.ClientError, asyncio.TimeoutError) as err:
                logger.warning("posting to response_url failed: %s", err)
                return False
            if answer.status_code == 200:
                return True
            # The client's own retries are spent; a rate limit or an outage that lasts longer is waited out.
            wait = _retry_after(answer.headers) if answer.status_code == 429 else SERVER_ERROR_WAIT
            if answer.status_code not in (429, 500, 503) or self.timer.monotonic() + wait > deadline:
                logger.warning("response_url refused the answer: HTTP %s %s", answer.status_code,
                               answer.body[:200])
                return False
            logger.warning("response_url answered HTTP %s; answering again in %.0f s",
                           answer.status_code, wait)
            await self.timer.sleep(wait)


def _retry_after(headers: Mapping[str, Any]) -> float:
    value = str(headers.get("Retry-After") or "")
    return float(value) if value.isdigit() else SERVER_ERROR_WAIT
