"""What `/readyz` says about an unreachable Teleport: the kind of failure in words, no gRPC internals."""

from __future__ import annotations

import pytest

from chatops_bot.readiness import UNREACHABLE, teleport_problem


@pytest.mark.parametrize(("detail", "shown"), [
    (None, None),
    (("Ping: UNAVAILABLE: failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.3.7:3025: "
      "Failed to connect to remote host: Connection refused"), "Teleport is unreachable (connection refused)"),
    ("Ping: UNAVAILABLE: DNS resolution failed for auth.internal:3025: C-ares status is not ARES_SUCCESS",
     "Teleport is unreachable (its address does not resolve)"),
    ("Ping: DEADLINE_EXCEEDED: Deadline Exceeded", "Teleport is unreachable (no answer in time)"),
    ("Ping: UNAVAILABLE: Ssl handshake failed: SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED",
     "Teleport is unreachable (the TLS handshake failed; run `chatops-bot check-config --connect`)"),
    ("Ping: UNAVAILABLE: Socket closed", "Teleport is unreachable (the connection was closed)"),
    ("the bot's Teleport identity cannot be loaded: /etc/chatops/identity: no such file",
     "the bot's Teleport identity cannot be loaded (see the log)"),
    ("Ping: UNAVAILABLE: something new in grpc 2.0 at 10.0.3.7", UNREACHABLE),
])
def test_readyz_says_what_is_wrong_not_the_servers_internals(detail: str | None, shown: str | None,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    assert teleport_problem(detail) == shown
    if detail:
        assert [r.getMessage() for r in caplog.records] == [f"not ready: Teleport is unreachable: {detail}"]
