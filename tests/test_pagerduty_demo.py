"""The PagerDuty part of `chatops-bot demo`, as a person reads it: approved while alice is on call, waiting
for a person once her shift is over."""

from __future__ import annotations

from pathlib import Path

from chatops_bot.demo import demo_seed_text
from chatops_bot.integrations.pagerduty.demo import walk_through


async def test_the_demo_shows_an_on_call_approval_and_an_off_call_request_waiting(tmp_path: Path) -> None:
    lines: list[str] = []
    assert await walk_through(demo_seed_text(), tmp_path, lines.append)
    transcript = "\n".join(lines)
    on_call, off_call = transcript.split("13 hours later alice's shift is over.")
    assert ("PagerDuty: approved by chatops-bot: on call: DBA primary (PagerDuty schedule P1X2Y3), level 1 "
            "(rule dba-primary: dba)") in on_call
    assert "PagerDuty: no rule is met; the request waits for a reviewer" in off_call
    assert "Requested dba for alice" in off_call and "Sorry, something went wrong" not in transcript
