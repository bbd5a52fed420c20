"""Whether what PagerDuty says now satisfies `pagerduty.auto_approve` for a request: pure, no I/O.

A request is approved only when every requested role is covered by a rule the requester satisfies right
now: on call in one of the rule's schedules or escalation policies, at an allowed level, with an open
incident on one of its services if it asks for one, and for no longer than its duration cap.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from chatops_bot.integrations.pagerduty.settings import AutoApproveRule
from commands.matchers import compile_matcher
from commands.model import AccessRequest


@dataclass(frozen=True)
class OnCall:
    """One on-call of the requester, as PagerDuty lists it; `schedule_id` is "" for a user an escalation
    level targets directly."""

    policy_id: str
    policy_name: str
    level: int
    schedule_id: str = ""
    schedule_name: str = ""

    def basis(self) -> str:
        """What the requester is on call for, with PagerDuty's ID: "DBA primary (PagerDuty schedule P1X2Y3)"."""
        if self.schedule_id:
            return f"{self.schedule_name} (PagerDuty schedule {self.schedule_id})"
        return f"{self.policy_name} (PagerDuty escalation policy {self.policy_id})"

    @property
    def name(self) -> str:
        return self.schedule_name or self.policy_name


@dataclass(frozen=True)
class Match:
    """A requested role, the rule that covers it, and the on-call that satisfies the rule."""

    role: str
    rule: AutoApproveRule
    on_call: OnCall


def rules_for(rules: Sequence[AutoApproveRule], role: str) -> list[AutoApproveRule]:
    return [rule for rule in rules if any(compile_matcher(m).matches(role) for m in rule.roles)]


def covers(rules: Sequence[AutoApproveRule], roles: Sequence[str]) -> bool:
    """Whether every role is named by some rule: else no on-call can approve the request."""
    return bool(roles) and all(rules_for(rules, role) for role in roles)


def needs_incidents(rules: Sequence[AutoApproveRule], roles: Sequence[str]) -> list[str]:
    """The services whose open incidents the rules covering `roles` ask about."""
    return sorted({s for role in roles for rule in rules_for(rules, role) for s in rule.while_incident_on})


def counts(rule: AutoApproveRule, on_call: OnCall) -> bool:
    """Whether this on-call is one the rule counts: its schedule or policy, at an allowed level."""
    named = on_call.schedule_id in rule.schedules or on_call.policy_id in rule.escalation_policies
    return named and (rule.max_level is None or on_call.level <= rule.max_level)


def satisfied(rule: AutoApproveRule, request: AccessRequest, on_calls: Sequence[OnCall],
              open_services: Collection[str]) -> OnCall | None:
    """The on-call (the nearest the top) by which the requester satisfies the rule now, or None."""
    if rule.max_duration is not None:
        duration = request.requested_duration
        if duration is None or duration > rule.max_duration:
            return None
    if rule.while_incident_on and not set(rule.while_incident_on) & set(open_services):
        return None
    found = sorted((o for o in on_calls if counts(rule, o)), key=lambda o: (o.level, o.schedule_id == ""))
    return found[0] if found else None


def decide(rules: Sequence[AutoApproveRule], request: AccessRequest, on_calls: Sequence[OnCall],
           open_services: Collection[str] = ()) -> list[Match] | None:
    """A match for every requested role, or None when any role is left without a satisfied rule."""
    matches = []
    for role in request.roles:
        match = next((Match(role, rule, on_call) for rule in rules_for(rules, role)
                      if (on_call := satisfied(rule, request, on_calls, open_services)) is not None), None)
        if match is None:
            return None
        matches.append(match)
    return matches or None


def reason(matches: Sequence[Match]) -> str:
    """Teleport's audit trail: "on call: DBA primary (PagerDuty schedule P1X2Y3), level 1 (rule dba-oncall:
    dba)", one clause per distinct on-call and rule."""
    clauses: dict[tuple[OnCall, str], list[str]] = {}
    for match in matches:
        clauses.setdefault((match.on_call, match.rule.name), []).append(match.role)
    return "; ".join(f"on call: {on_call.basis()}, level {on_call.level} (rule {name}: {', '.join(roles)})"
                     for (on_call, name), roles in clauses.items())
