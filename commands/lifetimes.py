"""How long a new access request may wait and how long the access it grants lasts, by Teleport's rules.

Read from gravitational/teleport `lib/services/access_request.go` (requestValidator.validate,
calculateMaxAccessDuration, calculatePendingRequestTTL, sessionTTL, truncateTTL). The devstack computes
a new request's times with these functions, so what the bot shows on a card after asking for `--for 2h`
is what a real Auth server would grant. Durations are `timedelta`; a field the client left unset is None.
Refusals are `BadParameter` with Teleport's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from commands.errors import BadParameter

MAX_ACCESS_DURATION = timedelta(days=14)  # lib/services: MaxAccessDuration
MAX_CERT_DURATION = timedelta(hours=30)  # api/defaults: MaxCertDuration, also a role's default max_session_ttl
PENDING_TTL = timedelta(days=7)  # lib/services: requestTTL, the longest a request may stay pending
_ZERO = timedelta(0)


@dataclass(frozen=True)
class Lifetimes:
    """What Teleport stores on a new request: Spec.Expires, Spec.MaxDuration, Spec.SessionTTL, Expiry()."""

    access_expires: datetime
    max_duration: datetime
    session_ttl: datetime
    resource_expiry: datetime


def truncate_ttl(
    *, now: datetime, identity_expires: datetime | None, expiry: datetime | None, role_ttls: Sequence[timedelta | None]
) -> timedelta:
    """truncateTTL: the certificate cap, shortened by the caller's identity, `expiry` and the strictest role."""
    ttl = MAX_CERT_DURATION
    for limit in (identity_expires, expiry):
        remaining = limit - now if limit is not None else _ZERO
        if _ZERO < remaining < ttl:
            ttl = remaining
    for role_ttl in role_ttls:
        if role_ttl and _ZERO < role_ttl < ttl:
            ttl = role_ttl
    return ttl


def session_ttl(
    *,
    now: datetime,
    identity_expires: datetime | None,
    access_expires: datetime | None,
    role_ttls: Sequence[timedelta | None],
) -> timedelta:
    """sessionTTL: how long certificates issued for the request may last; an access expiry asked beyond it fails."""
    ttl = truncate_ttl(now=now, identity_expires=identity_expires, expiry=access_expires, role_ttls=role_ttls)
    if access_expires is not None and access_expires - now > ttl:
        raise BadParameter(
            f"invalid session TTL: {_go(access_expires - now)} greater than maximum allowed ({_go(ttl)})"
        )
    return ttl


def max_access_duration(
    *,
    now: datetime,
    requested: datetime | None,
    role_max: Sequence[timedelta | None],
    session: timedelta,
    dry_run: bool = False,
) -> timedelta | None:
    """calculateMaxAccessDuration: the access duration, or None when the session TTL decides.

    `role_max` is, for each requested role in order, the longest `max_duration` among the requester's
    roles that allow it (maxDurationForRole), None where none sets one. Teleport keeps the smallest, but
    a role without one seen after one with it resets the minimum: we do the same.
    """
    asked = requested - now if requested is not None else None
    if dry_run:
        # A dry run asks for the longest possible access, so it reveals the cap.
        asked = MAX_ACCESS_DURATION
    elif asked is not None and asked < _ZERO:
        raise BadParameter("invalid maxDuration: must be greater than creation time")
    if asked is not None and asked > MAX_ACCESS_DURATION:
        raise BadParameter(f"max_duration must be less than or equal to {_go(MAX_ACCESS_DURATION)}")
    smallest = _ZERO
    for longest in role_max:
        value = longest or _ZERO
        if smallest == _ZERO or value < smallest:
            smallest = value
    if requested is not None and asked is not None and asked < smallest:
        smallest = asked
    if smallest == _ZERO:
        # No role caps it: the request's own max_duration, when it is shorter than the session TTL.
        return asked if asked is not None and _ZERO < asked < session else None
    return smallest


def pending_ttl(*, now: datetime, access_expires: datetime, requested: datetime | None) -> timedelta:
    """calculatePendingRequestTTL: how long the request may stay pending, at most a week and its access."""
    access = access_expires - now
    expiry = requested if requested is not None else now + min(PENDING_TTL, access)
    if expiry < now:
        raise BadParameter("invalid request TTL: Access Request can not be created in the past")
    ttl = expiry - now
    if requested is not None:
        for limit in (PENDING_TTL, access):
            if ttl > limit:
                raise BadParameter(f"invalid request TTL: {_go(ttl)} greater than maximum allowed ({_go(limit)})")
    return ttl


def lifetimes(
    *,
    now: datetime,
    identity_expires: datetime | None,
    access_expires: datetime | None,
    max_duration: datetime | None,
    resource_expiry: datetime | None,
    role_ttls: Sequence[timedelta | None],
    role_max: Sequence[timedelta | None],
    dry_run: bool = False,
) -> Lifetimes:
    """validate(): a new request's times from what the client asked for (each None when not asked)."""
    session = session_ttl(
        now=now, identity_expires=identity_expires, access_expires=access_expires, role_ttls=role_ttls
    )
    duration = max_access_duration(
        now=now, requested=max_duration, role_max=role_max, session=session, dry_run=dry_run
    )
    access = duration if duration is not None else session
    ends = now + access
    pending = pending_ttl(now=now, access_expires=ends, requested=resource_expiry)
    return Lifetimes(
        access_expires=ends,
        max_duration=ends,
        session_ttl=now + min(session, access),
        resource_expiry=now + pending,
    )


def _go(value: timedelta) -> str:
    """A duration the way Go prints it (`8h0m0s`, `13m0s`), so messages read like Teleport's."""
    seconds = value.total_seconds()
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    fraction = seconds - int(seconds)
    tail = f"{secs + fraction:g}s" if fraction else f"{secs}s"
    if hours:
        return f"{hours}h{minutes}m{tail}"
    if minutes:
        return f"{minutes}m{tail}"
    return tail
