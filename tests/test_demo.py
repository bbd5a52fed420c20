"""`chatops-bot demo`: the scripted walk-through against the devstack Teleport, as a person reads it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatops_bot import demo
from chatops_bot.demo import run_demo


def step(transcript: str, prompt: str) -> str:
    """What the bot answered to the line starting with `prompt` (up to the next prompt)."""
    start = transcript.index(f"\n{prompt}")
    following = re.search(r"\n\n\w+> ", transcript[start + 1 :])
    end = start + 1 + following.start() if following else len(transcript)
    return transcript[start:end]


async def test_demo_transcript_walks_through_a_request() -> None:
    lines: list[str] = []
    assert await run_demo(write=lines.append) == 0
    transcript = "\n".join(lines)

    assert lines[0].startswith("Connected to the devstack Teleport 'demo.example.com'")
    assert "Request, list and review Teleport access requests." in step(transcript, "alice> /access help")

    created = step(transcript, "alice> /access request dba --for 2h")
    match = re.search(r"Requested dba for alice \(request ([0-9a-f]{8})\)\. Asked to review: bob\.", created)
    assert match, created
    short_id = match.group(1)
    full_id = re.search(rf"Request\s+([0-9a-f-]{{28}}{short_id})", created)
    assert full_id, created
    assert "INC-4411 replica lag on the primary" in created
    assert re.search(r"Access until\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC \(in 2h\)", created)

    refused = step(transcript, f"carol> /access approve {full_id.group(1)}")
    assert "You may not review this request: you have no role that allows reviewing access requests." in (
        refused
    )

    listed = step(transcript, "bob> /access list")
    assert "Waiting for your review (1, page 1 of 1)" in listed
    assert f"{short_id}  alice  dba  · INC-4411 replica lag on the primary" in listed

    approved = step(transcript, f"bob> /access approve {short_id}")
    assert f"You approved request {short_id}. The request is now approved." in approved

    active = step(transcript, "alice> /access list active")
    assert "Active access (1, page 1 of 1)" in active
    assert re.search(rf"{short_id}  alice  dba  · .* · Approved, (2h|1h59m) left", active), active
    assert "Sorry, something went wrong" not in transcript
    assert "The demo stopped" not in transcript


def test_demo_command_exits_0() -> None:
    command = Path(sys.executable).parent / "chatops-bot"
    result = subprocess.run([str(command), "demo"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "You approved request" in result.stdout
    assert "Traceback" not in result.stderr


async def test_demo_fails_when_a_step_does_not_go_as_scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    # carol may not review: a script expecting her approval to work must not end in exit code 0.
    monkeypatch.setattr(demo, "SCRIPT", (("alice", "/access request dba INC-1", True),
                                         ("carol", "/access approve {id}", True),
                                         ("alice", "/access list", True)))
    lines: list[str] = []
    assert await demo.run_demo(write=lines.append) == demo.EXIT_UNEXPECTED
    assert lines[-1] == "\nThe demo stopped: step 2 did not go as scripted."
    assert not any(line.startswith("\nalice> /access list") for line in lines)
