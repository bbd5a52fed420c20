"""The `pagerduty` config section: mistakes name their key, the token stays hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatops_bot.config import ConfigError, load_config

BASE = """
teleport:
  addr: auth.example.com:3025
  identity_file: /etc/bot/identity
pagerduty:
  token: ${PD_TOKEN}
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + text)
    return load_config(path, env={"PD_TOKEN": "pd-secret-token"})


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.problems


def test_a_rule_reads_with_its_defaults(tmp_path: Path) -> None:
    settings = load(tmp_path, "  auto_approve:\n    - {name: dba, roles: [dba], schedules: [P1X2Y3]}\n")
    pagerduty = settings.pagerduty  # type: ignore[attr-defined]
    assert pagerduty.api_url == "https://api.pagerduty.com" and pagerduty.requester_email == "trait"
    rule = pagerduty.auto_approve[0]
    assert (rule.max_level, rule.while_incident_on, rule.max_duration) == (None, (), None)
    assert "pd-secret-token" not in settings.summary()  # type: ignore[attr-defined]


def test_rule_mistakes_name_their_key(tmp_path: Path) -> None:
    found = problems(tmp_path, """  auto_approve:
    - {name: a, roles: [dba]}
    - {name: b, roles: [dba], schedules: [p1x2y3], max_level: 0}
    - {name: c, roles: [], escalation_policies: [PDBAEP1], max_duration: soon}
""")
    assert any(p.startswith("pagerduty.auto_approve[0]: name the schedules or escalation_policies") for p in found)
    assert any(p.startswith("pagerduty.auto_approve[1].schedules[0]: must be a PagerDuty ID") for p in found)
    assert any(p.startswith("pagerduty.auto_approve[1].max_level") for p in found)
    assert any(p.startswith("pagerduty.auto_approve[2].roles: must not be empty") for p in found)
    assert any(p.startswith("pagerduty.auto_approve[2].max_duration") for p in found)


def test_two_rules_may_not_share_a_name(tmp_path: Path) -> None:
    found = problems(tmp_path, "  auto_approve:\n    - {name: a, roles: [dba], schedules: [P1]}\n"
                               "    - {name: a, roles: [web], schedules: [P2]}\n")
    assert found == ["pagerduty.auto_approve: each rule needs a name of its own (the audit log quotes it)"]


def test_incidents_need_a_from_user_and_a_route(tmp_path: Path) -> None:
    assert "pagerduty.from_email: required with incidents (PagerDuty needs a From user to write incidents)" in (
        problems(tmp_path, "  incidents:\n    services: {PDBSVC1: PDBSVC1}\n"))
    found = problems(tmp_path, "  from_email: bot@example.com\n  incidents:\n    services: {}\n")
    assert found == ['pagerduty.incidents.services: must route at least one role (or "*") to a service']
    settings = load(tmp_path, '  from_email: bot@example.com\n  incidents:\n    services: {"*": PACCESS1}\n')
    assert settings.pagerduty.incidents.services == {"*": "PACCESS1"}  # type: ignore[attr-defined]


def test_a_webhook_needs_incidents_and_a_secret(tmp_path: Path) -> None:
    assert problems(tmp_path, "  webhook:\n    secrets: [s3cret]\n") == [
        "pagerduty.webhook: needs incidents: responders decide by a note on a request's incident"]
    found = problems(tmp_path, "  from_email: bot@example.com\n  incidents:\n    services: {'*': PACCESS1}\n"
                               "  webhook:\n    secrets: []\n")
    assert found == ["pagerduty.webhook.secrets: must name the subscription's signing secret"]


async def test_each_part_the_section_names_is_turned_on(tmp_path: Path) -> None:
    from chatops_bot import integrations
    from chatops_bot.timer import REAL_TIME

    settings = load(tmp_path, """  from_email: bot@example.com
  auto_approve:
    - {name: dba, roles: [dba], schedules: [P1X2Y3]}
  incidents:
    services: {'*': PACCESS1}
  webhook:
    secrets: [s3cret]
""")
    [pagerduty] = integrations.build(settings, client=object(), timer=REAL_TIME)  # type: ignore[arg-type]
    assert [d.name for d in pagerduty.deciders] == ["pagerduty"] and len(pagerduty.observers) == 1
    assert [r.path for s in pagerduty.services for r in s.routes()] == ["/pagerduty/webhook"]
    for service in pagerduty.services:
        await service.stop()


def test_teleport_role_lets_the_bot_review_exactly_the_roles_the_rules_cover(tmp_path: Path) -> None:
    import contextlib
    import io

    import yaml

    from chatops_bot.cli import main

    path = tmp_path / "config.yaml"
    path.write_text(BASE + "  auto_approve:\n    - {name: a, roles: [dba, 'db-*'], schedules: [P1X2Y3]}\n"
                           "    - {name: b, roles: [dba], escalation_policies: [PDBAEP1]}\n")

    def role(mode: str) -> dict[str, object]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["teleport-role", "-c", str(path), "--review-mode", mode]) == 0
        return next(yaml.safe_load_all(out.getvalue()))["spec"]["allow"]  # type: ignore[no-any-return]

    assert role("on_behalf")["review_requests"] == {"submit_for_users": ["*"], "roles": ["db-*", "dba"]}
    assert role("as_bot")["review_requests"] == {"roles": ["*"]}
    assert "review_requests" not in role("resolve")


def test_teleport_role_covers_the_decision_hooks_roles_too(tmp_path: Path) -> None:
    """The decision webhook reviews as the bot like PagerDuty's rules: on_behalf's role grants both sets."""
    import contextlib
    import io

    import yaml

    from chatops_bot.cli import main

    secret = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    path = tmp_path / "config.yaml"
    path.write_text(BASE + "  auto_approve:\n    - {name: a, roles: [dba], schedules: [P1X2Y3]}\n"
                    f"webhooks:\n  decide: {{name: oncall, url: 'https://hooks.example.com/decide', "
                    f"secret: '{secret}', roles: [auditor]}}\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["teleport-role", "-c", str(path), "--review-mode", "on_behalf"]) == 0
    allow = next(yaml.safe_load_all(out.getvalue()))["spec"]["allow"]
    assert allow["review_requests"] == {"submit_for_users": ["*"], "roles": ["auditor", "dba"]}
