"""Teleport's resource rules (`allow.rules` / `deny.rules`), as `ServerWithRoles` checks them.

Shared by the devstack, which enforces them, and the start-up check, which tells the operator what the
bot's own roles lack before a user finds out (lib/services/role.go, CheckAccessToRule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commands.model import Role


def has_rule(roles: Sequence[Role], resource: str, *verbs: str) -> bool:
    """Allow rules grant, deny rules win; rules with a `where` clause are not evaluated (they never grant)."""
    def grants(rules: Any, verb: str, *, deny: bool) -> bool:
        return any(
            (resource in r.resources or "*" in r.resources)
            and (verb in r.verbs or "*" in r.verbs)
            and (deny or not r.where)
            for r in rules
        )

    for verb in verbs:
        if any(grants(role.deny.rules, verb, deny=True) for role in roles):
            return False
        if not any(grants(role.allow.rules, verb, deny=False) for role in roles):
            return False
    return True
