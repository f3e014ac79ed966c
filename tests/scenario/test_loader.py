"""The scenario loader: good files become a model, bad ones one line with file:line.

The JSON Schema is held to the loader here too: it accepts the good texts and
refuses every bad one whose fault is structural (what a schema can see).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jsonschema_rs
import pytest
import yaml

from simulator.api.model import load_model
from simulator.protocol import ClickType
from simulator.resources import bundled_dir, profile_names
from simulator.scenario import model
from simulator.scenario.loader import (
    NEEDS,
    STEP_KINDS,
    ScenarioError,
    json_schema,
    known_params,
    load_scenario,
    load_scenario_text,
)
from simulator.scenario.matchers import (
    MATCHER_KEYS,
    AllOf,
    Compare,
    Contains,
    Equals,
    Exists,
    Json,
    Length,
    Not,
    OneOf,
    Regex,
)

SOURCE: Final = "scenarios/edited.yaml"

FULL: Final = """\
name: initiate-click-finalize
description: Claim one button the way its owner does.
fleet:
  profile: aws-iot-enterprise-button
  count: 2
  seed: icf
  claim_code: C-0123456789
accounts: [owner, rival]
webhook: true
steps:
  - name: start the claim
    call: InitiateDeviceClaim
    as: owner
    with: {deviceId: "${devices[0]}"}
    expect:
      status: 200
      body:
        state: CLAIM_INITIATED
        devices: {length: 2}
        "devices[0].deviceId": {regex: "^G030PM"}
        "deviceDescription.remainingLife": {gt: 90, le: 100}
        "events[0].stdEvent": {json: {clickType: SINGLE}}
        nextToken: {exists: false}
        devices[1]: {not: {contains: {deviceId: G030PM0000NOSUCH}}}
    save: {arn: deviceDescription.arn, token: nextToken}
  - click: "${devices[0]}"
    type: double
  - click: "${devices[1]}"
    press_ms: [90, 120, 90]
    expect_delivered: false
  - until:
      call: ListDeviceEvents
      with:
        deviceId: "${devices[0]}"
        fromTimeStamp: "${start}"
        toTimeStamp: "${now+1h}"
      expect: {body: {events: {length: {ge: 1}}}}
      save: {events: events}
    timeout: 10s
    interval: 200ms
  - repeat: 3
    as: rival
    steps:
      - call: DescribeDevice
        with: {deviceId: "${devices[0]}"}
        expect: {error: ResourceNotFoundException}
  - for_each: device
    steps:
      - call: ListTagsForResource
        with: {resource-arn: "${arn}"}
  - parallel:
      - call: InitiateDeviceClaim
        as: owner
        with: {deviceId: "${devices[0]}"}
        expect: {status: [200, 409]}
        save: {owner_state: state}
      - call: InitiateDeviceClaim
        as: rival
        with: {deviceId: "${devices[0]}"}
        expect: {status: [200, 409]}
  - sleep: 1s
  - advance: 16m
    backend: false
  - webhook:
      expect: {count: 2, "events[0].deviceEvent.buttonClicked.clickType": SINGLE}
    timeout: 5s
  - set: {first: "${devices[0]}", limit: 2}
  - call: UntagResource
    with: {resourceArn: "${arn}", tagKeys: [color]}
    needs: backend-clock
"""

MINIMAL: Final = "steps:\n  - call: ListDevices\n"


def load(text: str, base_dir: Path = Path("scenarios")) -> model.Scenario:
    return load_scenario_text(text, source=SOURCE, base_dir=base_dir)


def refused(text: str, base_dir: Path = Path("scenarios")) -> str:
    with pytest.raises(ScenarioError) as info:
        load(text, base_dir)
    return str(info.value)


def line_of(text: str, fragment: str) -> int:
    """The one line of ``text`` holding ``fragment``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    assert len(found) == 1, f"{fragment!r} is on lines {found}"
    return found[0]


# --- a good scenario -----------------------------------------------------------------


def test_a_full_scenario_loads_into_the_model() -> None:
    scenario = load(FULL)
    assert scenario.name == "initiate-click-finalize"
    assert scenario.description == "Claim one button the way its owner does."
    assert scenario.path == Path("scenarios/edited.yaml")
    assert scenario.fleet == model.FleetSpec(
        profile="aws-iot-enterprise-button",
        count=2,
        seed="icf",
        claim_code="C-0123456789",
        line=3,
    )
    assert scenario.accounts == ("owner", "rival")
    assert scenario.webhook is True
    kinds = [type(step).__name__ for step in scenario.steps]
    assert kinds == [
        "CallStep",
        "ClickStep",
        "ClickStep",
        "UntilStep",
        "RepeatStep",
        "ForEachStep",
        "ParallelStep",
        "SleepStep",
        "AdvanceStep",
        "WebhookStep",
        "SetStep",
        "CallStep",
    ]
    for step in scenario.steps:
        assert FULL.splitlines()[step.line - 1].startswith("  - "), step


CHECK: Final = """\
name: finalize-without-click
conformance:
  kind: reference
  operations: [FinalizeDeviceClaim, InitiateDeviceClaim]
steps:
  - call: ListDevices
"""


def test_a_conformance_header_is_kept() -> None:
    scenario = load(CHECK)
    assert scenario.conformance == model.ConformanceHeader(
        kind="reference",
        operations=("FinalizeDeviceClaim", "InitiateDeviceClaim"),
        line=2,
    )
    assert load(FULL).conformance is None


CONFORMANCE_STEPS: Final = """\
accounts: [owner, rival]
steps:
  - call: ListDevices
    with: {maxResults: 2}
    paginate: true
    expect:
      shape: true
      headers: {Content-Type: {regex: json}, x-amzn-RequestId: {exists: true}}
  - request:
      method: POST
      path: "/claims/${claim_code}?a=1"
      body: "{not json"
      headers: {Content-Type: text/plain, User-Agent: null, X-Count: 3}
      sign: bad-signature
    as: rival
    expect: {status: 403, headers: {x-amzn-errortype: InvalidSignatureException}}
    save: {code: code}
  - request: {method: GET, path: /devices}
  - request: {method: PUT, path: "/x", body: {a: "${b}"}, sign: false}
  - publish: "${devices[0]}"
    payload: {serialNumber: "${devices[0]}", clickType: SINGLE}
  - publish: "${devices[0]}"
    payload: not json
    topic: "iotbutton/${devices[0]}"
    expect_acknowledged: false
  - parallel:
      - request: {method: GET, path: /devices, sign: unknown-key}
      - publish: "${devices[0]}"
        payload: ""
        timeout: 2s
"""


def test_paginate_shape_and_header_expectations() -> None:
    call = load(CONFORMANCE_STEPS).steps[0]
    assert isinstance(call, model.CallStep)
    assert call.paginate is True
    assert call.name == "ListDevices as owner (all pages)"
    assert call.expect is not None
    assert call.expect.shape is True
    assert call.expect.headers == (
        ("Content-Type", Regex("json")),
        ("x-amzn-RequestId", Exists(True)),
    )
    plain = load(MINIMAL).steps[0]
    assert isinstance(plain, model.CallStep)
    assert plain.paginate is False


def test_request_steps() -> None:
    steps = load(CONFORMANCE_STEPS).steps
    raw, bare, unsigned = steps[1], steps[2], steps[3]
    assert isinstance(raw, model.RequestStep)
    assert (raw.method, raw.path, raw.body) == ("POST", "/claims/${claim_code}?a=1", "{not json")
    assert raw.headers == {"Content-Type": "text/plain", "User-Agent": None, "X-Count": "3"}
    assert (raw.sign, raw.account, raw.save) == ("bad-signature", "rival", {"code": "code"})
    assert raw.name == "POST /claims/${claim_code}?a=1 as rival (bad-signature)"
    assert raw.expect is not None
    assert raw.expect.status == (403,)
    assert raw.expect.headers == (("x-amzn-errortype", Equals("InvalidSignatureException")),)
    assert isinstance(bare, model.RequestStep)
    assert (bare.sign, bare.body, bare.headers, bare.expect) == ("true", None, {}, None)
    assert (bare.account, bare.name) == ("owner", "GET /devices as owner")
    assert isinstance(unsigned, model.RequestStep)
    assert (unsigned.sign, unsigned.body) == ("false", {"a": "${b}"})
    assert unsigned.name == "PUT /x as owner unsigned"


def test_publish_steps() -> None:
    steps = load(CONFORMANCE_STEPS).steps
    click, raw, parallel = steps[4], steps[5], steps[6]
    assert isinstance(click, model.PublishStep)
    assert click.device == "${devices[0]}"
    assert click.payload == {"serialNumber": "${devices[0]}", "clickType": "SINGLE"}
    assert (click.topic, click.expect_acknowledged, click.timeout) == (None, True, 10.0)
    assert (click.account, click.name) == (None, "publish as ${devices[0]}")
    assert isinstance(raw, model.PublishStep)
    assert (raw.payload, raw.topic) == ("not json", "iotbutton/${devices[0]}")
    assert (raw.expect_acknowledged, raw.timeout) == (False, 3.0)
    assert raw.name == "publish as ${devices[0]} to iotbutton/${devices[0]} (not acknowledged)"
    assert isinstance(parallel, model.ParallelStep)
    request, publish = parallel.steps
    assert isinstance(request, model.RequestStep)
    assert request.sign == "unknown-key"
    assert isinstance(publish, model.PublishStep)
    assert (publish.payload, publish.timeout) == ("", 2.0)


def test_a_call_keeps_params_raw_and_builds_matchers() -> None:
    call = load(FULL).steps[0]
    assert isinstance(call, model.CallStep)
    assert call.name == "start the claim"
    assert call.account == "owner"
    assert call.operation == "InitiateDeviceClaim"
    assert call.params == {"deviceId": "${devices[0]}"}
    assert call.save == {"arn": "deviceDescription.arn", "token": "nextToken"}
    assert call.expect is not None
    assert call.expect.status == (200,)
    assert call.expect.error is None
    assert call.expect.line == line_of(FULL, "status: 200") - 1
    assert call.expect.body == (
        ("state", Equals("CLAIM_INITIATED")),
        ("devices", Length(Equals(2))),
        ("devices[0].deviceId", Regex("^G030PM")),
        ("deviceDescription.remainingLife", AllOf((Compare("gt", 90), Compare("le", 100)))),
        ("events[0].stdEvent", Json((("clickType", Equals("SINGLE")),))),
        ("nextToken", Exists(False)),
        ("devices[1]", Not(Contains({"deviceId": "G030PM0000NOSUCH"}))),
    )


def test_clicks_take_a_type_or_raw_timings() -> None:
    steps = load(FULL).steps
    double, raw = steps[1], steps[2]
    assert isinstance(double, model.ClickStep)
    assert isinstance(raw, model.ClickStep)
    assert (double.device, double.click_type, double.press_ms) == (
        "${devices[0]}",
        ClickType.DOUBLE,
        None,
    )
    assert double.expect_delivered is True
    assert double.name == "click double on ${devices[0]}"
    assert (raw.click_type, raw.press_ms, raw.expect_delivered) == (None, (90, 120, 90), False)
    assert raw.name == "click 90,120,90 ms on ${devices[1]} (not delivered)"


def test_containers_pass_their_account_to_their_steps() -> None:
    steps = load(FULL).steps
    until, repeat, for_each, parallel = steps[3], steps[4], steps[5], steps[6]
    assert isinstance(until, model.UntilStep)
    assert (until.timeout, until.interval) == (10.0, 0.2)
    assert until.account == until.call.account == "owner"
    assert until.call.save == {"events": "events"}
    assert until.name == "until ListDeviceEvents as owner matches"
    assert isinstance(repeat, model.RepeatStep)
    assert repeat.times == 3
    assert repeat.account is None
    assert [step.account for step in repeat.steps] == ["rival"]
    inner = repeat.steps[0]
    assert isinstance(inner, model.CallStep)
    assert inner.expect == model.Expect(
        status=None, error="ResourceNotFoundException", body=(), line=inner.line + 2
    )
    assert isinstance(for_each, model.ForEachStep)
    assert for_each.variable == "device"
    assert isinstance(parallel, model.ParallelStep)
    assert [step.account for step in parallel.steps] == ["owner", "rival"]


def test_the_other_steps() -> None:
    steps = load(FULL).steps
    sleep, advance, webhook, set_step, untag = steps[7:]
    assert isinstance(sleep, model.SleepStep)
    assert (sleep.seconds, sleep.name) == (1.0, "sleep 1s")
    assert isinstance(advance, model.AdvanceStep)
    assert (advance.seconds, advance.backend) == (960.0, False)
    assert advance.name == "advance 16m (devices only)"
    assert isinstance(webhook, model.WebhookStep)
    assert webhook.timeout == 5.0
    assert webhook.expect.body == (
        ("count", Equals(2)),
        ("events[0].deviceEvent.buttonClicked.clickType", Equals("SINGLE")),
    )
    assert isinstance(set_step, model.SetStep)
    assert set_step.values == {"first": "${devices[0]}", "limit": 2}
    assert set_step.name == "set first, limit"
    assert isinstance(untag, model.CallStep)
    assert untag.params == {"resourceArn": "${arn}", "tagKeys": ["color"]}
    assert untag.needs == frozenset({"backend-clock"})


def test_until_may_say_as_inside_and_check_steps_check_values() -> None:
    text = """\
accounts: [owner, rival]
steps:
  - until: {call: ListDevices, as: rival}
  - check: "alice ${a}, bob ${b}"
    expect: {one_of: ["alice 200, bob 409", "alice 409, bob 200"]}
  - check: ${count}
    expect: 2
"""
    until, check, count = load(text).steps
    assert isinstance(until, model.UntilStep)
    assert until.account == until.call.account == "rival"
    assert isinstance(check, model.CheckStep)
    assert check.value == "alice ${a}, bob ${b}"
    assert check.expect == OneOf(("alice 200, bob 409", "alice 409, bob 200"))
    assert check.name == "check alice ${a}, bob ${b}"
    assert isinstance(count, model.CheckStep)
    assert (count.value, count.expect) == ("${count}", Equals(2))


def test_defaults() -> None:
    scenario = load(MINIMAL)
    assert scenario.name == "edited"
    assert scenario.description == ""
    assert scenario.fleet == model.FleetSpec(
        profile="aws-iot-enterprise-button", count=1, seed=None, claim_code=None, line=1
    )
    assert scenario.accounts == ("owner",)
    assert scenario.webhook is False
    (call,) = scenario.steps
    assert isinstance(call, model.CallStep)
    assert (call.name, call.account, call.params, call.expect, call.save, call.needs) == (
        "ListDevices as owner",
        "owner",
        {},
        None,
        {},
        frozenset(),
    )
    click = load("steps: [{click: X}]").steps[0]
    assert isinstance(click, model.ClickStep)
    assert (click.click_type, click.press_ms) == (ClickType.SINGLE, None)
    until = load("steps: [{until: {call: ListDevices}}]").steps[0]
    assert isinstance(until, model.UntilStep)
    assert (until.timeout, until.interval, until.call.expect) == (10.0, 0.25, None)
    advance = load("steps: [{advance: 2d}]").steps[0]
    assert isinstance(advance, model.AdvanceStep)
    assert (advance.seconds, advance.backend) == (172800.0, True)


def test_values_stay_json_dates_and_norway_stay_text() -> None:
    text = """\
steps:
  - call: ListDeviceEvents
    with: {deviceId: NO, fromTimeStamp: 2024-05-01T12:00:00Z, toTimeStamp: 2024-05-02}
    expect: {body: {flag: yes, "a.b": [1, 2.5, null, true]}}
"""
    call = load(text).steps[0]
    assert isinstance(call, model.CallStep)
    assert call.params == {
        "deviceId": "NO",
        "fromTimeStamp": "2024-05-01T12:00:00Z",
        "toTimeStamp": "2024-05-02",
    }
    assert call.expect is not None
    assert call.expect.body == (("flag", Equals("yes")), ("a.b", Equals([1, 2.5, None, True])))


def test_a_mapping_without_matcher_keys_is_compared_whole() -> None:
    text = """\
steps:
  - call: DescribeDevice
    with: {deviceId: X}
    expect:
      body:
        deviceDescription.attributes: {color: red}
        deviceDescription.tags: {equals: {length: 1}}
"""
    call = load(text).steps[0]
    assert isinstance(call, model.CallStep)
    assert call.expect is not None
    assert call.expect.body == (
        ("deviceDescription.attributes", Equals({"color": "red"})),
        ("deviceDescription.tags", Equals({"length": 1})),
    )


def test_parameters_go_by_wire_name_or_camel_case_name() -> None:
    assert known_params("TagResource") == {
        "resource-arn": "resource-arn",
        "resourceArn": "resource-arn",
        "tags": "tags",
    }
    for operation, spec in load_model().operations.items():
        wire = {member.location_name for member in spec.inputs}
        assert set(known_params(operation).values()) == wire
    step = load("steps: [{call: TagResource, with: {resource-arn: A, tags: {}}}]").steps[0]
    assert isinstance(step, model.CallStep)
    assert step.params == {"resource-arn": "A", "tags": {}}


def test_a_profile_path_is_found_beside_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text("")
    text = "fleet: {profile: mine.toml}\n" + MINIMAL
    scenario = load(text, base_dir=tmp_path)
    assert scenario.fleet.profile == str((tmp_path / "mine.toml").resolve())
    message = refused("fleet: {profile: other.toml}\n" + MINIMAL, base_dir=tmp_path)
    assert message == (
        f"{SOURCE}:1: fleet.profile: no such profile file: {(tmp_path / 'other.toml').resolve()}"
    )


def test_every_bundled_profile_name_is_accepted() -> None:
    for name in profile_names():
        assert load(f"fleet: {{profile: {name}}}\n{MINIMAL}").fleet.profile == name


def test_load_scenario_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "claim.yaml"
    path.write_text(MINIMAL)
    scenario = load_scenario(path)
    assert (scenario.name, scenario.path) == ("claim", path)
    with pytest.raises(ScenarioError, match=r"^.*missing\.yaml: cannot read the scenario: "):
        load_scenario(tmp_path / "missing.yaml")
    path.write_bytes(b"steps: [{call: \xff}]\n")
    with pytest.raises(ScenarioError, match=r"claim\.yaml:1: not UTF-8 text"):
        load_scenario(path)


# --- bad files -----------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    id: str
    text: str
    at: str | int
    """The fragment on the line the error names, or the line number itself."""
    place: str
    reason: str
    structural: bool
    """Whether the JSON Schema can see the fault too."""


def steps(body: str, head: str = "") -> str:
    return head + "steps:\n" + textwrap.indent(textwrap.dedent(body), "  ")


BAD: Final = (
    Bad("yaml-syntax", steps("- call: [ListDevices\n"), 3, "", "not valid YAML: ", False),
    Bad("yaml-tab", "steps:\n\t- call: X\n", 2, "", "not valid YAML: ", False),
    Bad("empty-file", "# nothing\n", 1, "", "empty: a scenario is a mapping with steps", False),
    Bad("not-a-mapping", "- call: ListDevices\n", 1, "scenario", "must be a mapping", True),
    Bad(
        "unknown-top-key",
        "stpes: []\n" + MINIMAL,
        "stpes",
        "stpes",
        "unknown key, did you mean 'steps'? (known here: name, description, fleet,",
        True,
    ),
    Bad("missing-steps", "name: x\n", 1, "steps", "missing: a scenario needs", True),
    Bad("empty-steps", "steps: []\n", 1, "steps", "empty: give at least one step", True),
    Bad(
        "steps-not-a-list", "steps: {call: X}\n", 1, "steps", "must be a list, got a mapping", True
    ),
    Bad("step-not-a-mapping", steps("- ListDevices\n"), 2, "steps[0]", "must be a mapping", True),
    Bad(
        "unknown-step-kind",
        steps("- clik: X\n"),
        "clik",
        "steps[0].clik",
        "unknown step kind, did you mean 'click'? (kinds: call, click, until,",
        True,
    ),
    Bad("no-step-kind", steps("- name: x\n"), "name", "steps[0]", "no step kind: give one", True),
    Bad(
        "two-step-kinds",
        steps("- call: ListDevices\n  sleep: 1s\n"),
        "sleep",
        "steps[0]",
        "two step kinds, call and sleep: a step does one thing",
        True,
    ),
    Bad(
        "unknown-step-key",
        steps("- call: DescribeDevice\n  wth: {deviceId: X}\n"),
        "wth",
        "steps[0].wth",
        "unknown key, did you mean 'with'? (known here: name, as, needs, call, with,",
        True,
    ),
    Bad(
        "unknown-operation",
        steps("- call: ListDevice\n"),
        "ListDevice",
        "steps[0].call",
        "unknown operation 'ListDevice', did you mean 'ListDevices'? (operations: ",
        True,
    ),
    Bad(
        "unknown-parameter",
        steps("- call: DescribeDevice\n  with: {deviceID: X}\n"),
        "deviceID",
        "steps[0].with.deviceID",
        "DescribeDevice has no parameter 'deviceID', did you mean 'deviceId'? "
        "(its parameters: deviceId)",
        False,
    ),
    Bad(
        "parameter-of-another-operation",
        steps("- call: ListDevices\n  with: {deviceId: X}\n"),
        "deviceId",
        "steps[0].with.deviceId",
        "(its parameters: deviceType, maxResults, nextToken)",
        False,
    ),
    Bad(
        "parameter-twice",
        steps("- call: ListTagsForResource\n  with: {resource-arn: A, resourceArn: A}\n"),
        "resourceArn",
        "steps[0].with.resourceArn",
        "the same parameter as 'resource-arn'; give one",
        False,
    ),
    Bad(
        "unknown-account",
        steps("- call: ListDevices\n  as: rivall\n", head="accounts: [owner, rival]\n"),
        "rivall",
        "steps[0].as",
        "unknown account 'rivall' (the scenario's accounts: owner, rival)",
        False,
    ),
    Bad(
        "as-on-a-click",
        steps("- click: X\n  as: owner\n"),
        "as:",
        "steps[0].as",
        "a click step acts as no account",
        True,
    ),
    Bad(
        "bad-duration",
        steps("- sleep: 10 sec\n"),
        "sleep",
        "steps[0].sleep",
        "'10 sec' is not a duration such as 500ms, 10s, 5m, 2h or 3d",
        True,
    ),
    Bad(
        "negative-duration",
        steps("- sleep: -1\n"),
        "sleep",
        "steps[0].sleep",
        "must be a duration at least 0",
        True,
    ),
    Bad(
        "zero-timeout",
        steps("- until: {call: ListDevices}\n  timeout: 0s\n"),
        "timeout",
        "steps[0].timeout",
        "must be a duration more than 0",
        False,
    ),
    Bad(
        "bad-regex",
        steps("- call: ListDevices\n  expect: {body: {nextToken: {regex: '(a'}}}\n"),
        "regex",
        "steps[0].expect.body.nextToken.regex",
        "'(a' is not a regular expression: missing ), unterminated subpattern",
        False,
    ),
    Bad(
        "unknown-matcher",
        steps("- call: ListDevices\n  expect:\n    body:\n      devices: {lenght: 2}\n"),
        "lenght",
        "steps[0].expect.body.devices.lenght",
        "unknown matcher, did you mean 'length'? (matchers: equals, contains,",
        False,
    ),
    Bad(
        "unknown-matcher-beside-one",
        steps("- call: ListDevices\n  expect:\n    body:\n      devices: {length: 2, any: 1}\n"),
        "devices",
        "steps[0].expect.body.devices.any",
        "unknown matcher beside length (matchers: ",
        False,
    ),
    Bad(
        "comparison-not-a-number",
        steps("- call: ListDevices\n  expect: {body: {a: {gt: '9'}}}\n"),
        "gt",
        "steps[0].expect.body.a.gt",
        'must be a number or ${...}, got "9"',
        False,
    ),
    Bad(
        "comparison-with-a-boolean",
        steps("- call: ListDevices\n  expect: {body: {a: {le: true}}}\n"),
        "le",
        "steps[0].expect.body.a.le",
        "must be a number or ${...}, got true",
        False,
    ),
    Bad(
        "length-not-a-count",
        steps("- call: ListDevices\n  expect: {body: {a: {length: -1}}}\n"),
        "length",
        "steps[0].expect.body.a.length",
        "must be an integer >= 0 or ${...}, got -1",
        False,
    ),
    Bad(
        "length-of-no-matcher",
        steps("- call: ListDevices\n  expect: {body: {a: {length: {size: 1}}}}\n"),
        "length",
        "steps[0].expect.body.a.length",
        "give a number or matchers such as {ge: 1}",
        False,
    ),
    Bad(
        "exists-not-a-boolean",
        steps("- call: ListDevices\n  expect: {body: {a: {exists: 1}}}\n"),
        "exists",
        "steps[0].expect.body.a.exists",
        "must be true or false, got 1",
        False,
    ),
    Bad(
        "one-of-empty",
        steps("- call: ListDevices\n  expect: {body: {a: {one_of: []}}}\n"),
        "one_of",
        "steps[0].expect.body.a.one_of",
        "empty: give the values allowed",
        False,
    ),
    Bad(
        "bad-body-path",
        steps("- call: ListDevices\n  expect:\n    body:\n      'devices[x]': 1\n"),
        "devices[x]",
        'steps[0].expect.body["devices[x]"]',
        "path 'devices[x]': expected [0] or [\"key\"] at '[x]'",
        False,
    ),
    Bad(
        "unknown-expect-key",
        steps("- call: ListDevices\n  expect: {code: 200}\n"),
        "code",
        "steps[0].expect.code",
        "unknown key (known here: status, error, body, headers, shape)",
        True,
    ),
    Bad(
        "bad-status",
        steps("- call: ListDevices\n  expect: {status: [200, 99]}\n"),
        "status",
        "steps[0].expect.status",
        "must be an integer in 100..599, got 99",
        True,
    ),
    Bad(
        "error-with-a-2xx-status",
        steps("- call: ListDevices\n  expect: {status: 200, error: X}\n"),
        "error",
        "steps[0].expect.error",
        "an error cannot come with status 200",
        False,
    ),
    Bad(
        "click-type-and-press-ms",
        steps("- click: X\n  type: double\n  press_ms: [90]\n"),
        "press_ms",
        "steps[0].press_ms",
        "give type or press_ms, not both",
        True,
    ),
    Bad(
        "unknown-click-type",
        steps("- click: X\n  type: triple\n"),
        "type",
        "steps[0].type",
        'must be single, double or long, got "triple"',
        True,
    ),
    Bad(
        "press-ms-zero",
        steps("- click: X\n  press_ms: [90, 0, 90]\n"),
        "press_ms",
        "steps[0].press_ms",
        "must be a duration in ms in 1..60000, got 0",
        True,
    ),
    Bad(
        "press-ms-not-integers",
        steps("- click: X\n  press_ms: [90, 1.5, 90]\n"),
        "press_ms",
        "steps[0].press_ms",
        "must be a duration in ms in 1..60000, got 1.5",
        True,
    ),
    Bad(
        "press-ms-text",
        steps("- click: X\n  press_ms: '90,120,90'\n"),
        "press_ms",
        "steps[0].press_ms",
        'must be a duration in ms in 1..60000, got "90,120,90"',
        True,
    ),
    Bad(
        "press-ms-ending-with-a-gap",
        steps("- click: X\n  press_ms: [90, 120]\n"),
        "press_ms",
        "steps[0].press_ms",
        "press, gap, press... must end with a press (got 2)",
        False,
    ),
    Bad(
        "webhook-step-without-webhook",
        steps("- webhook: {expect: {count: 1}}\n"),
        "webhook",
        "steps[0].webhook",
        "the scenario must set 'webhook: true' (at the top) to run a receiver",
        False,
    ),
    Bad(
        "webhook-without-expect",
        steps("- webhook: {}\n", head="webhook: true\n"),
        "- webhook",
        "steps[0].webhook",
        "expect: missing",
        True,
    ),
    Bad(
        "parallel-containing-repeat",
        steps("- parallel:\n    - repeat: 2\n      steps: [{call: ListDevices}]\n"),
        "repeat",
        "steps[0].parallel[0]",
        "a repeat step cannot run in parallel (only call, click, until, request, publish)",
        True,
    ),
    Bad(
        "parallel-containing-for-each",
        steps("- parallel:\n    - for_each: d\n      steps: [{call: ListDevices}]\n"),
        "for_each",
        "steps[0].parallel[0]",
        "a for_each step cannot run in parallel",
        True,
    ),
    Bad(
        "until-as-twice",
        steps("- until: {call: ListDevices, as: owner}\n  as: owner\n"),
        "until",
        "steps[0].until.as",
        "as is given on the step too",
        False,
    ),
    Bad(
        "check-without-expect",
        steps("- check: '${a}'\n"),
        "check",
        "steps[0].expect",
        "missing: say what the value must be",
        True,
    ),
    Bad(
        "repeat-zero",
        steps("- repeat: 0\n  steps: [{sleep: 1}]\n"),
        "repeat",
        "steps[0].repeat",
        "must be an integer of at least 1, got 0",
        True,
    ),
    Bad(
        "repeat-text",
        steps("- repeat: twice\n  steps: [{sleep: 1}]\n"),
        "repeat",
        "steps[0].repeat",
        'must be an integer of at least 1, got "twice"',
        True,
    ),
    Bad(
        "repeat-without-steps",
        steps("- repeat: 2\n"),
        "repeat",
        "steps[0].steps",
        "missing: repeat needs steps",
        True,
    ),
    Bad(
        "nested-error-names-the-path",
        steps("- repeat: 2\n  steps:\n    - sleep: 1s\n    - call: Nope\n"),
        "Nope",
        "steps[0].steps[1].call",
        "unknown operation 'Nope'",
        True,
    ),
    Bad(
        "for-each-builtin",
        steps("- for_each: devices\n  steps: [{sleep: 1}]\n"),
        "for_each",
        "steps[0].for_each",
        "'devices' is a built-in variable; choose another name",
        True,
    ),
    Bad(
        "set-bad-name",
        steps("- set: {my-var: 1}\n"),
        "set",
        "steps[0].set.my-var",
        "'my-var': a variable name is letters, digits and _",
        True,
    ),
    Bad(
        "save-bad-path",
        steps("- call: ListDevices\n  save: {token: 'a..b'}\n"),
        "save",
        "steps[0].save.token",
        "path 'a..b': expected a key at '.b'",
        False,
    ),
    Bad(
        "unknown-need",
        steps("- sleep: 1s\n  needs: [backend-clok]\n"),
        "needs",
        "steps[0].needs",
        "unknown need 'backend-clok' (known: backend-clock)",
        True,
    ),
    Bad(
        "bad-expression",
        steps("- call: DescribeDevice\n  with: {deviceId: '${devices[0]'}\n"),
        "with",
        "steps[0].with.deviceId",
        "'${devices[0]': '${' is never closed by '}'",
        False,
    ),
    Bad(
        "bad-expression-in-a-name",
        steps("- name: 'claim ${1st}'\n  call: ListDevices\n"),
        "name",
        "steps[0].name",
        "${1st}: '1st' is not a variable name",
        False,
    ),
    Bad(
        "bad-time-arithmetic",
        steps("- set: {later: '${now+1y}'}\n"),
        "set",
        "steps[0].set.later",
        "${now+1y}: 'now+1y' is not a variable name",
        False,
    ),
    Bad(
        "key-given-twice",
        steps("- call: ListDevices\n  call: DescribeDevice\n"),
        "DescribeDevice",
        "steps[0].call",
        "given twice (first on line 2)",
        False,
    ),
    Bad(
        "not-json",
        steps("- set: {blob: !!binary aGk=}\n"),
        "blob",
        "steps[0].set.blob",
        "'aGk=' is bytes, not a JSON value",
        False,
    ),
    Bad(
        "not-a-finite-number",
        steps("- set: {big: .inf}\n"),
        "big",
        "steps[0].set.big",
        "'.inf' is not a JSON number",
        False,
    ),
    Bad(
        "bad-fleet-count",
        "fleet: {count: 0}\n" + MINIMAL,
        1,
        "fleet.count",
        "must be an integer in 1..1000, got 0",
        True,
    ),
    Bad(
        "fleet-count-text",
        "fleet:\n  count: two\n" + MINIMAL,
        "two",
        "fleet.count",
        'must be an integer in 1..1000, got "two"',
        True,
    ),
    Bad(
        "profile-not-text",
        "fleet:\n  profile: 5\n" + MINIMAL,
        "profile",
        "fleet.profile",
        "must be text, got 5",
        True,
    ),
    Bad(
        "unknown-profile",
        "fleet:\n  profile: aws-iot-buton\n" + MINIMAL,
        "profile",
        "fleet.profile",
        "unknown profile 'aws-iot-buton' (bundled: ",
        False,
    ),
    Bad(
        "unknown-fleet-key",
        "fleet:\n  size: 2\n" + MINIMAL,
        "size",
        "fleet.size",
        "unknown key (known here: profile, count, seed, claim_code)",
        True,
    ),
    Bad(
        "bad-claim-code",
        "fleet:\n  claim_code: C-short\n" + MINIMAL,
        "claim_code",
        "fleet.claim_code",
        "'C-short': a claim code is C- and 10 to 38 letters or digits",
        True,
    ),
    Bad(
        "duplicate-accounts",
        "accounts:\n  - owner\n  - rival\n  - owner\n" + MINIMAL,
        4,
        "accounts[2]",
        "'owner' is given twice",
        True,
    ),
    Bad("no-accounts", "accounts: []\n" + MINIMAL, 1, "accounts", "empty: name at least one", True),
    Bad(
        "yaml-unclosed",
        steps("- call: ListDevices\n  with: {maxResults: 5\n"),
        4,
        "",
        "not valid YAML: while parsing a flow mapping on line 3: expected ',' or '}', but got "
        "'<stream end>'",
        False,
    ),
    Bad(
        "yaml-control-character",
        "steps:\n  - \x07call: X\n",
        2,
        "",
        "not valid YAML: character #x0007: special characters are not allowed",
        False,
    ),
    Bad(
        "yaml-two-documents",
        "a: 1\n---\nb: 2\n",
        2,
        "",
        "not valid YAML: expected a single document in the stream on line 1: but found another "
        "document",
        False,
    ),
    Bad(
        "yaml-unknown-alias",
        steps("- sleep: *nope\n"),
        2,
        "",
        "not valid YAML: found undefined alias 'nope'",
        False,
    ),
    Bad(
        "yaml-bad-integer",
        steps("- sleep: !!int x\n"),
        2,
        "steps[0].sleep",
        "not a YAML value: invalid literal for int() with base 10: 'x'",
        False,
    ),
    Bad(
        "yaml-unknown-tag",
        steps("- sleep: !custom 1\n"),
        2,
        "steps[0].sleep",
        "not a YAML value: could not determine a constructor for the tag '!custom'",
        False,
    ),
    Bad(
        "key-not-text",
        steps("- set: {1: a}\n"),
        2,
        "steps[0].set",
        "keys must be text, got 1",
        False,
    ),
    Bad(
        "bad-account-name",
        "accounts: [Owner]\n" + MINIMAL,
        1,
        "accounts[0]",
        "'Owner': an account name is [a-z][a-z0-9_-]*",
        True,
    ),
    Bad(
        "conformance-not-a-mapping",
        "conformance: model\n" + MINIMAL,
        1,
        "conformance",
        'must be a mapping, got "model"',
        True,
    ),
    Bad(
        "conformance-unknown-key",
        "conformance: {kind: model, operations: [ListDevices], group: x}\n" + MINIMAL,
        1,
        "conformance.group",
        "unknown key (known here: kind, operations)",
        True,
    ),
    Bad(
        "conformance-without-kind",
        "conformance:\n  operations: [ListDevices]\n" + MINIMAL,
        2,
        "conformance.kind",
        "missing: model or reference",
        True,
    ),
    Bad(
        "conformance-unknown-kind",
        "conformance:\n  kind: modle\n  operations: [ListDevices]\n" + MINIMAL,
        "modle",
        "conformance.kind",
        "unknown kind 'modle', did you mean 'model'? (kinds: model, reference)",
        True,
    ),
    Bad(
        "conformance-without-operations",
        "conformance:\n  kind: model\n" + MINIMAL,
        2,
        "conformance.operations",
        "missing: the operations the check is about",
        True,
    ),
    Bad(
        "conformance-no-operations",
        "conformance:\n  kind: model\n  operations: []\n" + MINIMAL,
        "operations: []",
        "conformance.operations",
        "empty: name at least one operation",
        True,
    ),
    Bad(
        "conformance-operations-not-a-list",
        "conformance:\n  kind: model\n  operations: ListDevices\n" + MINIMAL,
        "operations: ListDevices",
        "conformance.operations",
        'must be a list, got "ListDevices"',
        True,
    ),
    Bad(
        "conformance-unknown-operation",
        "conformance:\n  kind: model\n  operations: [ListDevice]\n" + MINIMAL,
        "ListDevice]",
        "conformance.operations[0]",
        "unknown operation 'ListDevice', did you mean 'ListDevices'?",
        True,
    ),
    Bad(
        "conformance-operation-twice",
        "conformance:\n  kind: model\n  operations: [ListDevices, ListDevices]\n" + MINIMAL,
        "operations: [",
        "conformance.operations[1]",
        "'ListDevices' is given twice",
        True,
    ),
    Bad(
        "paginate-not-a-boolean",
        steps("- call: ListDevices\n  paginate: yes\n"),
        "paginate",
        "steps[0].paginate",
        'must be true or false, got "yes"',
        False,
    ),
    Bad(
        "paginate-without-paginator",
        steps("- call: DescribeDevice\n  with: {deviceId: X}\n  paginate: true\n"),
        "paginate",
        "steps[0].paginate",
        "DescribeDevice has no paginator in the model (paginated: ListDeviceEvents, ListDevices)",
        False,
    ),
    Bad(
        "paginate-with-a-token",
        steps("- call: ListDevices\n  with: {nextToken: abc}\n  paginate: true\n"),
        "nextToken",
        "steps[0].with.nextToken",
        "paginate follows nextToken itself: leave it out",
        False,
    ),
    Bad(
        "paginate-in-until",
        steps("- until: {call: ListDevices, paginate: true}\n"),
        2,
        "steps[0].until.paginate",
        "unknown key",
        True,
    ),
    Bad(
        "expect-headers-not-a-mapping",
        steps("- call: ListDevices\n  expect: {headers: [a]}\n"),
        "headers",
        "steps[0].expect.headers",
        "must be a mapping, got a list",
        True,
    ),
    Bad(
        "expect-header-name",
        steps("- call: ListDevices\n  expect:\n    headers: {Content Type: json}\n"),
        "Content Type",
        'steps[0].expect.headers["Content Type"]',
        "'Content Type' is not a header name",
        True,
    ),
    Bad(
        "expect-header-twice",
        steps("- call: ListDevices\n  expect:\n    headers:\n      ETag: a\n      etag: b\n"),
        "etag: b",
        "steps[0].expect.headers.etag",
        "the same header as 'ETag' (names ignore case)",
        False,
    ),
    Bad(
        "expect-header-matcher",
        steps("- call: ListDevices\n  expect:\n    headers: {ETag: {regx: a}}\n"),
        "regx",
        "steps[0].expect.headers.ETag.regx",
        "unknown matcher, did you mean 'regex'?",
        False,
    ),
    Bad(
        "shape-not-a-boolean",
        steps("- call: ListDevices\n  expect: {shape: 1}\n"),
        "shape",
        "steps[0].expect.shape",
        "must be true or false, got 1",
        True,
    ),
    Bad(
        "shape-with-an-error",
        steps("- call: ListDevices\n  expect: {error: X, shape: true}\n"),
        "shape",
        "steps[0].expect.shape",
        "the output shape is that of a 2xx reply",
        False,
    ),
    Bad(
        "shape-with-a-4xx-status",
        steps("- call: ListDevices\n  expect: {status: [200, 404], shape: true}\n"),
        "shape",
        "steps[0].expect.shape",
        "it cannot come with an error or a status outside 2xx",
        False,
    ),
    Bad(
        "shape-on-a-request",
        steps("- request: {method: GET, path: /devices}\n  expect: {shape: true}\n"),
        "shape",
        "steps[0].expect.shape",
        "a request has no operation whose output shape the body could fit",
        False,
    ),
    Bad(
        "request-not-a-mapping",
        steps("- request: GET /devices\n"),
        "request",
        "steps[0].request",
        'must be a mapping, got "GET /devices"',
        True,
    ),
    Bad(
        "request-unknown-key",
        steps("- request: {method: GET, path: /devices, query: a}\n"),
        "request",
        "steps[0].request.query",
        "unknown key (known here: method, path, body, headers, sign)",
        True,
    ),
    Bad(
        "request-without-method",
        steps("- request: {path: /devices}\n"),
        "request",
        "steps[0].request.method",
        "missing: a request needs a method and a path",
        True,
    ),
    Bad(
        "request-without-path",
        steps("- request:\n    method: GET\n"),
        "method",
        "steps[0].request.path",
        "missing: a request needs a method and a path",
        True,
    ),
    Bad(
        "request-bad-method",
        steps("- request: {method: GET /, path: /devices}\n"),
        "request",
        "steps[0].request.method",
        "'GET /' is not an HTTP method",
        True,
    ),
    Bad(
        "request-relative-path",
        steps("- request: {method: GET, path: devices}\n"),
        "request",
        "steps[0].request.path",
        "'devices': a path starts with / and is printable ASCII without spaces or #",
        True,
    ),
    Bad(
        "request-path-with-a-space",
        steps("- request: {method: GET, path: /a b}\n"),
        "request",
        "steps[0].request.path",
        "(percent-encode the rest)",
        True,
    ),
    Bad(
        "request-path-with-a-fragment",
        steps('- request: {method: GET, path: "/a#b"}\n'),
        "request",
        "steps[0].request.path",
        "(percent-encode the rest)",
        True,
    ),
    Bad(
        "request-bad-sign",
        steps("- request: {method: GET, path: /devices, sign: maybe}\n"),
        "request",
        "steps[0].request.sign",
        'must be true, false, unknown-key, bad-signature or skewed, got "maybe"',
        True,
    ),
    Bad(
        "request-body-a-number",
        steps("- request: {method: POST, path: /devices, body: 5}\n"),
        "request",
        "steps[0].request.body",
        "must be text (sent as is) or a mapping or list (sent as JSON), got 5",
        True,
    ),
    Bad(
        "request-bad-header-name",
        steps("- request:\n    method: GET\n    path: /devices\n    headers: {X Y: 1}\n"),
        "X Y",
        'steps[0].request.headers["X Y"]',
        "'X Y' is not a header name",
        True,
    ),
    Bad(
        "request-header-twice",
        steps("- request:\n    method: GET\n    path: /\n    headers: {X-A: 1, x-a: 2}\n"),
        "headers",
        "steps[0].request.headers.x-a",
        "the same header as 'X-A' (names ignore case)",
        False,
    ),
    Bad(
        "request-framing-header",
        steps("- request:\n    method: GET\n    path: /\n    headers: {Content-Length: 1}\n"),
        "headers",
        "steps[0].request.headers.Content-Length",
        "set from the body: leave it out",
        False,
    ),
    Bad(
        "request-signed-authorization",
        steps("- request:\n    method: GET\n    path: /\n    headers: {Authorization: x}\n"),
        "headers",
        "steps[0].request.headers.Authorization",
        "the signer sets it; to send your own, say sign: false",
        False,
    ),
    Bad(
        "request-signed-without-host",
        steps("- request:\n    method: GET\n    path: /\n    headers: {host: null}\n"),
        "headers",
        "steps[0].request.headers.host",
        "a signed request needs its Host: give a value, not null",
        False,
    ),
    Bad(
        "request-header-value-a-boolean",
        steps("- request:\n    method: GET\n    path: /\n    headers: {X-A: true}\n"),
        "headers",
        "steps[0].request.headers.X-A",
        "must be text, a number or null, got true",
        True,
    ),
    Bad(
        "request-header-value-a-line-break",
        steps('- request:\n    method: GET\n    path: /\n    headers: {X-A: "a\\nb"}\n'),
        "headers",
        "steps[0].request.headers.X-A",
        "a header value is Latin-1 without control characters",
        False,
    ),
    Bad(
        "request-header-value-template",
        steps('- request:\n    method: GET\n    path: /\n    headers: {X-A: "${"}\n'),
        "headers",
        "steps[0].request.headers.X-A",
        "${",
        False,
    ),
    Bad(
        "request-paginate",
        steps("- request: {method: GET, path: /devices}\n  paginate: true\n"),
        "paginate",
        "steps[0].paginate",
        "unknown key",
        True,
    ),
    Bad(
        "publish-without-payload",
        steps('- publish: "${devices[0]}"\n'),
        "publish",
        "steps[0].payload",
        "missing: say what to publish",
        True,
    ),
    Bad(
        "publish-payload-a-number",
        steps('- publish: "${devices[0]}"\n  payload: 3\n'),
        "payload",
        "steps[0].payload",
        "must be text (sent as is) or a mapping or list (sent as JSON), got 3",
        True,
    ),
    Bad(
        "publish-to-a-wildcard",
        steps('- publish: "${devices[0]}"\n  payload: x\n  topic: "iotbutton/#"\n'),
        "topic",
        "steps[0].topic",
        "'iotbutton/#': a topic to publish to holds no wildcard (+, #) or NUL",
        True,
    ),
    Bad(
        "publish-expect-acknowledged",
        steps('- publish: "${devices[0]}"\n  payload: x\n  expect_acknowledged: 1\n'),
        "expect_acknowledged",
        "steps[0].expect_acknowledged",
        "must be true or false, got 1",
        True,
    ),
    Bad(
        "publish-bad-timeout",
        steps('- publish: "${devices[0]}"\n  payload: x\n  timeout: soon\n'),
        "timeout",
        "steps[0].timeout",
        "'soon' is not a duration",
        True,
    ),
    Bad(
        "publish-as",
        steps('- publish: "${devices[0]}"\n  payload: x\n  as: owner\n'),
        "as:",
        "steps[0].as",
        "a publish step acts as no account",
        True,
    ),
    Bad(
        "publish-unknown-key",
        steps('- publish: "${devices[0]}"\n  payload: x\n  qos: 0\n'),
        "qos",
        "steps[0].qos",
        "unknown key (known here: name, as, needs, publish, payload, topic, expect_acknowledged,",
        True,
    ),
    # Not structural to a YAML 1.1 reader (yaml.safe_load), where yes is true.
    Bad(
        "webhook-not-a-boolean",
        "webhook: yes\n" + MINIMAL,
        1,
        "webhook",
        'must be true or false, got "yes"',
        False,
    ),
)


@pytest.mark.parametrize("bad", BAD, ids=lambda bad: bad.id)
def test_a_bad_file_is_refused_in_one_line_naming_the_place(bad: Bad) -> None:
    message = refused(bad.text)
    line = bad.at if isinstance(bad.at, int) else line_of(bad.text, bad.at)
    place = f"{bad.place}: " if bad.place else ""
    assert "\n" not in message
    assert message.startswith(f"{SOURCE}:{line}: {place}"), message
    assert bad.reason in message, message


# --- the JSON Schema agrees ------------------------------------------------------------

GOOD: Final = (
    FULL,
    MINIMAL,
    CHECK,
    CONFORMANCE_STEPS,
    "steps: [{click: X, press_ms: 90}, {sleep: 0.5}]\n",
)


@pytest.fixture(scope="module")
def validator() -> jsonschema_rs.Validator:
    schema = json_schema()
    jsonschema_rs.meta.validate(schema)
    return jsonschema_rs.validator_for(schema)


def document(text: str) -> Any:
    return yaml.safe_load(text)


@pytest.mark.parametrize("text", GOOD)
def test_the_schema_accepts_good_scenarios(validator: jsonschema_rs.Validator, text: str) -> None:
    load(text)
    errors = [error.message for error in validator.iter_errors(document(text))]
    assert errors == []


@pytest.mark.parametrize("bad", [bad for bad in BAD if bad.structural], ids=lambda bad: bad.id)
def test_the_schema_refuses_structural_faults(validator: jsonschema_rs.Validator, bad: Bad) -> None:
    assert not validator.is_valid(document(bad.text))


def bundled_scenarios() -> list[Path]:
    return sorted(bundled_dir("scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", bundled_scenarios(), ids=lambda path: path.stem)
def test_bundled_scenarios_load_and_match_the_schema(
    validator: jsonschema_rs.Validator, path: Path
) -> None:
    load_scenario(path)
    assert validator.is_valid(document(path.read_text()))


def test_the_schema_names_what_the_loader_knows() -> None:
    schema = json_schema()
    definitions = schema["$defs"]
    kinds = [
        definitions[ref["$ref"].rsplit("/", 1)[1]]["required"][0]
        for ref in definitions["step"]["oneOf"]
    ]
    assert kinds == list(STEP_KINDS)
    assert definitions["operation"]["enum"] == sorted(load_model().operations)
    for matcher in MATCHER_KEYS:
        assert matcher in definitions["body"]["description"]
    assert definitions["need"]["enum"] == list(NEEDS)
