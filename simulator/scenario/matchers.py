"""What a scenario expects of a value: paths into JSON and matchers on what they find.

A path is dotted keys with ``[index]`` (``devices[0].deviceId``, ``items[-1]``, and
``tags["a.b"]`` for a key that holds a dot). A matcher checks one value and answers
``None`` or one line saying why not. Expected values may hold ``${...}``: a matcher
substitutes them through the ``resolve`` callback when it checks, since the variables
they name are saved while the scenario runs.

Equality is JSON's, not Python's: ``true`` is not ``1`` and ``"5"`` is not ``5``.
"""

from __future__ import annotations

import abc
import functools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

Resolve = Callable[[object], object]
Segment = str | int

_SHOWN: Final = 80
_KEYS_SHOWN: Final = 12
_KEY: Final = re.compile(r"[^.\[\]\"']+")
_INDEX: Final = re.compile(r"\[(-?[0-9]+)\]")
_QUOTED: Final = re.compile(r"""\[(?:"([^"]*)"|'([^']*)')\]""")


class PathError(ValueError):
    """A path that is not written as dotted keys and ``[index]``."""


class PathMissing(LookupError):
    """Nothing at a path; the message names the path and where the walk stopped."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


@functools.lru_cache(maxsize=4096)
def parse_path(path: str) -> tuple[Segment, ...]:
    """``devices[0].deviceId`` -> ``("devices", 0, "deviceId")``."""
    segments: list[Segment] = []
    position = 0
    while position < len(path):
        if path[position] == "[":
            index = _INDEX.match(path, position)
            quoted = _QUOTED.match(path, position)
            if index is not None:
                segments.append(int(index.group(1)))
                position = index.end()
            elif quoted is not None:
                key = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
                segments.append(key)
                position = quoted.end()
            else:
                raise PathError(f'path {path!r}: expected [0] or ["key"] at {path[position:]!r}')
            continue
        if segments:
            if path[position] != ".":
                raise PathError(f"path {path!r}: expected '.' or '[' at {path[position:]!r}")
            position += 1
        found = _KEY.match(path, position)
        if found is None:
            raise PathError(
                f"path {path!r}: expected a key at {path[position:]!r} "
                '(write keys with dots, indexes as [0], odd keys as ["a.b"])'
            )
        segments.append(found.group())
        position = found.end()
    if not segments:
        raise PathError("path is empty")
    return tuple(segments)


def show_path(segments: Sequence[Segment]) -> str:
    """The path back as text: ``("devices", 0, "deviceId")`` -> ``devices[0].deviceId``."""
    text = ""
    for segment in segments:
        if isinstance(segment, int):
            text += f"[{segment}]"
        elif _KEY.fullmatch(segment):
            text += f".{segment}" if text else segment
        else:
            text += f"[{json.dumps(segment)}]"
    return text


def lookup(value: object, path: str) -> object:
    """The value at ``path``; raises ``PathMissing`` naming where it stopped."""
    return walk(value, parse_path(path))


def walk(value: object, segments: Sequence[Segment]) -> object:
    """The value at parsed ``segments`` (see ``lookup``)."""
    for depth, segment in enumerate(segments):
        reached = show_path(segments[:depth]) or "the value"
        here = show_path(segments[: depth + 1])
        if isinstance(segment, int):
            if not isinstance(value, list):
                raise PathMissing(here, f"{reached} is {kind_of(value)}, not a list")
            if not -len(value) <= segment < len(value):
                raise PathMissing(here, f"{reached} has {len(value)} item(s)")
            value = value[segment]
        else:
            if not isinstance(value, dict):
                raise PathMissing(here, f"{reached} is {kind_of(value)}, not an object")
            if segment not in value:
                keys = sorted(map(str, value))
                listed = ", ".join(keys[:_KEYS_SHOWN]) + (
                    ", ..." if len(keys) > _KEYS_SHOWN else ""
                )
                raise PathMissing(
                    here, f"{reached} has no key {segment!r} (keys: {listed or 'none'})"
                )
            value = value[segment]
    return value


def match_body(
    body: object, expectations: Sequence[tuple[str, Matcher]], resolve: Resolve
) -> list[str]:
    """Every failed expectation as ``path: reason``; empty when all of them hold."""
    failures: list[str] = []
    for path, matcher in expectations:
        try:
            actual = lookup(body, path)
        except PathMissing as exc:
            reason = matcher.check_missing(exc.reason)
        else:
            reason = matcher.check(actual, resolve=resolve)
        if reason is not None:
            failures.append(f"{path}: {reason}")
    return failures


class Matcher(abc.ABC):
    """One expectation on a value, as written under its ``key`` in a scenario."""

    @property
    @abc.abstractmethod
    def key(self) -> str:
        """The matcher's name in a scenario (``regex``, ``gt``...)."""

    @abc.abstractmethod
    def spec(self) -> object:
        """What was written under ``key``, JSON-able."""

    @abc.abstractmethod
    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        """``None`` when ``actual`` matches, else one line saying why not."""

    def check_missing(self, reason: str) -> str | None:
        """Nothing is at the path: a failure, except for ``exists: false``."""
        return f"missing: {reason}"

    def describe(self) -> object:
        """The matcher as a scenario spells it, for reports."""
        return {self.key: self.spec()}


@dataclass(frozen=True)
class Equals(Matcher):
    expected: object

    @property
    def key(self) -> str:
        return "equals"

    def spec(self) -> object:
        return self.expected

    def describe(self) -> object:
        # A bare mapping would read as matchers: only a mapping needs the key spelt out.
        return super().describe() if isinstance(self.expected, dict) else self.expected

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        expected = resolve(self.expected)
        return None if same(actual, expected) else f"expected {show(expected)}, got {show(actual)}"


@dataclass(frozen=True)
class Contains(Matcher):
    """A substring of a string, an item of a list, a subset of an object.

    An object contained in a list or an object is matched as a subset, so
    ``{contains: {deviceId: X}}`` finds the device X in a list of devices.
    """

    expected: object

    @property
    def key(self) -> str:
        return "contains"

    def spec(self) -> object:
        return self.expected

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        expected = resolve(self.expected)
        if isinstance(actual, str):
            if not isinstance(expected, str):
                return f"expected a value containing {show(expected)}, got {show(actual)}"
            found = expected in actual
            wanted = f"a string containing {show(expected)}"
        elif isinstance(actual, list):
            found = any(_subset(item, expected) for item in actual)
            wanted = f"a list containing {show(expected)}"
        elif isinstance(actual, dict):
            found = isinstance(expected, dict) and _subset(actual, expected)
            wanted = f"an object containing {show(expected)}"
        else:
            return (
                f"expected a string, list or object containing {show(expected)}, got {show(actual)}"
            )
        return None if found else f"expected {wanted}, got {show(actual)}"


@dataclass(frozen=True)
class Regex(Matcher):
    """``re.search``: anchor the pattern with ``^...$`` to match a whole string."""

    pattern: str

    @property
    def key(self) -> str:
        return "regex"

    def spec(self) -> object:
        return self.pattern

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        pattern = resolve(self.pattern)
        if not isinstance(pattern, str):
            return f"the pattern {self.pattern} is {show(pattern)}, not a string"
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            return f"the pattern {show(pattern)} is not a regular expression: {exc}"
        if isinstance(actual, str) and compiled.search(actual):
            return None
        return f"expected a string matching {show(pattern)}, got {show(actual)}"


_COMPARISONS: Final[Mapping[str, tuple[str, Callable[[float, float], bool]]]] = {
    "gt": (">", lambda a, b: a > b),
    "ge": (">=", lambda a, b: a >= b),
    "lt": ("<", lambda a, b: a < b),
    "le": ("<=", lambda a, b: a <= b),
}


@dataclass(frozen=True)
class Compare(Matcher):
    """``gt``, ``ge``, ``lt``, ``le``: numbers only (a boolean is not a number)."""

    operator: str
    expected: object

    def __post_init__(self) -> None:
        if self.operator not in _COMPARISONS:
            raise ValueError(f"unknown comparison {self.operator!r}")

    @property
    def key(self) -> str:
        return self.operator

    def spec(self) -> object:
        return self.expected

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        expected = resolve(self.expected)
        if not is_number(expected):
            return f"the expected value {self.expected} is {show(expected)}, not a number"
        symbol, holds = _COMPARISONS[self.operator]
        assert isinstance(expected, int | float)
        if is_number(actual):
            assert isinstance(actual, int | float)
            if holds(actual, expected):
                return None
        return f"expected a number {symbol} {show(expected)}, got {show(actual)}"


@dataclass(frozen=True)
class Length(Matcher):
    """The length of a string, list or object, checked by another matcher."""

    of: Matcher

    @property
    def key(self) -> str:
        return "length"

    def spec(self) -> object:
        return self.of.describe()

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        if not isinstance(actual, str | list | dict):
            return f"expected a string, list or object, got {show(actual)}"
        reason = self.of.check(len(actual), resolve=resolve)
        return None if reason is None else f"length {len(actual)}: {reason}"


@dataclass(frozen=True)
class Exists(Matcher):
    """Whether anything (``null`` included) is at the path."""

    expected: bool

    @property
    def key(self) -> str:
        return "exists"

    def spec(self) -> object:
        return self.expected

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        return None if self.expected else f"expected nothing here, got {show(actual)}"

    def check_missing(self, reason: str) -> str | None:
        return None if not self.expected else f"missing: {reason}"


@dataclass(frozen=True)
class Json(Matcher):
    """A string holding JSON (``stdEvent``, ``deviceMethodParameters``), parsed, then
    matched path by path, or as a whole when ``expected`` is a matcher."""

    expected: tuple[tuple[str, Matcher], ...] | Matcher

    @property
    def key(self) -> str:
        return "json"

    def spec(self) -> object:
        if isinstance(self.expected, Matcher):
            return self.expected.describe()
        return {path: matcher.describe() for path, matcher in self.expected}

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        if not isinstance(actual, str):
            return f"expected a string holding JSON, got {show(actual)}"
        try:
            document = json.loads(actual)
        except ValueError as exc:
            return f"expected a string holding JSON, got {show(actual)} ({exc})"
        if isinstance(self.expected, Matcher):
            reason = self.expected.check(document, resolve=resolve)
            return None if reason is None else f"in the JSON: {reason}"
        failures = match_body(document, self.expected, resolve)
        return "; ".join(f"in the JSON, {failure}" for failure in failures) or None


@dataclass(frozen=True)
class OneOf(Matcher):
    options: tuple[object, ...]

    @property
    def key(self) -> str:
        return "one_of"

    def spec(self) -> object:
        return list(self.options)

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        options = [resolve(option) for option in self.options]
        if any(same(actual, option) for option in options):
            return None
        return f"expected one of {show(options)}, got {show(actual)}"


@dataclass(frozen=True)
class Not(Matcher):
    """The inner matcher must not hold (``{not: {contains: {deviceId: X}}}``); nothing at
    the path is "not" anything, so it passes."""

    inner: Matcher

    @property
    def key(self) -> str:
        return "not"

    def spec(self) -> object:
        return self.inner.describe()

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        if self.inner.check(actual, resolve=resolve) is not None:
            return None
        return f"expected not {show(self.inner.describe())}, got {show(actual)}"

    def check_missing(self, reason: str) -> str | None:
        if self.inner.check_missing(reason) is not None:
            return None
        return f"expected not {show(self.inner.describe())}, but {reason}"


@dataclass(frozen=True)
class AllOf(Matcher):
    """Several matchers on one value (``{gt: 90, le: 100}``); all must hold."""

    matchers: tuple[Matcher, ...]

    @property
    def key(self) -> str:
        return "all_of"

    def spec(self) -> object:
        return [matcher.describe() for matcher in self.matchers]

    def describe(self) -> object:
        return {matcher.key: matcher.spec() for matcher in self.matchers}

    def check(self, actual: object, *, resolve: Resolve) -> str | None:
        reasons = [matcher.check(actual, resolve=resolve) for matcher in self.matchers]
        return "; ".join(reason for reason in reasons if reason is not None) or None

    def check_missing(self, reason: str) -> str | None:
        reasons = [matcher.check_missing(reason) for matcher in self.matchers]
        return "; ".join(found for found in reasons if found is not None) or None


MATCHER_KEYS: Final = (
    "equals",
    "contains",
    "regex",
    "gt",
    "ge",
    "lt",
    "le",
    "length",
    "exists",
    "json",
    "one_of",
    "not",
)
"""Every key a matcher mapping may hold (``all_of`` is what several keys make)."""


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(actual: object, expected: object) -> bool:
    """JSON equality: a boolean is never a number, ``1`` equals ``1.0``."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if is_number(actual) and is_number(expected):
        return actual == expected
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(map(same, actual, expected))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            same(actual[key], expected[key]) for key in actual
        )
    return type(actual) is type(expected) and actual == expected


def _subset(actual: object, expected: object) -> bool:
    if isinstance(actual, dict) and isinstance(expected, dict):
        return all(key in actual and _subset(actual[key], expected[key]) for key in expected)
    return same(actual, expected)


def kind_of(value: object) -> str:
    """The JSON type of a value, with its article, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def show(value: object) -> str:
    """A value as compact JSON on one line, cut to a readable length."""
    if isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
