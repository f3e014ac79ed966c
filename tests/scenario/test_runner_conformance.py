"""The steps conformance checks are made of, run by the Runner.

``request`` (a raw HTTP request and its sign modes), ``publish`` (a raw MQTT publish
as a fleet device), ``paginate: true`` and ``expect.headers`` / ``expect.shape``:
against the embedded reference backend where the backend's behaviour matters, and
against a scripted HTTP server (tests/http_receiver.py) for what the reference
backend never answers (a body off the model, a token that comes back).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from simulator.protocol import click_topic
from simulator.runtime.connection import parse_broker_url
from simulator.scenario.report import Outcome, ScenarioResult, StepResult
from simulator.scenario.runner import Runner, unknown_credentials
from simulator.scenario.target import (
    ScenarioClock,
    Target,
    embedded_target,
    generated_accounts,
    prepare_workspace,
)
from tests.http_receiver import Answer, Received, Receiver
from tests.scenario.test_runner import (
    SEED,
    assert_all_passed,
    closed_port,
    load,
    run_scenario,
    run_with_nothing_listening,
)

# --- expect.headers and expect.shape ---------------------------------------------------


def test_headers_match_in_any_case_and_shape_holds_for_the_reference(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        fleet: {count: 2}
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
            expect:
              shape: true
              headers:
                CONTENT-TYPE: {regex: "^application/json"}
                x-amzn-requestid: {exists: true}
                X-Nothing: {exists: false}
          - call: DescribeDevice
            with: {deviceId: "${devices[0]}"}
            expect: {shape: true}
          - until:
              call: ListDevices
              expect: {shape: true, headers: {Content-Type: application/json}}
          - call: DescribeDevice
            with: {deviceId: nobody}
            expect: {status: 404, headers: {X-Amzn-ErrorType: {regex: ResourceNotFound}}}
        """,
        tmp_path,
    )
    assert_all_passed(ran)


def test_a_header_mismatch_names_the_header_and_shows_the_headers(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - call: ListDevices
            expect: {headers: {Content-Type: text/html, X-Missing: abc}}
        """,
        tmp_path,
    )
    failed = ran.step("1")
    assert failed.outcome is Outcome.FAILED
    assert failed.message == 'header Content-Type: expected "text/html", got "application/json"'
    assert failed.expected == {"headers": {"Content-Type": "text/html", "X-Missing": "abc"}}
    assert ran.received("1")["headers"]["content-type"] == "application/json"

    ran = run_scenario(
        "steps: [{call: ListDevices, expect: {headers: {X-Missing: abc}}}]", tmp_path / "b"
    )
    assert ran.step("1").message == "header X-Missing: missing: no X-Missing header"


# --- a scripted API ------------------------------------------------------------------

Respond = Callable[[Received], Awaitable[Answer]]


def run_against(text: str, folder: Path, respond: Respond) -> tuple[ScenarioResult, Receiver]:
    """Run ``text`` against a scripted HTTP server answering as ``respond`` says."""
    scenario = load(text, folder)

    async def main() -> tuple[ScenarioResult, Receiver]:
        workspace = prepare_workspace(scenario, seed=SEED, root=folder / "run", ca_dir=None)
        async with Receiver(respond) as receiver:
            target = Target(
                description="a scripted server",
                api_url=receiver.url().rstrip("/"),
                broker=parse_broker_url(f"mqtts://127.0.0.1:{closed_port()}"),
                accounts=generated_accounts(scenario.accounts, SEED),
                region="us-east-1",
                backend_clock=False,
            )
            runner = Runner(scenario, target, workspace, seed=SEED, clock=ScenarioClock())
            return await runner.run(), receiver

    return asyncio.run(main())


def json_answer(body: object, status: int = 200) -> Answer:
    return Answer(status, (("Content-Type", "application/json"),), json.dumps(body).encode())


def only(result: ScenarioResult) -> StepResult:
    [step] = result.steps
    return step


def test_a_body_off_the_model_fails_shape_listing_the_problems(tmp_path: Path) -> None:
    async def respond(_request: Received) -> Answer:
        return json_answer({"devices": [{"deviceId": 7, "enabled": "no"}], "extra": 1})

    text = "steps: [{call: ListDevices, expect: {shape: true}}]"
    result, _ = run_against(text, tmp_path, respond)
    failed = only(result)
    assert failed.outcome is Outcome.FAILED
    assert failed.message == (
        "not the output shape of ListDevices: devices[0].deviceId: must be a string, got 7; "
        'devices[0].enabled: must be true or false, got "no"; extra: not in the model'
    )
    assert failed.expected == {"shape": True}
    # The same body passes where shape is not asked for.
    result, _ = run_against("steps: [{call: ListDevices}]", tmp_path / "b", respond)
    assert only(result).outcome is Outcome.PASSED


def pages(answers: list[Answer]) -> Respond:
    """Answer each request with the next of ``answers``."""
    remaining = list(answers)

    async def respond(_request: Received) -> Answer:
        return remaining.pop(0)

    return respond


def tokens_sent(receiver: Receiver) -> list[list[str] | None]:
    return [parse_qs(urlsplit(r.target).query).get("nextToken") for r in receiver.requests]


def test_paginate_follows_the_token_with_the_same_params(tmp_path: Path) -> None:
    respond = pages(
        [
            json_answer({"devices": [{"deviceId": "a"}], "nextToken": "t1"}),
            json_answer({"devices": [], "nextToken": "t/2"}),
            json_answer({"devices": [{"deviceId": "b"}, {"deviceId": "c"}]}),
        ]
    )
    text = """
        steps:
          - call: ListDevices
            with: {maxResults: 1, deviceType: button}
            paginate: true
            expect: {shape: true, body: {pages: 3, devices: {length: 3}}}
            save: {listed: devices}
          - check: "${listed[2].deviceId}"
            expect: c
        """
    result, receiver = run_against(text, tmp_path, respond)
    assert [step.outcome for step in result.steps] == [Outcome.PASSED, Outcome.PASSED]
    assert tokens_sent(receiver) == [None, ["t1"], ["t/2"]]
    for request in receiver.requests:
        query = parse_qs(urlsplit(request.target).query)
        assert (query["maxResults"], query["deviceType"]) == (["1"], ["button"])
    received: Any = result.steps[0].received
    assert received["body"] == {
        "devices": [{"deviceId": "a"}, {"deviceId": "b"}, {"deviceId": "c"}],
        "pages": 3,
    }


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        pytest.param(
            [
                json_answer({"devices": [{"deviceId": "a"}], "nextToken": "t"}),
                json_answer({"devices": [{"deviceId": "b"}], "nextToken": "t"}),
            ],
            'page 2: nextToken "t" came back (first on page 1)',
            id="a-token-twice",
        ),
        pytest.param(
            [
                json_answer({"devices": [{"deviceId": "a"}], "nextToken": "t1"}),
                json_answer({"devices": [{"deviceId": "b"}], "nextToken": "t2"}),
                json_answer({"devices": [{"deviceId": "a"}]}),
            ],
            'item {"deviceId": "a"} on pages 1 and 3',
            id="an-item-on-two-pages",
        ),
        pytest.param(
            [json_answer({"devices": [{"deviceId": "a"}, {"deviceId": "a"}]})],
            'item {"deviceId": "a"} twice on page 1',
            id="an-item-twice-on-a-page",
        ),
        pytest.param(
            [
                json_answer({"devices": [], "nextToken": "t"}),
                json_answer({"code": "RangeNotSatisfiableException"}, status=416),
            ],
            "page 2: status 416 (RangeNotSatisfiableException), expected 2xx",
            id="a-page-that-fails",
        ),
        pytest.param(
            [json_answer({"devices": [{"deviceId": 1}]})],
            "page 1: not the output shape: devices[0].deviceId: must be a string, got 1",
            id="a-page-off-the-model",
        ),
        pytest.param(
            [json_answer({"devices": "none"})],
            "page 1: devices is not a list",
            id="items-not-a-list",
        ),
    ],
)
def test_paginate_fails_on_the_page_that_breaks_the_rules(
    tmp_path: Path, answers: list[Answer], message: str
) -> None:
    shape = "" if "not a list" in message else ", expect: {shape: true}"
    text = f"steps: [{{call: ListDevices, paginate: true{shape}}}]"
    result, receiver = run_against(text, tmp_path, pages(answers))
    failed = only(result)
    assert failed.outcome is Outcome.FAILED
    assert failed.message == message
    assert len(receiver.requests) == len(answers)
    received: Any = failed.received
    assert received["status"] == answers[-1].status
    assert received["body"] == json.loads(answers[-1].body)


def test_paginate_walks_the_reference_backends_pages(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        fleet: {count: 5}
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
          - call: ListDevices
            with: {maxResults: 2}
            paginate: true
            expect:
              shape: true
              body:
                pages: 3
                devices: {length: 5}
            save: {listed: devices}
          - click: "${devices[0]}"
          - until:
              call: ListDeviceEvents
              with: {deviceId: "${devices[0]}", fromTimeStamp: "${start}", toTimeStamp: "${now+1h}"}
              expect: {body: {events: {length: 1}}}
          - call: ListDeviceEvents
            with:
              deviceId: "${devices[0]}"
              fromTimeStamp: "${start}"
              toTimeStamp: "${now+1h}"
              maxResults: 1
            paginate: true
            expect: {shape: true, body: {pages: 1, events: {length: 1}}}
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    listed = ran.variable("listed")
    assert isinstance(listed, list)
    assert sorted(item["deviceId"] for item in listed) == sorted(ran.devices)
    assert ran.step("2").name == "ListDevices as owner (all pages)"


# --- request -----------------------------------------------------------------------


def test_request_sign_modes_meet_the_reference_backends_refusals(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        accounts: [owner, rival]
        steps:
          - request: {method: GET, path: /devices}
            expect: {status: 200, body: {devices: []}, headers: {content-type: application/json}}
          - request: {method: GET, path: /devices, sign: false}
            expect: {status: 403, error: MissingAuthenticationTokenException}
          - request: {method: GET, path: /devices, sign: unknown-key}
            expect: {status: 403, error: UnrecognizedClientException}
          - request: {method: GET, path: /devices, sign: bad-signature}
            expect: {status: 403, error: InvalidSignatureException}
          - request: {method: GET, path: /devices, sign: skewed}
            expect:
              status: 403
              error: InvalidSignatureException
              body: {message: {regex: "Signature expired"}}
          - request: {method: GET, path: "/devices/${devices[0]}"}
            as: rival
            expect: {status: 404, error: ResourceNotFoundException}
            save: {status: $status, code: code}
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    assert (ran.variable("status"), ran.variable("code")) == (404, "ResourceNotFoundException")
    assert ran.sent("6")["as"] == "rival"
    assert ran.step("1").kind == "request"


def test_request_bodies_go_as_written(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
          - set: {on: true}
          - name: not JSON
            request:
              method: PUT
              path: "/devices/${devices[0]}/state"
              body: "{not json"
            expect: {status: 400, error: InvalidRequestException}
          - name: JSON from a mapping, variables in it
            request:
              method: PUT
              path: "/devices/${devices[0]}/state"
              body: {enabled: "${on}"}
          - call: DescribeDevice
            with: {deviceId: "${devices[0]}"}
            expect: {body: {deviceDescription.enabled: true}}
          - name: a query string, sent as written
            request: {method: GET, path: "/devices?maxResults=0"}
            expect: {status: 400, error: InvalidRequestException}
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    assert ran.sent("3")["body"] == "{not json"
    assert ran.sent("4")["body"] == '{"enabled": true}'
    assert ran.sent("6")["url"].endswith("/devices?maxResults=0")


def test_a_failed_request_reports_what_was_sent(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - request:
              method: POST
              path: "/devices/${devices[0]}/methods"
              body: [1]
              headers: {X-Note: "id ${devices[0]}", User-Agent: null}
              sign: skewed
            expect: {status: 200}
        """,
        tmp_path,
    )
    failed = ran.step("1")
    device = ran.devices[0]
    assert failed.outcome is Outcome.FAILED
    assert failed.message == "status 403 (InvalidSignatureException), expected 200"
    assert failed.sent == {
        "operation": "request",
        "as": "owner",
        "method": "POST",
        "path": f"/devices/{device}/methods",
        "url": f"{ran.runner.target.api_url}/devices/{device}/methods",
        "headers": {"X-Note": f"id {device}", "User-Agent": None},
        "sign": "skewed",
        "body": "[1]",
    }
    assert failed.received is not None
    assert ran.received("1")["error"] == "InvalidSignatureException"


def test_a_request_sends_its_headers_and_the_unknown_key_comes_from_the_seed(
    tmp_path: Path,
) -> None:
    async def respond(_request: Received) -> Answer:
        return json_answer({}, status=204)

    text = """
        steps:
          - request:
              method: DELETE
              path: /x
              headers: {X-Count: 3, Content-Type: text/plain}
              body: hello
              sign: unknown-key
            expect: {status: 204}
        """
    result, receiver = run_against(text, tmp_path, respond)
    assert only(result).outcome is Outcome.PASSED
    [request] = receiver.requests
    assert (request.method, request.target, request.body) == ("DELETE", "/x", b"hello")
    assert (request.header("x-count"), request.header("content-type")) == ("3", "text/plain")
    stranger = unknown_credentials(SEED).access_key
    assert (request.header("authorization") or "").startswith(
        f"AWS4-HMAC-SHA256 Credential={stranger}/"
    )
    assert stranger.startswith("AKIA")
    assert len(stranger) == 20
    assert unknown_credentials(SEED) == unknown_credentials(SEED)
    assert stranger not in {
        a.credentials.access_key for a in generated_accounts(["owner"], SEED).values()
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            'steps: [{set: {p: "a b"}}, {request: {method: GET, path: "/${p}"}}]',
            'path "/a b": a path starts with / and is printable ASCII without spaces or #',
            id="a-path-with-a-space",
        ),
        pytest.param(
            'steps: [{set: {h: null}}, {request: {method: GET, path: /, headers: {Host: "${h}"}}}]',
            "a request to sign needs its Host header",
            id="a-host-that-resolves-to-null",
        ),
        pytest.param(
            'steps: [{set: {v: "a\\nb"}}, {request: {method: GET, path: /, headers: {X: "${v}"}}}]',
            'header X: "a\\nb" is not Latin-1 without control characters',
            id="a-header-with-a-line-break",
        ),
    ],
)
def test_a_request_that_cannot_be_sent_fails_its_step(
    tmp_path: Path, text: str, message: str
) -> None:
    async def respond(_request: Received) -> Answer:
        raise AssertionError("nothing may be sent")

    result, receiver = run_against(text, tmp_path, respond)
    failed = result.steps[1]
    assert failed.outcome is Outcome.FAILED
    assert failed.message.startswith(message), failed.message
    assert receiver.requests == []


def test_an_unreachable_api_makes_a_request_an_error(tmp_path: Path) -> None:
    scenario = load("steps: [{request: {method: GET, path: /devices}}]", tmp_path)
    port = closed_port()
    step = only(
        run_with_nothing_listening(scenario, tmp_path, api_port=port, broker_port=closed_port())
    )
    assert step.outcome is Outcome.ERROR
    assert f"127.0.0.1:{port}" in step.message


# --- publish -----------------------------------------------------------------------


def test_a_publish_to_the_click_topic_is_a_click(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        fleet: {profile: aws-iot-button-gen2}
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
          - publish: "${devices[0]}"
            payload:
              serialNumber: "${devices[0]}"
              clickType: DOUBLE
              batteryVoltage: "1650mV"
          - until:
              call: ListDeviceEvents
              with: {deviceId: "${devices[0]}", fromTimeStamp: "${start}", toTimeStamp: "${now+1h}"}
              expect:
                body:
                  events: {length: 1}
                  events[0].stdEvent: {json: {clickType: DOUBLE}}
          - name: not JSON, acknowledged all the same (and dropped)
            publish: "${devices[0]}"
            payload: "{garbage"
          - publish: "${devices[0]}"
            topic: "oneclick/devices/${devices[0]}/status"
            payload: offline
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    device = ran.devices[0]
    workspace_device = ran.runner.devices[device]
    topic = click_topic(workspace_device.profile.payload, device)
    sent = ran.sent("2")
    assert (sent["device"], sent["topic"], sent["qos"]) == (device, topic, 1)
    assert json.loads(sent["payload"])["clickType"] == "DOUBLE"
    assert ran.received("2") == {"acknowledged": True}
    assert ran.sent("4")["payload"] == "{garbage"
    assert ran.step("2").kind == "publish"


def test_expect_acknowledged_false_fails_when_the_broker_acknowledges(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - publish: "${devices[0]}"
            payload: {}
            expect_acknowledged: false
        """,
        tmp_path,
    )
    failed = ran.step("1")
    assert failed.outcome is Outcome.FAILED
    assert failed.message == "the broker acknowledged the publish; expected no PUBACK"
    assert failed.expected == {"acknowledged": False}
    assert failed.received == {"acknowledged": True}


def test_a_publish_as_a_stranger_fails(tmp_path: Path) -> None:
    ran = run_scenario('steps: [{publish: "G030PM0000000000", payload: x}]', tmp_path)
    failed = ran.step("1")
    assert failed.outcome is Outcome.FAILED
    assert failed.message == '"G030PM0000000000" is not a device of the fleet'


def test_a_broker_that_refuses_the_device_makes_a_publish_an_error(tmp_path: Path) -> None:
    """A fleet of another CA: the embedded broker refuses the TLS handshake."""
    scenario = load('steps: [{publish: "${devices[0]}", payload: x}]', tmp_path)

    async def main() -> ScenarioResult:
        trusted = prepare_workspace(scenario, seed=SEED, root=tmp_path / "a", ca_dir=None)
        stranger = prepare_workspace(scenario, seed="elsewhere", root=tmp_path / "b", ca_dir=None)
        clock = ScenarioClock()
        async with embedded_target(
            ca_folder=trusted.ca_folder,
            manifests=[trusted.manifest],
            account_names=scenario.accounts,
            seed=SEED,
            clock=clock,
            db=tmp_path / "backend.db",
        ) as target:
            return await Runner(scenario, target, stranger, seed=SEED, clock=clock).run()

    step = only(asyncio.run(main()))
    assert step.outcome is Outcome.ERROR
    assert step.message.startswith("the device could not connect to the broker at ")
