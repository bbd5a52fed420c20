"""The `webhooks:` config section: what a deployer writes loads, mistakes name their key, secrets stay hidden."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from chatops_bot import runtime
from chatops_bot.automatic import AutomaticReviewer
from chatops_bot.config import ConfigError, Settings, load_config
from chatops_bot.integrations.webhooks.integration import WebhookFollower, WebhooksService
from chatops_bot.teleport.client import IdentitySource, TeleportClient
from chatops_bot.watcher import Follower

BASE = """
teleport:
  addr: auth.example.com:3025
  identity_file: /var/lib/bot/identity
"""
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + text)
    return load_config(path, env=env or {})


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.problems


def test_endpoints_and_the_decision_hook_load_with_secrets_from_env_or_file(tmp_path: Path) -> None:
    (tmp_path / "oncall.secret").write_text(SECRET + "\n")
    settings = load(tmp_path, """
webhooks:
  endpoints:
    - name: siem
      url: https://siem.example.com/hook
      secret: ${SIEM_SECRET}
      events: [access_request.approved, access.ended]
      roles: ["db*"]
  decide:
    name: oncall
    url: https://oncall.example.com/decide
    secret_file: oncall.secret
    roles: [dba]
""", env={"SIEM_SECRET": SECRET})
    webhooks = settings.webhooks
    assert webhooks is not None and webhooks.decide is not None
    assert webhooks.endpoints[0].secret.get_secret_value() == SECRET
    assert webhooks.endpoints[0].events == ("access_request.approved", "access.ended")
    assert webhooks.decide.secret.get_secret_value() == SECRET
    assert (webhooks.retry_for, webhooks.timeout, webhooks.decide.timeout) == (
        timedelta(hours=24), timedelta(seconds=10), timedelta(seconds=10))
    summary = settings.summary()
    assert SECRET not in summary and "secret: (set)" in summary


def test_mistakes_name_their_key_and_never_quote_the_secret(tmp_path: Path) -> None:
    found = problems(tmp_path, """
webhooks:
  endpoints:
    - name: siem
      url: ftp://siem.example.com
      secret: not-a-whsec-secret-at-all
      events: [access_request.approve]
    - name: siem
      url: https://other.example.com
      secret: whsec_dG9vc2hvcnQ=
  decide:
    name: oncall
    url: https://oncall.example.com/decide
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    roles: []
""")
    text = "\n".join(found)
    assert "not-a-whsec" not in text and "dG9vc2hvcnQ" not in text
    assert any(p.startswith("webhooks.endpoints[0].url:") for p in found)
    assert any(p.startswith("webhooks.endpoints[0].secret: must be whsec_") for p in found)
    assert any(p.startswith("webhooks.endpoints[0].events[0]:") for p in found)
    assert any(p.startswith("webhooks.endpoints[1].secret: must be whsec_") for p in found)  # 8 bytes: too short
    assert any(p.startswith("webhooks.endpoints: each endpoint needs a name of its own") for p in found)
    assert any(p.startswith("webhooks.decide.roles: must not be empty") for p in found)


def test_serve_runs_the_webhooks_beside_the_watcher_and_the_reminders_tell_them(tmp_path: Path) -> None:
    settings = load(tmp_path, f"""
webhooks:
  endpoints: [{{name: siem, url: "https://siem.example.com/hook", secret: {SECRET}}}]
  decide: {{name: oncall, url: "https://oncall.example.com/decide", secret: {SECRET}, roles: [dba]}}
""")
    client = TeleportClient("auth.example.com:3025", IdentitySource(identity_file="/nonexistent"))
    services = runtime.services(settings, client)
    names = [service.name for service in services]
    assert names == ["teleport", "webhooks", "watcher"]  # up before the watcher, down after it
    watcher_service = services[-1]
    assert isinstance(watcher_service, runtime.WatcherService) and isinstance(services[1], WebhooksService)
    followers = [o for o in watcher_service.watcher.observers if isinstance(o, WebhookFollower)]
    assert len(followers) == 1
    assert watcher_service.reminders is not None and watcher_service.reminders.listeners == followers
    # The decision hook decides through the shared automatic reviewer.
    [reviewer] = [o.lanes.notifier for o in watcher_service.watcher.observers
                  if isinstance(o, Follower) and isinstance(o.lanes.notifier, AutomaticReviewer)]
    assert isinstance(reviewer, AutomaticReviewer)
    assert [decider.name for decider in reviewer.deciders] == ["webhook:oncall"]
