"""The `/access` subcommands as users read them: usage line, summary and details, written down once.

`commands.grammar` ends every refusal with the usage line from here and `commands.help` prints these
entries; `commands.grammar` re-exports `Spec`, `SUBCOMMANDS` and `USAGE`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    name: str
    usage: str
    summary: str
    details: str


_ID_DETAILS = (
    "ID is a request ID (3f2a1c9e-8b7d-4c1e-9f00-5a6b7c8d9e0f) or the short ID that lists and replies "
    "show (its last 8 characters: 7c8d9e0f)."
)
SUBCOMMANDS: dict[str, Spec] = {
    spec.name: spec
    for spec in (
        Spec(
            "request",
            "/access request ROLE[,ROLE…] [--for DURATION] [--reviewers USER[,USER…]] "
            "[--reason TEXT | TEXT…]",
            "Ask for one or more roles.",
            "Separate roles with commas, no spaces. DURATION is a number and a unit (s, m, h, d), largest "
            "unit first: 30m, 2h, 1h30m, 1d; at most 14d. Options may be written --for=2h and come before "
            "the reason; the reason is the rest of the text, or --reason with one quoted text. "
            "Up to 20 roles and 20 reviewers; a reason of at most 4096 bytes. Without --for, Teleport grants "
            "the longest access the roles allow (their max_duration, else the session TTL); the reply says "
            "until when.\n"
            "Example: /access request dba --for 2h INC-4411 replica lag",
        ),
        Spec(
            "roles",
            "/access roles",
            "What you may request.",
            "Each role you may request, the longest access Teleport would grant, whether it needs a reason, "
            "and who would be asked to review it.",
        ),
        Spec(
            "list",
            "/access list [mine|pending|active|all] [--page N]",
            "List access requests.",
            "mine: the requests you made; pending: requests waiting for a review; active: approved requests "
            "whose access has not expired; all: every request you may see. --page N shows page N (from 1).",
        ),
        Spec("show", "/access show ID", "Show one access request.", _ID_DETAILS),
        Spec("approve", "/access approve ID [REASON…]", "Approve a request.", _ID_DETAILS),
        Spec("deny", "/access deny ID [REASON…]", "Deny a request.", _ID_DETAILS),
        Spec(
            "cancel",
            "/access cancel ID",
            "Withdraw your own pending request.",
            "Only the person who made a request may withdraw it, and only while it is pending. Its cards "
            "are closed. " + _ID_DETAILS,
        ),
        Spec("help", "/access help [SUBCOMMAND]", "Show help.", "Without a subcommand, lists them all."),
    )
}
USAGE = "/access request|roles|list|show|approve|deny|cancel|help …"
