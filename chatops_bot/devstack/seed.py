"""Teleport-format seed YAML (`kind: role` / `kind: user` resources) turned into the domain model.

The devstack Teleport stand-in starts from these files, so they are written exactly as one would write
them for `tctl create`: a YAML list of resources or several YAML documents. Only the structure is checked
here; `commands.matchers` evaluates role matchers and `commands.policy` the `where` clauses, each
refusing what it cannot decide.
Keys this project does not model (node labels, kubernetes groups, most options...) are accepted and
ignored at the `options`, `allow` and `deny` level; inside the blocks we model, unknown keys are errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from commands.model import (
    ClaimMapping,
    RequestConditions,
    ReviewConditions,
    Role,
    RoleConditions,
    Rule,
    Threshold,
    User,
)

ROLE_VERSIONS = ("v3", "v4", "v5", "v6", "v7", "v8")
USER_VERSIONS = ("v2",)
REQUEST_ACCESS = ("", "optional", "note", "always", "reason")
REASON_MODES = ("", "optional", "required")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_REQUEST_KEYS = {
    "roles", "claims_to_roles", "annotations", "thresholds", "suggested_reviewers",
    "search_as_roles", "max_duration", "kubernetes_resources", "reason",
}  # fmt: skip
_REVIEW_KEYS = {"roles", "claims_to_roles", "where", "preview_as_roles", "submit_for_users"}


class SeedError(ValueError):
    """A seed file that does not describe valid resources; the message names the resource and key."""


@dataclass(frozen=True)
class Seed:
    users: dict[str, User]
    roles: dict[str, Role]


class _Reader:
    """Typed access to one resource's YAML, naming `resource: key.path` in every error."""

    def __init__(self, resource: str) -> None:
        self.resource = resource

    def fail(self, path: str, problem: str) -> SeedError:
        return SeedError(f"{self.resource}: {path}: {problem}")

    def mapping(self, value: Any, path: str, allowed: set[str] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise self.fail(path, "expected a mapping")
        unknown = sorted(set(value) - allowed) if allowed is not None else []
        if unknown:
            raise self.fail(f"{path}.{unknown[0]}" if path else unknown[0], "unknown key")
        return value

    def string(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(path, "expected a string")
        return value

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(path, "expected a list of strings")
        return tuple(value)

    def count(self, value: Any, path: str) -> int:
        if value is None:
            return 0
        # YAML reads `yes` as True, and bool is an int in Python: refuse it explicitly.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
            raise self.fail(path, "expected a whole number from 0 to 4294967295")
        return value

    def duration(self, value: Any, path: str) -> timedelta | None:
        if value is None or value == "":
            return None
        text = value if isinstance(value, str) else ""
        parts = _DURATION_PART.findall(text)
        if text != "0" and (not parts or "".join(n + u for n, u in parts) != text):
            raise self.fail(path, f"expected a duration like 8h or 1h30m, got {value!r}")
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
        return timedelta(seconds=seconds) if seconds else None

    def traits(self, value: Any, path: str) -> Mapping[str, tuple[str, ...]]:
        entries = self.mapping(value, path)
        return MappingProxyType({key: self.strings(items, f"{path}.{key}") for key, items in entries.items()})


def _claims(reader: _Reader, value: Any, path: str) -> tuple[ClaimMapping, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise reader.fail(path, "expected a list of claim mappings")
    claims = []
    for index, raw in enumerate(value):
        where = f"{path}[{index}]"
        entry = reader.mapping(raw, where, {"claim", "value", "roles"})
        claim = reader.string(entry.get("claim"), f"{where}.claim")
        if not claim:
            raise reader.fail(f"{where}.claim", "is required")
        claims.append(
            ClaimMapping(
                claim=claim,
                value=reader.string(entry.get("value"), f"{where}.value"),
                roles=reader.strings(entry.get("roles"), f"{where}.roles"),
            )
        )
    return tuple(claims)


def _thresholds(reader: _Reader, value: Any, path: str) -> tuple[Threshold, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise reader.fail(path, "expected a list of thresholds")
    thresholds = []
    for index, raw in enumerate(value):
        where = f"{path}[{index}]"
        entry = reader.mapping(raw, where, {"name", "filter", "approve", "deny"})
        thresholds.append(
            Threshold(
                name=reader.string(entry.get("name"), f"{where}.name"),
                filter=reader.string(entry.get("filter"), f"{where}.filter"),
                approve=reader.count(entry.get("approve"), f"{where}.approve"),
                deny=reader.count(entry.get("deny"), f"{where}.deny"),
            )
        )
    return tuple(thresholds)


def _request(reader: _Reader, value: Any, path: str) -> RequestConditions | None:
    if value is None:
        return None
    block = reader.mapping(value, path, _REQUEST_KEYS)
    reason = reader.mapping(block.get("reason"), f"{path}.reason", {"mode"})
    mode = reader.string(reason.get("mode"), f"{path}.reason.mode")
    if mode not in REASON_MODES:
        raise reader.fail(f"{path}.reason.mode", f"expected one of {', '.join(m for m in REASON_MODES if m)}")
    if path.startswith("spec.deny") and block.get("thresholds"):
        # Teleport: "deny.request cannot contain thresholds, set denial counts in allow.request.thresholds".
        raise reader.fail(f"{path}.thresholds", "deny.request cannot contain thresholds")
    return RequestConditions(
        roles=reader.strings(block.get("roles"), f"{path}.roles"),
        claims_to_roles=_claims(reader, block.get("claims_to_roles"), f"{path}.claims_to_roles"),
        thresholds=_thresholds(reader, block.get("thresholds"), f"{path}.thresholds"),
        suggested_reviewers=reader.strings(block.get("suggested_reviewers"), f"{path}.suggested_reviewers"),
        search_as_roles=reader.strings(block.get("search_as_roles"), f"{path}.search_as_roles"),
        max_duration=reader.duration(block.get("max_duration"), f"{path}.max_duration"),
        reason_mode=mode,
        annotations=reader.traits(block.get("annotations"), f"{path}.annotations"),
    )


def _review(reader: _Reader, value: Any, path: str) -> ReviewConditions | None:
    if value is None:
        return None
    block = reader.mapping(value, path, _REVIEW_KEYS)
    return ReviewConditions(
        roles=reader.strings(block.get("roles"), f"{path}.roles"),
        claims_to_roles=_claims(reader, block.get("claims_to_roles"), f"{path}.claims_to_roles"),
        where=reader.string(block.get("where"), f"{path}.where"),
        preview_as_roles=reader.strings(block.get("preview_as_roles"), f"{path}.preview_as_roles"),
        submit_for_users=reader.strings(block.get("submit_for_users"), f"{path}.submit_for_users"),
    )


def _rules(reader: _Reader, value: Any, path: str) -> tuple[Rule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise reader.fail(path, "expected a list of rules")
    rules = []
    for index, raw in enumerate(value):
        where = f"{path}[{index}]"
        entry = reader.mapping(raw, where, {"resources", "verbs", "where", "actions"})
        reader.strings(entry.get("actions"), f"{where}.actions")
        rules.append(
            Rule(
                resources=reader.strings(entry.get("resources"), f"{where}.resources"),
                verbs=reader.strings(entry.get("verbs"), f"{where}.verbs"),
                where=reader.string(entry.get("where"), f"{where}.where"),
            )
        )
    return tuple(rules)


def _conditions(reader: _Reader, value: Any, path: str) -> RoleConditions:
    block = reader.mapping(value, path)
    impersonate = reader.mapping(block.get("impersonate"), f"{path}.impersonate", {"users", "roles", "where"})
    reader.string(impersonate.get("where"), f"{path}.impersonate.where")
    return RoleConditions(
        logins=reader.strings(block.get("logins"), f"{path}.logins"),
        rules=_rules(reader, block.get("rules"), f"{path}.rules"),
        request=_request(reader, block.get("request"), f"{path}.request"),
        review_requests=_review(reader, block.get("review_requests"), f"{path}.review_requests"),
        impersonate_users=reader.strings(impersonate.get("users"), f"{path}.impersonate.users"),
        impersonate_roles=reader.strings(impersonate.get("roles"), f"{path}.impersonate.roles"),
    )


def _name(raw: Mapping[str, Any], reader: _Reader) -> str:
    metadata = reader.mapping(raw.get("metadata"), "metadata")
    name = reader.string(metadata.get("name"), "metadata.name")
    if not name:
        raise reader.fail("metadata.name", "is required")
    return name


def _version(raw: Mapping[str, Any], reader: _Reader, allowed: tuple[str, ...]) -> None:
    if raw.get("version") not in allowed:
        raise reader.fail("version", f"expected one of {', '.join(allowed)}, got {raw.get('version')!r}")


def parse_role(raw: Mapping[str, Any], resource: str = "role") -> Role:
    """One `kind: role` resource (as loaded from YAML) as a `Role`; `SeedError` names what is wrong."""
    reader = _Reader(resource)
    if not isinstance(raw, dict):
        raise reader.fail("(resource)", "expected a mapping")
    reader = _Reader(f"role {_name(raw, reader)!r}")
    if raw.get("kind") != "role":
        raise reader.fail("kind", "expected role")
    _version(raw, reader, ROLE_VERSIONS)
    spec = reader.mapping(raw.get("spec"), "spec")
    options = reader.mapping(spec.get("options"), "spec.options")
    request_access = reader.string(options.get("request_access"), "spec.options.request_access")
    if request_access not in REQUEST_ACCESS:
        choices = ", ".join(r for r in REQUEST_ACCESS if r)
        raise reader.fail("spec.options.request_access", f"expected one of {choices}")
    return Role(
        name=_name(raw, reader),
        allow=_conditions(reader, spec.get("allow"), "spec.allow"),
        deny=_conditions(reader, spec.get("deny"), "spec.deny"),
        max_session_ttl=reader.duration(options.get("max_session_ttl"), "spec.options.max_session_ttl"),
        request_access=request_access,
        request_prompt=reader.string(options.get("request_prompt"), "spec.options.request_prompt"),
    )


def parse_user(raw: Mapping[str, Any], resource: str = "user") -> User:
    """One `kind: user` resource as a `User` with its roles and traits."""
    reader = _Reader(resource)
    if not isinstance(raw, dict):
        raise reader.fail("(resource)", "expected a mapping")
    reader = _Reader(f"user {_name(raw, reader)!r}")
    if raw.get("kind") != "user":
        raise reader.fail("kind", "expected user")
    _version(raw, reader, USER_VERSIONS)
    spec = reader.mapping(raw.get("spec"), "spec")
    return User(
        name=_name(raw, reader),
        roles=reader.strings(spec.get("roles"), "spec.roles"),
        traits=reader.traits(spec.get("traits"), "spec.traits"),
    )


def _names_a_file(value: str) -> bool:
    try:
        return "\n" not in value and Path(value).is_file()
    except (OSError, ValueError):  # too long for a path, or a NUL byte: it is YAML text
        return False


def _documents(path_or_text: str | Path) -> list[Any]:
    if isinstance(path_or_text, Path) or _names_a_file(path_or_text):
        try:
            text = Path(path_or_text).read_text(encoding="utf-8")
        except OSError as err:
            raise SeedError(f"{path_or_text}: cannot read the seed file: {err}") from None
    else:
        text = path_or_text
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise SeedError(f"the seed is not valid YAML: {err}") from None
    resources: list[Any] = []
    for document in documents:
        if isinstance(document, list):
            resources.extend(document)
        elif document is not None:
            resources.append(document)
    return resources


def load_seed(path_or_text: str | Path) -> Seed:
    """Read roles and users from a seed file (a `Path`, or a str naming an existing file) or YAML text."""
    users: dict[str, User] = {}
    roles: dict[str, Role] = {}
    for index, raw in enumerate(_documents(path_or_text)):
        label = f"resource #{index + 1}"
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind == "role":
            role = parse_role(raw, label)
            if role.name in roles:
                raise SeedError(f"role {role.name!r}: metadata.name: defined twice")
            roles[role.name] = role
        elif kind == "user":
            user = parse_user(raw, label)
            if user.name in users:
                raise SeedError(f"user {user.name!r}: metadata.name: defined twice")
            users[user.name] = user
        else:
            raise SeedError(f"{label}: kind: expected role or user, got {kind!r}")
    for user in users.values():
        for name in user.roles:
            if name not in roles:
                raise SeedError(f"user {user.name!r}: spec.roles: role {name!r} is not defined in the seed")
    return Seed(users=users, roles=roles)
