"""Durations as people type them (`30m`, `2h`, `1h30m`, `1d`): one parser for commands and config alike."""

from __future__ import annotations

import re
from datetime import timedelta

from commands.errors import UsageError
from commands.text import quoted

MAX_DURATION = timedelta(days=14)  # Teleport caps an access request's duration at 14 days.
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_UNIT_SECONDS = (86400, 3600, 60, 1)


def parse_duration(text: str, *, maximum: timedelta | None = MAX_DURATION) -> timedelta:
    """`30m`, `2h`, `1h30m`, `1d`: units s/m/h/d, largest first, more than 0 and at most `maximum`."""
    match = _DURATION.fullmatch(text.lower())
    if not text or match is None:
        raise UsageError(
            f"{quoted(text)} is not a duration; use a number and a unit (s, m, h, d), largest unit first, "
            "such as 30m, 2h, 1h30m or 1d."
        )
    numbers = [(group or "0").lstrip("0") or "0" for group in match.groups()]
    # Beyond ten digits of any unit a duration is absurd (and timedelta would overflow); refuse early.
    absurd = any(len(number) >= 10 for number in numbers)
    if absurd and maximum is None:
        raise UsageError(f"{quoted(text)} is too long to be a duration.")
    seconds = 0 if absurd else sum(int(number) * unit for number, unit in zip(numbers, _UNIT_SECONDS))
    if absurd or (maximum is not None and seconds > maximum.total_seconds()):
        assert maximum is not None
        raise UsageError(f"{quoted(text)} is too long: a duration can be at most {format_duration(maximum)}.")
    if seconds == 0:
        raise UsageError(f"{quoted(text)} is not long enough: a duration must be more than 0.")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """`duration` in the compact form `parse_duration` reads (`1h30m`, `2d`, `45s`), whole seconds."""
    seconds = duration.days * 86400 + duration.seconds
    if seconds < 0:
        raise ValueError(f"cannot format a negative duration: {duration}")
    parts = []
    for unit, suffix in zip(_UNIT_SECONDS, "dhms"):
        count, seconds = divmod(seconds, unit)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts) or "0s"
