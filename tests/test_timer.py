"""The timer the retry and backoff policies wait on: real time as `chatops-bot serve` runs, and what the
fault drills run faster; the Slack retry handlers wait on it exactly as slack_sdk's own would."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from chatops_bot import runtime
from chatops_bot.adapters.mattermost import MattermostAdapter
from chatops_bot.adapters.slack import SlackAdapter
from chatops_bot.adapters.slack.delivery import retry_handlers
from chatops_bot.config import load_config
from chatops_bot.devstack.slack import BOT_TOKEN, DevSlack
from chatops_bot.timer import REAL_TIME, Quickened, Timer
from chatops_bot.wiring import teleport_client
from test_config import EXAMPLE, SECRETS


class Recorded(Timer):
    """Real time, except that a wait is noted and not waited."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def slack() -> AsyncIterator[DevSlack]:
    server = DevSlack()
    await server.start()
    yield server
    await server.stop()


def test_serve_keeps_every_retry_and_backoff_in_real_time() -> None:
    settings = load_config(EXAMPLE, env=SECRETS)
    client = teleport_client(settings)
    parts = runtime.services(settings, client)
    slack = next(p for p in parts if isinstance(p, SlackAdapter))
    mattermost = next(p for p in parts if isinstance(p, MattermostAdapter))
    watcher = next(p for p in parts if isinstance(p, runtime.WatcherService)).watcher
    handlers = slack.client.retry_handlers
    timers = [client.timer, slack.delivery.timer, mattermost.outbound.timer, watcher.timer,
              watcher.lanes.timer, *(handler.timer for handler in handlers)]  # type: ignore[attr-defined]
    assert all(timer is REAL_TIME for timer in timers)
    assert type(REAL_TIME) is Timer  # time.monotonic and asyncio.sleep, nothing else


async def test_a_quickened_timer_runs_its_seconds_faster_than_real_ones() -> None:
    timer = Quickened(20)
    started, on_timer = time.monotonic(), timer.monotonic()
    await timer.sleep(2.0)
    elapsed = time.monotonic() - started
    assert 0.1 <= elapsed < 1.0
    assert timer.monotonic() - on_timer == pytest.approx(elapsed * 20, rel=0.05)
    assert timer.real(30.0) == 1.5


async def test_slack_rate_limits_are_waited_out_on_the_timer_for_retry_after_and_jitter(
        slack: DevSlack) -> None:
    timer = Recorded()
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=retry_handlers(timer))
    slack.fail_next("chat.postMessage", 429, retry_after=7, times=2)

    answer = await client.chat_postMessage(channel="C0ACCESS", text="hello")

    assert answer["ok"] and [call.status for call in slack.calls_to("chat.postMessage")] == [429, 429, 200]
    assert len(timer.waits) == 2 and all(7 <= wait < 8 for wait in timer.waits)  # as slack_sdk's handler


async def test_slack_server_errors_are_retried_after_slack_sdks_backoff_on_the_timer(
        slack: DevSlack) -> None:
    timer = Recorded()
    client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=retry_handlers(timer))
    slack.fail_next("chat.postMessage", 503, times=2)

    answer = await client.chat_postMessage(channel="C0ACCESS", text="hello")

    assert answer["ok"] and len(slack.calls_to("chat.postMessage")) == 3
    # slack_sdk's default backoff: 0.5 s, doubled each time, plus up to a second of jitter.
    assert len(timer.waits) == 2
    assert all(0.5 * 2**attempt <= wait < 0.5 * 2**attempt + 1 for attempt, wait in enumerate(timer.waits))


async def test_a_slack_outage_is_timed_on_the_stand_ins_timer() -> None:
    timer = Quickened(100)
    server = DevSlack(timer=timer)
    await server.start()
    try:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=server.api_url, retry_handlers=[])
        server.fail_for(20, 503)  # 0.2 s of real time
        with pytest.raises(SlackApiError):
            await client.chat_postMessage(channel="C0ACCESS", text="during")
        await timer.sleep(21)
        assert (await client.chat_postMessage(channel="C0ACCESS", text="after"))["ok"]
    finally:
        await server.stop()
