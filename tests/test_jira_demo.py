"""`chatops-bot demo --jira`: the walk-through with a devstack Jira, as a person reads it."""

from __future__ import annotations

from chatops_bot.demo import run_demo


async def test_the_jira_demo_refuses_without_a_good_ticket_then_creates_with_it() -> None:
    lines: list[str] = []
    assert await run_demo(write=lines.append, jira=True) == 0
    transcript = "\n".join(lines)
    assert "Requests for `dba` need a ticket: in OPS or INC, In Progress." in transcript
    assert "OPS-2 is Done; tickets must be In Progress. Nothing was requested." in transcript
    assert "Ticket OPS-1 (In Progress) checked." in transcript
    assert "Reason           OPS-1: replica lag on the primary" in transcript
    assert "Ticket           OPS-1: Replica lag on the primary (In Progress) (http://127.0.0.1:" in transcript
    assert "The request is now approved." in transcript and "The demo stopped" not in transcript
