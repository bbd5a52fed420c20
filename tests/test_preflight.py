"""Knowing the cluster before serving: version, edition, the bot's own grants, and the review mode's verdict.

`judge` is pure and tested case by case; `inspect`, `check-config --connect` and `serve` are tested against
the devstack Teleport playing Enterprise 18.11, Enterprise 18.2 and Community Edition.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import free_port
from test_cli import BIN, run, write_config

from chatops_bot import preflight
from chatops_bot.demo import demo_seed_text
from chatops_bot.devstack.pki import ClusterCA, write_identity_file
from chatops_bot.devstack.seed import SeedError, load_seed
from chatops_bot.devstack.teleport import DevTeleport
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from commands.model import ClusterInfo, ReviewConditions, Role, RoleConditions

ENTERPRISE = load_seed(demo_seed_text())
COMMUNITY = load_seed(demo_seed_text("community"))


def info(version: str = "18.11.0", *, enterprise: bool = True) -> ClusterInfo:
    return ClusterInfo(name="example.com", server_version=version, advanced_access_workflows=enterprise)


def bot_role(seed: object = ENTERPRISE, **review: tuple[str, ...]) -> list[Role]:
    role = seed.roles["chatops-bot"]  # type: ignore[attr-defined]
    if review:
        role = replace(role, allow=replace(role.allow, review_requests=ReviewConditions(**review)))
    return [role]


def fatal_texts(findings: list[preflight.Finding]) -> list[str]:
    return [f.text for f in findings if f.fatal]


def test_on_behalf_works_on_enterprise_18_11_with_submit_for_users() -> None:
    assert preflight.judge(info(), bot_role(), mode="on_behalf", has_rules=False) == []


def test_on_behalf_before_18_11_names_the_version_and_the_modes_that_work() -> None:
    [text] = fatal_texts(preflight.judge(info("18.2.0"), bot_role(), mode="on_behalf", has_rules=False))

    assert text.startswith("review.mode: on_behalf needs Teleport 18.11 or newer")
    assert "this is Teleport 18.2.0 Enterprise" in text
    assert "review.mode: as_bot" in text and "resolve" in text


def test_on_behalf_without_submit_for_users_says_the_role_is_hollow() -> None:
    roles = bot_role(roles=("dba",))

    [text] = fatal_texts(preflight.judge(info(), roles, mode="on_behalf", has_rules=False))

    assert "do not allow review_requests.submit_for_users" in text
    assert "chatops-bot teleport-role --review-mode on_behalf" in text


def test_as_bot_needs_review_rights_of_its_own() -> None:
    assert preflight.judge(info("17.4.2"), bot_role(roles=("dba",)), mode="as_bot", has_rules=False) == []
    [text] = fatal_texts(preflight.judge(info("17.4.2"), bot_role(), mode="as_bot", has_rules=False))
    assert "allow it to review no role" in text


def test_automatic_decisions_on_behalf_need_the_bot_to_review_roles_itself() -> None:
    """PagerDuty's rules and the decision hook review as the bot: submit_for_users alone is not enough."""
    both = bot_role(submit_for_users=("*",), roles=("dba",))
    assert preflight.judge(info(), both, mode="on_behalf", has_rules=False, automatic=("dba",)) == []
    [text] = fatal_texts(preflight.judge(info(), bot_role(submit_for_users=("*",)), mode="on_behalf",
                                         has_rules=False, automatic=("dba",)))
    assert text.startswith("pagerduty.auto_approve / webhooks.decide: automatic decisions on dba")
    assert "review_requests.roles" in text and "chatops-bot teleport-role" in text


@pytest.mark.parametrize("mode", ["on_behalf", "as_bot"])
def test_review_modes_cannot_work_on_community_edition(mode: str) -> None:
    [text] = fatal_texts(preflight.judge(info(enterprise=False), bot_role(COMMUNITY), mode=mode, has_rules=False))

    assert text.startswith(f"review.mode: {mode} cannot work on Teleport 18.11.0 Community Edition")
    assert "use review.mode: resolve with review.rules" in text


def test_resolve_on_community_edition_needs_rules_in_the_config() -> None:
    roles = bot_role(COMMUNITY)
    [text] = fatal_texts(preflight.judge(info(enterprise=False), roles, mode="resolve", has_rules=False))
    assert text.startswith("review.rules: required with review.mode: resolve on Teleport 18.11.0 Community")

    assert preflight.judge(info(enterprise=False), roles, mode="resolve", has_rules=True) == []


def test_a_missing_grant_is_named_with_what_it_is_for() -> None:
    role = bot_role()[0]
    rules = tuple(r for r in role.allow.rules if "user" not in r.resources)
    stripped = replace(role, allow=replace(role.allow, rules=rules))

    [text] = fatal_texts(preflight.judge(info(), [stripped], mode="on_behalf", has_rules=False))

    assert text.startswith("teleport: the bot's roles lack `user: list, read` (needed for ListUsers")


@pytest.mark.parametrize("version", ["15.4.22", "14.0.0"])
def test_servers_older_than_16_are_refused(version: str) -> None:
    [finding] = preflight.judge(info(version), bot_role(), mode="on_behalf", has_rules=False)

    assert finding.fatal
    assert f"Teleport {version} is older than the oldest the bot supports (16.0)" in finding.text


def test_a_newer_major_is_a_warning_not_a_refusal() -> None:
    [finding] = preflight.judge(info("19.0.3"), bot_role(), mode="on_behalf", has_rules=False)

    assert not finding.fatal
    assert "newer than the newest the bot is tested with (18.x)" in finding.text


def test_a_community_seed_with_review_rules_is_refused_like_tctl_create() -> None:
    with pytest.raises(SeedError, match="role dba-reviewer: role field allow.review_requests is only available"):
        DevTeleport(ENTERPRISE, edition="community")


async def test_inspect_reads_edition_user_and_roles_from_the_cluster(cluster_ca: ClusterCA, tmp_path: Path) -> None:
    server = DevTeleport(COMMUNITY, ca=cluster_ca, edition="community")
    await server.start("127.0.0.1:0")
    path = tmp_path / "bot.pem"
    write_identity_file(server.identity("chatops-bot"), path)
    client = TeleportClient(server.addr, IdentitySource(identity_file=str(path)), timeout=5.0)
    try:
        report = await preflight.inspect(client, mode="on_behalf", has_rules=False)
        fixed = await preflight.inspect(client, mode="resolve", has_rules=True)
    finally:
        await client.close()
        await server.stop()

    assert (report.edition, report.bot_user, report.bot_roles) == ("Community Edition", "chatops-bot", ("chatops-bot",))
    assert report.summary().endswith("review.mode on_behalf cannot work here.")
    assert len(report.fatal) == 1
    assert fixed.findings == [] and fixed.summary().endswith("review.mode resolve works here.")


@pytest.fixture(scope="module")
def community(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`chatops-bot devstack teleport --edition community` in its own process."""
    out = tmp_path_factory.mktemp("community")
    addr = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen([BIN, "devstack", "teleport", "--edition", "community", "--listen", addr,
                             "--identity-out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "serving on" in line:
            assert "Community Edition" in line
            break
    else:
        pytest.fail(f"devstack did not start: exit {proc.wait()}")
    yield addr, out
    proc.terminate()
    proc.wait(timeout=10)


def test_check_config_connect_exits_2_with_the_fix_on_community_edition(
    community: tuple[str, Path], tmp_path: Path
) -> None:
    addr, identities = community
    config = write_config(tmp_path / "dev.yaml", addr, identities / "chatops-bot.pem")

    result = run("check-config", "--connect", "-c", str(config))

    assert result.returncode == 2
    assert "Community Edition, cluster 'devstack.example.com', as chatops-bot" in result.stdout
    assert "review.mode on_behalf cannot work here." in result.stdout
    assert "error: review.mode: on_behalf cannot work on Teleport 18.11.0 Community Edition" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_to_start_where_the_mode_cannot_work(community: tuple[str, Path], tmp_path: Path) -> None:
    addr, identities = community
    config = write_config(tmp_path / "dev.yaml", addr, identities / "chatops-bot.pem")
    config.write_text(config.read_text() + (
        "mattermost:\n  url: http://127.0.0.1:9\n  bot_token: t\n  command_tokens: [c]\n"
        f"  action_secret: {'s' * 32}\n  public_url: http://127.0.0.1:9\n"
        f"server:\n  listen: 127.0.0.1:{free_port()}\n"))

    result = run("serve", "-c", str(config))

    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0].startswith(
        "review.mode: on_behalf cannot work on Teleport 18.11.0 Community Edition")
    assert "Traceback" not in result.stderr


def test_teleport_role_connect_refuses_a_mode_the_cluster_cannot_accept(
    community: tuple[str, Path], tmp_path: Path
) -> None:
    addr, identities = community
    config = write_config(tmp_path / "dev.yaml", addr, identities / "chatops-bot.pem")

    refused = run("teleport-role", "--connect", "-c", str(config))
    accepted = run("teleport-role", "--connect", "-c", str(config), "--review-mode", "resolve")

    assert refused.returncode == 2 and refused.stdout == ""
    assert "error: review.mode: on_behalf cannot work on Teleport 18.11.0 Community Edition" in refused.stderr
    # resolve is the mode Community Edition can hold; the missing review.rules are check-config's to name.
    assert accepted.returncode == 2
    assert "error: review.rules: required with review.mode: resolve" in accepted.stderr


def test_teleport_role_says_where_each_mode_works() -> None:
    on_behalf = run("teleport-role", "--review-mode", "on_behalf")
    resolve = run("teleport-role", "--review-mode", "resolve")

    assert "# This mode works on Teleport 18.11 or newer, Enterprise" in on_behalf.stdout
    assert "#       Before 18.11 `tctl create` silently drops this key" in on_behalf.stdout
    assert "# This mode works on Teleport 16 to 18, any edition" in resolve.stdout
