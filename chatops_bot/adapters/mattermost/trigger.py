"""What proves that a click or a slash command came from Mattermost, for the user it names.

Mattermost signs nothing else it sends to an integration, but with every button click and every slash
command it sends a `trigger_id` it made for the acting user and signed with its own key
(`model.GenerateTriggerId`, model/integration_action.go): base64 of `client_id:user_id:millis:signature`,
where the signature is ECDSA P-256 over SHA-256 of `client_id:user_id:millis:` (ASN.1 DER, base64). The
public half of that key is published in the client config (`GET /api/v4/config/client?format=old`,
`AsymmetricSigningPublicKey`, base64 DER), to anyone. So the bot can check, with no secret shared, that
Mattermost issued the trigger for exactly the `user_id` in the body and only moments ago; remembering the
triggers it accepted makes each one single-use. A body captured on its way to the bot can then be replayed
neither as someone else (the user is signed) nor again (used once), nor later (it expires).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections import OrderedDict
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from commands import messages
from commands.reply import Reply

logger = logging.getLogger(__name__)

# How old a trigger may be when it reaches the bot: Mattermost makes it the moment the person acts and
# sends it at once, so this allows for the server's queue and clock skew only.
MAX_AGE = 60.0
SKEW = 5.0  # how far in the future a trigger's time may be (the two clocks differ)
REMEMBERED = 50_000  # accepted triggers kept until they expire; beyond this the oldest are dropped


class UnusableKey(ValueError):
    """The published key cannot be used."""


def load_key(published: str) -> ec.EllipticCurvePublicKey:
    """The server's public key from `AsymmetricSigningPublicKey`; raises `UnusableKey` when it is unusable."""
    try:
        key = load_der_public_key(base64.b64decode(published, validate=True))
    except (ValueError, binascii.Error, TypeError) as err:
        raise UnusableKey(f"AsymmetricSigningPublicKey is not a base64 DER public key ({type(err).__name__})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise UnusableKey("AsymmetricSigningPublicKey is not an elliptic-curve key")
    return key


class TriggerVerifier:
    """Checks trigger IDs against one server key; `check` says why one is refused, or None."""

    def __init__(self, key: ec.EllipticCurvePublicKey, *, max_age: float = MAX_AGE) -> None:
        self.key = key
        self.max_age = max_age
        self._used: OrderedDict[str, float] = OrderedDict()  # trigger -> when it expires

    def check(self, trigger_id: str, user_id: str, *, now: float | None = None) -> str | None:
        """None when Mattermost signed `trigger_id` for `user_id` within `max_age` and it was not used before;
        otherwise a short reason for the log (never the trigger itself)."""
        now = time.time() if now is None else now
        if not trigger_id or len(trigger_id) > 1024:
            return "no trigger ID" if not trigger_id else "a trigger ID of an impossible size"
        try:
            parts = base64.b64decode(trigger_id, validate=True).decode("ascii").split(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return "a trigger ID that is not base64 text"
        if len(parts) != 4 or not parts[2].isdigit():
            return "a trigger ID without the parts Mattermost puts in one"
        client_id, signed_user, millis, signature = parts
        try:
            self.key.verify(base64.b64decode(signature, validate=True),
                            f"{client_id}:{signed_user}:{millis}:".encode("ascii"), ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            return "a trigger ID the server's key did not sign"
        if signed_user != user_id:
            return "a trigger ID issued to another user"
        issued = int(millis) / 1000
        if issued > now + SKEW or now - issued > self.max_age:
            return f"a trigger ID issued {now - issued:.0f} s ago (at most {self.max_age:.0f} s)"
        self._forget(now)
        # Keyed on what was signed, not on the encoding: the same trigger re-encoded (an ECDSA signature's
        # other form, base64's spare bits) is the same trigger.
        signed = f"{client_id}:{signed_user}:{millis}"
        if signed in self._used:
            return "a trigger ID already used"
        self._used[signed] = issued + self.max_age
        while len(self._used) > REMEMBERED:
            self._used.popitem(last=False)
        return None

    def _forget(self, now: float) -> None:
        while self._used:
            oldest, expires = next(iter(self._used.items()))
            if expires >= now:
                return
            del self._used[oldest]


class ConfigSource(Protocol):
    async def client_config(self) -> dict[str, str]: ...


class Triggers:
    """The adapter's check of every click and slash command: the server's key loaded at start (and again,
    at most every `RELOAD` seconds, while it is missing or a trigger fails against it: a restored or
    re-keyed server), and a refusal `Reply` for anything it cannot vouch for."""

    RELOAD = 60.0

    def __init__(self, source: ConfigSource) -> None:
        self.source = source
        self.verifier: TriggerVerifier | None = None
        self.problem: str | None = "Mattermost's signing key is not loaded yet"
        self._loaded_at = float("-inf")

    async def load(self) -> None:
        self._loaded_at = time.monotonic()
        try:
            published = str((await self.source.client_config()).get("AsymmetricSigningPublicKey") or "")
            if not published:
                raise UnusableKey("the server publishes no AsymmetricSigningPublicKey")
            key = load_key(published)
        except UnusableKey as err:
            self._fail(f"cannot verify clicks and commands: {err}")
            return
        except Exception as err:  # the server is unreachable or answered in error: a later click tries again
            self._fail(f"cannot verify clicks and commands: reading Mattermost's client config failed ({err!r})")
            return
        if self.verifier is None or self.verifier.key.public_numbers() != key.public_numbers():
            self.verifier = TriggerVerifier(key)
        self.problem = None

    def _fail(self, problem: str) -> None:
        if self.verifier is not None:  # a refresh failed: the key in hand still proves what it proved
            logger.warning("%s; keeping the key read before", problem)
            return
        if problem != self.problem:
            logger.error("%s; every Mattermost click and slash command is refused until it can", problem)
        self.problem = problem

    async def refusal(self, trigger_id: str, user_id: str, what: str) -> Reply | None:
        """None when Mattermost vouches for `user_id` with `trigger_id`; otherwise the reply, logged once."""
        if self.verifier is None and time.monotonic() - self._loaded_at > self.RELOAD:
            await self.load()
        if self.verifier is None:
            logger.warning("refused a Mattermost %s: its signing key is not loaded", what)
            return _refused(messages.mattermost_unverifiable())
        why = self.verifier.check(trigger_id, user_id)
        if why == "a trigger ID the server's key did not sign" and time.monotonic() - self._loaded_at > self.RELOAD:
            await self.load()  # the server may have a new key
            why = self.verifier.check(trigger_id, user_id) if self.verifier else why
        if why is None:
            return None
        logger.warning("refused a Mattermost %s for user %s: %s", what, user_id[:32], why)
        return _refused(messages.mattermost_unverified())


def _refused(text: str) -> Reply:
    return Reply(text=text, ok=False, outcome="refused")
