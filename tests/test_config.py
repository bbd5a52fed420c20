"""What a deployer sees from config.yaml: the example loads, mistakes name their key, secrets stay hidden."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from chatops_bot.config import ConfigError, Settings, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config.yaml.example"

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-slack-bot-token-value",
    "SLACK_SIGNING_SECRET": "slack-signing-secret-value-2222",
    "MATTERMOST_BOT_TOKEN": "mattermost-bot-token-3333",
    "MATTERMOST_COMMAND_TOKEN": "mattermost-command-token-4444",
    "MATTERMOST_ACTION_SECRET": "mattermost-action-secret-5555-at-least-32-chars",
}

MINIMAL = """
teleport:
  addr: auth.example.com:3025
  identity_file: /var/lib/bot/identity
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env=env or {})
    return caught.value.problems


def test_example_config_loads_with_its_env_vars() -> None:
    settings = load_config(EXAMPLE, env=SECRETS)

    assert settings.teleport.addr == "teleport.example.com:3025"
    assert settings.slack is not None and settings.mattermost is not None
    assert settings.slack.bot_token.get_secret_value() == SECRETS["SLACK_BOT_TOKEN"]
    assert [token.get_secret_value() for token in settings.mattermost.command_tokens] == [
        SECRETS["MATTERMOST_COMMAND_TOKEN"]
    ]
    assert settings.routing.role_to_recipients.slack["*"] == ("C0ACCESS0",)
    assert settings.users.map["slack:U012ABC"] == "alice"


def test_example_config_documents_every_key() -> None:
    documented = EXAMPLE.read_text()

    def keys(model: type[BaseModel]) -> Iterator[str]:
        for name, field in model.model_fields.items():
            yield name
            sections = [
                arg for arg in (field.annotation, *get_args(field.annotation)) if isinstance(arg, type)
            ]
            for section in sections:
                if issubclass(section, BaseModel):
                    yield from keys(section)

    undocumented = [
        key for key in keys(Settings) if not re.search(rf"^[ #]*{key}:", documented, re.MULTILINE)
    ]
    assert undocumented == []


def test_minimal_config_takes_the_documented_defaults(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL), env={})

    assert settings.slack is None and settings.mattermost is None
    assert settings.teleport.timeout == timedelta(seconds=10)
    assert settings.teleport.plugin_name == "chatops-bot"
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.review.mode == "on_behalf"
    assert settings.reminders.before_expiry == (timedelta(minutes=15), timedelta(minutes=5))
    assert settings.reminders.nudge_pending_after == timedelta(minutes=30)
    assert (settings.reminders.on_expiry, settings.reminders.max_nudges) == (True, 2)
    assert (settings.logging.level, settings.logging.format) == ("INFO", "plain")


def test_summary_shows_effective_values_and_disabled_platforms(tmp_path: Path) -> None:
    # An empty key takes its default: `slack:` with nothing under it leaves Slack disabled.
    settings = load_config(write(tmp_path, MINIMAL + "slack:\nlogging:\n  level: debug\n"), env={})
    summary = settings.summary().splitlines()

    assert "slack: disabled" in summary and "mattermost: disabled" in summary
    assert "  timeout: 10s" in summary and "  level: DEBUG" in summary
    assert "  addr: auth.example.com:3025" in summary


def test_summary_is_yaml_with_the_effective_values_and_no_secret() -> None:
    shown = yaml.safe_load(load_config(EXAMPLE, env=SECRETS).summary())

    assert shown["teleport"]["timeout"] == "10s" and shown["teleport"]["client_key_file"] is None
    assert shown["slack"] == {"bot_token": "(set)", "signing_secret": "(set)", "app_token": "(not set)",
                              "api_url": "https://slack.com/api/"}
    assert shown["mattermost"]["command_tokens"] == ["(set)"]
    assert shown["routing"]["role_to_recipients"]["slack"]["*"] == ["C0ACCESS0"]
    assert shown["users"]["match_email"] is False and shown["review"]["rules"] is None


def test_settings_cannot_be_changed_after_loading(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, MINIMAL), env={})
    with pytest.raises(ValidationError):
        settings.teleport.addr = "evil.example.com:3025"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("teleport:\n  identity_file: /id\n", "teleport.addr: required"),
        (MINIMAL + "review:\n  mode: yolo\n", "review.mode: must be one of on_behalf, as_bot, resolve"),
        (
            MINIMAL + "reminders:\n  before_expiry: [15m, 5 minutes]\n",
            'reminders.before_expiry[1]: `5 minutes` is not a duration; use a number and a unit (s, m, h, d), largest unit first, such as 30m, 2h, 1h30m or 1d.',
        ),
        (
            MINIMAL + "reminders:\n  nudge_pending_after: 0m\n",
            "reminders.nudge_pending_after: `0m` is not long enough: a duration must be more than 0.",
        ),
        (MINIMAL + "reminders:\n  max_nudges: -1\n", "reminders.max_nudges: must be at least 0"),
        (
            MINIMAL + "slack:\n  bot_token: xoxb-1\n  app_token: xapp-2\n  api_ulr: x\n",
            "slack.api_ulr: unknown key `api_ulr`; did you mean `api_url`?",
        ),
        (MINIMAL + "slak:\n  bot_token: xoxb-1\n", "slak: unknown key `slak`; did you mean `slack`?"),
        (MINIMAL + "server:\n  listen: 8080\n", "server.listen: must be a string"),
        (
            MINIMAL + "server:\n  listen: localhost\n",
            "server.listen: must be host:port, e.g. 127.0.0.1:8080 (0.0.0.0:8080 in a container)",
        ),
        (MINIMAL + "logging:\n  format: xml\n", "logging.format: must be one of plain, json"),
        (
            MINIMAL + "users:\n  map:\n    U012ABC: alice\n",
            "users.map.U012ABC: "
            'must be "<platform>:<chat user id>" with platform slack, mattermost or console',
        ),
        (
            MINIMAL + "routing:\n  role_to_recipients:\n    mattermost:\n      dba: [town-square]\n",
            'routing.role_to_recipients.mattermost.dba[0]: must be "team/channel", a channel ID or an e-mail address',
        ),
    ],
)
def test_each_mistake_is_named_by_its_key_path(tmp_path: Path, body: str, line: str) -> None:
    assert problems(tmp_path, body) == [line]


def test_misspelt_key_is_named_next_to_the_key_it_was_meant_to_be(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + "slack:\n  bot_tokn: xoxb-1\n  signing_secret: s\n") == [
        "slack.bot_token: required: write it as ${VARIABLE} (an environment variable) or name a file with `bot_token_file`",
        "slack.bot_tokn: unknown key `bot_tokn`; did you mean `bot_token`?",
    ]


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config("config.yaml")
    assert caught.value.problems == ["config.yaml: cannot read it: No such file or directory"]


def test_invalid_yaml_names_the_line_but_not_its_content(tmp_path: Path) -> None:
    found = problems(tmp_path, "teleport:\n  addr: a:1\n  bot_token: xoxb-hunter2: oops\n")
    assert found == [f"{tmp_path / 'config.yaml'}: not valid YAML at line 3: mapping values are not allowed here"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        teleport: {}
        slack:
          bot_token: not-a-bot-token
        review:
          mode: yolo
        reminders:
          before_expiry: [soon]
        """,
    )
    assert found == [
        "teleport.addr: required",
        "teleport: set identity_file, or client_key_file, client_cert_file and root_cas_file",
        "slack.bot_token: must start with xoxb-",
        "slack.signing_secret: required unless app_token is set",
        "review.mode: must be one of on_behalf, as_bot, resolve",
        'reminders.before_expiry[0]: `soon` is not a duration; use a number and a unit (s, m, h, d), largest unit first, such as 30m, 2h, 1h30m or 1d.',
    ]


def test_missing_teleport_section(tmp_path: Path) -> None:
    assert problems(tmp_path, "server:\n  listen: 127.0.0.1:9000\n") == ["teleport: required"]


def test_durations_accept_the_documented_forms(tmp_path: Path) -> None:
    settings = load_config(
        write(tmp_path, MINIMAL + "  timeout: 30s\nreminders:\n  before_expiry: [1d, 2h, 1h30m, 15m]\n"),
        env={},
    )
    assert settings.teleport.timeout == timedelta(seconds=30)
    assert settings.reminders.before_expiry == (
        timedelta(days=1),
        timedelta(hours=2),
        timedelta(hours=1, minutes=30),
        timedelta(minutes=15),
    )
    assert "before_expiry: [1d, 2h, 1h30m, 15m]" in settings.summary()


@pytest.mark.parametrize("value", ["-5m", "10", "1.5h", "m", "5 minutes"])
def test_durations_refuse_garbage(tmp_path: Path, value: str) -> None:
    assert problems(tmp_path, MINIMAL + f'  timeout: "{value}"\n') == [
        f"teleport.timeout: `{value}` is not a duration; use a number and a unit (s, m, h, d), largest unit first, such as 30m, 2h, 1h30m or 1d."
    ]


class TestTeleportCredentials:
    def test_tls_files_are_an_alternative_to_the_identity_file(self, tmp_path: Path) -> None:
        body = (
            "teleport:\n  addr: auth:3025\n  client_key_file: k\n  client_cert_file: c\n  root_cas_file: r\n"
        )
        settings = load_config(write(tmp_path, body), env={})
        assert settings.teleport.identity_file is None
        # Relative to the config file, not to wherever the bot was started.
        assert settings.teleport.root_cas_file == tmp_path / "r"

    def test_neither_form(self, tmp_path: Path) -> None:
        assert problems(tmp_path, "teleport:\n  addr: auth:3025\n") == [
            "teleport: set identity_file, or client_key_file, client_cert_file and root_cas_file"
        ]

    def test_both_forms(self, tmp_path: Path) -> None:
        assert problems(tmp_path, MINIMAL + "  client_key_file: k\n") == [
            "teleport: set identity_file or client_key_file/client_cert_file/root_cas_file, not both"
        ]

    def test_incomplete_tls_form_names_the_missing_files(self, tmp_path: Path) -> None:
        assert problems(tmp_path, "teleport:\n  addr: auth:3025\n  client_key_file: k\n") == [
            "teleport.client_cert_file: required with client_key_file",
            "teleport.root_cas_file: required with client_key_file",
        ]


class TestSecrets:
    def test_secrets_come_from_env_and_files(self, tmp_path: Path) -> None:
        token_file = tmp_path / "bot_token"
        token_file.write_text("  xoxb-from-a-file\n")
        tokens_file = tmp_path / "command_tokens"
        tokens_file.write_text("first-token\n\nsecond-token\n")
        body = (
            MINIMAL
            + f"""
slack:
  bot_token_file: {token_file}
  signing_secret: prefix-${{SIGNING}}
mattermost:
  url: https://mm.example.com
  bot_token: ${{MM_TOKEN}}
  command_tokens_file: {tokens_file}
  action_secret: {"x" * 32}
  public_url: http://bot.example.com:8080
"""
        )
        settings = load_config(write(tmp_path, body), env={"SIGNING": "from-env", "MM_TOKEN": "mm"})
        assert settings.slack is not None and settings.mattermost is not None
        assert settings.slack.bot_token.get_secret_value() == "xoxb-from-a-file"
        assert settings.slack.signing_secret is not None
        assert settings.slack.signing_secret.get_secret_value() == "prefix-from-env"
        assert [t.get_secret_value() for t in settings.mattermost.command_tokens] == [
            "first-token",
            "second-token",
        ]

    def test_missing_env_var_names_key_and_variable_once(self, tmp_path: Path) -> None:
        body = MINIMAL + "slack:\n  bot_token: ${SLACK_BOT_TOKEN}\n  signing_secret: s\n"
        assert problems(tmp_path, body) == [
            "slack.bot_token: environment variable SLACK_BOT_TOKEN is not set"
        ]

    def test_unreadable_secret_file_names_the_key_once(self, tmp_path: Path) -> None:
        body = MINIMAL + "slack:\n  bot_token_file: /nonexistent/token\n  signing_secret: s\n"
        assert problems(tmp_path, body) == [
            "slack.bot_token_file: cannot read /nonexistent/token: No such file or directory"
        ]

    def test_secret_and_its_file_together_are_refused(self, tmp_path: Path) -> None:
        body = MINIMAL + "slack:\n  bot_token: xoxb-1\n  bot_token_file: /x\n  signing_secret: s\n"
        assert problems(tmp_path, body) == ["slack.bot_token_file: set bot_token or bot_token_file, not both"]

    def test_file_keys_exist_only_for_secrets(self, tmp_path: Path) -> None:
        assert problems(tmp_path, MINIMAL + "server:\n  listen_file: /x\n") == [
            "server.listen_file: unknown key `listen_file`: only secrets may be read from a file; set listen"
        ]

    def test_socket_mode_needs_no_signing_secret(self, tmp_path: Path) -> None:
        settings = load_config(
            write(tmp_path, MINIMAL + "slack:\n  bot_token: xoxb-1\n  app_token: xapp-2\n"), env={}
        )
        assert settings.slack is not None and settings.slack.socket_mode

    def test_secrets_never_shown(self, tmp_path: Path) -> None:
        settings = load_config(EXAMPLE, env=SECRETS)
        shown = settings.summary() + repr(settings) + str(settings)
        for secret in SECRETS.values():
            assert secret not in shown
        assert "bot_token: (set)" in shown and "app_token: (not set)" in shown

    def test_secrets_never_appear_in_problems(self, tmp_path: Path) -> None:
        secret_file = tmp_path / "app_token"
        secret_file.write_text("not-an-app-token-ffff")
        body = (
            MINIMAL
            + f"""
slack:
  bot_token: ${{BAD_BOT_TOKEN}}
  app_token_file: {secret_file}
  signing_secret: 12345
  bot_tokenn: xoxb-typo-in-key-gggg
mattermost:
  url: https://mm.example.com
  bot_token: mm-token-hhhh
  command_tokens: []
  action_secret: too-short-secret-iiii
  public_url: https://bot.example.com
"""
        )
        bad = {"BAD_BOT_TOKEN": "xoxp-user-token-eeee"}
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, body), env=bad)
        text = str(caught.value) + repr(caught.value) + "\n".join(caught.value.problems)
        for secret in ("eeee", "ffff", "12345", "gggg", "hhhh", "iiii"):
            assert secret not in text
        assert caught.value.problems == [
            "slack.bot_token: must start with xoxb-",
            "slack.signing_secret: must be a string",
            "slack.app_token: must start with xapp-",
            "slack.bot_tokenn: unknown key `bot_tokenn`; did you mean `bot_token`?",
            "mattermost.command_tokens: must not be empty (`chatops-bot mattermost-register` prints the token)",
            "mattermost.action_secret: must be at least 32 characters",
        ]


def test_an_absurd_duration_is_a_config_error_not_a_crash(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + '  timeout: "99999999999d"\n') == [
        "teleport.timeout: `99999999999d` is too long to be a duration."
    ]


def test_a_key_given_twice_is_refused_rather_than_silently_replaced(tmp_path: Path) -> None:
    body = MINIMAL + "review:\n  mode: resolve\nreview:\n  web_only_roles: [dba]\n"
    [line] = problems(tmp_path, body)
    assert line.startswith(f"{tmp_path / 'config.yaml'}: not valid YAML at line ")
    assert "the key 'review' is given twice" in line


def test_relative_secret_files_are_read_next_to_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "slack.token").write_text("xoxb-from-a-file\n")
    config = write(tmp_path, MINIMAL + "slack:\n  bot_token_file: slack.token\n  app_token: xapp-1\n")
    monkeypatch.chdir("/")
    settings = load_config(config, env={})
    assert settings.slack is not None
    assert settings.slack.bot_token.get_secret_value() == "xoxb-from-a-file"


def test_a_mattermost_channel_id_is_a_recipient(tmp_path: Path) -> None:
    body = MINIMAL + "routing:\n  role_to_recipients:\n    mattermost:\n      dba: [chanaccess0000000000000000]\n"
    settings = load_config(write(tmp_path, body), env={})
    assert settings.routing.role_to_recipients.mattermost["dba"] == ("chanaccess0000000000000000",)


# --- review.rules (Community Edition: the bot decides who may review) ----------------------------------


def example_with_rules() -> str:
    """The example config with its commented `review.rules` block switched on, and mode: resolve."""
    lines = EXAMPLE.read_text().splitlines()
    start = lines.index("  # rules:")
    out, inside = lines[:start], True
    for line in lines[start:]:
        if inside and line.startswith("  # ") and not line.startswith("  #   #"):
            out.append("  " + line[4:])
        elif inside and line.startswith("  #   #"):
            continue
        else:
            inside = False
            out.append(line)
    text = "\n".join(out) + "\n"
    assert text.count("  mode: on_behalf\n") == 1
    return text.replace("  mode: on_behalf\n", "  mode: resolve\n")


def test_example_review_rules_load(tmp_path: Path) -> None:
    settings = load_config(write(tmp_path, example_with_rules()), env=SECRETS)
    allow, deny = settings.review.review_rules()
    assert (allow.roles, allow.reviewer_roles, allow.reviewer_users, allow.approvals, allow.deny) == (
        ("dba", "db-*"), ("dba-lead",), ("alice@example.com",), 2, False)
    assert (deny.roles, deny.reviewer_users, deny.deny) == (("*",), ("contractor-*",), True)
    assert yaml.safe_load(settings.summary())["review"]["rules"][0] == {
        "roles": ["dba", "db-*"], "reviewers": {"roles": ["dba-lead"], "users": ["alice@example.com"]},
        "approvals": 2, "deny": False}


def test_no_rules_by_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL), env={}).review.review_rules() == ()


RESOLVE = MINIMAL + "review:\n  mode: resolve\n"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (
            MINIMAL + "review:\n  rules:\n    - {roles: [dba], reviewers: {users: [bob]}}\n",
            "review.rules: used only with mode: resolve (the bot then decides by these rules)",
        ),
        (
            RESOLVE + "  rules: []\n",
            "review.rules: must not be empty (leave it out to let reviewers' Teleport roles decide)",
        ),
        (RESOLVE + "  rules:\n    - {reviewers: {users: [bob]}}\n", "review.rules[0].roles: required"),
        (RESOLVE + "  rules:\n    - {roles: [], reviewers: {users: [bob]}}\n", "review.rules[0].roles: must not be empty"),
        (RESOLVE + "  rules:\n    - {roles: [dba]}\n", "review.rules[0].reviewers: required"),
        (
            RESOLVE + "  rules:\n    - {roles: [dba], reviewers: {}}\n",
            "review.rules[0].reviewers: name reviewer roles or users (or both)",
        ),
        (
            RESOLVE + "  rules:\n    - {roles: [dba], reviewers: {users: [bob]}, approvals: 0}\n",
            "review.rules[0].approvals: must be at least 1",
        ),
        (
            RESOLVE + "  rules:\n    - {roles: [dba], reviewers: {users: [bob]}}\n"
            "    - {roles: [dba], reviewers: {users: [eve]}, deny: true, approvals: 2}\n",
            "review.rules[1].approvals: only allow rules count approvals; a deny rule refuses its reviewers",
        ),
        (
            RESOLVE + "  rules:\n    - {roles: [dba], reviewers: {users: [eve]}, deny: true}\n",
            "review.rules: needs at least one allow rule (without deny: true), or nobody may review",
        ),
        (
            RESOLVE + "  rules:\n    - {roles: ['^db-(?=x)$'], reviewers: {users: [bob]}}\n",
            "review.rules[0].roles[0]: '^db-(?=x)$': lookaround, backreferences and atomic groups are not RE2",
        ),
        (
            RESOLVE + "  rules:\n    - {roles: [dba], reviewers: {roles: ['{{internal.logins}}']}}\n",
            "review.rules[0].reviewers.roles[0]: '{{internal.logins}}': role matchers support only "
            "regexp.match and regexp.not_match, not interpolation",
        ),
        (
            RESOLVE + "  rules:\n    - {roles: [dba], reviewers: {users: [bob], teams: [x]}}\n",
            "review.rules[0].reviewers.teams: unknown key",
        ),
    ],
)
def test_review_rule_mistakes_are_named_by_their_key_path(tmp_path: Path, body: str, line: str) -> None:
    assert problems(tmp_path, body) == [line]


# --- the first hour: mistakes a new operator makes, and secrets not at hand yet ----------------------------


def test_an_unknown_key_is_answered_with_the_nearest_known_one(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + "reveiw:\n  mode: resolve\n") == [
        "reveiw: unknown key `reveiw`; did you mean `review`?"
    ]
    assert problems(tmp_path, MINIMAL + "review:\n  web_only_role: [dba]\n") == [
        "review.web_only_role: unknown key `web_only_role`; did you mean `web_only_roles`?"
    ]
    assert problems(tmp_path, MINIMAL + "slack:\n  bot_tokne_file: /x\n  app_token: xapp-1\n") == [
        "slack.bot_token: required: write it as ${VARIABLE} (an environment variable) or name a file with `bot_token_file`",
        "slack.bot_tokne_file: unknown key `bot_tokne_file`; did you mean `bot_token_file`?"
    ]
    assert problems(tmp_path, MINIMAL + "logging:\n  colour: true\n") == ["logging.colour: unknown key"]


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (MINIMAL + "users:\n  match_email: yes\n", "users.match_email: must be true or false"),
        (MINIMAL + "users:\n  match_email: 'true'\n", "users.match_email: must be true or false"),
        (MINIMAL + "reminders:\n  on_expiry: 1\n", "reminders.on_expiry: must be true or false"),
        (MINIMAL + "review:\n  deny_reason_required: on\n", "review.deny_reason_required: must be true or false"),
        (MINIMAL + "reminders:\n  max_nudges: '3'\n", "reminders.max_nudges: must be a whole number"),
        (MINIMAL + "reminders:\n  max_nudges: 2.0\n", "reminders.max_nudges: must be a whole number"),
        (MINIMAL + "reminders:\n  max_nudges: true\n", "reminders.max_nudges: must be a whole number"),
        (MINIMAL + "  plugin_name: 7\n", "teleport.plugin_name: must be a string"),
        (MINIMAL + "review:\n  web_only_roles: [admin, 3]\n", "review.web_only_roles[1]: must be a string"),
    ],
)
def test_values_are_not_silently_coerced(tmp_path: Path, body: str, line: str) -> None:
    assert problems(tmp_path, body) == [line]


def test_yes_and_no_are_words_not_booleans(tmp_path: Path) -> None:
    body = MINIMAL + "review:\n  web_only_roles: [no, on]\n  deny_reason_required: true\n"
    settings = load_config(write(tmp_path, body), env={})
    assert settings.review.web_only_roles == ("no", "on") and settings.review.deny_reason_required is True


@pytest.mark.parametrize("value", ["${SLACK_BOT_TOKEN", "xoxb-${}", "${SLACK BOT TOKEN}", "${1X}"])
def test_an_unterminated_or_malformed_env_reference_is_refused(tmp_path: Path, value: str) -> None:
    body = MINIMAL + f"slack:\n  bot_token: '{value}'\n  app_token: xapp-1\n"
    assert problems(tmp_path, body, env={"SLACK_BOT_TOKEN": "xoxb-1"}) == [
        "slack.bot_token: has a `${` that does not start a ${VARIABLE} reference (is a `}` missing, or the "
        "name not made of letters, digits and _?)"
    ]


def test_addresses_are_explained_with_an_example_of_their_own_kind(tmp_path: Path) -> None:
    assert problems(tmp_path, "teleport:\n  addr: auth.example.com\n  identity_file: x\n") == [
        "teleport.addr: must be host:port, e.g. auth.example.com:3025 or teleport.example.com:443"
    ]


SLACK_ROUTE = MINIMAL + "routing:\n  role_to_recipients:\n    slack:\n      dba: {}\n"


def test_slack_recipients_are_channel_ids_member_ids_or_channel_names(tmp_path: Path) -> None:
    good = ["C0ACCESS0", "G0PRIVATE1", "U012ABCDE", "W012ABCDE", "#dba-oncall", "#access_requests"]
    settings = load_config(write(tmp_path, SLACK_ROUTE.format(good)), env={})
    assert settings.routing.role_to_recipients.slack["dba"] == tuple(good)
    assert settings.slack_channel_names() == ["#access_requests", "#dba-oncall"]


@pytest.mark.parametrize(("recipient", "hint"), [
    ("access-requests", '; did you mean "#access-requests"?'),  # a channel's name without its #
    ("c0access0", '; did you mean "#c0access0"?'),
    ("#", ""), ("@alice", ""), ("C0", ""),
])
def test_a_slack_recipient_in_another_form_is_refused(tmp_path: Path, recipient: str, hint: str) -> None:
    assert problems(tmp_path, SLACK_ROUTE.format(f"['{recipient}']")) == [
        'routing.role_to_recipients.slack.dba[0]: must be a channel ID (C…, G…), a member ID (U…, W…) for '
        'a DM, or "#channel-name"' + hint
    ]


class TestSecretsNotAtHandYet:
    """Commands that only read settings load with secrets=False: secrets are read by what uses them."""

    BODY = MINIMAL + (
        "slack:\n  bot_token: ${SLACK_BOT_TOKEN}\n  signing_secret_file: /run/secrets/not-there\n"
        "mattermost:\n  url: https://mm.example.com\n  bot_token: ${MM_TOKEN}\n"
        "  command_tokens_file: /run/secrets/nor-this\n  action_secret: ${MM_ACTION}\n"
        "  public_url: https://bot.example.com\n"
    )

    def test_unset_variables_and_secret_files_are_pending_not_problems(self, tmp_path: Path) -> None:
        settings = load_config(write(tmp_path, self.BODY), env={"MM_ACTION": "x" * 32}, secrets=False)

        assert settings.pending_secrets() == [
            ("slack.bot_token", "${SLACK_BOT_TOKEN} not set yet"),
            ("slack.signing_secret", "read from /run/secrets/not-there when used"),
            ("mattermost.bot_token", "${MM_TOKEN} not set yet"),
            ("mattermost.command_tokens", "read from /run/secrets/nor-this when used"),
        ]
        shown = yaml.safe_load(settings.summary())
        assert shown["slack"]["bot_token"] == "(${SLACK_BOT_TOKEN} not set yet)"
        assert shown["mattermost"]["action_secret"] == "(set)"
        assert settings.outline() == "slack (HTTP), mattermost; review.mode on_behalf"

    def test_what_uses_the_secrets_still_needs_them(self, tmp_path: Path) -> None:
        assert problems(tmp_path, self.BODY, env={"MM_ACTION": "x" * 32}) == [
            "slack.bot_token: environment variable SLACK_BOT_TOKEN is not set",
            "slack.signing_secret_file: cannot read /run/secrets/not-there: No such file or directory",
            "mattermost.bot_token: environment variable MM_TOKEN is not set",
            "mattermost.command_tokens_file: cannot read /run/secrets/nor-this: No such file or directory",
        ]

    def test_a_secret_that_is_set_is_still_checked(self, tmp_path: Path) -> None:
        body = MINIMAL + "slack:\n  bot_token: ${SLACK_BOT_TOKEN}\n  app_token: xapp-1\n"
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, body), env={"SLACK_BOT_TOKEN": "xoxp-user"}, secrets=False)
        assert caught.value.problems == ["slack.bot_token: must start with xoxb-"]

    def test_settings_that_are_not_secrets_still_need_their_variables(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, MINIMAL + "server:\n  listen: ${LISTEN}\n"), env={}, secrets=False)
        assert caught.value.problems == ["server.listen: environment variable LISTEN is not set"]


def test_a_decision_hook_over_plain_http_to_another_host_is_warned_about() -> None:
    """Its answer is not signed: whoever is on the way could answer "approve"."""
    secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"

    def warnings(url: str) -> list[str]:
        return Settings.model_validate({
            "teleport": {"addr": "auth.example.com:3025", "identity_file": __file__},
            "webhooks": {"decide": {"name": "oncall", "url": url, "secret": secret, "roles": ["dba"]}},
        }).warnings()

    assert any(w.startswith("webhooks.decide.url is plain HTTP") for w in warnings("http://hooks.internal/decide"))
    assert warnings("https://hooks.example.com/decide") == warnings("http://127.0.0.1:9000/decide") == []
