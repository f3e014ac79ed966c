"""``${...}``: typed substitution, text interpolation, paths, time, scopes, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import pytest

from simulator.scenario.variables import (
    TemplateError,
    UnknownVariable,
    Variables,
    check_template,
)

NOW: Final = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()


class Clock:
    """A clock a test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def variables(clock: Clock) -> Variables:
    return Variables(
        {
            "devices": ["G030PM0001", "G030PM0002"],
            "accounts": {"owner": {"id": "100000000001"}, "my-rival": {"id": "100000000002"}},
            "webhook": {"url": None},
            "start": "2024-05-01T11:59:00.000Z",
            "page": 2,
            "life": 99.5,
            "enabled": True,
            "tags": {"a.b": "dotted"},
        },
        clock=clock,
    )


def test_a_whole_expression_keeps_its_type(variables: Variables) -> None:
    assert variables.resolve("${page}") == 2
    assert variables.resolve("${life}") == 99.5
    assert variables.resolve("${enabled}") is True
    assert variables.resolve("${webhook.url}") is None
    assert variables.resolve("${devices}") == ["G030PM0001", "G030PM0002"]
    assert variables.resolve("${accounts.owner}") == {"id": "100000000001"}
    assert variables.resolve(" ${page}") == " 2"


def test_expressions_in_text_are_interpolated(variables: Variables) -> None:
    assert variables.resolve("device ${devices[1]} of ${page}") == "device G030PM0002 of 2"
    assert variables.resolve("on: ${enabled}, url: ${webhook.url}") == "on: true, url: null"
    assert variables.resolve("${devices}!") == '["G030PM0001", "G030PM0002"]!'
    assert variables.resolve("${page}${page}") == "22"
    assert variables.resolve("cost $5, literal $${page}") == "cost $5, literal ${page}"
    assert variables.resolve("no expressions") == "no expressions"


def test_paths_go_into_nested_values(variables: Variables) -> None:
    assert variables.resolve("${accounts.owner.id}") == "100000000001"
    assert variables.resolve("${accounts.my-rival.id}") == "100000000002"
    assert variables.resolve("${devices[-1]}") == "G030PM0002"
    assert variables.resolve('${tags["a.b"]}') == "dotted"
    assert variables.resolve("${ devices[0] }") == "G030PM0001"


def test_values_are_resolved_inside_lists_and_objects(variables: Variables) -> None:
    params = {
        "deviceId": "${devices[0]}",
        "maxResults": "${page}",
        "tags": {"owner-${page}": "${accounts.owner.id}"},
        "tagKeys": ["a", "${devices[1]}"],
        "enabled": False,
        "count": 3,
    }
    assert variables.resolve(params) == {
        "deviceId": "G030PM0001",
        "maxResults": 2,
        "tags": {"owner-2": "100000000001"},
        "tagKeys": ["a", "G030PM0002"],
        "enabled": False,
        "count": 3,
    }
    assert variables.resolve(("${page}",)) == [2]


def test_now_reads_the_clock_and_time_moves(variables: Variables, clock: Clock) -> None:
    assert variables.resolve("${now}") == "2024-05-01T12:00:00.000Z"
    clock.now += 1.5
    assert variables.resolve("${now}") == "2024-05-01T12:00:01.500Z"
    assert variables.resolve("${now+1h}") == "2024-05-01T13:00:01.500Z"
    assert variables.resolve("${now - 500ms}") == "2024-05-01T12:00:01.000Z"
    assert variables.resolve("${start-5m}") == "2024-05-01T11:54:00.000Z"
    assert variables.resolve("${start+3d}") == "2024-05-04T11:59:00.000Z"
    assert variables.resolve("from ${start-1.5s} to ${now+2m}") == (
        "from 2024-05-01T11:58:58.500Z to 2024-05-01T12:02:01.500Z"
    )


def test_time_arithmetic_needs_a_time(variables: Variables) -> None:
    with pytest.raises(UnknownVariable) as info:
        variables.resolve("${page+1h}")
    assert str(info.value) == "${page+1h}: 2 is not an ISO 8601 time to move"
    assert info.value.name == "page"


def test_an_unknown_variable_is_named_with_the_known_ones(variables: Variables) -> None:
    with pytest.raises(UnknownVariable) as info:
        variables.resolve({"deviceId": "${arn}"})
    assert info.value.name == "arn"
    assert str(info.value) == (
        "${arn}: unknown variable 'arn' (known: accounts, devices, enabled, life, now, page, "
        "start, tags, webhook)"
    )


def test_nothing_at_a_path_is_an_unknown_variable_too(variables: Variables) -> None:
    with pytest.raises(UnknownVariable) as info:
        variables.resolve("${devices[2]}")
    assert str(info.value) == "${devices[2]}: devices has 2 item(s)"
    with pytest.raises(UnknownVariable) as info:
        variables.resolve("id ${accounts.bob.id}")
    assert str(info.value) == (
        "${accounts.bob.id}: accounts has no key 'bob' (keys: my-rival, owner)"
    )
    with pytest.raises(UnknownVariable, match="never closed"):
        variables.resolve("${page")


def test_scopes_shadow_and_save_globally(variables: Variables) -> None:
    first = variables.child({"index": 0, "page": 7})
    inner = first.child({"device": "G030PM0002"})
    assert inner.resolve("${index}/${page}/${device}/${devices[0]}") == "0/7/G030PM0002/G030PM0001"
    inner.set("local", 1)
    inner.set_global("arn", "arn:x")
    assert inner.get("local") == 1
    assert variables.get("arn") == "arn:x"
    assert first.resolve("${arn}") == "arn:x"
    with pytest.raises(UnknownVariable):
        first.get("local")
    assert variables.resolve("${page}") == 2
    assert "device" in inner.names()
    assert "device" not in variables.names()


def test_now_may_be_set_and_no_clock_means_no_now() -> None:
    assert Variables({"now": "2024-01-01T00:00:00Z"}).resolve("${now+1d}") == (
        "2024-01-02T00:00:00.000Z"
    )
    with pytest.raises(UnknownVariable, match=r"unknown variable 'now' \(known: none\)"):
        Variables().resolve("${now}")


@pytest.mark.parametrize(
    "text",
    ["plain", "${a}", "x ${a.b[0].c} y", "${now+1h}", "${start - 5m}", "$${not one", "${a['x.y']}"],
)
def test_good_templates(text: str) -> None:
    check_template(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${a", "'${a': '${' is never closed by '}'"),
        ("${}", "${}: path is empty"),
        ("${1st}", "${1st}: '1st' is not a variable name"),
        ("${[0]}", "${[0]}: '[0]' is not a variable name"),
        ("${a..b}", "${a..b}: path 'a..b': expected a key at '.b'"),
        ("${now+1y}", "${now+1y}: 'now+1y' is not a variable name"),
        ("${now+1.2.3h}", "${now+1.2.3h}: '1.2.3h' is not a duration"),
    ],
)
def test_bad_templates(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        check_template(text)
    assert str(info.value).startswith(message)
