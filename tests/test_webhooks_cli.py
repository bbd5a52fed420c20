"""`chatops-bot webhook-test ENDPOINT`: a signed sample event reaches the receiver, and the operator reads
what it answered (and, for the decision hook, what the bot would make of it)."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

from test_webhooks import receiver, timer
from webhook_receiver import SECRET, Answer, Receiver

from chatops_bot.integrations.webhooks.probe import probe
from chatops_bot.integrations.webhooks.settings import WebhooksSettings

__all__ = ["receiver", "timer"]

BIN = shutil.which("chatops-bot", path=str(Path(sys.executable).parent)) or "chatops-bot"


async def test_webhook_test_prints_what_the_receiver_answered(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer("siem", Answer(202, b'{"accepted": true, "ticket": "SIEM-42"}'))
    config = tmp_path / "config.yaml"
    config.write_text(f"""
teleport:
  addr: auth.example.com:3025
  identity_file: /nonexistent/identity
webhooks:
  endpoints:
    - name: siem
      url: {receiver.url("siem")}
      secret: ${{SIEM_SECRET}}
""")
    run = await asyncio.create_subprocess_exec(BIN, "webhook-test", "siem", "-c", str(config),
                                               env={"SIEM_SECRET": SECRET, "PATH": ""},
                                               stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(run.communicate(), 20)
    assert (run.returncode, err) == (0, b"")
    [call] = receiver.at("siem")
    document = call.verified()
    assert document["type"] == "webhook.test"
    lines = out.decode().splitlines()
    assert lines[0] == f"sent a signed sample event to siem ({receiver.url('siem')}), webhook-id {call.id}"
    assert lines[1].startswith("answered HTTP 202 in ")
    assert lines[2] == '{"accepted": true, "ticket": "SIEM-42"}'
    assert SECRET not in out.decode()


async def test_webhook_test_on_the_decision_hook_says_what_the_bot_would_do(receiver: Receiver) -> None:
    settings = WebhooksSettings.model_validate({"decide": {
        "name": "oncall", "url": receiver.url("decide"), "secret": SECRET, "roles": ["dba"]}})
    receiver.answer("decide", Answer(200, b'{"decision": "approve", "reason": "on call"}'), Answer(503))
    approving = await probe(settings, "oncall")
    failing = await probe(settings, "oncall")
    assert approving.ok and approving.report().endswith("as a decision: approve (on call)")
    assert not failing.ok and failing.report().endswith("not a decision (HTTP 503): a request would wait for a person")
    assert [c.verified()["type"] for c in receiver.at("decide")] == ["access_request.decide"] * 2
    try:
        await probe(settings, "siem")
    except LookupError as err:
        assert str(err) == "no webhook endpoint is named 'siem'; configured: oncall"
    else:
        raise AssertionError("an unknown endpoint name was accepted")
