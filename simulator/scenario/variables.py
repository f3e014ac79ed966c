"""``${...}`` in scenario values: what they may say, and their substitution at run time.

An expression is a variable and a path into it (``${devices[0]}``,
``${accounts.owner.id}``), optionally moved in time (``${now+1h}``, ``${start-5m}``;
the variable must hold an ISO 8601 time). A string that is exactly one expression
takes the value's own type, so ``maxResults: ${page}`` stays a number; anywhere else
the value is written into the text (JSON for lists, objects, booleans and null).
``$${`` is a literal ``${``.

The loader checks the syntax of every expression (``check_template``); whether a
variable exists is known only while running, since steps save them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from simulator.protocol import ProtocolError, format_timestamp, parse_timestamp
from simulator.scenario.matchers import PathError, PathMissing, Segment, parse_path, show_path, walk
from simulator.scenario.model import parse_duration

BUILTINS: Final = frozenset(
    {"devices", "claim_code", "accounts", "webhook", "now", "start", "region", "index"}
)
"""Names the runner provides; a scenario may not save, set or loop into them."""

VARIABLE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHIFT: Final = re.compile(r"^(?P<path>.+?)\s*(?P<sign>[+-])\s*(?P<amount>[0-9.]+(?:ms|s|m|h|d))$")


class TemplateError(ValueError):
    """A ``${...}`` that is not written as the syntax allows."""


class UnknownVariable(ValueError):
    """A ``${...}`` that cannot be resolved now: an unknown variable, nothing at its
    path, or time arithmetic on a value that is no time. ``name`` is the variable."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class _Expression:
    source: str
    path: tuple[Segment, ...]
    shift: float | None
    """Seconds to add to a time, when the expression ends with ``+1h`` or ``-5m``."""

    @property
    def variable(self) -> str:
        assert isinstance(self.path[0], str)
        return self.path[0]


_Part = str | _Expression


def check_template(text: str) -> None:
    """Raise ``TemplateError`` unless every ``${...}`` in ``text`` is well formed."""
    _parse(text)


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> tuple[_Part, ...]:
    parts: list[_Part] = []
    literal = ""
    position = 0
    while position < len(text):
        if text.startswith("$${", position):
            literal += "${"
            position += 3
        elif text.startswith("${", position):
            end = text.find("}", position + 2)
            if end < 0:
                raise TemplateError(f"{text!r}: '${{' is never closed by '}}'")
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(_expression(text[position + 2 : end]))
            position = end + 1
        else:
            literal += text[position]
            position += 1
    if literal:
        parts.append(literal)
    return tuple(parts)


def _expression(source: str) -> _Expression:
    written = source.strip()
    shift: float | None = None
    shifted = _SHIFT.fullmatch(written)
    if shifted is not None:
        try:
            seconds = parse_duration(shifted["amount"])
        except ValueError as exc:
            raise TemplateError(f"${{{source}}}: {exc}") from None
        shift = -seconds if shifted["sign"] == "-" else seconds
        written = shifted["path"]
    try:
        path = parse_path(written)
    except PathError as exc:
        raise TemplateError(f"${{{source}}}: {exc}") from None
    if not isinstance(path[0], str) or not VARIABLE_NAME.fullmatch(path[0]):
        raise TemplateError(
            f"${{{source}}}: {show_path(path[:1])!r} is not a variable name; write a name, "
            "a path (devices[0], accounts.owner.id), then +1h or -5m for a time"
        )
    return _Expression(source=source, path=path, shift=shift)


class Variables:
    """A chain of scopes: a child (a repeat's iteration) sees its parent's variables
    and shadows them; ``now`` comes from the clock when no scope sets it."""

    def __init__(
        self,
        values: Mapping[str, object] | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._values: dict[str, object] = dict(values or {})
        self._clock = clock
        self._parent: Variables | None = None

    def child(self, values: Mapping[str, object] | None = None) -> Variables:
        scope = Variables(values, clock=self._clock)
        scope._parent = self
        return scope

    def set(self, name: str, value: object) -> None:
        """Bind in this scope (gone when the scope is)."""
        self._values[name] = value

    def set_global(self, name: str, value: object) -> None:
        """Bind in the outermost scope, so later steps see it (``save`` and ``set``)."""
        scope = self
        while scope._parent is not None:
            scope = scope._parent
        scope._values[name] = value

    def names(self) -> frozenset[str]:
        found = frozenset(self._values) | ({"now"} if self._clock is not None else frozenset())
        return found | (self._parent.names() if self._parent is not None else frozenset())

    def get(self, name: str) -> object:
        scope: Variables | None = self
        while scope is not None:
            if name in scope._values:
                return scope._values[name]
            scope = scope._parent
        if name == "now" and self._clock is not None:
            return format_timestamp(self._clock())
        known = ", ".join(sorted(self.names())) or "none"
        raise UnknownVariable(name, f"unknown variable {name!r} (known: {known})")

    def resolve(self, value: object) -> object:
        """``value`` with every ``${...}`` substituted, inside lists and objects too
        (object keys as text)."""
        if isinstance(value, str):
            return self._template(value)
        if isinstance(value, list | tuple):
            return [self.resolve(item) for item in value]
        if isinstance(value, Mapping):
            return {
                _text(self._template(str(key))): self.resolve(item) for key, item in value.items()
            }
        return value

    def _template(self, text: str) -> object:
        if "${" not in text:
            return text
        try:
            parts = _parse(text)
        except TemplateError as exc:
            raise UnknownVariable("", str(exc)) from None
        if len(parts) == 1 and isinstance(parts[0], _Expression):
            return self._evaluate(parts[0])
        return "".join(
            _text(self._evaluate(part)) if isinstance(part, _Expression) else part for part in parts
        )

    def _evaluate(self, expression: _Expression) -> object:
        name = expression.variable
        try:
            value = walk({name: self.get(name)}, expression.path)
        except (UnknownVariable, PathMissing) as exc:
            reason = exc.reason if isinstance(exc, PathMissing) else str(exc)
            raise UnknownVariable(name, f"${{{expression.source}}}: {reason}") from None
        if expression.shift is None:
            return value
        try:
            return format_timestamp(parse_timestamp(str(value)) + expression.shift)
        except (ProtocolError, ValueError, OverflowError):
            raise UnknownVariable(
                name,
                f"${{{expression.source}}}: {json.dumps(value, default=str)} is not "
                "an ISO 8601 time to move",
            ) from None


def _text(value: object) -> str:
    """How a value reads inside text: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)
