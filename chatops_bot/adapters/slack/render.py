"""`Reply` and `RequestCard` as Slack Block Kit messages, within Slack's limits, with user text escaped.

Text from `commands.messages` is already safe (`safe_text` broke mentions and replaced `<` `>`); here it is
only laid out and escaped for mrkdwn (`&`, `<`, `>`, nothing else, chat-platforms.md §8), always in
`verbatim` objects so Slack links nothing by itself. Limits follow slack_sdk's block validators: 50 blocks
per message, 3,000 characters per section text, 10 fields of at most 2,000 characters per section, 150
per header, 75 per button label, 2,000 per button value, 300 per confirm text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commands import messages
from commands.model import Capabilities
from commands.reply import Action, Field, Reply, RequestCard
from commands.text import truncate

MAX_BLOCKS = 50
SECTION_TEXT_LIMIT = 3000
FIELD_LIMIT = 2000
FIELDS_PER_SECTION = 10
HEADER_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
CONFIRM_TITLE_LIMIT = 100
CONFIRM_TEXT_LIMIT = 300
CONFIRM_BUTTON_LIMIT = 30
CONTEXT_ELEMENTS = 10
# The notification fallback: what a phone shows; the blocks carry everything.
FALLBACK_LIMIT = 3000

ACTION_IDS = {Action.APPROVE: "access_approve", Action.DENY: "access_deny", Action.EXTEND: "access_extend"}
_OUR_ACTIONS = frozenset(ACTION_IDS.values())
_STYLES = {Action.APPROVE: "primary", Action.DENY: "danger"}
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}

Block = dict[str, Any]


def escape(text: str, limit: int | None = None) -> str:
    """`text` with Slack's three control characters escaped; cut (ending in `…`) so the escaped form fits."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")  # fast: every list line
    if limit is None or len(escaped) <= limit:
        return escaped
    kept: list[str] = []
    size = 0
    for char in text:
        piece = _ESCAPES.get(char, char)
        if size + len(piece) > limit - 1:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + "\u2026"


def plain(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object: shown as written (no mrkdwn, no emoji codes), cut to `limit`."""
    return {"type": "plain_text", "text": truncate(text, limit) if text else " ", "emoji": False}


def mrkdwn(text: str, limit: int = SECTION_TEXT_LIMIT) -> dict[str, Any]:
    """An escaped, verbatim mrkdwn object: styling from `messages` works, nothing gets linked."""
    return {"type": "mrkdwn", "text": escape(text, limit) or " ", "verbatim": True}


def message(reply: Reply) -> dict[str, Any]:
    """`text` (the notification fallback) and `blocks` for a reply; cards that do not fit are counted."""
    blocks = text_sections(reply.text)[: MAX_BLOCKS - 1]
    cards = [card_blocks(card) for card in reply.cards]
    room = MAX_BLOCKS - len(blocks)
    if sum(len(card) for card in cards) > room:
        room -= 1  # for the line that says how many were left out
    shown = 0
    for card in cards:
        if len(card) > room:
            break
        blocks += card
        room -= len(card)
        shown += 1
    if shown < len(cards):
        blocks.append({"type": "context", "elements": [mrkdwn(messages.more_not_shown(len(cards) - shown))]})
    fallback = reply.text or (reply.cards[0].title if reply.cards else "")
    return {"text": escape(fallback, FALLBACK_LIMIT) or " ", "blocks": blocks}


def card_message(card: RequestCard) -> dict[str, Any]:
    """One card as a whole message, e.g. to replace the clicked card in place."""
    return {"text": escape(card.title, FALLBACK_LIMIT), "blocks": card_blocks(card)}


def text_sections(text: str) -> list[Block]:
    """`text` in as few sections as fit 3,000 escaped characters each, split between lines."""
    if not text.strip():
        return []
    sections: list[Block] = []
    chunk: list[str] = []
    size = 0
    for line in text.split("\n"):
        length = len(escape(line)) + 1
        if chunk and size + length > SECTION_TEXT_LIMIT:
            sections.append({"type": "section", "text": mrkdwn("\n".join(chunk))})
            chunk, size = [], 0
        chunk.append(line)
        size += length
    sections.append({"type": "section", "text": mrkdwn("\n".join(chunk))})
    return sections


def _field(field: Field) -> dict[str, Any]:
    """A card field; one with a URL (a Jira ticket) is a link, unless the URL could break out of it."""
    if not field.url or "|" in field.url or not field.url.startswith(("https://", "http://")):
        return mrkdwn(f"*{field.label}*\n{field.value}", FIELD_LIMIT)
    text = f"*{escape(field.label)}*\n<{escape(field.url)}|{escape(field.value)}>"
    return {"type": "mrkdwn", "text": text[:FIELD_LIMIT], "verbatim": True}


def card_blocks(card: RequestCard) -> list[Block]:
    """Header, fields (ten per section), a context line (footer, web link) and the buttons still useful."""
    blocks: list[Block] = [{"type": "header", "text": plain(card.title, HEADER_LIMIT)}]
    fields = [_field(f) for f in card.fields]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + FIELDS_PER_SECTION]})
    context = []
    if card.footer:
        context.append(mrkdwn(card.footer))
    if card.web_url and "|" not in card.web_url:
        context.append(
            {"type": "mrkdwn", "text": f"<{escape(card.web_url)}|{escape(messages.open_in_teleport())}>"}
        )
    if context:
        blocks.append({"type": "context", "elements": context[:CONTEXT_ELEMENTS]})
    if card.actions and len(card.request.id) <= BUTTON_VALUE_LIMIT:
        blocks.append({"type": "actions", "elements": [_button(action, card) for action in card.actions]})
    return blocks


def card_id(blocks: object, block_id: object) -> str | None:
    """The ID of the request whose card holds the actions block `block_id` in a message's `blocks` (as a
    click's payload carries them): what its buttons carry (`_button`), or None when that is not one ID."""
    if not isinstance(blocks, list) or not isinstance(block_id, str):
        return None
    ids = {
        element.get("value")
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "actions" and block.get("block_id") == block_id
        for element in block.get("elements") or ()
        if isinstance(element, dict) and element.get("action_id") in _OUR_ACTIONS
    }
    found = ids.pop() if len(ids) == 1 else None
    return found if isinstance(found, str) else None


def _button(action: Action, card: RequestCard) -> Block:
    button: Block = {
        "type": "button",
        "action_id": ACTION_IDS[action],
        "text": plain(messages.ACTION_LABEL[action], BUTTON_TEXT_LIMIT),
        "value": card.request.id,
    }
    if action in _STYLES:
        button["style"] = _STYLES[action]
    if action is Action.APPROVE:
        button["confirm"] = {
            "title": plain(messages.approve_confirm_title(), CONFIRM_TITLE_LIMIT),
            "text": plain(messages.approve_confirm_text(card.request), CONFIRM_TEXT_LIMIT),
            "confirm": plain(messages.ACTION_LABEL[Action.APPROVE], CONFIRM_BUTTON_LIMIT),
            "deny": plain(messages.cancel(), CONFIRM_BUTTON_LIMIT),
            "style": "primary",
        }
    return button


# --- modals -----------------------------------------------------------------------------------------

REQUEST_FORM = "access_request_form"
DENY_FORM = "access_deny_form"
ROLES_BLOCK, DURATION_BLOCK, REASON_BLOCK, REVIEWERS_BLOCK = "roles", "duration", "reason", "reviewers"
TICKET_BLOCK = "ticket"
INPUT_ACTION = "value"
MAX_OPTIONS = 100
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
VIEW_TITLE_LIMIT = 24
LABEL_LIMIT = 2000
HINT_LIMIT = 2000
INPUT_MAX_LENGTH = 3000  # Slack's ceiling for plain_text_input; the grammar checks the 4,096-byte reason limit


def modal_for_request(
    capabilities: Capabilities,
    *,
    private_metadata: str,
    initial_roles: Sequence[str] = (),
    initial_reason: str = "",
    ticket: bool = False,
) -> dict[str, Any]:
    """The `/access request` form: roles Teleport lets this person request, duration, reason, reviewers,
    and with `ticket` (a request gate is configured) the ticket the request is for."""
    options = [
        {"text": plain(role, OPTION_TEXT_LIMIT), "value": role}
        for role in capabilities.requestable_roles[:MAX_OPTIONS]
        if len(role) <= OPTION_VALUE_LIMIT  # a longer value cannot be selected; it can still be typed
    ]
    roles: Block = {"type": "multi_static_select", "action_id": INPUT_ACTION, "options": options}
    chosen = [o for o in options if o["value"] in initial_roles]
    if chosen:
        roles["initial_options"] = chosen
    reason: Block = {"type": "plain_text_input", "action_id": INPUT_ACTION, "multiline": True,
                     "max_length": INPUT_MAX_LENGTH}
    if initial_reason:
        reason["initial_value"] = truncate(initial_reason, INPUT_MAX_LENGTH)
    blocks: list[Block] = []
    if capabilities.request_prompt:
        blocks += text_sections(messages.request_form_prompt(capabilities.request_prompt))
    blocks += [
        _input(ROLES_BLOCK, messages.request_form_roles(), roles),
        _input(DURATION_BLOCK, messages.request_form_duration(), _line_input(), optional=True,
               hint=messages.request_form_duration_hint()),
        _input(REASON_BLOCK, messages.request_form_reason(), reason, optional=not capabilities.require_reason),
        _input(REVIEWERS_BLOCK, messages.request_form_reviewers(), _line_input(), optional=True,
               hint=messages.request_form_reviewers_hint(capabilities.suggested_reviewers)),
    ]
    if ticket:
        blocks.insert(-2, _input(TICKET_BLOCK, messages.request_form_ticket(), _line_input(), optional=True,
                                 hint=messages.request_form_ticket_hint()))
    return _modal(REQUEST_FORM, messages.request_form_title(), messages.request_form_submit(), blocks,
                  private_metadata)


def deny_reason_modal(request_id: str, *, private_metadata: str) -> dict[str, Any]:
    """Asks why, when `review.deny_reason_required` is on; submitting denies with that reason."""
    reason: Block = {"type": "plain_text_input", "action_id": INPUT_ACTION, "multiline": True,
                     "max_length": INPUT_MAX_LENGTH}
    blocks = [
        {"type": "section", "text": mrkdwn(messages.deny_form_prompt(request_id))},
        _input(REASON_BLOCK, messages.request_form_reason(), reason),
    ]
    return _modal(DENY_FORM, messages.deny_form_title(), messages.deny_form_submit(), blocks, private_metadata)


def _modal(callback_id: str, title: str, submit: str, blocks: list[Block],
           private_metadata: str) -> dict[str, Any]:
    if len(private_metadata) > 3000:
        raise ValueError("private_metadata is limited to 3,000 characters")
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, VIEW_TITLE_LIMIT),
        "submit": plain(submit, VIEW_TITLE_LIMIT),
        "close": plain(messages.cancel(), VIEW_TITLE_LIMIT),
        "private_metadata": private_metadata,
        "blocks": blocks,
    }


def _input(block_id: str, label: str, element: Block, *, optional: bool = False, hint: str = "") -> Block:
    block: Block = {"type": "input", "block_id": block_id, "label": plain(label, LABEL_LIMIT),
                    "element": element, "optional": optional}
    if hint:
        block["hint"] = plain(hint, HINT_LIMIT)
    return block


def _line_input() -> Block:
    return {"type": "plain_text_input", "action_id": INPUT_ACTION, "max_length": INPUT_MAX_LENGTH}
