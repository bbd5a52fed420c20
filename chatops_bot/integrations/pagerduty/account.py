"""What the bot asks PagerDuty about people and on-call: a user by e-mail, their on-calls now, open incidents."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from chatops_bot.integrations.pagerduty.client import PagerDutyClient
from chatops_bot.integrations.pagerduty.incidents import INCIDENT_KEY
from chatops_bot.integrations.pagerduty.rules import OnCall

USER_TTL = 600.0  # seconds an e-mail -> PagerDuty user answer is remembered


@dataclass(frozen=True)
class PdPerson:
    id: str
    name: str
    email: str


class PagerDutyAccount:
    def __init__(self, client: PagerDutyClient, *, user_ttl: float = USER_TTL) -> None:
        self.client, self.user_ttl = client, user_ttl
        self._people: dict[str, tuple[float, PdPerson]] = {}

    async def user_by_email(self, email: str) -> PdPerson | None:
        """The PagerDuty user with exactly this e-mail (case aside), or None. `query` matches names and
        e-mails by substring, so every page is read and the e-mail compared whole."""
        key = email.strip().lower()
        remembered = self._people.get(key)
        if remembered and time.monotonic() - remembered[0] < self.user_ttl:
            return remembered[1]
        for user in await self.client.listing("/users", "users", {"query": key}):
            if str(user.get("email", "")).lower() == key:
                person = PdPerson(str(user["id"]), str(user.get("name", "")), str(user["email"]))
                self._people[key] = (time.monotonic(), person)
                return person
        return None

    async def on_calls(self, user_id: str) -> list[OnCall]:
        """Every escalation policy and level this user is on call for right now."""
        entries = await self.client.listing("/oncalls", "oncalls", {"user_ids[]": [user_id], "earliest": "true"})
        found = []
        for entry in entries:
            policy, schedule = entry.get("escalation_policy") or {}, entry.get("schedule") or {}
            level = entry.get("escalation_level")
            if (entry.get("user") or {}).get("id") != user_id or not policy.get("id"):
                continue  # not what was asked for: count nothing
            if not isinstance(level, int) or isinstance(level, bool) or level < 1:
                continue  # no level to hold against a rule's max_level: count nothing (fail closed)
            found.append(OnCall(policy_id=str(policy["id"]), policy_name=str(policy.get("summary", "")),
                                level=level,
                                schedule_id=str(schedule.get("id", "")),
                                schedule_name=str(schedule.get("summary", ""))))
        return found

    async def open_incident_services(self, service_ids: Sequence[str]) -> set[str]:
        """Which of these services have a triggered or acknowledged incident now."""
        if not service_ids:
            return set()
        incidents = await self.client.listing("/incidents", "incidents", {
            "service_ids[]": list(service_ids), "statuses[]": ["triggered", "acknowledged"]})
        # The bot's own incidents (one per access request) are not the incident a rule waits for.
        return {str((i.get("service") or {}).get("id")) for i in incidents
                if i.get("status") in ("triggered", "acknowledged")
                and not str(i.get("incident_key") or "").startswith(INCIDENT_KEY)} & set(service_ids)
