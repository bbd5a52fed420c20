"""Outside systems beyond chat (PagerDuty, Jira, webhooks), one folder each.

An integration meets the rest of the bot only through the parts of an `Integration` (ARCHITECTURE.md,
"Beyond chat"):

- `observers`: follow every access request the watcher sees (`chatops_bot.watcher.Observer`); use
  `chatops_bot.watcher.Follower` to get one lane per request with retries, like the notifier's;
- `deciders`: give automatic verdicts on pending requests (`chatops_bot.automatic.Decider`); the shared
  `AutomaticReviewer` applies each verdict exactly once;
- `services`: what serves the system's callbacks (`routes()`, `start()`, `stop()`, `why_not_ready()`, like a
  chat adapter), verifying every call before anything runs;
- `gates`: checks a request must pass before it is created (`commands.ports.RequestGate`);
- `details`: lines added to every request card (`commands.ports.CardDetail`), such as a Jira ticket;
- `with_notifier`: called with the `chatops_bot.notify.Notifier` once it exists, for parts that DM people.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chatops_bot.automatic import Decider
    from chatops_bot.config import Settings
    from chatops_bot.notify import Notifier
    from chatops_bot.teleport.client import TeleportClient
    from chatops_bot.timer import Timer
    from chatops_bot.watcher import Observer


@dataclass
class Integration:
    name: str
    observers: Sequence[Observer] = field(default_factory=list)
    deciders: Sequence[Decider] = field(default_factory=list)
    services: Sequence[Any] = field(default_factory=list)  # server.Service: routes/start/stop/why_not_ready
    gates: Sequence[Any] = field(default_factory=list)  # commands.ports.RequestGate
    details: Sequence[Any] = field(default_factory=list)  # commands.ports.CardDetail
    with_notifier: Sequence[Callable[[Notifier], None]] = field(default_factory=list)


def build(settings: Settings, client: TeleportClient, *, timer: Timer) -> list[Integration]:
    """An integration for every outside system the config turns on, in a fixed order (PagerDuty's verdicts are
    asked before a decision webhook's)."""
    found: list[Integration] = []
    if settings.pagerduty is not None:  # issue 16
        from chatops_bot.integrations.pagerduty.wiring import integration

        found.append(integration(settings, client, timer=timer))
    if settings.webhooks is not None:
        from chatops_bot.integrations.webhooks.integration import build as webhooks

        found.append(webhooks(settings.webhooks, client, timer=timer,
                              web_proxy_addr=settings.teleport.web_proxy_addr or ""))
    if settings.jira is not None:
        from chatops_bot.integrations import jira

        found.append(jira.build(settings, client, timer=timer))
    return found
