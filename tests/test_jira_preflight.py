"""`check-config --connect` checks Jira: the credentials, the deployment, and each project, issue type and
status `jira.require_ticket` names; and `chatops-bot devstack jira` serves the demo tickets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chatops_bot.cli import EXIT_CONFIG, EXIT_OK, connect_jira
from chatops_bot.config import Settings
from chatops_bot.devstack.jira import DevJira
from tests.conftest import free_port

TELEPORT = {"addr": "127.0.0.1:3025", "identity_file": "/dev/null"}
RULE = {"roles": ["dba"], "projects": ["OPS"], "issue_types": ["Incident"], "statuses": ["In Progress"]}


@pytest.fixture
async def jira() -> AsyncIterator[DevJira]:
    server = DevJira()
    await server.start()
    yield server
    await server.stop()


def settings(url: str, **jira: object) -> Settings:
    return Settings.model_validate({"teleport": TELEPORT, "jira": {
        "url": url, "email": "chatops-bot@example.com", "api_token": "devstack-jira-api-token",
        "timeout": "2s", "require_ticket": [RULE], **jira}})


async def test_a_good_config_connects(jira: DevJira, capsys: pytest.CaptureFixture[str]) -> None:
    assert await connect_jira(settings(jira.url)) == EXIT_OK
    out = capsys.readouterr()
    assert f"Connected to Jira (cloud) at {jira.url} as ChatOps Bot." in out.out and out.err == ""


async def test_each_unknown_name_is_an_error(jira: DevJira, capsys: pytest.CaptureFixture[str]) -> None:
    rule = {"roles": ["dba"], "projects": ["OPS", "NOPE"], "issue_types": ["Bug"], "statuses": ["Doing"]}
    assert await connect_jira(settings(jira.url, require_ticket=[rule])) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "jira.require_ticket[0].projects: there is no project NOPE that the bot can see" in err
    assert "jira.require_ticket[0].issue_types: project OPS has no issue type 'Bug'" in err
    assert "jira.require_ticket[0]: no workflow of project OPS has the status 'Doing'" in err


async def test_the_mirror_project_type_and_statuses_are_checked(
        jira: DevJira, capsys: pytest.CaptureFixture[str]) -> None:
    mirror = {"project": "ACCESS", "approved": "Done"}
    assert await connect_jira(settings(jira.url, mirror=mirror)) == EXIT_CONFIG
    assert "jira.mirror.project: there is no project ACCESS that the bot can see" in capsys.readouterr().err
    mirror = {"project": "OPS", "issue_type": "Change", "approved": "Done", "denied": "Rejected"}
    assert await connect_jira(settings(jira.url, mirror=mirror)) == EXIT_CONFIG
    assert "jira.mirror: no workflow of project OPS has the status 'Rejected'" in capsys.readouterr().err


async def test_bad_credentials_and_the_wrong_deployment_are_errors(
        jira: DevJira, capsys: pytest.CaptureFixture[str]) -> None:
    assert await connect_jira(settings(jira.url, api_token="wrong-token")) == EXIT_CONFIG
    refused = capsys.readouterr()
    assert "jira: Jira refused the bot's credentials (HTTP 401" in refused.err
    assert "wrong-token" not in refused.out + refused.err
    center = Settings.model_validate({"teleport": TELEPORT, "jira": {
        "url": jira.url, "deployment": "data_center", "personal_access_token": "devstack-jira-pat"}})
    assert await connect_jira(center) == EXIT_CONFIG  # a Cloud site refuses a PAT
    assert "refused the bot's credentials" in capsys.readouterr().err


def test_devstack_jira_serves_the_demo_tickets(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "chatops_bot.cli", "devstack", "jira", "--listen",
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving on" in line, line
        issue = httpx.get(f"http://127.0.0.1:{port}/rest/api/2/issue/OPS-1",
                          auth=("chatops-bot@example.com", "devstack-jira-api-token")).json()
    finally:
        proc.terminate()
        proc.wait(5)
    assert issue["fields"]["status"]["name"] == "In Progress"


def test_the_jira_modules_import_first_without_the_config() -> None:
    """The config reads `jira:` with the Jira settings, built from the config's types: a cycle either entry
    point must survive (a script importing the client first, say)."""
    done = subprocess.run([sys.executable, "-c", "import chatops_bot.integrations.jira.settings"],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_read_only_check_takes_jira_secrets_still_to_come(tmp_path: Path) -> None:
    from chatops_bot.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("teleport: {addr: 'auth.example.com:3025', identity_file: /var/lib/bot/identity}\n"
                    "jira: {url: 'https://example.atlassian.net', email: bot@example.com,\n"
                    "       api_token: '${JIRA_API_TOKEN}'}\n")
    settings = load_config(path, env={}, secrets=False)
    assert settings.pending_secrets() == [("jira.api_token", "${JIRA_API_TOKEN} not set yet")]


def test_the_example_jira_section_is_valid() -> None:
    import yaml

    from chatops_bot.integrations.jira.settings import JiraSettings

    example = (Path(__file__).resolve().parent.parent / "config.yaml.example").read_text()
    block = example[example.index("\n# jira:\n") + 1:]
    text = "\n".join(line.removeprefix("# ").removeprefix("#") for line in block.splitlines())
    section = yaml.safe_load(text.replace("${JIRA_WEBHOOK_SECRET}", "s" * 32))["jira"]
    settings = JiraSettings.model_validate(section)
    assert settings.require_ticket and settings.mirror is not None and settings.webhook is not None
