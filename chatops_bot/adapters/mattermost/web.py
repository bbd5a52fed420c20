"""Reading what Mattermost posts to the bot, bounded in size before anything is parsed or trusted."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request

from chatops_bot import server

# Mattermost reads at most 1 MiB of a response; what it sends is far smaller (a command line, a click).
MAX_BODY_BYTES = 256 * 1024
MAX_FORM_FIELDS = 200


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The raw body, or None when it is larger than `limit` (read no further than that)."""
    return await server.read_body(request, limit)


def form_fields(body: bytes) -> dict[str, list[str]] | None:
    """An `application/x-www-form-urlencoded` body as Mattermost encodes it, or None if it is not one."""
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None


def first(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


def json_object(body: bytes) -> dict[str, Any] | None:
    """A JSON object body (a click, a dialog submission), or None."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested a few thousand deep
        return None
    return value if isinstance(value, dict) else None


def text_of(value: object) -> str:
    """A field that should be a string; anything else (a forged body) counts as empty."""
    return value if isinstance(value, str) else ""
