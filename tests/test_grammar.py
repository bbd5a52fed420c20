"""What a person typing `/access …` gets back: the command they meant, or a short, precise refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands import grammar, usage
from commands.errors import UsageError
from commands.grammar import (
    SUBCOMMANDS,
    CancelCommand,
    HelpCommand,
    ListCommand,
    RequestCommand,
    ReviewCommand,
    RolesCommand,
    ShowCommand,
    format_duration,
    parse,
    parse_duration,
)

UUID = "3f2a1c9e-8b7d-4c1e-9f00-5a6b7c8d9e0f"
H = timedelta(hours=1)


def request(
    *roles: str, duration: timedelta | None = None, reviewers: tuple[str, ...] = (), reason: str = ""
) -> RequestCommand:
    return RequestCommand(tuple(roles), duration, reviewers, reason)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("request dba", request("dba")),
        # Dashes in a reason that are no option anyone means stay in it.
        ("request dba INC-9 ran rm -rf /tmp/x", request("dba", reason="INC-9 ran rm -rf /tmp/x")),
        ("request dba clock skew of -5 s", request("dba", reason="clock skew of -5 s")),
        (
            "request dba --for 2h INC-4411 replica lag",
            request("dba", duration=2 * H, reason="INC-4411 replica lag"),
        ),
        ("request dba --for=2h", request("dba", duration=2 * H)),
        ("request --for 30m dba", request("dba", duration=timedelta(minutes=30))),
        ("request dba,admin,dba,admin", request("dba", "admin")),
        ("request db-ro,team_a.dev,alice@x:y", request("db-ro", "team_a.dev", "alice@x:y")),
        ("request dba --reviewers bob,alice@x.org", request("dba", reviewers=("bob", "alice@x.org"))),
        ("request dba --reviewers=@bob,bob,carol", request("dba", reviewers=("bob", "carol"))),
        ('request dba --reason "disk full on db-3"', request("dba", reason="disk full on db-3")),
        ("request dba --reason 'say \"hi\"'", request("dba", reason='say "hi"')),
        ('request dba "disk full on db-3"', request("dba", reason="disk full on db-3")),
        ("request dba don't panic", request("dba", reason="don't panic")),
        ('request dba the "prod" db is down', request("dba", reason='the "prod" db is down')),
        ('request dba it says "oops', request("dba", reason='it says "oops')),
        ("request dba C:\\temp and a#comment", request("dba", reason="C:\\temp and a#comment")),
        ("request dba line one\nline two", request("dba", reason="line one\nline two")),
        ("request dba esc\x1b[31mred\x00", request("dba", reason="esc[31mred")),
        ("request dba use the -- separator", request("dba", reason="use the -- separator")),
        ('request dba "use --for wisely"', request("dba", reason="use --for wisely")),
        ("  REQUEST   dba\t--FOR\t1d  ", request("dba", duration=timedelta(days=1))),
        ("Request dba \u2014for 2h \u201con phone\u201d", request("dba", duration=2 * H, reason="on phone")),
        ("request dba\u00a0--for\u30002h", request("dba", duration=2 * H)),
        ("list", ListCommand(None, 1)),
        ("list pending", ListCommand("pending", 1)),
        ("list Mine --page 3", ListCommand("mine", 3)),
        ("list --page=2 all", ListCommand("all", 2)),
        ("list active", ListCommand("active", 1)),
        ("show 7C8D9E0F", ShowCommand("7c8d9e0f")),
        (f"cancel {UUID}", CancelCommand(UUID)),
        ("cancel 7c8d9e0f", CancelCommand("7c8d9e0f")),
        ("roles", RolesCommand()),
        (f"show {UUID.upper()}", ShowCommand(UUID)),
        (f"approve {UUID}", ReviewCommand(UUID, True, "")),
        ("approve 3f2a1c9e looks good", ReviewCommand("3f2a1c9e", True, "looks good")),
        ("approve 3f2a1c9e we can't wait", ReviewCommand("3f2a1c9e", True, "we can't wait")),
        ('deny 3f2a1c9e "not during the freeze"', ReviewCommand("3f2a1c9e", False, "not during the freeze")),
        ("deny 3f2a1c9e --for is just text", ReviewCommand("3f2a1c9e", False, "--for is just text")),
        ("", HelpCommand(None)),
        (" \n\t ", HelpCommand(None)),
        ("help", HelpCommand(None)),
        ("help Approve", HelpCommand("approve")),
    ],
)
def test_parses(text: str, expected: object) -> None:
    assert parse(text) == expected


def refusal(text: str) -> str:
    with pytest.raises(UsageError) as caught:
        parse(text)
    return caught.value.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("request", "Name at least one role to request."),
        ("request --for 2h", "Name at least one role to request."),
        ('request "dba', 'Unbalanced quote in `"dba`.'),
        ("request dba --reviewers 'bob", "Unbalanced quote in `'bob`."),
        ("request dba --reason \"don't", "Unbalanced quote in `\"don't`."),
        ("request dba --for", "`--for` needs a value."),
        ("request dba --for=", "`--for` needs a value."),
        ("request dba --for --reviewers bob", "`--for` needs a value."),
        ("request dba --for 1h --for 2h", "`--for` is given twice."),
        ("request dba --fro 2h", "Unknown option `--fro`. Did you mean `--for`?"),
        ("request dba --zzz", "Unknown option `--zzz`. Choose one of: --for, --reviewers, --reason, --ticket."),
        # Options from other tools are refused wherever they stand, never swallowed into the reason.
        ("request dba -f 2h INC-1", "Unknown option `-f`. Did you mean `--for`?"),
        ("request dba -for 2h INC-1", "Unknown option `-for`. Did you mean `--for`?"),
        ("request dba --duration 2h INC-1", "Unknown option `--duration`. Did you mean `--for`?"),
        ("request dba --duration=2h", "Unknown option `--duration`. Did you mean `--for`?"),
        ("request dba INC-1 disk full -f 2h", "Unknown option `-f`. Did you mean `--for`?"),
        ("request dba INC-1 --duration 2h", "Unknown option `--duration`. Did you mean `--for`?"),
        ("request -f 2h dba", "Unknown option `-f`. Did you mean `--for`?"),
        ("request dba -r bob INC-1", "Unknown option `-r`. Did you mean `--reviewers`?"),
        ("request --roles dba INC-1", "Unknown option `--roles`: roles come first, without an option"),
        ("request dba INC-1 --roles ops", "Unknown option `--roles`: roles come first, without an option"),
        ("request dba fix it --for 2h", "`--for` must come before the reason text."),
        ("request dba fix it --reviewers=bob", "`--reviewers=bob` must come before the reason text."),
        ("request dba --reason x and more", "Give the reason either with `--reason` or as text after"),
        ("request dba, admin", "Empty role name in `dba,`; separate names with commas and no spaces."),
        ("request dba,,admin", "Empty role name in `dba,,admin`"),
        ("request db$a", "`db$a` is not a valid role name; use letters, digits and the characters"),
        ("request dba --reviewers bob,", "Empty reviewer name in `bob,`"),
        ("request dba --reviewers b!b", "`b!b` is not a valid reviewer name"),
        ("request " + ",".join(f"r{i}" for i in range(21)), "Too many roles (21); the limit is 20."),
        ("request r --reviewers " + ",".join(f"u{i}" for i in range(21)), "Too many reviewers (21)"),
        ("request dba --for 15d", "`15d` is too long: a duration can be at most 14d."),
        ("request dba --for 14d1s", "duration can be at most 14d"),
        ("request dba --for 0h", "`0h` is not long enough: a duration must be more than 0."),
        ("request dba --for 2x", "`2x` is not a duration; use a number and a unit (s, m, h, d), largest"),
        ("request dba --for 30m1h", "`30m1h` is not a duration"),
        ("request dba --for 1.5h", "`1.5h` is not a duration"),
        ("request dba " + "x" * 4097, "The reason is too long (4097 bytes; the limit is 4096)."),
        ("request dba " + "é" * 2049, "The reason is too long (4098 bytes; the limit is 4096)."),
        ("list everything", "Unknown list scope `everything`; choose mine, pending, active or all."),
        ("list mine pending", "Unexpected `pending`."),
        ("list --page 0", "`0` is not a page number; use a whole number from 1 to 999999."),
        ("list --page -1", "`-1` is not a page number"),
        ("list --page two", "`two` is not a page number"),
        ("list --page \uff12", "is not a page number"),
        ("list --page 1234567", "`1234567` is not a page number"),
        ("list --for 2h", "Unknown option `--for`."),
        ("show", "Give the ID of the request."),
        ("show 3f2a1", "`3f2a1` is not a request ID: give the full request ID or its short ID, the last 8 characters that lists and replies show."),
        ("show zzzzzzzz", "`zzzzzzzz` is not a request ID: give the full request ID or its short ID, the last 8 characters that lists and replies show."),
        # A prefix is refused, however long: UUIDv7 prefixes of requests made together are the same.
        ("show 3f2a1c", "`3f2a1c` is not a request ID: give the full request ID or its short ID, the last 8 characters that lists and replies show."),
        ("show 3f2a1c9e-8b7d", "`3f2a1c9e-8b7d` is not a request ID: give the full request ID or its short ID, the last 8 characters that lists and replies show."),
        ("show ------", "is not a request ID: give the full request ID or its short ID"),
        (f"show {UUID}0", "is not a request ID: give the full request ID or its short ID"),
        ("show 7c8d9e0f 3f2a1d9e", "Unexpected `3f2a1d9e`."),
        ("cancel 7c8d9e0f now", "Unexpected `now`."),
        ("roles dba", "Unexpected `dba`."),
        ("approve", "Give the ID of the request."),
        ("deny bob looks good", "`bob` is not a request ID"),
        ("help me", "There is no subcommand `me`. Choose one of: request, roles, list, show, approve, deny, cancel, help."),
        ("help lst", "There is no subcommand `lst`. Did you mean `list`?"),
        ("help list show", "Unexpected `show`."),
        ("aprove 3f2a1c", "Unknown subcommand `aprove`. Did you mean `approve`?"),
        ("frob", "Unknown subcommand `frob`. Choose one of: request, roles, list, show, approve, deny, cancel, help."),
        ("x" * 8193, "The command text is too long (8193 bytes; the limit is 8192)."),
        ("request dba \ud800", "The command text holds characters that are not valid Unicode."),
    ],
)
def test_refuses_with_a_precise_message(text: str, message: str) -> None:
    assert message in refusal(text)


@pytest.mark.parametrize(
    ("text", "subcommand"),
    [("request dba --for 99d", "request"), ("list --page 0", "list"), ("show x", "show"), ("deny", "deny")],
)
def test_every_refusal_ends_with_the_usage_line(text: str, subcommand: str) -> None:
    assert refusal(text).endswith(f"\nUsage: `{SUBCOMMANDS[subcommand].usage}`")


def test_an_unknown_subcommand_ends_with_the_general_usage() -> None:
    last_line = refusal("aprove 3f2a1c").splitlines()[-1]
    assert last_line == "Usage: `/access request|roles|list|show|approve|deny|cancel|help …`"


def test_the_offending_token_is_truncated_and_cannot_ping_or_break_out() -> None:
    message = refusal("request dba --for <!channel>@here`" + "9" * 200 + "h")
    first_line = message.splitlines()[0]
    assert first_line.endswith("is not a duration; use a number and a unit (s, m, h, d), largest unit first, "
                               "such as 30m, 2h, 1h30m or 1d.")
    token = first_line.split("`")[1]
    assert len(token) == 32 and token.endswith("…")
    assert "<!" not in first_line and "@here" not in first_line
    assert first_line.count("`") == 2


def test_text_over_8kb_counts_bytes_not_characters() -> None:
    assert "The command text is too long" in refusal("request dba " + "é" * 4100)


def test_a_100kb_input_is_refused_quickly() -> None:
    assert "The command text is too long" in refusal("request " + "\x00\u202e\"'" * 25_000)


def test_every_subcommand_has_usage_and_help() -> None:
    assert list(SUBCOMMANDS) == ["request", "roles", "list", "show", "approve", "deny", "cancel", "help"]
    for name, spec in SUBCOMMANDS.items():
        assert spec.name == name
        assert spec.usage.startswith(f"/access {name}")
        assert spec.summary and spec.details
    request_help = SUBCOMMANDS["request"].details
    assert all(part in request_help for part in ("30m", "1h30m", "14d", "--for=2h", "--reason"))
    assert "6" in SUBCOMMANDS["approve"].details


def test_the_grammar_hands_out_the_one_subcommand_table() -> None:
    assert (grammar.SUBCOMMANDS, grammar.USAGE, grammar.Spec) == (usage.SUBCOMMANDS, usage.USAGE, usage.Spec)
    assert grammar.SUBCOMMANDS is usage.SUBCOMMANDS


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2H", 2 * H),
        ("1h30m", timedelta(minutes=90)),
        ("1d", timedelta(days=1)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("90m", timedelta(minutes=90)),
        ("14d", timedelta(days=14)),
        ("0000000000001h", H),
    ],
)
def test_parse_duration(text: str, duration: timedelta) -> None:
    assert parse_duration(text) == duration


@pytest.mark.parametrize("text", ["", "h", "2", "2 h", "1h1d", "1w", "-1h", "+1h", "\uff12h", "1e3s"])
def test_parse_duration_refuses_malformed_text(text: str) -> None:
    with pytest.raises(UsageError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["14d1s", "337h", "99999999999999999999999d", "9" * 5000 + "s"])
def test_parse_duration_caps_at_14_days(text: str) -> None:
    with pytest.raises(UsageError, match="duration can be at most 14d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(seconds=45), "45s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(days=2), "2d"),
        (timedelta(days=1, seconds=1), "1d1s"),
        (timedelta(0), "0s"),
        (timedelta(minutes=1, microseconds=999), "1m"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


def test_format_duration_refuses_negative_durations() -> None:
    with pytest.raises(ValueError):
        format_duration(timedelta(seconds=-1))


@given(st.integers(min_value=1, max_value=14 * 86400))
def test_durations_round_trip(seconds: int) -> None:
    duration = timedelta(seconds=seconds)
    assert parse_duration(format_duration(duration)) == duration


def outcome(text: str) -> object:
    """A command, or the refusal's message; anything else escapes and fails the test."""
    try:
        return parse(text)
    except UsageError as error:
        return error.message


COMMAND_TYPES = (RequestCommand, ListCommand, ShowCommand, ReviewCommand, HelpCommand)
ANY_CHARACTER = st.characters(exclude_categories=())

WORDS = st.sampled_from(
    [
        "request", "list", "show", "approve", "deny", "help", "dba", "dba,admin", ",", "--for", "--for=",
        "--for=2h", "2h", "15d", "--reviewers", "bob,@alice", "--reason", "--page", "2", "0", "mine",
        UUID, "3f2a1c", '"', "'", "don't", '"a b"', "\u201c", "\u2014for", "=", "--", "@here", "<!channel>",
        "\x00", "\n", "\u202e", "\ud800", "é", "",
    ]
)


@given(st.text(alphabet=ANY_CHARACTER, max_size=300))
def test_any_text_is_a_command_or_a_usage_error(text: str) -> None:
    result = outcome(text)
    assert isinstance(result, (str, *COMMAND_TYPES))


@given(st.lists(WORDS, max_size=12), st.sampled_from([" ", "\t", "  ", "\n", "\u00a0"]))
def test_grammar_shaped_text_is_a_command_or_a_usage_error(words: list[str], separator: str) -> None:
    result = outcome(separator.join(words))
    assert isinstance(result, (str, *COMMAND_TYPES))
    if isinstance(result, str):
        assert "\nUsage: `/access " in result


@given(st.lists(WORDS, min_size=1, max_size=12))
def test_parsed_requests_respect_teleport_limits(words: list[str]) -> None:
    result = outcome("request " + " ".join(words))
    if isinstance(result, RequestCommand):
        assert 1 <= len(result.roles) <= 20 and len(set(result.roles)) == len(result.roles)
        assert result.duration is None or timedelta(0) < result.duration <= timedelta(days=14)
        assert len(result.reason.encode()) <= 4096
        assert not any(ord(char) < 32 and char not in "\n\t" for char in result.reason)


@pytest.mark.parametrize("text", ["request dba --for 1h 30m lag", "request dba --for=1h 30m"])
def test_a_duration_split_by_a_space_is_refused_not_half_taken(text: str) -> None:
    expected = "has a space in it: write the duration as one word, e.g. `--for 1h30m`"
    with pytest.raises(UsageError, match=expected):
        parse(text)


def test_a_reason_that_merely_starts_with_a_number_is_kept() -> None:
    command = parse("request dba --for 1h 30 minutes of replica lag")
    assert command == RequestCommand(("dba",), timedelta(hours=1), (), "30 minutes of replica lag")
