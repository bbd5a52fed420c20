"""A neutral `Reply` as Mattermost shows it: Markdown message attachments, colour per state, signed buttons.

User text reaches this module already neutralised: names by `commands.text.safe_text` (mentions broken
with a word joiner, markup replaced by lookalikes), reasons by `as_typed` (as typed, inside a code span
when they hold markup or a mention). Here every value that Mattermost renders as Markdown is also
backslash-escaped outside those code spans, and every string gets a last pass, outside code spans, that
breaks `@channel`, `@all`, `@here`, `@everyone` and `<!…` wherever they might still appear, so nothing
the bot posts can notify a channel even if an upstream sentence forgets `safe_text`. Inside code
Mattermost notifies nobody (tests/contract checks it on a real server). Responses set
`skip_slack_parsing`, so the server's Slack-compatible rewriting (`<!channel>` -> `@channel`) never runs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chatops_bot.adapters.mattermost import signing
from commands import messages
from commands.model import RequestState
from commands.reply import Action, Field, Reply, RequestCard
from commands.text import WORD_JOINER, truncate

MAX_MESSAGE_RUNES = 16383  # the smallest MaxPostSize a server has; longer posts are refused, not cut
SHORT_FIELD = 40  # values up to this long share a row with their neighbour
STATE_FIELD = "State"  # shown as the attachment's text instead of as a field
COLORS = {
    RequestState.PENDING: "#F2B01E",
    RequestState.APPROVED: "#2EB67D",
    RequestState.DENIED: "#D24B4E",
    RequestState.PROMOTED: "#1D74F5",
    RequestState.NONE: "#8A8A8A",
}
STYLES = {Action.APPROVE: "success", Action.DENY: "danger", Action.EXTEND: "primary"}

# Every ASCII character CommonMark or Mattermost's renderer gives a meaning, except `.` `:` and `@`:
# a `.` only matters after a number at the start of a line (handled below), `:` only makes emoji, and `@`
# is handled by the word joiner (a backslash before it would not stop Mattermost's mention parser).
_MARKDOWN = re.compile(r"[\\`*_{}\[\]()#+\-!|<>~$&]")
_ORDERED_LIST = re.compile(r"^([ \t]*[0-9]+)\.", re.MULTILINE)
_CODE = re.compile(r"(```\n.*?\n```|`[^`\n]*`)", re.DOTALL)
_BROADCAST = re.compile(rf"@(?!{WORD_JOINER})(?=here|channel|all|everyone)", re.IGNORECASE)


def plain(text: str) -> str:
    """Text Mattermost shows as is (fallback, footer): defused only."""
    return _BROADCAST.sub("@" + WORD_JOINER, text).replace("<!", "\u2039!")


def markdown(text: str) -> str:
    """A value shown inside Markdown: defused, then every special character escaped, except inside the code
    spans `commands.text.as_typed` made (user text never holds a backtick of its own: they are replaced),
    which Mattermost shows as they are."""
    parts = _CODE.split(text)
    return "".join(part if i % 2 else _escape(plain(part)) for i, part in enumerate(parts))


def _escape(text: str) -> str:
    escaped = _MARKDOWN.sub(lambda match: "\\" + match.group(), text)
    return _ORDERED_LIST.sub(r"\1\\.", escaped)


@dataclass(frozen=True)
class Renderer:
    """Renders for one bot: its button URL (`public_url` + `/mattermost/actions`) and its MAC key."""

    actions_url: str
    action_secret: bytes

    def command_response(self, reply: Reply) -> dict[str, Any]:
        """The JSON answer to a slash command: always ephemeral, Slack-style parsing off.

        Without text and cards Mattermost posts nothing, which is what an opened dialog wants.
        """
        body: dict[str, Any] = {
            "response_type": "ephemeral",
            "text": _message(reply.text),
            "skip_slack_parsing": True,
        }
        if reply.cards:
            # Ephemeral posts keep the action context in an encrypted cookie, so their buttons work too.
            body["attachments"] = [self.attachment(card, ephemeral=True) for card in reply.cards]
        return body

    def action_response(self, reply: Reply, card: RequestCard | None = None) -> dict[str, Any]:
        """The JSON answer to a click: the outcome for the clicker, and the card as it is now if given."""
        body: dict[str, Any] = {"ephemeral_text": _message(reply.text), "skip_slack_parsing": True}
        if card is not None:
            body["update"] = self.card_post(card)
        return body

    def card_post(self, card: RequestCard) -> dict[str, Any]:
        """A post that is one card: message and props, for `POST posts`, `patch` or an action's `update`.

        The message is empty so that an `update` (which replaces the message too) rebuilds the post whole.
        """
        return {"message": "", "props": {"attachments": [self.attachment(card, ephemeral=False)]}}

    def reply_post(self, reply: Reply) -> dict[str, Any]:
        """A whole reply as a post the bot creates (a DM), its cards as attachments."""
        post: dict[str, Any] = {"message": _message(reply.text)}
        if reply.cards:
            post["props"] = {"attachments": [self.attachment(c, ephemeral=False) for c in reply.cards]}
        return post

    def attachment(self, card: RequestCard, *, ephemeral: bool) -> dict[str, Any]:
        request = card.request
        fields = [f for f in card.fields if f.label != STATE_FIELD]
        # The card's State line when it has one: it may count what Teleport does not (`review.rules`).
        state = next((f.value for f in card.fields if f.label == STATE_FIELD), None) or messages.state_line(request)
        body: dict[str, Any] = {
            "fallback": plain(f"{card.title}: {state}"),
            "color": COLORS[request.state],
            # The web client renders a linked title as plain link text and an unlinked one as Markdown
            # (webapp message_attachment: `title_link` -> a bare <a>), so only the latter is escaped.
            "title": plain(card.title) if card.web_url else markdown(card.title),
            "text": f"**{markdown(state)}**",
            "fields": [
                {"title": f.label, "value": _value(f), "short": _is_short(f.value)} for f in fields
            ],
            "footer": plain(card.footer),
        }
        if card.web_url:
            body["title_link"] = card.web_url
        actions = self.actions(request.id, card.actions, ephemeral=ephemeral)
        if actions:
            body["actions"] = actions
        return body

    def actions(self, request_id: str, actions: Sequence[Action], *, ephemeral: bool) -> list[dict[str, Any]]:
        buttons = []
        for action in actions:
            if action not in STYLES:
                continue
            context: dict[str, Any] = signing.action_context(self.action_secret, request_id, action.value)
            if ephemeral:
                # Not covered by the MAC on purpose: it only tells the click handler that the server
                # cannot `update` this post (ephemeral posts are not stored); flipping it grants nothing.
                context["ephemeral"] = True
            buttons.append({
                # Letters and digits only, unique within a post even when it holds several cards.
                "id": action.value + request_id.replace("-", ""),
                "type": "button",
                "name": messages.ACTION_LABEL[action],
                "style": STYLES[action],
                "integration": {"url": self.actions_url, "context": context},
            })
        return buttons


def _message(text: str) -> str:
    """Markdown the bot wrote: defused outside code spans (in code Mattermost notifies nobody: checked on a
    real server), then capped."""
    parts = _CODE.split(text)
    return truncate("".join(part if i % 2 else plain(part) for i, part in enumerate(parts)), MAX_MESSAGE_RUNES)


def _is_short(value: str) -> bool:
    return len(value) <= SHORT_FIELD and "\n" not in value


def _value(field: Field) -> str:
    """A field's Markdown value; one with a URL (a Jira ticket) is a link, unless the URL could end it early."""
    if field.url and field.url.startswith(("https://", "http://")) and not _URL_BREAKERS.search(field.url):
        return f"[{markdown(field.value)}]({field.url})"
    return markdown(field.value)


_URL_BREAKERS = re.compile(r"[\s()<>\[\]]")
