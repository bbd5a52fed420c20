"""What readers of a card see from hostile text: no pings, no restyling, no control characters, a cap."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands import messages
from commands.text import LIST_REASON_LIMIT, NAME_LIMIT, REASON_LIMIT, safe_text, truncate

WJ = "\u2060"
BROADCASTS = ("@here", "@channel", "@all", "@everyone")


def assert_harmless(text: str) -> None:
    lowered = text.lower()
    for needle in (*BROADCASTS, "<!", "<@", "<#", "<http", "`", "*", "~", "[", "]", "|", "<", ">"):
        assert needle not in lowered, needle
    assert not any(unicodedata.category(char) in ("Cc", "Cs") for char in text if char != "\n")


def test_the_limits_match_what_cards_show() -> None:
    assert (REASON_LIMIT, LIST_REASON_LIMIT, NAME_LIMIT) == (500, 80, 64)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@channel", f"@{WJ}channel"),
        ("@here please", f"@{WJ}here please"),
        ("ping @all now", f"ping @{WJ}all now"),
        ("@everyone", f"@{WJ}everyone"),
        ("@HERE @Channel", f"@{WJ}HERE @{WJ}Channel"),
        ("@bob", f"@{WJ}bob"),
        ("cc:@bob", f"cc:@{WJ}bob"),
        ("x.@bob", f"x.@{WJ}bob"),
        ("_@bob", f"\u02cd@{WJ}bob"),
        ("x@here", f"x@{WJ}here"),
        ("bob@allianz.com", f"bob@{WJ}allianz.com"),
        ("alice@example.com", "alice@example.com"),
        ("first.last_name@example.com", "first.last_name@example.com"),
        (f"@{WJ}channel", f"@{WJ}channel"),
    ],
)
def test_mentions_are_broken_but_emails_stay_intact(text: str, expected: str) -> None:
    assert safe_text(text, limit=100) == expected


@pytest.mark.parametrize(
    "text",
    [
        "<!channel>",
        "<!here>",
        "<!everyone>",
        "<!all>",
        "<@U123ABC>",
        "<@U123ABC|bob>",
        "<#C0123|general>",
        "<!subteam^S0123|oncall>",
        "<http://evil.example|click me>",
        "<mailto:a@b.c|mail>",
        "&lt;!channel&gt;",
    ],
)
def test_slack_control_sequences_cannot_form(text: str) -> None:
    result = safe_text(text, limit=100)
    assert_harmless(result)


def test_slack_sequences_read_naturally() -> None:
    assert safe_text("<!here> <@U1|bob> <http://x|y>", limit=100) == (
        f"\u2039!here\u203a \u2039@{WJ}U1\u2223bob\u203a \u2039http://x\u2223y\u203a"
    )


def test_entities_are_left_for_the_renderer_to_escape() -> None:
    assert safe_text("R&D &amp; ops", limit=100) == "R&D &amp; ops"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*bold* _italic_ ~strike~", "\u2217bold\u2217 \u02cditalic\u02cd \u223cstrike\u223c"),
        ("run `rm -rf /`", "run \u2035rm -rf /\u2035"),
        ("[click](http://evil)", "\uff3bclick\uff3d(http://evil)"),
        ("![img](http://tracker/x.png)", "!\uff3bimg\uff3d(http://tracker/x.png)"),
        ("a | b | c", "a \u2223 b \u2223 c"),
        ("> quoted", "\u203a quoted"),
        ("# Heading", "\uff03 Heading"),
        ("INC #4411", "INC #4411"),
        ("db_admin and team_a_rw", "db_admin and team_a_rw"),
        ("__init__", "\u02cd\u02cdinit\u02cd\u02cd"),
        ("---", "\u2010\u2010\u2010"),
        ("a - b = c", "a - b = c"),
    ],
)
def test_markup_is_neutralised_but_reads_naturally(text: str, expected: str) -> None:
    assert safe_text(text, limit=100) == expected


def test_multiline_keeps_line_breaks_and_neutralises_each_line() -> None:
    text = "Title\n===\n\n\n\n# big\r\n  indented   code\n- item\n***"
    assert safe_text(text, limit=200, multiline=True) == (
        "Title\n\uff1d\uff1d\uff1d\n\n\uff03 big\nindented code\n- item\n\u2217\u2217\u2217"
    )


def test_single_line_folds_every_kind_of_whitespace() -> None:
    assert safe_text(" a\nb\tc\r\nd\u2028e\u00a0 \u3000f ", limit=100) == "a b c d e f"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\x00b", "ab"),
        ("red\x1b[31malert", "red\uff3b31malert"),
        ("del\x7f c1\x9b", "del c1"),
        ("abc\u202edcba", "abcdcba"),
        ("\u2066isolated\u2069", "isolated"),
        ("marks\u200e\u200f\u061c gone", "marks gone"),
        ("lone \ud800 surrogate", "lone surrogate"),
    ],
)
def test_control_characters_are_removed(text: str, expected: str) -> None:
    assert safe_text(text, limit=100) == expected


def test_the_cap_counts_the_ellipsis() -> None:
    assert safe_text("abcdefghij", limit=10) == "abcdefghij"
    assert safe_text("abcdefghijk", limit=10) == "abcdefghi\u2026"
    assert len(safe_text("x" * 1000, limit=REASON_LIMIT)) == REASON_LIMIT
    assert safe_text("abc", limit=1) == "\u2026"


def test_the_cap_does_not_end_in_a_space() -> None:
    assert safe_text("abcd efgh", limit=6) == "abcd\u2026"


def test_the_cap_counts_inserted_joiners() -> None:
    result = safe_text("@here " * 100, limit=LIST_REASON_LIMIT)
    assert len(result) <= LIST_REASON_LIMIT and result.endswith("\u2026")


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abe\u0301\u0301f", 4, "ab\u2026"),
        ("ok \U0001f44d\U0001f3fd!", 5, "ok\u2026"),
        ("hi \u2764\ufe0f!", 5, "hi\u2026"),
        ("fam \U0001f468\u200d\U0001f469 x", 7, "fam\u2026"),
        ("to @here", 5, "to\u2026"),
    ],
)
def test_the_cap_never_splits_a_character_from_its_modifiers(text: str, limit: int, expected: str) -> None:
    assert truncate(safe_text(text, limit=100), limit) == expected


def test_a_limit_below_one_is_a_bug() -> None:
    with pytest.raises(ValueError):
        safe_text("x", limit=0)


def test_empty_and_blank_text() -> None:
    assert safe_text("", limit=10) == ""
    assert safe_text(" \n\x00\t ", limit=10, multiline=True) == ""


ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=400)
HOSTILE_TEXT = st.lists(
    st.sampled_from(
        ["@", "here", "channel", "all", "everyone", "<", "!", ">", "@here", "<!", "x", " ", "\n", "_", "*",
         "`", "#", "-", "=", "|", "[", "]", "\u2060", "\u200d", "\u0301", "\x00", "\ud800", "é", "."]
    )
).map("".join)


@given(st.one_of(ANY_TEXT, HOSTILE_TEXT), st.integers(min_value=1, max_value=600), st.booleans())
def test_output_is_always_harmless_and_within_the_limit(text: str, limit: int, multiline: bool) -> None:
    result = safe_text(text, limit=limit, multiline=multiline)
    assert len(result) <= limit
    assert_harmless(result)
    if not multiline:
        assert "\n" not in result
    result.encode("utf-8")


@given(st.one_of(ANY_TEXT, HOSTILE_TEXT), st.booleans())
def test_making_text_safe_twice_changes_nothing(text: str, multiline: bool) -> None:
    once = safe_text(text, limit=10_000, multiline=multiline)
    assert safe_text(once, limit=10_000, multiline=multiline) == once


@pytest.mark.parametrize(("tz", "expected"), [
    ("", "2026-12-05 14:05 UTC"),
    ("UTC", "2026-12-05 14:05 UTC"),
    ("Mars/Olympus_Mons", "2026-12-05 14:05 UTC"),  # not a zone this machine knows: UTC alone
    ("Europe/Paris", "2026-12-05 15:05 CET (14:05 UTC)"),
    ("America/New_York", "2026-12-05 09:05 EST (14:05 UTC)"),
    ("Australia/Sydney", "2026-12-06 01:05 AEDT (2026-12-05 14:05 UTC)"),  # the UTC date too when it differs
    ("Asia/Kolkata", "2026-12-05 19:35 IST (14:05 UTC)"),
])
def test_a_moment_is_shown_in_the_persons_zone_with_utc_beside(tz: str, expected: str) -> None:
    assert messages.stamp(datetime(2026, 12, 5, 14, 5, 30, tzinfo=UTC), tz) == expected


def test_summer_time_is_the_zones_own_and_seconds_are_shown_when_asked() -> None:
    july = datetime(2026, 7, 1, 14, 5, 30, tzinfo=UTC)
    assert messages.stamp(july, "Europe/Paris", seconds=True) == "2026-07-01 16:05:30 CEST (14:05:30 UTC)"


@pytest.mark.parametrize(("text", "expected"), [
    ("INC-7 replica lag", "INC-7 replica lag"),  # nothing to interpret: plain
    ("fix *prod* <db> now", "`fix *prod* <db> now`"),  # as typed, in code: no look-alikes to copy
    ("see OPS-1 | db_admin [x]", "`see OPS-1 | db_admin [x]`"),
    ("run `tsh ls` first", "`run \u2035tsh ls\u2035 first`"),  # only a backtick, which would end the span
    ("@here look", "`@here look`"),  # a mention in code notifies nobody, and is copied as typed
    ("one\n1. two\n*three*", "```\none\n1. two\n*three*\n```"),  # several lines: a code block
])
def test_a_reason_is_shown_as_typed_and_in_code_when_it_holds_markup(text: str, expected: str) -> None:
    from commands.text import as_typed

    assert as_typed(text, limit=REASON_LIMIT, multiline=True) == expected


@given(st.text(max_size=700), st.booleans())
def test_as_typed_fits_its_limit_and_never_leaves_a_span_open(text: str, multiline: bool) -> None:
    from commands.text import as_typed

    shown = as_typed(text, limit=LIST_REASON_LIMIT, multiline=multiline)
    assert len(shown) <= LIST_REASON_LIMIT
    assert shown.count("`") in (0, 2, 6)
    assert "\x07" not in shown and "\u202e" not in shown
