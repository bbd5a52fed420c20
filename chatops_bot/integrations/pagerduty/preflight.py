"""`check-config --connect` for PagerDuty: the token works, every schedule, escalation policy and service
the rules and the incident routes name exists (each missing one named with where it is named), and
`from_email` is a PagerDuty user's."""

from __future__ import annotations

from chatops_bot.integrations.pagerduty.account import PagerDutyAccount
from chatops_bot.integrations.pagerduty.client import PagerDutyClient, PagerDutyError, PagerDutyRefused
from chatops_bot.integrations.pagerduty.settings import PagerDutySettings
from chatops_bot.preflight import Finding

KINDS = (("schedules", "schedule", "/schedules"), ("escalation_policies", "escalation policy",
                                                   "/escalation_policies"),
         ("while_incident_on", "service", "/services"))


async def check(settings: PagerDutySettings, client: PagerDutyClient) -> list[Finding]:
    """What is wrong with the PagerDuty side of the config, asked of PagerDuty; empty when nothing is."""
    try:
        await client.get("/users", {"limit": "1"})
    except PagerDutyRefused as err:
        if err.status in (401, 403):
            return [Finding(True, f"PagerDuty refuses pagerduty.token (HTTP {err.status}): is it a REST API "
                                  "key of this account, and pagerduty.api_url its service region?")]
        return [Finding(True, f"PagerDuty at {settings.api_url}: {err}")]
    except PagerDutyError as err:
        return [Finding(True, f"cannot reach PagerDuty at {settings.api_url}: {err}")]
    findings = []
    for key, kind, path in KINDS:
        named: dict[str, list[str]] = {}
        for rule in settings.auto_approve:
            for id in getattr(rule, key):
                named.setdefault(id, []).append(rule.name)
        for id, rules in named.items():
            where = f"pagerduty.auto_approve {', '.join(rules)}"
            findings += await _missing(client, kind, f"{path}/{id}", id, where)
    if settings.incidents is not None:
        for role, service in settings.incidents.services.items():
            findings += await _missing(client, "service", f"/services/{service}", service,
                                       f"pagerduty.incidents.services {role}")
    if settings.from_email:
        try:
            person = await PagerDutyAccount(client).user_by_email(settings.from_email)
        except PagerDutyError as err:
            findings.append(Finding(True, f"cannot look up pagerduty.from_email in PagerDuty: {err}"))
        else:
            if person is None:
                findings.append(Finding(True, "pagerduty.from_email is no PagerDuty user's e-mail: PagerDuty "
                                              "refuses incident writes from it"))
    return findings


async def _missing(client: PagerDutyClient, kind: str, path: str, id: str, where: str) -> list[Finding]:
    """Nothing when PagerDuty has the object at `path`; else what is wrong with it, naming where the config
    names it (`where`)."""
    try:
        await client.get(path)
    except PagerDutyRefused as err:
        what = "does not exist" if err.status == 404 else f"cannot be read (HTTP {err.status})"
        return [Finding(True, f"PagerDuty {kind} {id} ({where}) {what}")]
    except PagerDutyError as err:
        return [Finding(True, f"cannot check PagerDuty {kind} {id}: {err}")]
    return []
