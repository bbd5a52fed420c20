"""Know the cluster before serving: Teleport's version and edition, the bot's own roles, and whether the
configured `review.mode` can work there.

`inspect` reads what it needs (`Ping`, the bot's own user and roles, each readable without any rule);
`judge` decides, without I/O, so every verdict is tested on its own. `chatops-bot serve` refuses to start
on a failed finding and `check-config --connect` prints every finding; both name what is missing and the
mode or grant that would work.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from chatops_bot.teleport.rbac import has_rule
from chatops_bot.teleport_role import grants
from commands.errors import AccessDenied, NotFound
from commands.model import ClusterInfo, Role

logger = logging.getLogger(__name__)

OLDEST_MAJOR = 16
NEWEST_MAJOR = 18
# Reviews on behalf of a chat user: the `submitted_on_behalf_of_author` flag and
# `review_requests.submit_for_users` (gravitational/teleport PRs #66230, #66254; v18 backport #69386).
ON_BEHALF_SINCE = (18, 11, 0)
ROLE_HINT = "`chatops-bot teleport-role --review-mode {mode}` prints the role"


@dataclass(frozen=True)
class Finding:
    """One thing found; `fatal` ones stop `serve` and make `check-config --connect` exit 2."""

    fatal: bool
    text: str


@dataclass(frozen=True)
class ClusterReport:
    info: ClusterInfo
    bot_user: str
    bot_roles: tuple[str, ...]
    mode: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def edition(self) -> str:
        return "Enterprise" if self.info.advanced_access_workflows else "Community Edition"

    @property
    def fatal(self) -> list[Finding]:
        return [f for f in self.findings if f.fatal]

    def summary(self) -> str:
        """One line: what this is and what the mode's verdict is."""
        verdict = "cannot work here" if self.fatal else "works here"
        return (f"Connected to Teleport {self.info.server_version} {self.edition}, cluster {self.info.name!r}, "
                f"as {self.bot_user} (roles: {', '.join(self.bot_roles) or 'none'}); "
                f"review.mode {self.mode} {verdict}.")


def version_tuple(version: str) -> tuple[int, int, int] | None:
    """`18.11.0`, `v17.4.2-dev.1` -> (major, minor, patch); None when it is not a version."""
    core = version.strip().removeprefix("v").split("-", 1)[0].split("+", 1)[0]
    parts = core.split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


async def inspect(client: object, *, mode: str, has_rules: bool, automatic: Sequence[str] = ()) -> ClusterReport:
    """Ask Teleport (errors from Ping propagate: the caller says why it is unreachable). `automatic`: the
    roles automatic decisions cover (PagerDuty rules, the decision webhook), which the bot reviews itself."""
    info: ClusterInfo = await client.ping()  # type: ignore[attr-defined]
    me = await client.current_user()  # type: ignore[attr-defined]
    # A Machine ID identity carries the roles it impersonates in its certificate, not the bot user's own.
    names = tuple(client.identity.roles) or me.roles  # type: ignore[attr-defined]
    roles: list[Role] = []
    unreadable: list[str] = []
    for name in names:
        try:
            roles.append(await client.get_role(name))  # type: ignore[attr-defined]
        except (NotFound, AccessDenied):
            unreadable.append(name)
    findings = judge(info, roles, mode=mode, has_rules=has_rules, automatic=automatic)
    if unreadable:
        findings.insert(0, Finding(True, f"teleport: the bot's roles {', '.join(unreadable)} cannot be read back "
                                         "(deleted since the identity was issued?); issue a new identity"))
    return ClusterReport(info, me.name, names, mode, findings)


def judge(info: ClusterInfo, roles: Sequence[Role] | None, *, mode: str, has_rules: bool,
          automatic: Sequence[str] = ()) -> list[Finding]:
    """Every finding about this cluster for `review.mode` = `mode`, fatal ones first. With `roles` None
    (a role not created yet), only what the version and edition decide."""
    found = _version_findings(info)
    if any(f.fatal for f in found):
        return found
    version = version_tuple(info.server_version) or (NEWEST_MAJOR, 0, 0)
    where = f"Teleport {info.server_version} " + ("Enterprise" if info.advanced_access_workflows
                                                   else "Community Edition")
    hint = ROLE_HINT.format(mode=mode)
    if not info.advanced_access_workflows:
        if mode in ("on_behalf", "as_bot"):
            found.append(Finding(True, (
                f"review.mode: {mode} cannot work on {where}: no role may hold review_requests there "
                "(an Enterprise feature), so Teleport would accept no review; use review.mode: resolve "
                "with review.rules (the bot's role then needs access_request: update)")))
        elif not has_rules:
            found.append(Finding(True, (
                f"review.rules: required with review.mode: resolve on {where}: no role may name reviewers "
                "there, so without rules in the bot's config nobody could approve")))
    elif mode == "on_behalf" and version < ON_BEHALF_SINCE:
        found.append(Finding(True, (
            f"review.mode: on_behalf needs Teleport 18.11 or newer (reviews on behalf of a chat user); "
            f"this is {where}. Use review.mode: as_bot (the bot reviews as itself, one approval per "
            "request) or resolve (the bot sets the state; thresholds do not apply), or upgrade Teleport")))
    if roles is None or any(f.fatal for f in found):
        return found  # the grants of a mode that cannot work here would only be noise
    if info.advanced_access_workflows and mode == "on_behalf":
        if not _allows_review_key(roles, "submit_for_users"):
            found.append(Finding(True, (
                "review.mode: on_behalf: the bot's roles do not allow review_requests.submit_for_users, so "
                f"Teleport refuses every review the bot submits for a chat user; {hint}")))
        if automatic and not _allows_review_key(roles, "roles"):
            found.append(Finding(True, (
                f"pagerduty.auto_approve / webhooks.decide: automatic decisions on {', '.join(automatic)} are the "
                "bot's own reviews, but its roles allow it to review no role (review_requests.roles), so "
                f"Teleport refuses each one; {hint}")))
    elif mode == "as_bot" and not _allows_review_key(roles, "roles"):
        found.append(Finding(True, (
            "review.mode: as_bot: the bot's roles allow it to review no role (review_requests.roles), so "
            f"Teleport refuses every review it submits; {hint}")))
    missing = [g for g in grants(mode) if not has_rule(roles, g.resource, *g.verbs)]
    for grant in missing:
        found.append(Finding(True, (
            f"teleport: the bot's roles lack `{grant.resource}: {', '.join(grant.verbs)}` "
            f"(needed for {grant.why}); {hint}")))
    return sorted(found, key=lambda f: not f.fatal)


def _version_findings(info: ClusterInfo) -> list[Finding]:
    version = version_tuple(info.server_version)
    if version is None:
        return [Finding(False, f"teleport: cannot read the server version {info.server_version!r}; "
                               f"the bot supports Teleport {OLDEST_MAJOR} to {NEWEST_MAJOR}")]
    if version[0] < OLDEST_MAJOR:
        return [Finding(True, (
            f"teleport: Teleport {info.server_version} is older than the oldest the bot supports "
            f"({OLDEST_MAJOR}.0); upgrade the cluster (the bot needs teleport.users.v1 and ListAccessRequests)"))]
    if version[0] > NEWEST_MAJOR:
        return [Finding(False, (
            f"teleport: Teleport {info.server_version} is newer than the newest the bot is tested with "
            f"({NEWEST_MAJOR}.x); it serves the bot, but check the release notes for access request changes"))]
    return []


def _allows_review_key(roles: Sequence[Role], key: str) -> bool:
    """Whether some role's allow.review_requests has a non-empty `key` (roles, submit_for_users)."""
    return any(role.allow.review_requests is not None and getattr(role.allow.review_requests, key)
               for role in roles)
