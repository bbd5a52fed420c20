"""`chatops-bot webhook-test ENDPOINT`: a signed sample event reaches the receiver, and the operator reads
what it answered (and, for the decision hook, what the bot would make of it). And docs/webhooks.md: its
payload is one the schema accepts, and its verification snippets accept what the bot signs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from standardwebhooks import WebhookVerificationError
from test_webhooks import receiver, timer
from webhook_receiver import SCHEMA, SECRET, Answer, Receiver

from chatops_bot.integrations.webhooks.probe import probe
from chatops_bot.integrations.webhooks.send import signed_headers
from chatops_bot.integrations.webhooks.settings import EVENTS, WebhooksSettings

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
    # Not the path: some receivers keep a secret there.
    assert lines[0] == f"sent a signed sample event to siem ({receiver.base}), webhook-id {call.id}"
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


# --- docs/webhooks.md cannot rot ------------------------------------------------------------------------------

DOC = (Path(__file__).resolve().parent.parent / "docs" / "webhooks.md").read_text()
FENCES = re.findall(r"^```(\w+)\n(.*?)^```", DOC, re.MULTILINE | re.DOTALL)


def test_the_payload_in_the_docs_is_one_the_schema_accepts() -> None:
    [example] = [json.loads(block) for lang, block in FENCES if lang == "json" and '"version"' in block]
    jsonschema.validate(example, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert example["type"] in EVENTS


def test_the_verification_in_the_docs_accepts_what_the_bot_signs_and_refuses_a_forgery(tmp_path: Path) -> None:
    python = next(block for lang, block in FENCES if lang == "python" and "def verified" in block)
    shell = next(block for lang, block in FENCES if lang == "sh" and "openssl" in block)
    namespace: dict[str, Any] = {}
    exec(python, namespace)  # noqa: S102 - the docs' own snippet
    body = b'{"version":1,"type":"webhook.test","data":{}}'
    headers = signed_headers(SECRET, "msg_test_docs", body)
    assert namespace["verified"](body, headers, SECRET)["type"] == "webhook.test"
    with pytest.raises(WebhookVerificationError):
        namespace["verified"](body.replace(b"test", b"tset"), headers, SECRET)

    (tmp_path / "body.json").write_bytes(body)

    def run(signature: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ["PATH"], "WEBHOOK_SECRET": SECRET, "id": headers["webhook-id"],
               "ts": headers["webhook-timestamp"], "sig": signature}
        return subprocess.run(["bash", "-c", shell + "\necho verified"], cwd=tmp_path, env=env, check=False,
                              capture_output=True, text=True, timeout=10)

    good, forged = run(headers["webhook-signature"]), run("v1,bm90IHRoZSBzaWduYXR1cmUgb2YgdGhpcyBib2R5Lg==")
    assert (good.returncode, good.stdout) == (0, "verified\n"), good.stderr
    assert (forged.returncode, forged.stderr) == (1, "bad signature\n")
