"""The `chatops-bot` command as an operator runs it: check-config, and the devstack Teleport beside it."""

from __future__ import annotations

import argparse

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import free_port

from chatops_bot.devstack.pki import ClusterCA, write_identity_file

BIN = shutil.which("chatops-bot", path=str(Path(sys.executable).parent)) or "chatops-bot"
SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-0000-super-secret-token",
    "SLACK_SIGNING_SECRET": "signing-secret-do-not-print",
    "MATTERMOST_BOT_TOKEN": "mm-bot-token-do-not-print",
    "MATTERMOST_COMMAND_TOKEN": "mm-command-token-do-not-print",
    "MATTERMOST_ACTION_SECRET": "action-secret-do-not-print-0123456789abcdef",
}


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def write_config(path: Path, addr: str, identity: Path) -> Path:
    path.write_text(f"teleport:\n  addr: {addr}\n  identity_file: {identity}\n  timeout: 3s\n")
    return path


@pytest.fixture(scope="module")
def devstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`chatops-bot devstack teleport` in its own process, as the README shows."""
    out = tmp_path_factory.mktemp("identities")
    addr = f"127.0.0.1:{free_port()}"
    proc = subprocess.Popen([BIN, "devstack", "teleport", "--listen", addr, "--identity-out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "serving on" in line:
            break
    else:
        pytest.fail(f"devstack did not start: exit {proc.wait()}")
    yield addr, out
    proc.terminate()
    proc.wait(timeout=10)


def test_example_config_is_valid_and_its_summary_hides_every_secret() -> None:
    result = run("check-config", "--verbose", "-c", "config.yaml.example", env=SECRETS)
    assert result.returncode == 0, result.stderr
    assert "\nteleport:\n  addr: teleport.example.com:3025\n" in result.stdout
    for secret in SECRETS.values():
        assert secret not in result.stdout + result.stderr


def test_a_broken_config_exits_2_naming_each_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("teleport:\n  identity_file: x.pem\nreview:\n  mode: sometimes\n")
    result = run("check-config", "-c", str(bad))
    assert result.returncode == 2
    assert "teleport.addr: required" in result.stderr.splitlines()
    assert any(line.startswith("review.mode:") for line in result.stderr.splitlines())
    assert "Traceback" not in result.stderr


def test_connect_prints_the_devstack_cluster_name(devstack: tuple[str, Path], tmp_path: Path) -> None:
    addr, identities = devstack
    config = write_config(tmp_path / "dev.yaml", addr, identities / "chatops-bot.pem")
    result = run("check-config", "--connect", "-c", str(config))
    assert result.returncode == 0, result.stderr
    (connected,) = [line for line in result.stdout.splitlines() if line.startswith("Connected to")]
    assert "cluster 'devstack.example.com', as chatops-bot" in connected


def test_connect_names_a_refused_connection(tmp_path: Path, devstack: tuple[str, Path]) -> None:
    _, identities = devstack
    config = write_config(tmp_path / "dev.yaml", f"127.0.0.1:{free_port()}", identities / "chatops-bot.pem")
    result = run("check-config", "--connect", "-c", str(config))
    assert result.returncode == 1
    assert "teleport.addr: cannot connect" in result.stderr
    assert "connection refused" in result.stderr


def test_connect_names_a_ca_mismatch(devstack: tuple[str, Path], tmp_path: Path) -> None:
    addr, _ = devstack
    stranger = ClusterCA.generate("other.example.com")
    identity = tmp_path / "stranger.pem"
    write_identity_file(stranger.issue_identity("chatops-bot", ["chatops-bot"]), identity)
    result = run("check-config", "--connect", "-c", str(write_config(tmp_path / "dev.yaml", addr, identity)))
    assert result.returncode == 1
    assert "teleport.addr: TLS" in result.stderr
    assert "Traceback" not in result.stderr


def test_connect_names_an_expired_certificate(devstack: tuple[str, Path], tmp_path: Path) -> None:
    addr, identities = devstack
    ca = ClusterCA.load(identities / "ca")
    identity = tmp_path / "expired.pem"
    past = datetime.now(UTC) - timedelta(hours=3)
    write_identity_file(ca.issue_identity("chatops-bot", ["chatops-bot"], not_before=past,
                                          valid_for=timedelta(hours=1)), identity)
    result = run("check-config", "--connect", "-c", str(write_config(tmp_path / "dev.yaml", addr, identity)))
    assert result.returncode == 2  # the identity file named by the config cannot be used
    assert "teleport.identity_file: the certificate expired at" in result.stderr


def test_connect_names_a_missing_permission(devstack: tuple[str, Path], tmp_path: Path) -> None:
    addr, identities = devstack
    config = write_config(tmp_path / "dev.yaml", addr, identities / "alice.pem")
    result = run("check-config", "--connect", "-c", str(config))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "error: teleport: the bot's roles lack `user: list, read` (needed for " in result.stderr
    assert len(errors) > 1 and not any("prints the role" in line for line in errors)  # the way out, once:
    assert result.stderr.splitlines()[-1] == (
        "To fix the role: `chatops-bot teleport-role --review-mode on_behalf` prints the role.")


def test_connect_names_a_malformed_identity_file(devstack: tuple[str, Path], tmp_path: Path) -> None:
    addr, _ = devstack
    identity = tmp_path / "broken.pem"
    identity.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    result = run("check-config", "--connect", "-c", str(write_config(tmp_path / "dev.yaml", addr, identity)))
    assert result.returncode == 2  # the identity file named by the config cannot be used
    assert result.stderr.startswith("teleport.identity_file: ")
    assert "Traceback" not in result.stderr


def test_slack_manifest_asks_for_exactly_the_scopes_the_bot_uses(tmp_path: Path) -> None:
    import yaml

    plain = yaml.safe_load(run("slack-manifest", "--url", "https://bot.example.com").stdout)
    assert plain["oauth_config"]["scopes"]["bot"] == ["commands", "chat:write", "im:write", "users:read"]
    assert plain["settings"]["interactivity"]["request_url"] == "https://bot.example.com/slack/events"
    assert plain["features"]["slash_commands"][0]["command"] == "/access"

    config = tmp_path / "email.yaml"
    config.write_text("teleport: {addr: 'a:3025', identity_file: x.pem}\nusers: {match_email: true}\n")
    with_email = yaml.safe_load(run("slack-manifest", "--socket-mode", "-c", str(config)).stdout)
    assert with_email["oauth_config"]["scopes"]["bot"][-1] == "users:read.email"
    assert with_email["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in with_email["settings"]["interactivity"]

    missing = run("slack-manifest")
    assert missing.returncode == 2
    assert "--url is required unless --socket-mode" in missing.stderr


def test_devstack_names_the_flag_at_fault(tmp_path: Path, devstack: tuple[str, Path]) -> None:
    taken, _ = devstack
    for args, flag in (
        (["--listen", taken, "--identity-out", str(tmp_path / "ids")], f"--listen {taken}: cannot listen"),
        (["--listen", "127.0.0.1:0", "--identity-out", "/etc/passwd"], "--identity-out /etc/passwd: "),
    ):
        result = run("devstack", "teleport", *args)
        assert result.returncode == 1
        assert any(line.startswith(flag) for line in result.stderr.splitlines()), result.stderr
        assert "Traceback" not in result.stderr


def test_serve_refuses_before_connecting_when_nothing_can_work(tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("teleport: {addr: '127.0.0.1:9', identity_file: missing.pem}\n")
    result = run("serve", "-c", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith("slack, mattermost: no chat platform is configured")

    config.write_text(config.read_text() + "slack: {bot_token: xoxb-1, signing_secret: s}\n")
    result = run("serve", "-c", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith(f"teleport.identity_file: {tmp_path / 'missing.pem'}")
    assert "Traceback" not in result.stderr


def test_json_logs_are_one_object_a_line_with_the_request_context() -> None:
    import io
    import json
    import logging

    from chatops_bot import logs

    stream = io.StringIO()
    logs.configure("INFO", "json", stream=stream)
    try:
        logging.getLogger("chatops_bot.test").warning(
            "Teleport: %s", "refused", extra={"platform": "slack", "chat_user": "U0BOB", "secret": "x"}
        )
    finally:
        logs.configure("WARNING")
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "Teleport: refused"
    assert (entry["level"], entry["platform"], entry["chat_user"]) == ("WARNING", "slack", "U0BOB")
    assert "secret" not in entry


def test_version_names_the_teleport_versions_it_speaks() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("chatops-bot ") and "supports Teleport 16 to 18" in result.stdout


def test_demo_piped_into_head_ends_quietly() -> None:
    demo = subprocess.Popen([BIN, "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert demo.stdout is not None
    demo.stdout.readline()
    demo.stdout.close()  # what `| head -1` does once it has its line
    _, stderr = demo.communicate(timeout=30)
    assert demo.returncode == 0
    assert stderr == b""


def test_console_checks_teleport_before_the_first_prompt(devstack: tuple[str, Path], tmp_path: Path) -> None:
    addr, identities = devstack
    down = run("console", "--as", "alice", "-c", str(write_config(tmp_path / "down.yaml", f"127.0.0.1:{free_port()}",
                                                                   identities / "chatops-bot.pem")))
    assert down.returncode == 1
    assert "teleport.addr: cannot connect" in down.stderr and ">" not in down.stdout

    config = write_config(tmp_path / "dev.yaml", addr, identities / "chatops-bot.pem")
    up = subprocess.run([BIN, "console", "--as", "alice", "-c", str(config)], input="/access help\n",
                        capture_output=True, text=True, timeout=30)
    assert up.returncode == 0, up.stderr
    assert up.stdout.splitlines()[0].endswith("review.mode on_behalf works here.")
    assert "/access request" in up.stdout

    # A person's identity instead of the bot's: every command would be refused, so the console does not start.
    person = write_config(tmp_path / "alice.yaml", addr, identities / "alice.pem")
    refused = subprocess.run([BIN, "console", "--as", "alice", "-c", str(person)], input="/access help\n",
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2
    assert "the bot's roles lack" in refused.stderr and "Type `/access" not in refused.stdout
    assert refused.stderr.count("prints the role") == 1


def test_ctrl_c_at_the_console_prompt_ends_it_at_once(devstack: tuple[str, Path], tmp_path: Path) -> None:
    import signal
    import time

    addr, identities = devstack
    config = write_config(tmp_path / "dev.yaml", addr, identities / "chatops-bot.pem")
    console = subprocess.Popen([BIN, "console", "--as", "alice", "-c", str(config)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert console.stdout is not None
    while "Ctrl-D quits" not in console.stdout.readline():
        pass
    console.send_signal(signal.SIGINT)  # stdin stays open: the prompt is still waiting for a line
    started = time.monotonic()
    console.wait(timeout=10)
    assert time.monotonic() - started < 2
    assert console.returncode == 130


# --- the first hour: check-config on a config written a minute ago ---------------------------------------


def test_check_config_starts_with_a_verdict_and_leaves_secrets_for_later(tmp_path: Path) -> None:
    """A fresh copy of the example, no secret exported yet: valid, and it says what is still to come."""
    result = run("check-config", "-c", "config.yaml.example",
                 env={name: "" for name in SECRETS} | {"PATH": os.environ["PATH"]})
    unset = subprocess.run([BIN, "check-config", "-c", "config.yaml.example"], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k not in SECRETS}, timeout=30)
    assert result.returncode == 2  # set but empty is a mistake, not "later"
    assert unset.returncode == 0, unset.stderr
    lines = unset.stdout.splitlines()
    assert lines[0] == "config.yaml.example: valid; slack (HTTP), mattermost; review.mode on_behalf"
    assert "  slack.bot_token: ${SLACK_BOT_TOKEN} not set yet" in lines
    assert "teleport:" not in lines  # the effective config only with --verbose


def test_check_config_verbose_prints_the_effective_config_as_yaml(tmp_path: Path) -> None:
    import yaml

    result = run("check-config", "-v", "-c", "config.yaml.example", env=SECRETS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    shown = yaml.safe_load("\n".join(lines[lines.index("teleport:"):]))
    assert shown["teleport"]["timeout"] == "10s" and shown["slack"]["bot_token"] == "(set)"
    assert shown["reminders"]["before_expiry"] == ["15m", "5m"]


def test_check_config_counts_the_mistakes_and_names_each_key(tmp_path: Path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("teleport:\n  addr: auth.example.com:3025\n  identity_file: id\nreveiw:\n  mode: as_bot\n"
                   "users:\n  match_email: yes\nserver:\n  listen: 8080\n")
    result = run("check-config", "-c", str(bad))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}: 3 problems",
        "server.listen: must be a string",
        "users.match_email: must be true or false",
        "reveiw: unknown key `reveiw`; did you mean `review`?",
    ]


def test_slack_channel_names_add_channels_read_and_need_no_secrets(tmp_path: Path) -> None:
    import yaml

    config = tmp_path / "config.yaml"
    config.write_text("teleport: {addr: 'a:3025', identity_file: x.pem}\n"
                      "slack: {bot_token: '${NOT_EXPORTED_YET}', app_token_file: /run/secrets/nowhere}\n"
                      "routing: {role_to_recipients: {slack: {dba: ['#dba-oncall', C0ACCESS0]}}}\n")
    manifest = run("slack-manifest", "--socket-mode", "-c", str(config))
    assert manifest.returncode == 0, manifest.stderr
    assert yaml.safe_load(manifest.stdout)["oauth_config"]["scopes"]["bot"][-1] == "channels:read"

    check = run("check-config", "-c", str(config))
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[0] == f"{config}: valid; slack (socket mode); review.mode on_behalf"
    assert "routing.role_to_recipients.slack: #dba-oncall named, not by ID: looking names up needs the " \
        "channels:read scope" in check.stdout
    assert "  slack.app_token: read from /run/secrets/nowhere when used" in check.stdout

    role = run("teleport-role", "-c", str(config))
    assert role.returncode == 0, role.stderr

    serve = run("serve", "-c", str(config))
    assert serve.returncode == 2
    assert "slack.bot_token: environment variable NOT_EXPORTED_YET is not set" in serve.stderr.splitlines()


def test_every_subcommand_that_reads_a_config_says_what_it_reads() -> None:
    from chatops_bot.cli import _parser
    from test_docs import subparsers

    reading = {name: parser for name, parser in subparsers(_parser()).items()
               if "-c" in parser._option_string_actions}
    assert set(reading) == {"check-config", "serve", "slack-manifest", "teleport-role",
                            "mattermost-register", "console", "webhook-test"}
    for name, parser in reading.items():
        assert len(parser._option_string_actions["-c"].help or "") > 40, name
    shown = " ".join(run("serve", "--help").stdout.split())
    assert "-c CONFIG, --config CONFIG" in shown and "the secrets it names" in shown


def test_check_config_warns_when_mattermost_calls_the_bot_over_plain_http_to_another_host(tmp_path: Path) -> None:
    (tmp_path / "id.pem").write_text("an identity, as far as this check goes")

    def config(public_url: str, identity: str = "id.pem") -> Path:
        path = tmp_path / f"config-{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(f"teleport:\n  addr: auth.example.com:3025\n  identity_file: {identity}\n"
                        "mattermost:\n  url: https://chat.example.com\n  bot_token: t\n  command_tokens: [c]\n"
                        f"  action_secret: {'s' * 32}\n  public_url: {public_url}\n")
        return path

    warned = run("check-config", "-c", str(config("http://chatops.internal:8080")))
    assert warned.returncode == 0, warned.stderr
    assert "warning: mattermost.public_url is plain HTTP to another host" in warned.stdout
    for quiet in ("https://chatops.example.com", "http://127.0.0.1:8080", "http://localhost:8080"):
        result = run("check-config", "-c", str(config(quiet)))
        assert result.returncode == 0 and "warning" not in result.stdout, (quiet, result.stdout)
    missing = run("check-config", "-c", str(config("https://chatops.example.com", identity="missing.pem")))
    assert missing.returncode == 0
    assert f"warning: teleport.identity_file: {tmp_path / 'missing.pem'} does not exist yet" in missing.stdout


def test_every_subcommands_help_opens_with_what_it_does() -> None:
    from chatops_bot.cli import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        assert command.description and command.description[0].isupper(), name
        assert command.description.endswith("."), name
