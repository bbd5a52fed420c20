"""What proves a request came from Mattermost, or from a card or form the bot itself made.

Mattermost signs none of its callbacks as a whole (what it signs, the trigger ID naming who acted, is
checked in `trigger.py`). Slash commands carry a static per-command token; button clicks and dialog
submissions carry back what the bot put in them, so the bot puts an HMAC there: over the
request ID and action for a button (`integration.context`), over the user and callback for a dialog
(`state`). Every comparison is constant-time, and each kind of MAC has its own domain so one can never
be replayed as another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ACTIONS = ("approve", "deny", "extend")
_ACTION_DOMAIN = "chatops-bot/mattermost/action/v1"
_DIALOG_DOMAIN = "chatops-bot/mattermost/dialog/v1"
_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ISSUED = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[0-9a-f]{32}")


def _same(a: str, b: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str, and a forged value may hold anything.
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def _mac(secret: bytes, domain: str, *parts: str) -> str:
    # A JSON array keeps the parts apart unambiguously, whatever characters they hold.
    message = json.dumps([domain, *parts], ensure_ascii=True).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def command_token_ok(configured: Sequence[str], form_token: str | None, authorization: str) -> bool:
    """Whether the token in the form and the one in `Authorization: Token …` are both a configured token.

    Mattermost sends both; either may be missing (an Outgoing OAuth connection replaces the header), but
    not both, and when both are there they must agree. Every configured token is compared, every time.
    """
    scheme, _, value = authorization.strip().partition(" ")
    header = value.strip() if scheme.lower() == "token" else None
    presented = [token for token in (form_token, header) if token is not None]
    if not presented:
        return False
    if form_token is not None and header is not None and not _same(form_token, header):
        return False
    return all(_known(configured, token) for token in presented)


def _known(configured: Sequence[str], token: str) -> bool:
    matches = [_same(token, candidate) for candidate in configured]
    return bool(token) and any(matches)


def action_mac(secret: bytes, request_id: str, action: str) -> str:
    return _mac(secret, _ACTION_DOMAIN, request_id, action)


def action_context(secret: bytes, request_id: str, action: str) -> dict[str, str]:
    """The `integration.context` of a button: Mattermost echoes it back on a click, unseen by clients."""
    return {"request_id": request_id, "action": action, "mac": action_mac(secret, request_id, action)}


@dataclass(frozen=True)
class VerifiedAction:
    request_id: str
    action: str


def verify_action(secret: bytes, context: object) -> VerifiedAction | None:
    """The request ID and action a click's context names, or None unless the bot's MAC vouches for them."""
    if not isinstance(context, Mapping):
        return None
    request_id, action, mac = (context.get(key) for key in ("request_id", "action", "mac"))
    if not (isinstance(request_id, str) and isinstance(action, str) and isinstance(mac, str)):
        return None
    if not _same(mac, action_mac(secret, request_id, action)):
        return None
    # Only what the bot ever signs: checked after the MAC so a forgery learns nothing from the answer.
    if action not in ACTIONS or not _REQUEST_ID.fullmatch(request_id):
        return None
    return VerifiedAction(request_id, action)


def dialog_nonce(trigger_id: str = "") -> str:
    """What names one opening of a form: derived from the trigger ID it was opened with (single-use and
    signed by the server), or random without one."""
    if not trigger_id:
        return secrets.token_hex(16)
    return hashlib.sha256(trigger_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class DialogState:
    issued: int
    nonce: str  # the opening this state belongs to: a submission is accepted once per nonce


def dialog_state(secret: bytes, user_id: str, callback_id: str, issued: int, *, trigger_id: str = "") -> str:
    """A dialog's `state`: when it was issued, which opening it belongs to, and a MAC binding both to this
    user and this form."""
    nonce = dialog_nonce(trigger_id)
    return f"{issued}.{nonce}.{_mac(secret, _DIALOG_DOMAIN, user_id, callback_id, str(issued), nonce)}"


def verify_dialog_state(secret: bytes, state: object, user_id: str, callback_id: str) -> DialogState | None:
    """When and for which opening a genuine state for this user and form was issued, or None if the bot
    did not issue it."""
    if not isinstance(state, str):
        return None
    issued, _, rest = state.partition(".")
    nonce, _, mac = rest.partition(".")
    if not _ISSUED.fullmatch(issued) or not _NONCE.fullmatch(nonce):
        return None
    if not _same(mac, _mac(secret, _DIALOG_DOMAIN, user_id, callback_id, issued, nonce)):
        return None
    return DialogState(int(issued), nonce)


def dialog_state_issued(secret: bytes, state: object, user_id: str, callback_id: str) -> int | None:
    """When a genuine state for this user and form was issued, or None if the bot did not issue it."""
    verified = verify_dialog_state(secret, state, user_id, callback_id)
    return None if verified is None else verified.issued
