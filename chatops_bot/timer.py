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
import time


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
