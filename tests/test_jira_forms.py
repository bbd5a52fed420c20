"""The Slack modal and the Mattermost dialog get a Ticket field when a request gate is configured, and the
ticket typed there is the `--ticket` of the request line the form stands for."""

from __future__ import annotations

from chatops_bot.adapters.mattermost.dialogs import request_dialog, request_line
from chatops_bot.adapters.slack import forms as slack_forms
from chatops_bot.adapters.slack import render as slack_render
from commands.model import Capabilities

CAPS = Capabilities(requestable_roles=("dba",))


def test_slack_modal_has_a_ticket_field_only_with_a_gate() -> None:
    def blocks(ticket: bool) -> list[str]:
        view = slack_render.modal_for_request(CAPS, private_metadata="", ticket=ticket)
        return [b.get("block_id", "") for b in view["blocks"]]

    assert "ticket" in blocks(True) and "ticket" not in blocks(False)
    values = {"roles": {"value": {"selected_options": [{"value": "dba"}]}},
              "ticket": {"value": {"value": " ops-123 "}}, "reason": {"value": {"value": "replica lag"}}}
    submitted = slack_forms.request_submission(values)
    assert submitted.command is not None and submitted.command.ticket == "OPS-123"
    assert "--ticket=" in submitted.line
    bad = slack_forms.request_submission({**values, "ticket": {"value": {"value": "not a key"}}})
    assert bad.errors and "is not an issue key" in bad.errors["ticket"]
    refusal = "OPS-123 is Done; tickets must be In Progress. Nothing was requested."
    assert slack_forms.refusal_block(refusal, submitted.command) == "ticket"


def test_mattermost_dialog_has_a_ticket_field_only_with_a_gate() -> None:
    def names(ticket: bool) -> list[str]:
        return [e["name"] for e in request_dialog(CAPS, "state", ticket=ticket)["elements"]]

    assert "ticket" in names(True) and "ticket" not in names(False)
    form = request_line({"roles": "dba", "ticket": "OPS-7", "reason": "replica lag"})
    assert form.command is not None and form.command.ticket == "OPS-7"
    assert form.command.reason == "replica lag"
