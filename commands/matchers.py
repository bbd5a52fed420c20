"""Teleport's role matchers and claims_to_roles, evaluated exactly as Go would or refused.

Read from gravitational/teleport: `lib/utils/parse` (role matchers: literal, glob, `^regex$`,
`{{regexp.match|not_match("re")}}`), `lib/services/traits.go` (claims_to_roles) and `lib/utils/replace.go`
(globs, `$1` expansion). Go's RE2 and Python's `re` read some patterns differently and only Python
backtracks, so whatever could differ or run away is refused rather than guessed.

Errors: `PolicyError` (a role the bot cannot evaluate faithfully; `commands.policy` raises it too)
  └── `MatcherError` (a matcher Teleport itself would reject)
        └── `UnsupportedMatcher` (valid in Teleport, but beyond what the bot evaluates)
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from commands import where
from commands.model import ClaimMapping

MAX_PATTERN = 512  # characters in one matcher or claim value
MAX_VALUE = 256  # characters in a role name or trait value tested against a regex
MAX_BACKTRACK = MAX_VALUE**3  # worst-case choices one regex may explore (see _check_re2_subset)


class PolicyError(Exception):
    """A role the bot cannot evaluate faithfully; every caller turns this into a refusal."""


class MatcherError(PolicyError):
    """A role matcher that Teleport itself would reject."""


class UnsupportedMatcher(MatcherError):
    """A matcher beyond what the bot evaluates: interpolation, regex features Python reads differently."""


@dataclass(frozen=True)
class Matcher:
    expr: str
    test: Callable[[str], bool] = field(repr=False, compare=False)

    def matches(self, value: str) -> bool:
        if len(value) > MAX_VALUE or "\n" in value:
            raise MatcherError(f"{value[:40]!r} is too long or spans lines to be matched safely")
        return self.test(value)


_TEMPLATE = re.compile(r"([^{}]*)\{\{(\s*[^{}]*\s*)\}\}([^{}]*)")
_REGEXP_CALL = re.compile(r'\s*regexp\.(match|not_match)\(\s*("(?:[^"\\\n]|\\.)*"|`[^`]*`)\s*\)\s*')
_NOT_RE2 = ("(?=", "(?!", "(?<=", "(?<!", "(?P=", "(?>", "(?#", "(?(")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_EXPANSION = re.compile(r"\$[^$]+")
_REFERENCE = re.compile(r"\{(\w+)\}|(\w+)")


def literal_matcher(value: str) -> Matcher:
    return Matcher(value, value.__eq__)


@functools.lru_cache(
    maxsize=1024
)  # matchers are immutable; listings check many requests against one role set
def compile_matcher(expr: str) -> Matcher:
    """Teleport's `parse.NewMatcher`: literal, glob, `^regex$`, `{{regexp.match|not_match("re")}}`."""
    if len(expr) > MAX_PATTERN:
        raise UnsupportedMatcher(f"the matcher is longer than {MAX_PATTERN} characters")
    template = _TEMPLATE.fullmatch(expr)
    if template is None:
        if "{{" in expr or "}}" in expr:
            raise MatcherError(f"{expr!r} uses template brackets but is not of the form {{{{expression}}}}")
        if expr.startswith("^") and expr.endswith("$"):
            regex = _compile_regex(expr)
            return Matcher(expr, lambda value: regex.search(value) is not None)
        return Matcher(expr, lambda value: glob_match(expr, value))
    prefix, inner, suffix = template.groups()
    call = _REGEXP_CALL.fullmatch(inner)
    if call is None:
        # Teleport's matcher parser knows no variables: interpolation fails there too.
        raise MatcherError(
            f"{expr!r}: role matchers support only regexp.match and regexp.not_match, not interpolation"
        )
    try:
        pattern = where.unquote(call.group(2))
    except where.WhereError as err:
        raise MatcherError(f"{expr!r}: {err}") from None
    regex, negate = _compile_regex(pattern), call.group(1) == "not_match"

    def test(value: str) -> bool:
        # Go's MatchExpression: both affixes must be present, then each is trimmed once.
        if not value.startswith(prefix) or not value.endswith(suffix):
            return False
        rest = value[len(prefix) :]
        rest = rest[: len(rest) - len(suffix)] if suffix and rest.endswith(suffix) else rest
        return (regex.search(rest) is None) if negate else (regex.search(rest) is not None)

    return Matcher(expr, test)


def glob_match(pattern: str, value: str) -> bool:
    """`^` + GlobToRegexp + `$` without a regex: `*` is the only wildcard, so leftmost search is exact."""
    if "*" not in pattern:
        return value == pattern
    if "\n" in value:
        return False  # a newline can only fall inside a `*`, and Go's `.` does not match it
    first, *middle, last = pattern.split("*")
    if len(value) < len(first) + len(last) or not value.startswith(first) or not value.endswith(last):
        return False
    position, end = len(first), len(value) - len(last)
    for part in middle:
        found = value.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def compile_regex(pattern: str) -> re.Pattern[str]:
    """A `^...$` pattern compiled the way Go reads it, or `MatcherError`/`UnsupportedMatcher` saying why not."""
    return _compile_regex(pattern)


@functools.lru_cache(maxsize=1024)
def _compile_regex(pattern: str) -> re.Pattern[str]:
    if len(pattern) > MAX_PATTERN:
        raise UnsupportedMatcher(f"the regular expression is longer than {MAX_PATTERN} characters")
    _check_re2_subset(pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # re.ASCII: Go's \d, \w, \s and \b are ASCII-only.
            return re.compile(pattern, re.ASCII)
    except (re.error, OverflowError, RecursionError, ValueError) as err:
        raise MatcherError(f"cannot use the regular expression {pattern!r}: {err}") from None


def _check_re2_subset(pattern: str) -> None:
    """Refuse what RE2 rejects or Python reads differently, and patterns that could backtrack for long.

    Go's RE2 runs in linear time; Python backtracks. We bound the worst case by the product of the
    choices each quantifier offers (times every start position when ^ does not anchor the search) and
    refuse repeated groups that repeat or alternate inside, like (a+)+ or (a|aa)*.
    """
    groups: list[bool] = []  # per open group: does it hold a repeat or an alternation?
    cost, index = (1 if pattern.startswith("^") else MAX_VALUE), 0
    while index < len(pattern):
        char, following = pattern[index], pattern[index + 1 : index + 2]
        quantifier = _quantifier(pattern, index)
        if char == "\\":
            if following and following in "123456789Z":
                raise UnsupportedMatcher(f"{pattern!r}: \\{following} means something else in Go")
            index += 2
        elif char == "[":
            index = _skip_class(pattern, index)
        elif char == "(":
            if pattern.startswith(_NOT_RE2, index):
                raise MatcherError(f"{pattern!r}: lookaround, backreferences and atomic groups are not RE2")
            groups.append(False)
            index += 1
        elif char == ")":
            risky = groups.pop() if groups else False
            index += 1
            if risky and pattern[index : index + 1] in ("*", "+", "{"):
                raise UnsupportedMatcher(f"{pattern!r}: a repeated group that repeats inside could backtrack")
            if risky and groups:
                groups[-1] = True
        elif quantifier:
            choices, index = quantifier
            cost *= choices
            if cost > MAX_BACKTRACK:
                raise UnsupportedMatcher(
                    f"{pattern!r}: too many repeats to match without runaway backtracking"
                )
            index += pattern[index : index + 1] == "?"  # a lazy repeat means the same in both dialects
            if pattern[index : index + 1] == "+":
                raise UnsupportedMatcher(f"{pattern!r}: possessive repeats are not RE2")
            if groups:
                groups[-1] = True
        elif char == "{" and following == ",":
            raise UnsupportedMatcher(f"{pattern!r}: {{,n}} is a repeat in Python but literal text in Go")
        else:
            if char == "|" and groups:
                groups[-1] = True
            index += 1


def _quantifier(pattern: str, index: int) -> tuple[int, int] | None:
    """The quantifier at `index` as (how many lengths it may try, the index after it), or None."""
    char = pattern[index]
    if char in "*+?":
        return (2 if char == "?" else MAX_VALUE), index + 1
    repeat = _REPEAT.match(pattern, index) if char == "{" else None
    if repeat is None:
        return None
    low, comma, high = int(repeat.group(1)), repeat.group(2), repeat.group(3)
    if max(low, int(high or 0)) > 1000:
        raise MatcherError(f"{pattern!r}: Go allows at most 1000 repetitions")
    choices = MAX_VALUE if comma and not high else (int(high) - low + 1 if comma else 1)
    return max(choices, 1), repeat.end()


def _skip_class(pattern: str, index: int) -> int:
    """Return the index after the character class opening at `index`; refuse POSIX classes."""
    index += 1
    index += pattern[index : index + 1] == "^"
    index += pattern[index : index + 1] == "]"  # a leading ] is literal in both dialects
    while index < len(pattern):
        if pattern.startswith("[:", index):
            raise UnsupportedMatcher(f"{pattern!r}: POSIX classes like [:alpha:] differ in Python")
        if pattern[index] == "]":
            return index + 1
        index += 2 if pattern[index] == "\\" else 1
    return index


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's `Regexp.Expand`: `$1`, `${1}`, `$name`, `${name}`, `$$`; unknown groups expand to ""."""
    out: list[str] = []
    rest = template
    while True:
        before, dollar, rest = rest.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        reference = _REFERENCE.match(rest)
        if reference is None:
            out.append("$")
            continue
        rest = rest[reference.end() :]
        name = reference.group(1) or reference.group(2)
        if name.isascii() and name.isdigit() and (name == "0" or not name.startswith("0")):
            number = int(name)
            out.append((match.group(number) or "") if number <= (match.re.groups or 0) else "")
        elif name in match.re.groupindex:
            out.append(match.group(name) or "")


def _claim_roles(
    mappings: Sequence[ClaimMapping], traits: Mapping[str, Sequence[str]]
) -> list[tuple[str, bool]]:
    """Teleport's traitsToRoles: each (role, whether `$n` expansion produced it) for the matching values."""
    produced: list[tuple[str, bool]] = []
    for mapping in mappings:
        values = traits.get(mapping.claim, ())
        if not values:
            continue
        # A value is a glob unless written ^regex$; each * becomes a capture group for $1, $2...
        if mapping.value.startswith("^") and mapping.value.endswith("$"):
            regex = _compile_regex(mapping.value)
        else:
            regex = _compile_regex("^" + re.escape(mapping.value).replace(r"\*", "(.*)") + "$")
        for value in values:
            if len(value) > MAX_VALUE or "\n" in value:
                raise MatcherError(f"trait {mapping.claim} holds a value too long to match safely")
            if regex.search(value) is None:
                continue
            for role in mapping.roles:
                result = regex.sub(functools.partial(_expand, role), value)
                if result:
                    produced.append((result, result != role))
    return produced


def claims_to_roles(mappings: Sequence[ClaimMapping], traits: Mapping[str, Sequence[str]]) -> list[str]:
    """The role names `claims_to_roles` yields for these traits, deduplicated, in order."""
    return list(dict.fromkeys(role for role, _ in _claim_roles(mappings, traits)))


def role_matchers(
    roles: Sequence[str], mappings: Sequence[ClaimMapping], traits: Mapping[str, Sequence[str]]
) -> tuple[Matcher, ...]:
    """Teleport's appendRoleMatchers: role expressions plus claims; expanded claim roles match literally."""
    claimed = [
        literal_matcher(role) if expanded or _EXPANSION.search(role) else compile_matcher(role)
        for role, expanded in _claim_roles(mappings, traits)
    ]
    return tuple(compile_matcher(role) for role in roles) + tuple(claimed)
