"""Time as the bot's retry and backoff policies wait it out: retry budgets, backoff delays, reconnect pacing.

Every policy that waits for a platform or Teleport to recover (Mattermost's post retries, Slack's 429 and
`response_url` retries, the watcher's lanes and reconnects, gRPC's reconnect backoff) reads and spends
time through a `Timer`. The bot runs on `REAL_TIME`: `time.monotonic` and `asyncio.sleep`, as if the
policies called them directly. The fault drills run the bot, and the outage windows of the stand-ins, on
one `Quickened` timer, so that a minute of rate limits takes seconds with every ratio between the
durations kept. Deadlines that a platform imposes on an exchange (Slack's 3-second ack, a trigger ID's
life, a signature's age) are not policies of ours and stay in real time.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter, so that many bots do not all come back at the same moment."""

    first: float = 0.5
    maximum: float = 10.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Seconds to wait before try number `attempt + 1`: `first * 2**attempt`, capped, +/- `jitter`."""
        base = min(self.maximum, self.first * 2.0 ** min(attempt, 32))
        return base * (1 + self.jitter * (2 * random.random() - 1))


class Later(Exception):
    """Not now: a lane runs the job again after `delay` seconds (another bot process holds the claim until
    then, or the outside system asked about cannot answer yet)."""

    def __init__(self, delay: float, why: str = "claimed by another bot process") -> None:
        super().__init__(f"{why}; look again in {delay:.0f} s")
        self.delay = delay


class Timer:
    """Real time."""

    def monotonic(self) -> float:
        """Seconds on this timer, for measuring a wait or a budget (only differences mean anything)."""
        return time.monotonic()

    def real(self, seconds: float) -> float:
        """The real seconds that `seconds` on this timer last: for a wait something else keeps, such as
        gRPC's reconnect backoff or `asyncio.wait_for`."""
        return seconds

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.real(seconds))


REAL_TIME = Timer()


class Quickened(Timer):
    """Time that runs `speed` times faster than real time, from the moment it is made."""

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.speed = speed
        self._origin = time.monotonic()

    def monotonic(self) -> float:
        return self._origin + (time.monotonic() - self._origin) * self.speed

    def real(self, seconds: float) -> float:
        return seconds / self.speed
