"""`check-config --connect` with a `pagerduty` section, against `chatops-bot devstack pagerduty`: the token
and every schedule, escalation policy and service the rules name are checked, a missing one is named."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.pagerduty import TOKEN
from chatops_bot.devstack.pki import write_identity_file
from chatops_bot.devstack.seed import Seed, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.integrations.pagerduty import preflight, wiring
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from conftest import free_port
from test_cli import BIN, run


@pytest.fixture
def seed() -> Seed:
    """The demo cluster with the bot allowed to review dba itself, as `teleport-role` prints it for rules
    that approve dba: otherwise the check rightly says that grant is missing too."""
    granted = demo_seed_text().replace('      submit_for_users: ["*"]\n',
                                       '      submit_for_users: ["*"]\n      roles: [dba]\n', 1)
    assert granted != demo_seed_text()
    return load_seed(granted)


@pytest.fixture(scope="module")
def devstack_pagerduty() -> Iterator[str]:
    """`chatops-bot devstack pagerduty` in its own process, as docs/pagerduty.md shows. The check runs in a
    thread: the devstack Teleport it connects to answers on this test's event loop."""
    listen = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen([BIN, "devstack", "pagerduty", "--listen", listen],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "serving on" in line:
            break
    else:
        pytest.fail(f"devstack pagerduty did not start: exit {proc.wait()}")
    yield f"http://{listen}"
    proc.terminate()
    proc.wait(timeout=10)


def config(tmp_path: Path, teleport: DevTeleport, api_url: str, token: str, rules: str) -> Path:
    identity = tmp_path / "bot.pem"
    write_identity_file(teleport.identity("chatops-bot"), identity)
    path = tmp_path / "config.yaml"
    path.write_text(f"teleport:\n  addr: {teleport.addr}\n  identity_file: {identity}\n  timeout: 3s\n"
                    f"pagerduty:\n  api_url: {api_url}\n  token: ${{PD_TOKEN}}\n  timeout: 3s\n"
                    f"  from_email: nobody@example.com\n  incidents:\n    services: {{dba: PDBSVC1, '*': PNOSVC2}}\n"
                    f"  auto_approve:\n{rules}")
    return path


RULES = ("    - {name: dba, roles: [dba], schedules: [P1X2Y3, P0GONE1], escalation_policies: [PDBAEP1],\n"
         "       while_incident_on: [PDBSVC1, PNOSVC1]}\n")


async def test_connect_names_every_missing_schedule_and_service(
        teleport: DevTeleport, devstack_pagerduty: str, tmp_path: Path) -> None:
    path = config(tmp_path, teleport, devstack_pagerduty, TOKEN, RULES)
    result = await asyncio.to_thread(run, "check-config", "--connect", "-c", str(path), env={"PD_TOKEN": TOKEN})
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: PagerDuty schedule P0GONE1 (pagerduty.auto_approve dba) does not exist",
                      "error: PagerDuty service PNOSVC1 (pagerduty.auto_approve dba) does not exist",
                      "error: PagerDuty service PNOSVC2 (pagerduty.incidents.services *) does not exist",
                      "error: pagerduty.from_email is no PagerDuty user's e-mail: PagerDuty refuses incident "
                      "writes from it"]
    fixed = config(tmp_path, teleport, devstack_pagerduty, TOKEN,
                   "    - {name: dba, roles: [dba], schedules: [P1X2Y3], escalation_policies: [PDBAEP1]}\n")
    fixed.write_text(fixed.read_text().replace("nobody@", "chatops-bot@").replace("PNOSVC2", "PDBSVC1"))
    result = await asyncio.to_thread(run, "check-config", "--connect", "-c", str(fixed), env={"PD_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
    assert "Connected to PagerDuty" in result.stdout


async def test_a_refused_token_is_named_without_printing_it(devstack_pagerduty: str) -> None:
    settings = PagerDutySettings.model_validate({"api_url": devstack_pagerduty, "token": "wrong-pd-token",
                                                 "auto_approve": [{"name": "dba", "roles": ["dba"],
                                                                   "schedules": ["P1X2Y3"]}]})
    client = wiring.client(settings)
    try:
        findings = await preflight.check(settings, client)
    finally:
        await client.close()
    assert [f.text for f in findings] == [
        "PagerDuty refuses pagerduty.token (HTTP 401): is it a REST API key of this account, and "
        "pagerduty.api_url its service region?"]
