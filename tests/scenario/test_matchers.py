"""Matchers and paths: what passes, and failures that say why in one line."""

from __future__ import annotations

import json
from typing import Final

import pytest

from simulator.scenario.matchers import (
    AllOf,
    Compare,
    Contains,
    Equals,
    Exists,
    Json,
    Length,
    Matcher,
    Not,
    OneOf,
    PathError,
    PathMissing,
    Regex,
    lookup,
    match_body,
    parse_path,
    show_path,
)

VARIABLES: Final[dict[str, object]] = {"${n}": 3, "${id}": "G030PM", "${word}": "ab"}


def resolve(value: object) -> object:
    """A stand-in for ``Variables.resolve``: whole-string expressions only."""
    if isinstance(value, str):
        return VARIABLES.get(value, value)
    if isinstance(value, list):
        return [resolve(item) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item) for key, item in value.items()}
    return value


def check(matcher: Matcher, actual: object) -> str | None:
    reason = matcher.check(actual, resolve=resolve)
    assert reason is None or "\n" not in reason
    return reason


BODY: Final[dict[str, object]] = {
    "devices": [
        {"deviceId": "G030PM0123456789", "attributes": {"color": "red"}, "enabled": True},
        {"deviceId": "G030PM9876543210", "attributes": {}, "enabled": False},
    ],
    "deviceDescription": {"remainingLife": 99.5, "tags": {"a.b": "dotted"}},
    "nextToken": None,
    "events": [{"stdEvent": '{"clickType": "SINGLE", "reportedTime": "2024-05-01T12:00:00Z"}'}],
}


# --- paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("state", ("state",)),
        ("devices[0].deviceId", ("devices", 0, "deviceId")),
        ("devices[-1]", ("devices", -1)),
        ("[0][1]", (0, 1)),
        ('tags["a.b"]', ("tags", "a.b")),
        ("tags['a b'].x", ("tags", "a b", "x")),
        ("resource-arn", ("resource-arn",)),
    ],
)
def test_paths_parse_and_show_again(path: str, segments: tuple[object, ...]) -> None:
    assert parse_path(path) == segments
    assert parse_path(show_path(parse_path(path))) == segments


@pytest.mark.parametrize("path", ["", "a..b", "a.", "a[x]", "a[0", ".a", "a]b", "a b[0]x"])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(PathError, match=r"^path "):
        parse_path(path)


def test_lookup_follows_dots_and_indexes() -> None:
    assert lookup(BODY, "devices[1].deviceId") == "G030PM9876543210"
    assert lookup(BODY, "devices[-1].enabled") is False
    assert lookup(BODY, 'deviceDescription.tags["a.b"]') == "dotted"
    assert lookup(BODY, "nextToken") is None
    assert lookup([1, [2, 3]], "[1][0]") == 2


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("devices[2].deviceId", "devices[2]: devices has 2 item(s)"),
        (
            "deviceDescription.arn",
            "deviceDescription.arn: deviceDescription has no key 'arn' (keys: remainingLife, tags)",
        ),
        (
            "missing",
            "missing: the value has no key 'missing' (keys: deviceDescription, devices, "
            "events, nextToken)",
        ),
        ("devices.deviceId", "devices.deviceId: devices is a list, not an object"),
        (
            "deviceDescription[0]",
            "deviceDescription[0]: deviceDescription is an object, not a list",
        ),
        ("nextToken.x", "nextToken.x: nextToken is null, not an object"),
    ],
)
def test_lookup_says_where_it_stopped(path: str, message: str) -> None:
    with pytest.raises(PathMissing) as info:
        lookup(BODY, path)
    assert str(info.value) == message


def test_many_keys_are_listed_cut() -> None:
    with pytest.raises(PathMissing, match=r"\(keys: k00, k01, .*, k11, \.\.\.\)$"):
        lookup({f"k{i:02}": i for i in range(30)}, "other")


# --- each matcher --------------------------------------------------------------------


def test_equals_is_json_equality() -> None:
    assert check(Equals("CLAIMED"), "CLAIMED") is None
    assert check(Equals(1), 1.0) is None
    assert check(Equals({"a": [1, {"b": None}]}), {"a": [1, {"b": None}]}) is None
    assert check(Equals("${n}"), 3) is None
    assert (
        check(Equals("CLAIMED"), "CLAIM_INITIATED") == 'expected "CLAIMED", got "CLAIM_INITIATED"'
    )
    assert check(Equals(1), True) == "expected 1, got true"
    assert check(Equals(True), 1) == "expected true, got 1"
    assert check(Equals(5), "5") == 'expected 5, got "5"'
    assert check(Equals([1, 2]), [1, 2, 3]) == "expected [1, 2], got [1, 2, 3]"
    assert check(Equals({"a": 1}), {"a": 1, "b": 2}) == 'expected {"a": 1}, got {"a": 1, "b": 2}'
    assert check(Equals(None), 0) == "expected null, got 0"


def test_contains_a_substring_an_item_or_a_subset() -> None:
    assert check(Contains("PM01"), "G030PM0123") is None
    assert check(Contains("${word}"), "xaby") is None
    assert check(Contains("b"), ["a", "b"]) is None
    assert check(Contains({"deviceId": "G030PM9876543210"}), BODY["devices"]) is None
    assert check(Contains({"attributes": {"color": "red"}}), BODY["devices"]) is None
    assert check(Contains({"remainingLife": 99.5}), BODY["deviceDescription"]) is None
    assert check(Contains("zz"), "abc") == 'expected a string containing "zz", got "abc"'
    assert check(Contains(1), [True]) == "expected a list containing 1, got [true]"
    assert check(Contains({"a": 2}), {"a": 1}) == (
        'expected an object containing {"a": 2}, got {"a": 1}'
    )
    assert check(Contains("a"), {"a": 1}) == ('expected an object containing "a", got {"a": 1}')
    assert check(Contains(1), "a1") == 'expected a value containing 1, got "a1"'
    assert check(Contains("a"), 5) == ('expected a string, list or object containing "a", got 5')


def test_regex_searches_strings() -> None:
    assert check(Regex("^G030PM"), "G030PM0123") is None
    assert check(Regex("PM0"), "G030PM0123") is None
    assert check(Regex("${id}"), "G030PM0123") is None
    assert check(Regex("^X"), "G030") == 'expected a string matching "^X", got "G030"'
    assert check(Regex("1"), 1) == 'expected a string matching "1", got 1'
    assert check(Regex("${n}"), "3") == "the pattern ${n} is 3, not a string"


def test_the_pattern_made_at_run_time_must_compile() -> None:
    reason = Regex("(").check("x", resolve=lambda value: value)
    assert reason is not None
    assert reason.startswith('the pattern "(" is not a regular expression: ')


@pytest.mark.parametrize(
    ("operator", "expected", "passing", "failing"),
    [
        ("gt", 90, 90.5, 90),
        ("ge", 90, 90, 89.9),
        ("lt", 10, 9, 10),
        ("le", 10, 10, 11),
        ("ge", "${n}", 3, 2),
    ],
)
def test_comparisons(operator: str, expected: object, passing: object, failing: object) -> None:
    matcher = Compare(operator, expected)
    assert check(matcher, passing) is None
    reason = check(matcher, failing)
    symbol = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[operator]
    assert reason == f"expected a number {symbol} {resolve(expected)}, got {failing}"


def test_comparisons_take_numbers_only() -> None:
    assert check(Compare("gt", 0), True) == "expected a number > 0, got true"
    assert check(Compare("gt", 0), "5") == 'expected a number > 0, got "5"'
    assert check(Compare("gt", 0), None) == "expected a number > 0, got null"
    assert check(Compare("gt", "${id}"), 5) == 'the expected value ${id} is "G030PM", not a number'
    assert check(Compare("gt", True), 5) == "the expected value True is true, not a number"
    with pytest.raises(ValueError, match="unknown comparison 'eq'"):
        Compare("eq", 1)


def test_length_of_strings_lists_and_objects() -> None:
    assert check(Length(Equals(2)), [1, 2]) is None
    assert check(Length(Equals(3)), "abc") is None
    assert check(Length(Equals(1)), {"a": 1}) is None
    assert check(Length(Equals("${n}")), [0, 0, 0]) is None
    assert check(Length(Compare("ge", 1)), [1]) is None
    assert check(Length(Equals(2)), [1, 2, 3]) == "length 3: expected 2, got 3"
    assert check(Length(Compare("ge", 1)), []) == "length 0: expected a number >= 1, got 0"
    assert check(Length(Equals(0)), 5) == "expected a string, list or object, got 5"


def test_exists_and_missing_values() -> None:
    assert match_body(BODY, [("nextToken", Exists(True))], resolve) == []
    assert match_body(BODY, [("nextToken", Exists(False))], resolve) == [
        "nextToken: expected nothing here, got null"
    ]
    assert match_body(BODY, [("other", Exists(False))], resolve) == []
    assert match_body(BODY, [("devices[5]", Exists(True))], resolve) == [
        "devices[5]: missing: devices has 2 item(s)"
    ]
    assert match_body(BODY, [("devices[5].deviceId", Equals("x"))], resolve) == [
        "devices[5].deviceId: missing: devices has 2 item(s)"
    ]


def test_json_parses_a_string_then_matches_inside() -> None:
    path = "events[0].stdEvent"
    inside = Json((("clickType", Equals("SINGLE")), ("reportedTime", Regex("^2024-"))))
    assert match_body(BODY, [(path, inside)], resolve) == []
    assert check(Json(Equals([1, 2])), "[1, 2]") is None
    assert check(Json(Length(Equals(2))), "[1, 2]") is None
    assert check(Json((("a.b[0]", Equals(1)),)), '{"a": {"b": [1]}}') is None
    wrong = Json((("clickType", Equals("DOUBLE")), ("seq", Exists(True))))
    assert match_body(BODY, [(path, wrong)], resolve) == [
        f'{path}: in the JSON, clickType: expected "DOUBLE", got "SINGLE"; '
        "in the JSON, seq: missing: the value has no key 'seq' (keys: clickType, reportedTime)"
    ]
    assert check(Json(Equals(1)), "2") == "in the JSON: expected 1, got 2"
    assert check(Json(Equals(1)), {"a": 1}) == 'expected a string holding JSON, got {"a": 1}'
    reason = check(Json(Equals(1)), "{nope")
    assert reason is not None
    assert reason.startswith('expected a string holding JSON, got "{nope" (Expecting ')


def test_one_of() -> None:
    assert check(OneOf(("a", "b")), "b") is None
    assert check(OneOf(("${n}", 4)), 3) is None
    assert check(OneOf((1, 2)), True) == "expected one of [1, 2], got true"


def test_not_holds_when_its_matcher_does_not() -> None:
    absent = Not(Contains({"deviceId": "${id}"}))
    assert check(absent, [{"deviceId": "other"}]) is None
    assert check(absent, [{"deviceId": "G030PM"}]) == (
        'expected not {"contains": {"deviceId": "${id}"}}, got [{"deviceId": "G030PM"}]'
    )
    assert absent.check_missing("no key 'devices'") is None
    assert Not(Exists(False)).check_missing("no key 'x'") == (
        "expected not {\"exists\": false}, but no key 'x'"
    )
    assert Not(Equals(1)).describe() == {"not": 1}


def test_all_of_reports_every_failure() -> None:
    matcher = AllOf((Compare("gt", 90), Compare("le", 100)))
    assert check(matcher, 95) is None
    assert check(matcher, 101) == "expected a number <= 100, got 101"
    both = AllOf((Regex("^a"), Length(Equals(1))))
    assert (
        check(both, "bc")
        == 'expected a string matching "^a", got "bc"; length 2: expected 1, got 2'
    )
    assert both.check_missing("gone") == "missing: gone; missing: gone"
    assert AllOf((Exists(False),)).check_missing("gone") is None


def test_match_body_names_each_failing_path() -> None:
    expectations = [
        ("devices", Length(Equals(2))),
        ("devices[0].deviceId", Regex("^G030")),
        ("deviceDescription.remainingLife", AllOf((Compare("gt", 90), Compare("le", 99)))),
        ("devices[1].enabled", Equals(True)),
    ]
    assert match_body(BODY, expectations, resolve) == [
        "deviceDescription.remainingLife: expected a number <= 99, got 99.5",
        "devices[1].enabled: expected true, got false",
    ]


def test_long_values_are_cut_in_reasons() -> None:
    reason = check(Equals("x"), "y" * 500)
    assert reason is not None
    assert len(reason) < 120
    assert reason.endswith("...")


# --- describe ------------------------------------------------------------------------


def test_describe_spells_matchers_as_a_scenario_does() -> None:
    described = {
        "state": Equals("CLAIMED").describe(),
        "attributes": Equals({"a": 1}).describe(),
        "devices": Length(Equals(2)).describe(),
        "count": Length(AllOf((Compare("ge", 1), Compare("le", 3)))).describe(),
        "life": AllOf((Compare("gt", 90), Compare("le", 100))).describe(),
        "id": Regex("^G030").describe(),
        "tags": Contains({"a": "1"}).describe(),
        "token": Exists(False).describe(),
        "event": Json((("clickType", Equals("SINGLE")),)).describe(),
        "whole": Json(Equals([1])).describe(),
        "type": OneOf(("a", "b")).describe(),
    }
    assert described == {
        "state": "CLAIMED",
        "attributes": {"equals": {"a": 1}},
        "devices": {"length": 2},
        "count": {"length": {"ge": 1, "le": 3}},
        "life": {"gt": 90, "le": 100},
        "id": {"regex": "^G030"},
        "tags": {"contains": {"a": "1"}},
        "token": {"exists": False},
        "event": {"json": {"clickType": "SINGLE"}},
        "whole": {"json": [1]},
        "type": {"one_of": ["a", "b"]},
    }
    json.dumps(described)
