"""The `where` predicates of Teleport's review rules and threshold filters, parsed by hand and never `eval`ed.

Teleport evaluates these with its typed predicate parser (`lib/utils/typical/parser.go`) over the contexts
built in `lib/services/access_request.go` (`newReviewPermissionParser`, `newThresholdFilterParser`): the
operators `&&`, `||`, `!`, `==`, `!=` and the functions `contains`, `equals` and `regexp.match`. This
module accepts that dialect and nothing more:

    expr      := or_expr
    or_expr   := and_expr ( "||" and_expr )*
    and_expr  := compare ( "&&" compare )*
    compare   := unary ( ( "==" | "!=" ) unary )*           both sides strings
    unary     := "!" unary | primary
    primary   := "(" expr ")" | call | selector | STRING
    call      := FUNC "(" [ expr ( "," expr )* ] ")"       FUNC is contains | equals | regexp.match
    selector  := NAME "." NAME ( "." NAME | "[" expr "]" )*
    STRING    := '"' { char | escape } '"'  |  '`' { any char but '`' } '`'
    escape    := \\a \\b \\f \\n \\r \\t \\v \\\\ \\" | \\xHH | \\uHHHH | \\UHHHHHHHH | \\OOO (octal)
    NAME      := [A-Za-z_][A-Za-z0-9_]*

Selectors name `namespace.field` in the context (`reviewer.roles`, `reviewer.traits`, `request.roles`,
`request.reason`, `request.system_annotations`, `review.reason`, `review.annotations`); a further
`.key` or `["key"]` indexes a trait-style map, and a missing key is the empty list, as in Go. Values are
strings, lists of strings, or such maps. As in Teleport's `coerce`, a string is accepted wherever a list
is expected (`contains(request.reason, "x")` tests the one-element list). `contains(list, string)`,
`regexp.match(list, pattern)` (true when any element matches; a pattern not written `^...$` is a glob,
as in `lib/utils/replace.go`) and `equals(a, b)` (string/string or list/list) return booleans, and the
whole expression must be a boolean.

Like Teleport, `&&` and `||` stop once the left side decides, and the checks Teleport makes when it
parses (names, arity, argument types) hold everywhere, while those it makes when it evaluates
(`equals` on mismatched types, an invalid pattern) only count where evaluation reaches.

Errors, drawn as a tree:

    WhereError           Teleport would refuse this too (syntax, names, types) -- callers fail closed
      └── Undecidable    valid for Teleport, but beyond what the bot evaluates faithfully (input over
                         `MAX_LENGTH` characters, nesting deeper than `MAX_DEPTH`, a pattern Python and
                         Go's RE2 could read differently)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from commands.model import AccessRequest, Review, User

MAX_LENGTH = 2000
MAX_DEPTH = 32

Value = bool | str | tuple[str, ...] | Mapping[str, tuple[str, ...]]


class WhereError(ValueError):
    """A `where` expression that cannot be evaluated; the message says why."""


class Undecidable(WhereError):
    """An expression Teleport evaluates but the bot cannot evaluate faithfully."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "string", "op" or "end"
    text: str
    pos: int


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("&&", "||", "==", "!=", "!", "(", ")", ",", ".", "[", "]")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def unquote(literal: str) -> str:
    """Decode one Go-style string literal ("..." with escapes, or `raw`), as Teleport's parsers do."""
    value, end = _read_string(literal, 0)
    if end != len(literal):
        raise WhereError(f"unexpected text after the string literal at position {end}")
    return value


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    if quote == "`":
        end = text.find("`", start + 1)
        if end < 0:
            raise WhereError(f"unterminated raw string starting at position {start}")
        return text[start + 1 : end].replace("\r", ""), end + 1
    if quote != '"':
        raise WhereError(f"expected a string literal at position {start}")
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char == "\n":
            break
        if char != "\\":
            out.append(char)
            pos += 1
            continue
        decoded, pos = _read_escape(text, pos)
        out.append(decoded)
    raise WhereError(f"unterminated string starting at position {start}")


def _read_escape(text: str, pos: int) -> tuple[str, int]:
    """Decode the escape starting at the backslash at `pos`; return it and the position after it."""
    code = text[pos + 1 : pos + 2]
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code], pos + 2
    if code == '"':
        return '"', pos + 2
    if code in _HEX_ESCAPES:
        digits = text[pos + 2 : pos + 2 + _HEX_ESCAPES[code]]
        if len(digits) != _HEX_ESCAPES[code] or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise WhereError(f"invalid \\{code} escape at position {pos}")
        number = int(digits, 16)
        if number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
            raise WhereError(f"escape at position {pos} is not a valid character")
        return chr(number), pos + 2 + len(digits)
    digits = text[pos + 1 : pos + 4]
    if len(digits) == 3 and all(c in "01234567" for c in digits) and int(digits, 8) <= 255:
        return chr(int(digits, 8)), pos + 4
    raise WhereError(f"unknown escape sequence at position {pos}")


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in " \t\r\n":
            pos += 1
        elif char in '"`':
            value, end = _read_string(text, pos)
            tokens.append(_Token("string", value, pos))
            pos = end
        elif name := _NAME.match(text, pos):
            tokens.append(_Token("name", name.group(), pos))
            pos = name.end()
        elif operator := next((op for op in _OPERATORS if text.startswith(op, pos)), None):
            tokens.append(_Token("op", operator, pos))
            pos += len(operator)
        else:
            raise WhereError(f"unexpected character {char!r} at position {pos}")
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _describe(value: Value) -> str:
    kinds: tuple[tuple[type, str], ...] = ((bool, "a boolean"), (str, "a string"), (tuple, "a list"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "a map")


class _Parser:
    """Recursive descent that evaluates as it parses. Where `&&` or `||` is already decided, the rest is
    still parsed and type-checked, but not evaluated (`live` is false), as Teleport would."""

    def __init__(self, text: str, context: Mapping[str, Mapping[str, object]]) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0
        self.live = True
        self.context = context

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def _at(self, text: str, offset: int = 0) -> bool:
        token = self.tokens[min(self.index + offset, len(self.tokens) - 1)]
        return token.kind == "op" and token.text == text

    def _take(self, text: str) -> bool:
        if self._at(text):
            self.index += 1
            return True
        return False

    def _expect(self, text: str) -> None:
        if not self._take(text):
            found = self.token.text or "the end of the expression"
            raise WhereError(f"expected {text!r} at position {self.token.pos}, found {found!r}")

    def parse(self) -> bool:
        result = self._or()
        if self.token.kind != "end":
            raise WhereError(f"unexpected {self.token.text!r} at position {self.token.pos}")
        if not isinstance(result, bool):
            raise WhereError(f"the expression yields {_describe(result)}, not true or false")
        return result

    def _boolean(self, value: Value, operator: str, pos: int) -> bool:
        if not isinstance(value, bool):
            raise WhereError(f"{operator!r} at position {pos} needs booleans, got {_describe(value)}")
        return value

    def _or(self) -> Value:
        return self._chain("||", self._and)

    def _and(self) -> Value:
        return self._chain("&&", self._compare)

    def _chain(self, operator: str, operand: Callable[[], Value]) -> Value:
        left = operand()
        while self._at(operator):
            pos = self.token.pos
            self.index += 1
            left = self._boolean(left, operator, pos)
            decided = left if operator == "||" else not left
            was_live, self.live = self.live, self.live and not decided
            try:
                right = self._boolean(operand(), operator, pos)
            finally:
                self.live = was_live
            if not decided:
                left = right
        return left

    def _compare(self) -> Value:
        left = self._unary()
        while self._at("==") or self._at("!="):
            operator, pos = self.token.text, self.token.pos
            self.index += 1
            right = self._unary()
            if not isinstance(left, str) or not isinstance(right, str):
                raise WhereError(
                    f"{operator!r} at position {pos} compares strings, got {_describe(left)} and {_describe(right)}"
                )
            left = (left == right) if operator == "==" else (left != right)
        return left

    def _unary(self) -> Value:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Undecidable(f"the expression nests deeper than {MAX_DEPTH} levels")
        try:
            pos = self.token.pos
            if self._take("!"):
                return not self._boolean(self._unary(), "!", pos)
            return self._primary()
        finally:
            self.depth -= 1

    def _primary(self) -> Value:
        token = self.token
        if self._take("("):
            value = self._or()
            self._expect(")")
            return value
        if token.kind == "string":
            self.index += 1
            return token.text
        if token.kind == "name":
            name = self._function_name()
            if name is not None:
                return self._call(name, token.pos)
            self.index += 1
            return self._selector(token)
        found = token.text or "the end of the expression"
        raise WhereError(f"expected a value at position {token.pos}, found {found!r}")

    def _function_name(self) -> str | None:
        """`name(` or `name.name(`: consume the name and return it; otherwise consume nothing."""
        parts, offset = [self.token.text], 1
        while self._at(".", offset) and self.tokens[self.index + offset + 1].kind == "name":
            parts.append(self.tokens[self.index + offset + 1].text)
            offset += 2
        if not self._at("(", offset):
            return None
        self.index += offset
        return ".".join(parts)

    def _call(self, name: str, pos: int) -> Value:
        if name not in _FUNCTIONS:
            raise WhereError(f"unknown function {name!r} at position {pos}")
        self._expect("(")
        args: list[Value] = []
        if not self._take(")"):
            args.append(self._or())
            while self._take(","):
                args.append(self._or())
            self._expect(")")
        if len(args) != 2:
            raise WhereError(f"{name}() takes 2 arguments, got {len(args)} at position {pos}")
        first, second = args
        if name == "equals":
            return self._equals(first, second, pos)
        # contains and regexp.match take a list (a string is a list of one) and a string.
        if isinstance(first, str):
            first = (first,)
        if not isinstance(first, tuple) or not isinstance(second, str):
            raise WhereError(
                f"{name}() at position {pos} needs a list and a string, "
                f"got {_describe(first)} and {_describe(second)}"
            )
        if not self.live:
            return False
        if name == "contains":
            return second in first
        return regexp_match(first, second)

    def _equals(self, first: Value, second: Value, pos: int) -> bool:
        # Teleport's equalsFunc takes any two values and checks their types only when it runs.
        if not self.live:
            return False
        if isinstance(first, (str, tuple)) and type(first) is type(second):
            return first == second
        raise WhereError(
            f"equals() at position {pos} compares two strings or two lists, "
            f"got {_describe(first)} and {_describe(second)}"
        )

    def _selector(self, first: _Token) -> Value:
        namespace = self.context.get(first.text)
        if namespace is None:
            raise WhereError(f"unknown identifier {first.text!r} at position {first.pos}")
        self._expect(".")
        field = self.token
        if field.kind != "name":
            raise WhereError(f"expected a field name at position {field.pos}")
        self.index += 1
        path = f"{first.text}.{field.text}"
        if field.text not in namespace:
            raise WhereError(f"unknown identifier {path!r} at position {first.pos}")
        value = _normalise(namespace[field.text], path)
        while self._at(".") or self._at("["):
            value = self._index(value, path)
        return value

    def _index(self, value: Value, path: str) -> Value:
        pos = self.token.pos
        if self._take("."):
            key = self.token
            if key.kind != "name":
                raise WhereError(f"expected a key name at position {key.pos}")
            self.index += 1
            name: Value = key.text
        else:
            self._expect("[")
            key = self.token
            name = self._or()
            self._expect("]")
            if not isinstance(name, str):
                raise WhereError(f"expected a string key at position {key.pos}, got {_describe(name)}")
        if not isinstance(value, Mapping):
            raise WhereError(f"{path} is {_describe(value)} and cannot be indexed (position {pos})")
        return value.get(name, ())


_FUNCTIONS = ("contains", "equals", "regexp.match")


def regexp_match(values: Sequence[str], pattern: str) -> bool:
    """Teleport's regexpMatchFunc (`utils.RegexMatchesAny`): does any value match `pattern`?

    A pattern written `^...$` is a regular expression; anything else is a glob whose `*` matches any run
    of characters but a newline (Go's `.`). An invalid pattern is a `WhereError`; one that RE2 and
    Python could read differently, or a value too long to search safely, is `Undecidable`.
    """
    # Imported here: commands.matchers imports this module for its string literals.
    from commands import matchers

    if pattern.startswith("^") and pattern.endswith("$"):
        try:
            regex = matchers.compile_regex(pattern)
        except matchers.UnsupportedMatcher as err:
            raise Undecidable(str(err)) from None
        except matchers.PolicyError as err:
            raise WhereError(str(err)) from None
        for value in values:
            if len(value) > matchers.MAX_VALUE or "\n" in value:
                # Python's $ also matches before a final newline; Go's does not.
                raise Undecidable(f"{value[:40]!r} is too long or spans lines to be matched safely")
        return any(regex.search(value) is not None for value in values)
    if "\n" in pattern and any("\n" in value for value in values):
        raise Undecidable("a glob spanning lines cannot be matched safely")
    return any(matchers.glob_match(pattern, value) for value in values)


def _normalise(raw: object, path: str) -> Value:
    """Check a context value's shape once, so evaluation only meets the types it knows."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, Mapping):
        entries = {key: _normalise(item, path) for key, item in raw.items() if isinstance(key, str)}
        lists = {key: value for key, value in entries.items() if isinstance(value, tuple)}
        if len(lists) == len(raw):
            return lists
    elif isinstance(raw, Sequence) and all(isinstance(item, str) for item in raw):
        return tuple(str(item) for item in raw)
    raise WhereError(f"the context value {path} is neither a string, a list of strings nor a trait map")


def evaluate(expr: str, context: Mapping[str, Mapping[str, object]]) -> bool:
    """Evaluate `expr` against `context` ({namespace: {field: value}}); raise `WhereError` if undecidable."""
    if not isinstance(expr, str):
        raise WhereError("the expression is not text")
    if len(expr) > MAX_LENGTH:
        raise Undecidable(f"the expression is longer than {MAX_LENGTH} characters")
    if not expr.strip():
        raise WhereError("the expression is empty")
    return _Parser(expr, context).parse()


def _traits(traits: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    return {key: tuple(values) for key, values in traits.items()}


def _request_scope(request: AccessRequest) -> dict[str, object]:
    return {
        "roles": tuple(request.roles),
        "reason": request.reason,
        "system_annotations": _traits(request.system_annotations),
    }


def review_permission_context(reviewer: User, request: AccessRequest) -> dict[str, Mapping[str, object]]:
    """The context of `review_requests.where` (Teleport's reviewPermissionContext): no `review`."""
    return {
        "reviewer": {"roles": tuple(reviewer.roles), "traits": _traits(reviewer.traits)},
        "request": _request_scope(request),
    }


def threshold_filter_context(
    reviewer: User, review: Review, request: AccessRequest
) -> dict[str, Mapping[str, object]]:
    """The context of a threshold `filter` (Teleport's thresholdFilterContext)."""
    context = review_permission_context(reviewer, request)
    # Our model carries no review annotations: Teleport refuses reviews that have any.
    context["review"] = {"reason": review.reason, "annotations": {}}
    return context
