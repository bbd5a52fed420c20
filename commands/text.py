"""Untrusted text made safe for every chat platform once, before any renderer sees it.

`safe_text` is the single gate for user-supplied text (reasons, names, roles, echoed tokens). It
returns plain text that pings nobody and cannot restyle or break a card on Slack mrkdwn or on
Mattermost Markdown, and that stays correct after each renderer's own escaping (Slack `&<>` entities,
Mattermost backslashes), because it never escapes anything itself: it only removes and substitutes.

The strategy, in order:

1. Remove control characters (C0, DEL, C1), lone surrogates (they cannot be encoded as UTF-8) and
   the bidirectional controls (`BIDI_CONTROLS`: they reorder what a reader sees).
2. Collapse whitespace: single-line fields become one line; `multiline=True` keeps line breaks but
   at most one empty line in a row.
3. Break mentions by putting U+2060 WORD JOINER after `@`: always before `here`, `channel`, `all`
   and `everyone` (any case), and before anything else unless the `@` follows a letter or digit, so
   `alice@example.com` stays copyable while `@bob`, `x.@bob` and `(@bob` ping nobody. Mattermost
   splits words at U+2060 and Slack no longer sees `@here`, so neither platform notifies.
4. Replace markup characters with lookalikes that no platform parses: `<` `>` become `‹` `›`, so no
   Slack sequence (`<!channel>`, `<@U1>`, `<#C1>`, `<!subteam^S1>`, `<http://x|y>`), HTML, autolink
   or quote can form, on Slack or through Mattermost's Slack-compatible rewriting; `` ` `` `*` `~`
   `|` `[` `]` become `‵` `∗` `∼` `∣` `［` `］`; `_` becomes `ˍ` unless it sits inside a word
   (`db_admin` stays copyable, and intraword underscores style nothing on either platform); `#` at
   the start of a line becomes `＃`, and a line of only `-`, `=` and spaces (a Markdown underline
   heading or rule) uses `‐` and `＝`.
5. Cap the length with `…`, counted in the limit, without leaving a combining mark, a variation
   selector or a joiner without its base.

Reasons are different: people copy them (a ticket, a command, a path), so look-alikes there would be
wrong. `as_typed` shows a reason as it was typed: plain when nothing in it could be markup or a mention,
otherwise in a code span (a code block for several lines), where neither platform interprets or notifies
anything; only a backtick becomes `‵`. Each renderer keeps the spans and escapes what its platform
needs inside them (Slack's `&<>`).

Length limits for the fields cards show:

- `REASON_LIMIT` (500): a reason on a card, as Teleport's own access plugins cap it.
- `LIST_REASON_LIMIT` (80): a reason in one line of `/access list`.
- `NAME_LIMIT` (64): a user, role or reviewer name.
"""

from __future__ import annotations

import re
import unicodedata

REASON_LIMIT = 500
LIST_REASON_LIMIT = 80
NAME_LIMIT = 64

ELLIPSIS = "\u2026"
WORD_JOINER = "\u2060"

# The bidirectional formatting characters: embeddings and overrides (U+202A-U+202E), isolates
# (U+2066-U+2069), the left-to-right, right-to-left and Arabic letter marks (U+200E, U+200F, U+061C).
# In a reason they make Teleport's Web UI, `tsh` and the audit log show text in another order than it was
# written ("INC-7 \u202egnp.exe" reads "INC-7 exe.png"), so they are removed on the way in as well as out.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"

# Whitespace controls (\t \n \v \f \r \x1c-\x1f \x85) are left for the whitespace step to map.
_UNSAFE = re.compile(f"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff{BIDI_CONTROLS}]")
# What text keeps on its way to Teleport: line breaks and tabs, no other control, no bidirectional control.
_INPUT_CONTROLS = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")

_LOOKALIKES = str.maketrans(
    {
        "<": "\u2039",  # ‹ single left-pointing angle quotation mark
        ">": "\u203a",  # › single right-pointing angle quotation mark
        "`": "\u2035",  # ‵ reversed prime
        "*": "\u2217",  # ∗ asterisk operator
        "~": "\u223c",  # ∼ tilde operator
        "|": "\u2223",  # ∣ divides
        "[": "\uff3b",  # ［ fullwidth left square bracket
        "]": "\uff3d",  # ］ fullwidth right square bracket
    }
)
_UNDERLINE_LOOKALIKES = str.maketrans({"-": "\u2010", "=": "\uff1d"})

# `[^\W_]` is a letter or digit; an underscore with one on each side cannot open or close emphasis.
_STYLING_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
_HEADING = re.compile(r"^#", re.MULTILINE)
_UNDERLINE = re.compile(r"^[-= ]+$", re.MULTILINE)
_MENTION_AT = re.compile(
    rf"@(?!{WORD_JOINER})(?:(?<![^\W_]@)|(?=(?:here|channel|all|everyone)))", re.IGNORECASE
)
_BLANK_LINES = re.compile(r"\n{3,}")
# What either platform could read as markup in text as typed (`as_typed` then shows it as code).
_MARKUP = re.compile(r"[<>`*~|\[\]_#&\\@]")
_NUMBERED = re.compile(r"^\s*[0-9]+\.", re.MULTILINE)


def safe_text(text: str, *, limit: int, multiline: bool = False) -> str:
    """`text` with controls removed, whitespace collapsed, markup and mentions neutralised, capped."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    text = _UNSAFE.sub("", text)
    text = _collapse_lines(text) if multiline else " ".join(text.split())
    # Mentions first, so the rule sees the characters as typed (`_` becomes a letter lookalike below).
    text = _MENTION_AT.sub("@" + WORD_JOINER, text)
    text = _neutralise_markup(text)
    return truncate(text, limit)


def as_typed(text: str, *, limit: int, multiline: bool = False) -> str:
    """User text that people read and copy (a reason), shown as it was typed: plain when nothing in it could
    be read as markup or a mention; otherwise inside a code span (a code block when it has several lines),
    where `*`, `<`, `_`, `@here` and the rest style and notify nothing on Slack or Mattermost (checked on a
    real Mattermost: a mention in code notifies nobody) and are shown, and copied, as typed. Controls are
    removed, whitespace collapsed and the length capped as `safe_text` does; only a backtick, which would
    end the span, becomes `‵`. Renderers escape what their platform needs around and inside the span
    (Slack's `&<>` entities; Mattermost leaves code as it is)."""
    if limit < 3:
        raise ValueError(f"limit must be at least 3, not {limit}")
    text = _UNSAFE.sub("", text)
    text = _collapse_lines(text) if multiline else " ".join(text.split())
    if not _MARKUP.search(text) and not _UNDERLINE.search(text) and not _NUMBERED.search(text):
        return truncate(text, limit)
    text = text.replace("`", "\u2035")
    if "\n" in text:
        return "```\n" + truncate(text, limit - 8) + "\n```"
    return "`" + truncate(text, limit - 2) + "`"


def strip_controls(text: str) -> str:
    """`text` as it may be stored (a reason): control characters removed but line breaks and tabs, and
    every bidirectional control removed. Nothing else is changed: Teleport keeps what people wrote."""
    return _INPUT_CONTROLS.sub("", text)


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in `…` when anything was cut."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if len(text) <= limit:
        return text
    cut = limit - len(ELLIPSIS)
    # Back off so a base character is never separated from what modifies or joins it.
    while cut > 0 and (_attaches_to_previous(text[cut]) or text[cut - 1] == "\u200d"):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def _collapse_lines(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def _neutralise_markup(text: str) -> str:
    text = text.translate(_LOOKALIKES)
    text = _STYLING_UNDERSCORE.sub("\u02cd", text)  # ˍ modifier letter low macron
    text = _HEADING.sub("\uff03", text)  # ＃ fullwidth number sign
    return _UNDERLINE.sub(lambda match: match.group().translate(_UNDERLINE_LOOKALIKES), text)


def _attaches_to_previous(char: str) -> bool:
    """Whether `char` belongs to the character before it (so a cut must not fall just before it)."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char in ("\u200d", WORD_JOINER)
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (emoji vs text presentation)
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
    )


def quoted(token: str) -> str:
    """`token` quoted for an error message: short, one line, and unable to ping or restyle anything."""
    shown = safe_text(token, limit=32)
    return f"`{shown}`" if shown else '""'
