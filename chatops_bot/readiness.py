"""What `/readyz` may say about Teleport: what is wrong, in words, never the server's internals.

`/readyz` answers anyone who can reach the bot's port. The client's reason for Teleport being unreachable
is gRPC's status and debug text (`Ping: UNAVAILABLE: failed to connect to all addresses; last error:
UNKNOWN: ipv4:10.0.3.7:3025: …`), or the identity file's path and its parse error: useful to the operator,
who finds it in the log, and of no business to a prober. So the endpoint names the kind of failure only.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# The first kind whose words appear in the detail (compared lower-case) names it.
_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("identity cannot be loaded",), "the bot's Teleport identity cannot be loaded (see the log)"),
    (("connection refused",), "Teleport is unreachable (connection refused)"),
    (("dns resolution failed", "name or service not known", "nodename nor servname", "could not resolve"),
     "Teleport is unreachable (its address does not resolve)"),
    (("deadline", "timed out", "timeout"), "Teleport is unreachable (no answer in time)"),
    (("no route to host", "network is unreachable"), "Teleport is unreachable (no route to its address)"),
    (("certificate", "handshake", "ssl", "tls"),
     "Teleport is unreachable (the TLS handshake failed; run `chatops-bot check-config --connect`)"),
    (("connection reset", "socket closed", "connection closed", "broken pipe", "eof"),
     "Teleport is unreachable (the connection was closed)"),
)
UNREACHABLE = "Teleport is unreachable (see the log)"

_last_logged: str | None = None


def teleport_problem(detail: str | None) -> str | None:
    """The words `/readyz` shows for the client's `why_unreachable()`; the detail goes to the log once
    each time it changes (probes come every few seconds)."""
    global _last_logged
    if detail != _last_logged:
        if detail:
            logger.warning("not ready: Teleport is unreachable: %s", detail)
        _last_logged = detail
    if not detail:
        return None
    lowered = detail.lower()
    for words, shown in _KINDS:
        if any(word in lowered for word in words):
            return shown
    return UNREACHABLE
