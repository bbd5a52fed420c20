"""The `where` predicate language: what it accepts, what it refuses, and that it never fails any other way."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import where
from commands.model import AccessRequest, RequestState, Review, User

CONTEXT = where.threshold_filter_context(
    User("bob", ("reviewer", "dba-admin"), {"team": ("dba", "ops"), "level": ("senior",)}),
    Review("bob", RequestState.APPROVED, reason="looks fine"),
    AccessRequest(
        "id-1",
        "alice",
        ("dba",),
        RequestState.PENDING,
        reason='INC-42 "replica" lag',
        system_annotations={"pagerduty_services": ("db",)},
    ),
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('contains(reviewer.roles, "reviewer")', True),
        ('contains(reviewer.traits["team"], "dba")', True),
        ('contains(reviewer.traits.team, "ops")', True),
        ('contains(reviewer.traits["missing"], "x")', False),
        ('contains(request.roles, "dba")', True),
        ('equals(request.reason, "INC-42 \\"replica\\" lag")', True),
        ('equals(request.reason, `INC-42 "replica" lag`)', True),
        ('equals(review.reason, "looks fine")', True),
        ('contains(request.system_annotations["pagerduty_services"], "db")', True),
        ('equals(request.roles, reviewer.traits["nope"])', False),
        ('equals(reviewer.traits.team, reviewer.traits["team"])', True),
        ('!contains(request.roles, "root")', True),
        ('!!contains(request.roles, "root")', False),
        ('contains(request.roles, "dba") && equals(review.reason, "no")', False),
        ('equals(review.reason, "no") || contains(request.roles, "dba")', True),
        ('equals("a", "b") || equals("a", "b") && equals("a", "a")', False),
        ('(equals("a", "b") || equals("a", "a")) && equals("c", "c")', True),
        ('equals("\\x41\\u0042\\U00000043\\103", "ABCC")', True),
        ('  contains( reviewer.roles ,\n"reviewer" )  ', True),
        # Teleport's parser takes a string where a list is expected: a list of that one string.
        ('contains(request.reason, "x")', False),
        ('contains(review.reason, "looks fine")', True),
        ('request.reason == "x"', False),
        ('review.reason == "looks fine" && request.reason != "x"', True),
        ('contains(reviewer.traits[review.reason], "x")', False),
        ('regexp.match(reviewer.roles, "dba-*")', True),
        ('regexp.match(reviewer.roles, "*-admin")', True),
        ('regexp.match(reviewer.roles, "dba")', False),
        ('regexp.match(request.reason, "^INC-[0-9]+ .*$")', True),
        ('regexp.match(request.reason, "INC-4")', False),
        # && and || stop once decided, as in Teleport: what is not evaluated cannot fail.
        ('contains(request.roles, "root") && equals(request.roles, "dba")', False),
        ('contains(request.roles, "dba") || regexp.match(request.roles, "^(dba$")', True),
    ],
)
def test_grammar(expr: str, expected: bool) -> None:
    assert where.evaluate(expr, CONTEXT) is expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty"),
        ("request.reason", "yields a string"),
        ("reviewer.roles", "yields a list"),
        ("reviewer.traits", "yields a map"),
        ('"x"', "yields a string"),
        ("user.name", "unknown identifier 'user'"),
        ("reviewer.name", "unknown identifier 'reviewer.name'"),
        ("reviewer", "expected '.'"),
        ("length(request.roles)", "unknown function 'length'"),
        ("contains(request.roles)", "takes 2 arguments, got 1"),
        ('equals("a", "b", "c")', "takes 2 arguments, got 3"),
        ('contains(request.roles, request.roles)', "needs a list and a string"),
        ('regexp.match(request.roles, reviewer.roles)', "needs a list and a string"),
        ('regexp.match(request.roles, "^(dba$")', "cannot use the regular expression"),
        ('request.roles == "dba"', "compares strings, got a list"),
        ('contains(request.roles, "x") == "x"', "compares strings, got a boolean"),
        ('reviewer.roles.contains("x")', "unknown function 'reviewer.roles.contains'"),
        ('equals(request.roles, "dba")', "compares two strings or two lists"),
        ("!request.reason", "'!' at position 0 needs booleans"),
        ('request.reason && equals("a", "a")', "'&&' at position 15 needs booleans"),
        ('equals("a", "a") extra', "unexpected 'extra'"),
        ('equals("a", "a"))', "unexpected ')'"),
        ('(equals("a", "a")', "expected ')'"),
        ('equals("a", "a") & equals("a", "a")', "unexpected character '&'"),
        ('equals(request.reason, "unterminated)', "unterminated string"),
        ('equals("\\q", "q")', "unknown escape"),
        ('equals("\\uD800", "x")', "not a valid character"),
        ('request.reason["k"]', "cannot be indexed"),
        ('contains(reviewer.traits[team], "x")', "unknown identifier 'team'"),
        ('contains(reviewer.traits[request.roles], "x")', "expected a string key"),
        ("!" * 40 + 'equals("a", "a")', "nests deeper"),
        ("(" * 40 + 'equals("a", "a")' + ")" * 40, "nests deeper"),
        ('equals("' + "x" * 2000 + '", "x")', "longer than 2000"),
    ],
)
def test_refusals_say_why(expr: str, message: str) -> None:
    with pytest.raises(where.WhereError) as caught:
        where.evaluate(expr, CONTEXT)
    assert message in str(caught.value)


def test_review_fields_are_not_in_the_permission_context() -> None:
    context = where.review_permission_context(
        User("bob"), AccessRequest("id", "alice", ("dba",), RequestState.PENDING)
    )
    with pytest.raises(where.WhereError, match="unknown identifier 'review'"):
        where.evaluate('equals(review.reason, "x")', context)


def test_unquote() -> None:
    assert where.unquote('"a\\tb"') == "a\tb"
    assert where.unquote("`a\\tb`") == "a\\tb"
    with pytest.raises(where.WhereError):
        where.unquote('"a" "b"')


def _outcome(expr: str) -> object:
    try:
        return where.evaluate(expr, CONTEXT)
    except where.WhereError:
        return where.WhereError


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_any_text_is_a_boolean_or_a_where_error(expr: str) -> None:
    assert _outcome(expr) in (True, False, where.WhereError)


PIECES = st.sampled_from(
    [
        "contains", "equals", "(", ")", ",", "!", "&&", "||", ".", "[", "]", " ", "reviewer", "request",
        "review", "roles", "traits", "reason", "system_annotations", '"dba"', '"team"', "`x`", '"\\', "team",
        '"', "\\u00", "==", "x",
    ]
)  # fmt: skip


@settings(max_examples=1000)
@given(st.lists(PIECES, max_size=40).map("".join))
def test_grammar_shaped_noise_is_a_boolean_or_a_where_error(expr: str) -> None:
    assert _outcome(expr) in (True, False, where.WhereError)


@given(
    st.recursive(
        st.sampled_from(['contains(reviewer.roles, "reviewer")', 'equals(request.reason, "x")']),
        lambda inner: st.one_of(
            inner.map(lambda e: f"!{e}"),
            inner.map(lambda e: f"({e})"),
            st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(" ".join),
        ),
        max_leaves=12,
    )
)
def test_well_formed_expressions_always_evaluate(expr: str) -> None:
    try:
        assert isinstance(where.evaluate(expr, CONTEXT), bool)
    except where.WhereError as err:
        assert "nests deeper" in str(err)


@given(st.text(max_size=50), st.lists(st.text(max_size=10), max_size=5))
def test_contains_agrees_with_python(needle: str, haystack: list[str]) -> None:
    context = {"request": {"roles": haystack, "reason": needle, "system_annotations": {}}}
    assert where.evaluate("contains(request.roles, request.reason)", context) is (needle in haystack)


def test_a_malformed_context_is_a_where_error_too() -> None:
    with pytest.raises(where.WhereError, match="neither a string"):
        where.evaluate('contains(request.roles, "x")', {"request": {"roles": [1, 2]}})


def test_patterns_are_read_as_go_reads_them() -> None:
    context = {"request": {"roles": ("dba",), "reason": "a very\ngood reason", "system_annotations": {}}}
    # A glob's * is Go's `.*`, which stops at a newline.
    assert where.evaluate('regexp.match(request.reason, "*good*")', context) is False
    assert where.evaluate('regexp.match(request.roles, "d*")', context) is True
    # Python's $ also matches before a final newline, Go's does not: the bot cannot decide, so it says so.
    with pytest.raises(where.Undecidable):
        where.evaluate('regexp.match(request.reason, "^a.*$")', context)
    with pytest.raises(where.Undecidable, match="could backtrack"):
        where.evaluate('regexp.match(request.roles, "^(a+)+$")', context)


def test_limits_of_the_bot_are_undecidable_not_wrong() -> None:
    with pytest.raises(where.Undecidable):
        where.evaluate('equals("' + "x" * 2000 + '", "x")', CONTEXT)
    with pytest.raises(where.Undecidable):
        where.evaluate("!" * 40 + 'equals("a", "a")', CONTEXT)
    with pytest.raises(where.WhereError) as caught:
        where.evaluate("fakefunc(reviewer.roles)", CONTEXT)
    assert not isinstance(caught.value, where.Undecidable)
