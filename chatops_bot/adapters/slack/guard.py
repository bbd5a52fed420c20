"""What stands between the HTTP route and anything that runs: Slack's request signature, and the memory that
lets each signed request run once.

A request is Slack's when it carries exactly one `X-Slack-Request-Timestamp` (Unix seconds, ASCII digits)
and exactly one `X-Slack-Signature` (`v0=` and 64 lowercase hex digits) that is the HMAC-SHA256, keyed
with the signing secret, of `v0:<timestamp>:<raw body>`, and the timestamp is within 5 minutes of now
(chat-platforms.md §2). Anything else, however it is malformed, is refused with a reason for the log
(one line, never the header's value). The check is made here on the raw bytes rather than by slack_sdk's
`SignatureVerifier`, which raises (`ValueError`, `TypeError`) on headers it cannot read.

A signed request can be replayed by whoever saw it for as long as its timestamp is accepted, so
`SeenRequests` remembers every accepted signature until its timestamp leaves the window: the same
signature again is a replay. Slack's own retries (`X-Slack-Retry-Num`) carry the same body, signed
again or not; one whose body was already accepted is answered without running it twice. The memory is
this process's: several replicas behind a load balancer each keep their own (docs/slack.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum

from starlette.datastructures import Headers

logger = logging.getLogger(__name__)

WINDOW = 300  # seconds a timestamp is accepted either side of now, as slack_sdk and Slack's docs say
MAX_REMEMBERED = 50_000  # requests; Slack sends one app a few a second at most, this is minutes of a flood

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
RETRY_HEADER = "x-slack-retry-num"


def why_unsigned(secret: bytes, body: bytes, headers: Headers, now: float) -> str | None:
    """None when Slack signed `body` with `secret` within the window; else what is wrong, for the log."""
    stamps, signatures = headers.getlist(TIMESTAMP_HEADER), headers.getlist(SIGNATURE_HEADER)
    if len(stamps) != 1 or len(signatures) != 1:
        return (f"{len(stamps)} X-Slack-Request-Timestamp and {len(signatures)} X-Slack-Signature headers "
                "(one of each is signed)")
    [stamp], [signature] = stamps, signatures
    if not _TIMESTAMP.fullmatch(stamp):
        return "X-Slack-Request-Timestamp is not a time in Unix seconds"
    if not _SIGNATURE.fullmatch(signature):
        return "X-Slack-Signature is not v0= and 64 hex digits"
    if abs(now - int(stamp)) > WINDOW:
        skew = int(now) - int(stamp)
        return f"X-Slack-Request-Timestamp is {skew} s from now (Slack's limit is {WINDOW} s)"
    expected = "v0=" + hmac.new(secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "the signature does not match (another signing secret, or the body changed on the way)"
    return None


class Seen(Enum):
    NEW = "new"  # run it
    REPLAY = "replay"  # this very signature was accepted before: refuse
    RETRY = "retry"  # Slack retries a body it already delivered: answer, do not run again


class SeenRequests:
    """Signatures and bodies accepted in the last `WINDOW` seconds, at most `limit` requests' worth."""

    def __init__(self, *, limit: int = MAX_REMEMBERED, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.clock = clock
        # key -> when it may be forgotten; in the order remembered, which is nearly the order they expire.
        self._until: OrderedDict[tuple[str, bytes], float] = OrderedDict()
        self._full_told = False

    def __len__(self) -> int:
        return len(self._until) // 2

    def check(self, body: bytes, headers: Headers) -> Seen:
        """Whether a request `why_unsigned` accepted is new; a new one is remembered (no await in between,
        so two copies that arrive together cannot both be new)."""
        now = self.clock()
        self._forget(now)
        signature = ("signature", headers[SIGNATURE_HEADER].encode())
        delivered = ("body", hashlib.sha256(body).digest())
        if RETRY_HEADER in headers and delivered in self._until:
            return Seen.RETRY
        if signature in self._until:
            return Seen.REPLAY
        stamp = int(headers[TIMESTAMP_HEADER])
        self._until[signature] = max(now, stamp) + WINDOW  # when the timestamp itself stops being accepted
        self._until[delivered] = now + WINDOW  # Slack gives up retrying well within this
        return Seen.NEW

    def _forget(self, now: float) -> None:
        while self._until and next(iter(self._until.values())) < now:
            self._until.popitem(last=False)
        if len(self._until) < 2 * self.limit:
            self._full_told = False
            return
        if not self._full_told:
            # Forgetting the oldest lets them be replayed for the rest of their minutes; refusing new ones
            # would stop the bot instead. Only signed requests get here, so this is Slack's traffic (or a
            # leaked signing secret).
            logger.warning("more than %d signed Slack requests in %d s: forgetting the oldest early",
                           self.limit, WINDOW)
            self._full_told = True
        while len(self._until) >= 2 * self.limit:
            self._until.popitem(last=False)
