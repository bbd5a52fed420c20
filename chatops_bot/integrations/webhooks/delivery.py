"""Delivering one event to one endpoint: at least once, retried with backoff for a bounded time, and
recorded so that neither a restart nor a second bot process sends it again.

The record is one plugin data key per endpoint and event, `webhook:<endpoint>:<event key>`, written with
compare-and-swap:

    <process>@<at>@<tries>@<first>   in that process's hands: sending since `at`, or to try again at `at`
    done                             the receiver answered 2xx
    refused:<status>                 the receiver answered a 4xx other than 408 and 429: not tried again
    gave-up                          no 2xx within `retry_for` of the first try

A process claims the key before each try, so two never send at once; a claim whose holder went quiet
(`at` + `LEASE` has passed: it died, or was stopped) is taken over, tries and first try kept. A request
Teleport has dropped takes its plugin data with it: its last deliveries are then recorded in this
process's memory only (`MemoryLedger`), which a restart forgets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from prometheus_client import Counter, Gauge

from chatops_bot import metrics
from chatops_bot.integrations.webhooks.send import Answer, Sender
from chatops_bot.timer import Backoff, Timer
from commands.errors import CompareFailed

logger = logging.getLogger(__name__)

PREFIX = "webhook:"
DONE, GAVE_UP, REFUSED = "done", "gave-up", "refused:"
LEASE = 60.0  # seconds past its `at` after which a claim is taken over (more than any attempt's deadline)
FAILING_AFTER = 3  # consecutive failed tries after which an endpoint is reported failing

DELIVERIES = Counter(
    "chatops_webhook_deliveries_total",
    "Webhook delivery tries by endpoint and outcome: delivered (2xx), retry (no answer, 408, 429 or 5xx: "
    "tried again later), refused (any other 4xx: not tried again), gave_up (no 2xx within retry_for).",
    ["endpoint", "outcome"],
    registry=metrics.REGISTRY,
)
FAILING = Gauge(
    "chatops_webhook_endpoint_failing",
    f"1 while an endpoint's last {FAILING_AFTER} or more delivery tries all failed, else 0.",
    ["endpoint"],
    registry=metrics.REGISTRY,
)


def wall(timer: Timer) -> float:
    """Seconds since the epoch on `timer`: the real clock, or a quickened one (tests). Plugin data
    records are stamped with it, so processes sharing a timer agree on when a claim lapses."""
    return time.time() + timer.monotonic() - time.monotonic()


class Ledger(Protocol):
    """Where a request's delivery records are kept: its plugin data, or memory once it is gone."""

    async def swap(self, key: str, *, expect: str, value: str) -> None:
        """Compare-and-swap one key; raises `CompareFailed` (and `NotFound` once the request is gone)."""
        ...


class MemoryLedger:
    """Records of a request Teleport no longer has, in this process only."""

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        self.data = dict(data or {})

    async def swap(self, key: str, *, expect: str, value: str) -> None:
        if self.data.get(key, "") != expect:
            raise CompareFailed("record changed", detail=key)
        self.data[key] = value


@dataclass
class Health:
    """How an endpoint has been doing, for /readyz and /metrics."""

    name: str
    failures: int = 0  # consecutive failed tries
    last: str = ""  # the last failed try's answer: `HTTP 503`, `no answer (timeout)`
    gave_up: int = 0

    def noted(self, answer: Answer) -> None:
        if answer.ok:
            self.failures, self.last = 0, ""
        else:
            self.failures += 1
            self.last = answer.summary()
        FAILING.labels(self.name).set(1 if self.failing else 0)

    @property
    def failing(self) -> bool:
        return self.failures >= FAILING_AFTER


@dataclass(frozen=True)
class Claim:
    owner: str
    at: float
    tries: int
    first: float

    def __str__(self) -> str:
        return f"{self.owner}@{self.at:.3f}@{self.tries}@{self.first:.3f}"

    @staticmethod
    def parse(value: str) -> Claim | None:
        parts = value.split("@")
        try:
            return Claim(parts[0], float(parts[1]), int(parts[2]), float(parts[3])) if len(parts) == 4 else None
        except ValueError:
            return None


def final(value: str) -> bool:
    return value == DONE or value == GAVE_UP or value.startswith(REFUSED)


@dataclass
class Delivery:
    """The try policy shared by every endpoint: who this process is, how long to keep trying, how to wait."""

    sender: Sender
    timer: Timer
    process: str
    retry_for: timedelta = timedelta(hours=24)
    backoff: Backoff = field(default_factory=lambda: Backoff(first=5.0, maximum=3600.0, jitter=0.25))
    lease: float = LEASE

    async def step(self, ledger: Ledger, key: str, value: str, *, url: str, secret: str, webhook_id: str,
                   body: bytes, health: Health, context: Mapping[str, str]) -> float | None:
        """One step of one delivery whose record holds `value`: a try if one is due. Returns in how many
        seconds to look again, or None when nothing is left to do (delivered, refused, given up, or not
        this process's to send). Raises `CompareFailed` when the record changed meanwhile (look again)."""
        if final(value):
            return None
        now = wall(self.timer)
        claim = Claim.parse(value) if value else None
        if claim is not None and claim.owner != self.process and now < claim.at + self.lease:
            return claim.at + self.lease - now  # another process has it in hand
        if claim is not None and claim.owner == self.process and now < claim.at:
            return claim.at - now  # not time for the next try yet
        tries, first = (claim.tries, claim.first) if claim else (0, now)
        mine = Claim(self.process, now, tries + 1, first)
        await ledger.swap(key, expect=value, value=str(mine))
        answer = await self.sender.post(url, secret, webhook_id, body)
        health.noted(answer)
        extra = {**context, "webhook_id": webhook_id}
        if answer.ok:
            DELIVERIES.labels(health.name, "delivered").inc()
            await self._record(ledger, key, mine, DONE)
            logger.info("webhook delivered to %s after %d tries", health.name, mine.tries, extra=extra)
            return None
        if not answer.retryable:
            DELIVERIES.labels(health.name, "refused").inc()
            await self._record(ledger, key, mine, f"{REFUSED}{answer.status}")
            logger.error("webhook refused by %s (%s): not tried again", health.name, answer.summary(), extra=extra)
            return None
        delay = self.backoff.delay(max(mine.tries - 1, 0))  # after the first failed try: `first`
        if answer.retry_after is not None:
            delay = max(delay, answer.retry_after)
        if now + delay > first + self.retry_for.total_seconds():
            DELIVERIES.labels(health.name, "gave_up").inc()
            health.gave_up += 1
            await self._record(ledger, key, mine, GAVE_UP)
            logger.error("webhook to %s given up after %d tries (%s): none succeeded within %s", health.name,
                         mine.tries, answer.summary(), self.retry_for, extra=extra)
            return None
        DELIVERIES.labels(health.name, "retry").inc()
        await self._record(ledger, key, mine, str(Claim(self.process, now + delay, mine.tries, first)))
        logger.warning("webhook to %s failed (%s); try %d in %.0f s", health.name, answer.summary(),
                       mine.tries + 1, delay, extra=extra)
        return delay

    async def _record(self, ledger: Ledger, key: str, mine: Claim, value: str) -> None:
        try:
            await ledger.swap(key, expect=str(mine), value=value)
        except CompareFailed:
            # Taken over meanwhile (this try outlasted the lease): the other process records its own.
            logger.warning("the webhook record %s changed while this process held it", key)
