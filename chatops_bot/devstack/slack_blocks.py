"""What Slack accepts as message and modal content: Block Kit limits, `no_text` and `msg_too_long`, in Slack's words.

Limits follow slack_sdk's model validators (`slack_sdk/models/blocks/*.py`) and chat-platforms.md §3. Slack
reports each problem as `<reason> [json-pointer:<path>]` in an `errors` list and again, prefixed with
`[ERROR] `, in `response_metadata.messages`; the stand-in answers in the same shape so a bot's error log
reads the same against either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeGuard

MAX_TEXT_CHARS = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100

BLOCK_TYPES = frozenset({
    "actions", "call", "context", "context_actions", "divider", "file", "header", "image", "input",
    "markdown", "rich_text", "section", "table", "video",
})
ELEMENT_TYPES = frozenset({
    "button", "channels_select", "checkboxes", "conversations_select", "datepicker", "datetimepicker",
    "email_text_input", "external_select", "file_input", "image", "multi_channels_select",
    "multi_conversations_select", "multi_external_select", "multi_static_select", "multi_users_select",
    "number_input", "overflow", "plain_text_input", "radio_buttons", "rich_text_input", "static_select",
    "timepicker", "url_text_input", "users_select", "workflow_button",
})
_ANY_TEXT = ("plain_text", "mrkdwn")
_PLAIN = ("plain_text",)


@dataclass(frozen=True)
class Rejection:
    """A Slack error code plus the `[json-pointer:…]` details Slack lists with it."""

    error: str
    details: tuple[str, ...] = ()


class _Checker:
    """Collects Slack-worded problems while walking a payload."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, reason: str, pointer: str) -> None:
        self.errors.append(f"{reason} [json-pointer:{pointer}]")

    def obj(self, value: object, pointer: str) -> TypeGuard[dict[str, Any]]:
        if isinstance(value, dict):
            return True
        self.fail("must provide an object", pointer)
        return False

    def string(self, value: object, pointer: str, *, max_len: int | None, min_len: int = 1) -> None:
        if not isinstance(value, str):
            self.fail("must provide a string", pointer)
        elif len(value) < min_len:
            self.fail(f"must be more than {min_len - 1} characters", pointer)
        elif max_len is not None and len(value) > max_len:
            self.fail(f"must be less than {max_len + 1} characters", pointer)

    def items(self, value: object, pointer: str, *, max_items: int, min_items: int = 1) -> list[Any]:
        if not isinstance(value, list):
            self.fail("must provide an array", pointer)
            return []
        if len(value) < min_items:
            self.fail(f"must provide at least {min_items} items", pointer)
        if len(value) > max_items:
            self.fail(f"no more than {max_items} items allowed", pointer)
        return value

    def text(self, value: object, pointer: str, *, max_len: int | None, types: tuple[str, ...] = _ANY_TEXT) -> None:
        if value is None:
            self.fail("missing required field", pointer)
        elif self.obj(value, pointer):
            if value.get("type") not in types:
                self.fail("must be a valid enum value", f"{pointer}/type")
            self.string(value.get("text"), f"{pointer}/text", max_len=max_len)

    def optional_text(self, block: dict[str, Any], key: str, pointer: str, *, max_len: int,
                      types: tuple[str, ...] = _PLAIN) -> None:
        if key in block:
            self.text(block[key], f"{pointer}/{key}", max_len=max_len, types=types)

    def enum(self, block: dict[str, Any], key: str, allowed: Iterable[str], pointer: str) -> None:
        if key in block and block[key] not in allowed:
            self.fail("must be a valid enum value", f"{pointer}/{key}")

    def element(self, value: object, pointer: str) -> None:
        if not self.obj(value, pointer):
            return
        if value.get("type") not in ELEMENT_TYPES:
            self.fail("must be a valid enum value", f"{pointer}/type")
            return
        if "action_id" in value:
            self.string(value["action_id"], f"{pointer}/action_id", max_len=255)
        if value["type"] == "button":
            self.text(value.get("text"), f"{pointer}/text", max_len=75, types=_PLAIN)
            for key, limit in (("value", 2000), ("url", 3000), ("accessibility_label", 75)):
                if key in value:
                    self.string(value[key], f"{pointer}/{key}", max_len=limit)
            self.enum(value, "style", ("primary", "danger"), pointer)
        if "confirm" in value:
            self.confirm(value["confirm"], f"{pointer}/confirm")

    def confirm(self, value: object, pointer: str) -> None:
        if not self.obj(value, pointer):
            return
        self.text(value.get("title"), f"{pointer}/title", max_len=100, types=_PLAIN)
        self.text(value.get("text"), f"{pointer}/text", max_len=300)
        self.text(value.get("confirm"), f"{pointer}/confirm", max_len=30, types=_PLAIN)
        self.text(value.get("deny"), f"{pointer}/deny", max_len=30, types=_PLAIN)
        self.enum(value, "style", ("primary", "danger"), pointer)


def _section(c: _Checker, block: dict[str, Any], p: str) -> None:
    if "text" not in block and "fields" not in block:
        c.fail("must provide either text or fields", p)
    if "text" in block:
        c.text(block["text"], f"{p}/text", max_len=3000)
    if "fields" in block:
        for i, item in enumerate(c.items(block["fields"], f"{p}/fields", max_items=10)):
            c.text(item, f"{p}/fields/{i}", max_len=2000)
    if "accessory" in block:
        c.element(block["accessory"], f"{p}/accessory")


def _actions(c: _Checker, block: dict[str, Any], p: str) -> None:
    seen: set[str] = set()
    for i, element in enumerate(c.items(block.get("elements"), f"{p}/elements", max_items=25)):
        c.element(element, f"{p}/elements/{i}")
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in seen:
                c.fail("action_id must be unique within the block", f"{p}/elements/{i}/action_id")
            seen.add(action_id)


def _context(c: _Checker, block: dict[str, Any], p: str) -> None:
    for i, element in enumerate(c.items(block.get("elements"), f"{p}/elements", max_items=10)):
        if isinstance(element, dict) and element.get("type") == "image":
            _image(c, element, f"{p}/elements/{i}")
        else:
            c.text(element, f"{p}/elements/{i}", max_len=None)


def _header(c: _Checker, block: dict[str, Any], p: str) -> None:
    c.text(block.get("text"), f"{p}/text", max_len=150, types=_PLAIN)


def _image(c: _Checker, block: dict[str, Any], p: str) -> None:
    c.string(block.get("alt_text"), f"{p}/alt_text", max_len=2000)
    if "slack_file" not in block:
        c.string(block.get("image_url"), f"{p}/image_url", max_len=3000)
    c.optional_text(block, "title", p, max_len=2000)


def _input(c: _Checker, block: dict[str, Any], p: str) -> None:
    c.text(block.get("label"), f"{p}/label", max_len=2000, types=_PLAIN)
    c.optional_text(block, "hint", p, max_len=2000)
    c.element(block.get("element"), f"{p}/element")


def _markdown(c: _Checker, block: dict[str, Any], p: str) -> None:
    c.string(block.get("text"), f"{p}/text", max_len=12_000)


_BLOCK_CHECKS: dict[str, Callable[[_Checker, dict[str, Any], str], None]] = {
    "section": _section, "actions": _actions, "context": _context, "header": _header,
    "image": _image, "input": _input, "markdown": _markdown,
}


def _blocks(c: _Checker, blocks: list[Any], pointer: str, *, max_blocks: int) -> None:
    c.items(blocks, pointer, max_items=max_blocks, min_items=0)
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        p = f"{pointer}/{i}"
        if not c.obj(block, p):
            continue
        if "block_id" in block:
            block_id = block["block_id"]
            c.string(block_id, f"{p}/block_id", max_len=255)
            if isinstance(block_id, str) and block_id in block_ids:
                c.fail("block_id must be unique", f"{p}/block_id")
            if isinstance(block_id, str):
                block_ids.add(block_id)
        if block.get("type") not in BLOCK_TYPES:
            c.fail("must be a valid enum value", f"{p}/type")
            continue
        check = _BLOCK_CHECKS.get(block["type"])
        if check is not None:
            check(c, block, p)


def check_message(text: object, blocks: object, attachments: object = None) -> Rejection | None:
    """Slack's verdict on a message's content (chat.postMessage/update/postEphemeral, response_url)."""
    if not text and not blocks and not attachments:
        return Rejection("no_text")
    if isinstance(text, str) and len(text) > MAX_TEXT_CHARS:
        return Rejection("msg_too_long")
    if blocks is None:
        return None
    if not isinstance(blocks, list):
        return Rejection("invalid_blocks_format")
    checker = _Checker()
    _blocks(checker, blocks, "/blocks", max_blocks=MAX_MESSAGE_BLOCKS)
    return Rejection("invalid_blocks", tuple(checker.errors)) if checker.errors else None


def check_view(view: object, pointer: str = "/view") -> Rejection | None:
    """Slack's verdict on a modal view (views.open/update): `invalid_arguments` with the reasons."""
    checker = _Checker()
    if checker.obj(view, pointer):
        if view.get("type") != "modal":
            checker.fail("must be a valid enum value", f"{pointer}/type")
        checker.text(view.get("title"), f"{pointer}/title", max_len=24, types=_PLAIN)
        checker.optional_text(view, "submit", pointer, max_len=24)
        checker.optional_text(view, "close", pointer, max_len=24)
        for key, limit in (("private_metadata", 3000), ("callback_id", 255), ("external_id", 255)):
            if key in view:
                checker.string(view[key], f"{pointer}/{key}", max_len=limit, min_len=0)
        blocks = view.get("blocks")
        if isinstance(blocks, list):
            _blocks(checker, blocks, f"{pointer}/blocks", max_blocks=MAX_MODAL_BLOCKS)
        else:
            checker.fail("must provide an array", f"{pointer}/blocks")
    return Rejection("invalid_arguments", tuple(checker.errors)) if checker.errors else None
