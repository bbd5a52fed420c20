"""`chatops-bot teleport-role`: the Teleport role and user the bot needs for a review mode, and nothing more.

Every grant stands for RPCs the bot makes (teleport-wire.md §3.6, §4.4); `tests/test_teleport_role.py`
loads the printed resources into the devstack Teleport and shows both that they suffice for everything
the bot does in that mode and that removing any single verb or review rule breaks something it does.
The output is one YAML file `tctl create` accepts as is: the set-up steps travel as comments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, get_args

import yaml

from chatops_bot.config import ReviewMode, Settings

BOT_NAME = "chatops-bot"
REVIEW_MODES: tuple[str, ...] = get_args(ReviewMode)
DEFAULT_MODE = "on_behalf"
DEFAULT_IDENTITY = "/var/lib/chatops-bot/identity"
# Long enough not to be a chore, short enough to be renewed on purpose; tbot renews on its own.
SIGN_TTL = "2190h"


@dataclass(frozen=True)
class Grant:
    """Verbs on one resource, and the calls that need them (printed beside the role)."""

    resource: str
    verbs: tuple[str, ...]
    why: str


def grants(mode: str) -> list[Grant]:
    """The allow rules for `mode`, in the order they are printed; one resource may appear twice."""
    listing = "ListAccessRequests (all of them), WatchEvents, GetPluginData"
    found = [
        Grant("access_request", ("list", "read"), listing),
        Grant("access_request", ("create",), "CreateAccessRequestV2 for the chat user who asked"),
        # Teleport lets nobody delete even their own pending request without this verb
        # (lib/auth/auth_with_roles.go, DeleteAccessRequest); the bot itself allows only the requester,
        # only while pending.
        Grant("access_request", ("delete",), "DeleteAccessRequest: /access cancel, the requester's own, pending"),
    ]
    if mode == "resolve":
        found.append(Grant("access_request", ("update",), "SetAccessRequestState; UpdatePluginData"))
    else:
        found.append(Grant("access_plugin_data", ("update",), "UpdatePluginData: which cards went where"))
    found += [
        Grant("user", ("list", "read"), "ListUsers, GetUser, user events: chat links"),
        Grant("role", ("list", "read"), "GetRole: the reviewer check; GetAccessCapabilities"),
    ]
    return found


def _rules(mode: str) -> list[dict[str, list[str]]]:
    """`grants` as Teleport rules: one per resource, verbs in order."""
    verbs: dict[str, list[str]] = {}
    for grant in grants(mode):
        verbs.setdefault(grant.resource, []).extend(grant.verbs)
    return [{"resources": [resource], "verbs": listed} for resource, listed in verbs.items()]


# The allow `review_requests` key each mode needs (always `["*"]`), and why; resolve needs none.
_REVIEW: dict[str, tuple[str, str]] = {
    "on_behalf": (
        "submit_for_users",
        "SubmitAccessReview with the chat reviewer as Author (Teleport >= 18.11);\n"
        "Teleport checks that person's own review rights and counts thresholds per person.\n"
        "Before 18.11 `tctl create` silently drops this key: check-config --connect tells.",
    ),
    "as_bot": ("roles", "SubmitAccessReview by the bot itself: one review per request"),
}
# Where each mode works (chatops_bot.preflight decides it against a live cluster).
REQUIRES = {
    "on_behalf": "Teleport 18.11 or newer, Enterprise (or Cloud with Access Requests)",
    "as_bot": "Teleport 16 to 18, Enterprise (review rules in roles)",
    "resolve": "Teleport 16 to 18, any edition; on Community Edition with review.rules in the bot's config",
}


def role_resource(mode: str, *, web_only_roles: Sequence[str] = (),
                  automatic_roles: Sequence[str] = ()) -> dict[str, Any]:
    """The `kind: role` resource (Teleport role v7) for `mode`. `automatic_roles`: the roles automatic
    rules approve (issue 16), which the bot reviews as itself in on_behalf mode too."""
    if mode not in REVIEW_MODES:
        raise ValueError(f"unknown review mode {mode!r}; expected one of {', '.join(REVIEW_MODES)}")
    allow: dict[str, Any] = {"rules": _rules(mode)}
    if mode in _REVIEW:
        allow["review_requests"] = {_REVIEW[mode][0]: ["*"]}
    if mode == "on_behalf" and automatic_roles:
        allow["review_requests"]["roles"] = sorted(set(automatic_roles))
    spec: dict[str, Any] = {"allow": allow}
    if mode == "as_bot" and web_only_roles:
        # The bot's own review rights: never for roles that config says must be reviewed in the Web UI.
        spec["deny"] = {"review_requests": {"roles": sorted(set(web_only_roles))}}
    return {
        "kind": "role",
        "version": "v7",
        "metadata": {"name": BOT_NAME, "description": f"chatops-bot for review.mode {mode}"},
        "spec": spec,
    }


def user_resource() -> dict[str, Any]:
    """The `kind: user` resource the identity is issued for."""
    return {"kind": "user", "version": "v2", "metadata": {"name": BOT_NAME}, "spec": {"roles": [BOT_NAME]}}


def render(mode: str | None = None, settings: Settings | None = None) -> str:
    """The whole printout: explanation and steps as comments, then the role and the user.

    `mode` defaults to the config's `review.mode`, else on_behalf; the config also supplies
    `review.web_only_roles`, the identity path and the proxy address used in the examples.
    """
    mode = mode or (settings.review.mode if settings else DEFAULT_MODE)
    web_only = settings.review.web_only_roles if settings else ()
    identity = str(settings.teleport.identity_file or DEFAULT_IDENTITY) if settings else DEFAULT_IDENTITY
    proxy = (settings.teleport.web_proxy_addr if settings else None) or "teleport.example.com:443"
    automatic = automatic_roles(settings)
    resources = [role_resource(mode, web_only_roles=web_only, automatic_roles=automatic), user_resource()]
    body = yaml.safe_dump_all(resources, sort_keys=False, default_flow_style=None, explicit_start=False)
    return _header(mode, web_only, automatic) + body + _steps(identity, proxy)


def automatic_roles(settings: Settings | None) -> list[str]:
    """The roles automatic decisions cover: `pagerduty.auto_approve` rules and the `webhooks.decide` hook."""
    if settings is None:
        return []
    roles: set[str] = set()
    if settings.pagerduty is not None:
        roles.update(role for rule in settings.pagerduty.auto_approve for role in rule.roles)
    if settings.webhooks is not None and settings.webhooks.decide is not None:
        roles.update(settings.webhooks.decide.roles)
    return sorted(roles)


def _comment(lines: Sequence[str]) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def _header(mode: str, web_only: Sequence[str], automatic: Sequence[str] = ()) -> str:
    lines = [f"Teleport role and user for chatops-bot with review.mode: {mode}.",
             f"This mode works on {REQUIRES[mode]}.", "What each grant is for:"]
    lines += [f"  {g.resource + ': ' + ', '.join(g.verbs):<34}{g.why}" for g in grants(mode)]
    if mode in _REVIEW:
        key, why = _REVIEW[mode]
        lines.append(f'  review_requests.{key}: ["*"]')
        lines += [f"      {line}" for line in why.splitlines()]
    if mode == "on_behalf" and automatic:
        lines.append(f"  review_requests.roles: {list(automatic)}")
        lines.append("      SubmitAccessReview by the bot itself for what pagerduty.auto_approve and webhooks.decide")
        lines.append("      decide, no more")
    if mode == "resolve":
        lines.append("  no review_requests: decisions are set directly and thresholds do not apply")
    if mode == "as_bot" and web_only:
        lines.append(f"  deny review_requests.roles {sorted(set(web_only))}: review.web_only_roles")
    return _comment(lines)


def _steps(identity: str, proxy: str) -> str:
    directory = str(PurePosixPath(identity).parent)
    tbot_file = str(PurePosixPath(directory) / "identity")
    lines = [
        "",
        "1. Save this output to chatops-bot-teleport.yaml and create both resources",
        "   (tctl create -f replaces them when they exist):",
        "     tctl create chatops-bot-teleport.yaml",
        "",
        "2. Issue the bot's identity (teleport.identity_file), either",
        "   a) by hand, on an Auth Service host (or as a user whose role may impersonate chatops-bot),",
        "      and again before it expires:",
        f"        tctl auth sign --format=file --user={BOT_NAME} --ttl={SIGN_TTL} --out={identity}",
        "   b) or with Machine ID, which renews it; the bot reloads the file when it changes.",
        "      The bot user is then bot-chatops-bot, created by `tctl bots add` (the user above is unused):",
        f"        tctl bots add {BOT_NAME} --roles={BOT_NAME}      # prints a join token",
        "        tbot start -c /etc/tbot.yaml",
        "      with /etc/tbot.yaml:",
        "        version: v2",
        f"        proxy_server: {proxy}",
        "        onboarding:",
        "          join_method: token",
        "          token: /var/lib/teleport/bot-token     # a file holding the token from tctl bots add",
        "        storage:",
        "          type: directory",
        "          path: /var/lib/teleport/bot",
        "        # Requests the bot creates are bounded by its certificate: keep it long (24h at most).",
        "        credential_ttl: 24h",
        "        renewal_interval: 20m",
        "        outputs:",
        "          - type: identity",
        "            destination:",
        "              type: directory",
        f"              path: {directory}",
        f"      tbot writes {tbot_file}: point teleport.identity_file at it.",
        "",
        "3. Check that the bot can reach Teleport and is allowed what it needs:",
        "     chatops-bot check-config --connect -c config.yaml",
    ]
    return _comment(lines)
