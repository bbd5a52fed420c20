"""`check-config --connect` for Jira: the bot's credentials work (for the deployment configured), and every
project, issue type and status that `jira.require_ticket` and `jira.mirror` name exists where the bot can see
it (a mirror's statuses in the workflow of its issue type, so there is a transition to each)."""

from __future__ import annotations

from chatops_bot.integrations.jira.client import JiraClient, JiraProblem
from chatops_bot.integrations.jira.settings import JiraSettings
from chatops_bot.preflight import Finding


async def check(settings: JiraSettings, client: JiraClient) -> tuple[str, list[Finding]]:
    """Who the bot is in Jira ("" when it cannot sign in), and what is wrong or doubtful."""
    try:
        me = await client.myself()
    except JiraProblem as err:
        return "", [Finding(True, f"jira: {err}")]
    who = str(me.get("displayName") or me.get("name") or me.get("accountId") or "?")
    findings: list[Finding] = []
    for n, rule in enumerate(settings.require_ticket):
        findings += await _rule(client, f"jira.require_ticket[{n}]", rule.projects, rule.issue_types, rule.statuses)
    if (mirror := settings.mirror) is not None:
        targets = tuple(s for s in (mirror.approved, mirror.denied, mirror.expired) if s)
        findings += await _rule(client, "jira.mirror", (mirror.project,), (mirror.issue_type,), targets,
                                keys=("project", "issue_type"))
    return who, findings


async def _rule(client: JiraClient, where: str, projects: tuple[str, ...], issue_types: tuple[str, ...],
                statuses: tuple[str, ...], *, keys: tuple[str, str] = ("projects", "issue_types")) -> list[Finding]:
    """`keys`: what the section calls its project and issue type keys, for the messages."""
    project_key, type_key = keys
    findings: list[Finding] = []
    for key in projects:
        try:
            project = await client.project(key)
            workflows = await client.project_statuses(key) if project is not None else {}
        except JiraProblem as err:
            findings.append(Finding(True, f"{where}.{project_key}: {key}: {err}"))
            continue
        if project is None:
            findings.append(Finding(True, f"{where}.{project_key}: there is no project {key} that the bot can see"))
            continue
        known_types = {str(t.get("name")) for t in project.get("issueTypes", [])}
        for issue_type in issue_types:
            if issue_type not in known_types:
                findings.append(Finding(True, f"{where}.{type_key}: project {key} has no issue type "
                                              f"{issue_type!r} (it has {', '.join(sorted(known_types))})"))
        reachable = {status for t in (issue_types or workflows) for status in workflows.get(t, [])}
        for status in statuses:
            if status not in reachable:
                findings.append(Finding(True, f"{where}: no workflow of project {key} has the status "
                                              f"{status!r}"))
    return findings
