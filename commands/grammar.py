"""The `/access` grammar: the text after the slash command in, one typed command or a `UsageError` out.

Words are read with `shlex` in POSIX mode (quotes group words; no comments, and no backslash escapes
because chat text is not a shell and reasons hold paths and regexes). Free text is taken as typed:
the reason after the options keeps its apostrophes, quotes and line breaks, and loses its quotes
only when it is one quoted string. Options must come before the reason, so that `--for 2h` typed
after it is refused instead of silently becoming part of the reason.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Union

from commands.durations import MAX_DURATION as MAX_DURATION
from commands.durations import format_duration as format_duration
from commands.durations import parse_duration
from commands.errors import UsageError
from commands.text import quoted as _show
from commands.text import strip_controls
from commands.usage import SUBCOMMANDS, USAGE
from commands.usage import Spec as Spec  # re-exported: callers take the whole grammar from here

MAX_TEXT_BYTES = 8192
MAX_REASON_BYTES = 4096  # Teleport refuses longer request and review reasons.
MAX_NAMES = 20
LIST_SCOPES = ("mine", "pending", "active", "all")


@dataclass(frozen=True)
class RequestCommand:
    roles: tuple[str, ...]
    duration: timedelta | None
    reviewers: tuple[str, ...]
    reason: str
    # `--ticket KEY`: the issue (a Jira key, upper-cased) the request is for; "" when not given.
    ticket: str = ""


@dataclass(frozen=True)
class ListCommand:
    scope: str | None  # None: the list command chooses its default scope
    page: int


@dataclass(frozen=True)
class ShowCommand:
    request_id: str


@dataclass(frozen=True)
class ReviewCommand:
    request_id: str
    approve: bool
    reason: str


@dataclass(frozen=True)
class CancelCommand:
    request_id: str


@dataclass(frozen=True)
class RolesCommand:
    pass


@dataclass(frozen=True)
class HelpCommand:
    topic: str | None


Command = Union[RequestCommand, ListCommand, ShowCommand, ReviewCommand, CancelCommand, RolesCommand, HelpCommand]

# What str.split() splits on (no whitespace character lies above U+3000), so shlex agrees with it.
_WHITESPACE = "".join(char for char in map(chr, range(0x3001)) if char.isspace())
# Phones and macOS turn typed quotes into curly ones; the lengths match, so positions still line up.
_CURLY_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"'})
# Phones and macOS also turn `--` into a dash, so `—for` means `--for`; `-f` is an option too (a wrong
# one), never the start of a reason.
_OPTION = re.compile(r"(?:--|-|[\u2013\u2014])[A-Za-z]")
# Options people reach for from other tools, and the one they mean.
_ALIASES = {
    "-f": "--for", "-for": "--for", "--duration": "--for", "-d": "--for", "--time": "--for", "--ttl": "--for",
    "-r": "--reviewers", "--reviewer": "--reviewers", "-reviewers": "--reviewers",
    "-m": "--reason", "--message": "--reason", "-reason": "--reason",
    "-t": "--ticket", "--issue": "--ticket", "--jira": "--ticket", "-ticket": "--ticket",
}
_ROLE_OPTIONS = ("--roles", "--role", "-roles", "-role")
_NAME = re.compile(r"[A-Za-z0-9_.@:-]+")
# The full ID, or its short ID: the last 8 characters, random in Teleport's time-ordered UUIDv7 IDs. Other
# fragments are refused: prefixes of requests made in the same minute are the same.
_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{8}")
_UNREADABLE = re.compile("[\ud800-\udfff]")


def parse(text: str) -> Command:
    """The command `text` (everything after `/access`) asks for; raises `UsageError`."""
    word, rest = (text.split(maxsplit=1) + ["", ""])[:2]
    name = word.lower()
    spec = SUBCOMMANDS.get(name)
    usage = spec.usage if spec else USAGE
    try:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > MAX_TEXT_BYTES:
            raise UsageError(f"The command text is too long ({size} bytes; the limit is {MAX_TEXT_BYTES}).")
        if _UNREADABLE.search(text):
            raise UsageError("The command text holds characters that are not valid Unicode.")
        if not word:
            return HelpCommand(None)
        if spec is None:
            raise UsageError(f"Unknown subcommand {_show(word)}.{_suggest(name, SUBCOMMANDS)}")
        return _PARSERS[name](_Words(rest), name)
    except UsageError as error:
        # Every refusal ends with the usage line of the subcommand it was about.
        raise UsageError(f"{error.message}\nUsage: `{usage}`") from None


class _Words:
    """The words after the subcommand, read one at a time so the raw rest stays available."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lexer = shlex.shlex(text.translate(_CURLY_QUOTES), posix=True)
        self._lexer.whitespace_split = True
        self._lexer.whitespace = _WHITESPACE
        self._lexer.commenters = ""
        self._lexer.escape = ""

    def rest(self) -> str:
        """The text not read yet, as typed, without leading whitespace."""
        return self._text[self._lexer.instream.tell() :].lstrip(_WHITESPACE)

    def next(self) -> str | None:
        start = self.rest()
        try:
            return self._lexer.get_token()
        except ValueError:
            raise UsageError(f"Unbalanced quote in {_show(start)}.") from None

    def option(self, allowed: tuple[str, ...], seen: dict[str, str]) -> tuple[str, str]:
        """Reads `--name value` or `--name=value`; the name must be allowed and not seen before."""
        token = self.next() or ""
        if token.startswith(("\u2013", "\u2014")):
            token = "--" + token[1:]  # a dash typed as `—` or `–`
        name, equals, value = token.partition("=")
        name = name.lower()
        if name not in allowed:
            raise UsageError(_unknown_option(name, allowed))
        if name in seen:
            raise UsageError(f"{_show(name)} is given twice.")
        if not equals:
            value = "" if _OPTION.match(self.rest()) else (self.next() or "")
        if not value:
            raise UsageError(f"{_show(name)} needs a value.")
        return name, value


_REQUEST_OPTIONS = ("--for", "--reviewers", "--reason", "--ticket")
_TICKET = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]{0,9}")


def _parse_request(words: _Words, _name: str) -> RequestCommand:
    options: dict[str, str] = {}
    roles: tuple[str, ...] = ()
    free_text = ""
    for rest in _positionals(words, _REQUEST_OPTIONS, options):
        if roles:
            free_text = _free_text(rest, _REQUEST_OPTIONS)
            break
        roles = _names(words.next() or "", "role")
    if not roles:
        raise UsageError("Name at least one role to request.")
    if "--reason" in options and free_text:
        raise UsageError("Give the reason either with `--reason` or as text after the options, not both.")
    duration = parse_duration(options["--for"]) if "--for" in options else None
    if duration is not None and free_text:
        _refuse_split_duration(options["--for"], free_text.split(maxsplit=1)[0])
    reviewers = _names(options["--reviewers"], "reviewer") if "--reviewers" in options else ()
    ticket = options.get("--ticket", "")
    if ticket and not _TICKET.fullmatch(ticket):
        raise UsageError(f"{_show(ticket)} is not an issue key; write it as the tracker shows it, e.g. OPS-123.")
    return RequestCommand(roles, duration, reviewers, _reason(options.get("--reason", free_text)), ticket.upper())


def _refuse_split_duration(given: str, next_word: str) -> None:
    """`--for 1h 30m`: the shell-like split would make `30m` the start of the reason, silently."""
    try:
        parse_duration(next_word)
    except UsageError:
        return
    raise UsageError(
        f"{_show(given + ' ' + next_word)} has a space in it: write the duration as one word, "
        f"e.g. `--for {given}{next_word}`."
    )


def _parse_list(words: _Words, _name: str) -> ListCommand:
    options: dict[str, str] = {}
    scope: str | None = None
    for rest in _positionals(words, ("--page",), options):
        if scope is not None:
            raise UsageError(f"Unexpected {_show(rest)}.")
        word = words.next() or ""
        scope = word.lower()
        if scope not in LIST_SCOPES:
            raise UsageError(f"Unknown list scope {_show(word)}; choose mine, pending, active or all.")
    page = options.get("--page", "1")
    if not re.fullmatch(r"[0-9]{1,6}", page) or int(page) < 1:
        raise UsageError(f"{_show(page)} is not a page number; use a whole number from 1 to 999999.")
    return ListCommand(scope, int(page))


def _parse_show(words: _Words, _name: str) -> ShowCommand:
    request_id = _request_id(words)
    _expect_end(words)
    return ShowCommand(request_id)


def _parse_review(words: _Words, name: str) -> ReviewCommand:
    request_id = _request_id(words)
    return ReviewCommand(request_id, name == "approve", _reason(_free_text(words.rest(), ())))


def _parse_cancel(words: _Words, _name: str) -> CancelCommand:
    request_id = _request_id(words)
    _expect_end(words)
    return CancelCommand(request_id)


def _parse_roles(words: _Words, _name: str) -> RolesCommand:
    _expect_end(words)
    return RolesCommand()


def _parse_help(words: _Words, _name: str) -> HelpCommand:
    topic = words.next()
    _expect_end(words)
    if topic is None:
        return HelpCommand(None)
    if topic.lower() not in SUBCOMMANDS:
        raise UsageError(f"There is no subcommand {_show(topic)}.{_suggest(topic.lower(), SUBCOMMANDS)}")
    return HelpCommand(topic.lower())


_PARSERS: dict[str, Callable[[_Words, str], Command]] = {
    "request": _parse_request, "list": _parse_list, "show": _parse_show,
    "approve": _parse_review, "deny": _parse_review, "cancel": _parse_cancel, "roles": _parse_roles,
    "help": _parse_help,
}


def _names(text: str, kind: str) -> tuple[str, ...]:
    """Comma-separated role or user names: checked, de-duplicated in order, at most `MAX_NAMES`."""
    names: dict[str, None] = {}
    for name in text.split(","):
        if kind == "reviewer" and name.startswith("@"):
            name = name[1:]  # people write reviewers as chat mentions
        if not name:
            raise UsageError(f"Empty {kind} name in {_show(text)}; separate names with commas and no spaces.")
        if not _NAME.fullmatch(name):
            raise UsageError(
                f"{_show(name)} is not a valid {kind} name; use letters, digits and the characters - _ . @ :"
            )
        names[name] = None
    if len(names) > MAX_NAMES:
        raise UsageError(f"Too many {kind}s ({len(names)}); the limit is {MAX_NAMES}.")
    return tuple(names)


def _positionals(words: _Words, allowed: tuple[str, ...], options: dict[str, str]) -> Iterator[str]:
    """Reads options into `options` and yields the unread text wherever a non-option word starts."""
    while rest := words.rest():
        if _OPTION.match(rest):
            name, value = words.option(allowed, options)
            options[name] = value
        else:
            yield rest


def _expect_end(words: _Words) -> None:
    if rest := words.rest():
        raise UsageError(f"Unexpected {_show(rest)}.")


def _request_id(words: _Words) -> str:
    word = words.next()
    if word is None:
        raise UsageError("Give the ID of the request.")
    request_id = word.lower()
    if not _REQUEST_ID.fullmatch(request_id):
        raise UsageError(
            f"{_show(word)} is not a request ID: "
            "give the full request ID or its short ID, the last 8 characters that lists and replies show."
        )
    return request_id


def _free_text(text: str, options: tuple[str, ...]) -> str:
    """Text as typed, unquoted only when it is one quoted string; refuses options written after it."""
    if text.startswith(('"', "'", "\u201c")):
        lexer = _Words(text)
        try:
            first, second = lexer.next(), lexer.next()
        except UsageError:
            first, second = None, None
        if first is not None and second is None:
            return first
    for word in text.split():
        name = ("--" + word[1:] if _OPTION.match(word) and word[0] != "-" else word).partition("=")[0].lower()
        if name in options:
            raise UsageError(f"{_show(word)} must come before the reason text.")
        if options and (name in _ALIASES or name in _ROLE_OPTIONS):
            raise UsageError(_unknown_option(name, options))
    return text.strip(_WHITESPACE)


def _unknown_option(name: str, allowed: tuple[str, ...]) -> str:
    if _ALIASES.get(name) in allowed:
        return f"Unknown option {_show(name)}. Did you mean `{_ALIASES[name]}`?"
    if name in _ROLE_OPTIONS and "--for" in allowed:
        return (f"Unknown option {_show(name)}: roles come first, without an option, separated by commas "
                "(`/access request dba,ops --for 2h …`).")
    return f"Unknown option {_show(name)}.{_suggest(name, allowed)}"


def _reason(text: str) -> str:
    """The reason as Teleport will store it: no control characters but line breaks and tabs, and no
    bidirectional controls (`commands.text.BIDI_CONTROLS`)."""
    reason = text.replace("\r\n", "\n").replace("\r", "\n")
    reason = strip_controls(reason).strip(_WHITESPACE)
    size = len(reason.encode("utf-8"))
    if size > MAX_REASON_BYTES:
        raise UsageError(f"The reason is too long ({size} bytes; the limit is {MAX_REASON_BYTES}).")
    return reason




def _suggest(word: str, choices: Iterable[str]) -> str:
    names = list(choices)
    close = difflib.get_close_matches(word[:40], names, n=1)
    if close:
        return f" Did you mean `{close[0]}`?"
    return " Choose one of: " + ", ".join(names) + "."
