"""Each step kind, run by the Runner against the embedded reference backend.

Scenarios here are small texts loaded with ``load_scenario_text``; each test makes
a fresh workspace and backend (as ``clicksim run`` does) and checks the results
the runner records: outcome, message, and the sent/expected/received of failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.protocol import parse_timestamp
from simulator.resources import bundled_dir
from simulator.runtime.connection import parse_broker_url
from simulator.scenario.loader import load_scenario_text
from simulator.scenario.model import Scenario
from simulator.scenario.report import Outcome, ScenarioResult, StepResult
from simulator.scenario.runner import Runner, WebhookInbox
from simulator.scenario.target import (
    ScenarioClock,
    Target,
    embedded_target,
    generated_accounts,
    prepare_workspace,
)
from simulator.scenario.variables import UnknownVariable

SEED = "runner-tests"
NO_CLOCK_REASON = (
    "skipped: needs the backend's clock, which the runner can move only in the "
    "embedded reference backend"
)


@dataclasses.dataclass
class Ran:
    result: ScenarioResult
    runner: Runner
    inbox: WebhookInbox | None

    def step(self, path: str) -> StepResult:
        found = [step for step in self.result.steps if step.path == path]
        assert len(found) == 1, [step.path for step in self.result.steps]
        return found[0]

    def outcomes(self) -> dict[str, Outcome]:
        return {step.path: step.outcome for step in self.result.steps}

    def variable(self, name: str) -> object:
        return self.runner.variables.get(name)

    @property
    def devices(self) -> list[str]:
        devices = self.variable("devices")
        assert isinstance(devices, list)
        return devices

    def sent(self, path: str) -> Any:
        """What the step sent (JSON, as recorded): Any, for indexing in assertions."""
        return self.step(path).sent

    def received(self, path: str) -> Any:
        return self.step(path).received


def load(text: str, folder: Path) -> Scenario:
    return load_scenario_text(
        textwrap.dedent(text), source=str(folder / "scenario.yaml"), base_dir=folder
    )


def run_scenario(
    text: str,
    folder: Path,
    *,
    retarget: Callable[[Target], Target] | None = None,
) -> Ran:
    """Run ``text`` against a fresh embedded backend; ``retarget`` may alter the Target."""
    scenario = load(text, folder)

    async def main() -> Ran:
        workspace = prepare_workspace(scenario, seed=SEED, root=folder / "run", ca_dir=None)
        clock = ScenarioClock()
        async with contextlib.AsyncExitStack() as stack:
            inbox = None
            if scenario.webhook:
                inbox = await stack.enter_async_context(WebhookInbox().serving())
            target = await stack.enter_async_context(
                embedded_target(
                    ca_folder=workspace.ca_folder,
                    manifests=[workspace.manifest],
                    account_names=scenario.accounts,
                    seed=SEED,
                    clock=clock,
                    db=folder / "backend.db",
                )
            )
            if retarget is not None:
                target = retarget(target)
            runner = Runner(scenario, target, workspace, seed=SEED, clock=clock, webhook=inbox)
            return Ran(await runner.run(), runner, inbox)

    return asyncio.run(main())


def assert_all_passed(ran: Ran) -> None:
    broken = [s for s in ran.result.steps if s.outcome is not Outcome.PASSED]
    assert not broken, broken
    assert ran.result.ok


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def run_with_nothing_listening(
    scenario: Scenario, folder: Path, *, api_port: int, broker_port: int
) -> ScenarioResult:
    """Run ``scenario`` against ports where no API and no broker answer."""

    async def main() -> ScenarioResult:
        workspace = prepare_workspace(scenario, seed=SEED, root=folder / "run", ca_dir=None)
        target = Target(
            description="nothing listening",
            api_url=f"http://127.0.0.1:{api_port}",
            broker=parse_broker_url(f"mqtts://127.0.0.1:{broker_port}"),
            accounts=generated_accounts(scenario.accounts, SEED),
            region="us-east-1",
            backend_clock=False,
        )
        return await Runner(scenario, target, workspace, seed=SEED, clock=ScenarioClock()).run()

    return asyncio.run(main())


# --- call ---------------------------------------------------------------------------


def test_a_call_checks_status_error_and_body_and_saves(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        fleet: {count: 2, claim_code: C-0123456789AB}
        steps:
          - name: not the owner's yet
            call: DescribeDevice
            with: {deviceId: "${devices[0]}"}
            expect: {status: 404, error: ResourceNotFoundException}
            save: {first_status: $status}
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
            expect:
              status: [200, 201]
              body:
                claimCode: {regex: "^C-0123"}
                total: {ge: 2, lt: 3}
            save: {claimed: total, code: claimCode, claim_status: $status}
          - call: ListDevices
            expect:
              body:
                devices: {length: 2, contains: {deviceId: "${devices[1]}", enabled: false}}
                devices[0].deviceId: {exists: true}
                nextToken: {exists: false}
            save: {listed: devices}
          - call: DescribeDevice
            with: {deviceId: "${listed[1].deviceId}"}
            expect:
              body:
                deviceDescription.deviceId: "${listed[1].deviceId}"
                deviceDescription.remainingLife: {exists: false}
                deviceDescription.type: {one_of: [button, sensor]}
            save: {arn: deviceDescription.arn}
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    assert ran.variable("first_status") == 404
    assert ran.variable("claim_status") == 200
    assert ran.variable("claimed") == 2
    assert ran.variable("code") == "C-0123456789AB"
    listed = ran.variable("listed")
    assert isinstance(listed, list)
    assert len(listed) == 2
    assert {item["deviceId"] for item in listed} == set(ran.devices)
    assert str(ran.variable("arn")).startswith("arn:aws:iot1click:us-east-1:100000000001:devices/")
    first = ran.step("1")
    assert (first.kind, first.name, first.line) == ("call", "not the owner's yet", 4)
    assert ran.sent("1")["operation"] == "DescribeDevice"  # kept for passed calls too
    assert ran.received("1")["status"] == 404
    assert ran.received("1")["error"] == "ResourceNotFoundException"


def test_a_failed_expect_reports_the_exchange_and_skips_the_rest(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - name: the device is mine (it is not)
            call: DescribeDevice
            with: {deviceId: "${devices[0]}"}
            expect: {status: 200}
          - sleep: 1ms
          - repeat: 2
            steps:
              - set: {reached: true}
        """,
        tmp_path,
    )
    assert not ran.result.ok
    failed = ran.step("1")
    device = ran.devices[0]
    assert failed.outcome is Outcome.FAILED
    assert failed.message == "status 404 (ResourceNotFoundException), expected 200"
    assert failed.sent == {
        "operation": "DescribeDevice",
        "as": "owner",
        "method": "GET",
        "url": f"{ran.runner.target.api_url}/devices/{device}",
        "body": None,
    }
    assert failed.expected == {"status": [200]}
    assert ran.received("1")["status"] == 404
    assert ran.received("1")["error"] == "ResourceNotFoundException"
    assert ran.received("1")["body"]["code"] == "ResourceNotFoundException"
    assert ran.outcomes() == {
        "1": Outcome.FAILED,
        "2": Outcome.SKIPPED,
        "3[0].1": Outcome.SKIPPED,
        "3[1].1": Outcome.SKIPPED,
    }
    for path in ("2", "3[0].1", "3[1].1"):
        assert ran.step(path).message == "not run: step 1 failed"
    with pytest.raises(UnknownVariable):
        ran.variable("reached")  # the skipped set step did not run


def test_a_body_mismatch_names_the_path(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
            expect: {status: 200, body: {total: 5}}
            save: {never: total}
        """,
        tmp_path,
    )
    failed = ran.step("1")
    assert failed.outcome is Outcome.FAILED
    assert "total" in failed.message
    assert "5" in failed.message
    assert "1" in failed.message
    assert failed.received is not None
    assert ran.received("1")["body"]["total"] == 1
    with pytest.raises(UnknownVariable):
        ran.variable("never")  # save happens only once expect held


# --- until --------------------------------------------------------------------------


def test_until_polls_until_the_state_changes(tmp_path: Path) -> None:
    """The listing is polled while a click is on its way; it matches once it arrives."""
    ran = run_scenario(
        """
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
          - parallel:
              - until:
                  call: ListDeviceEvents
                  with:
                    deviceId: "${devices[0]}"
                    fromTimeStamp: "${start}"
                    toTimeStamp: "${now+1m}"
                  expect: {body: {events: {length: 1}}}
                  save: {events: events}
                timeout: 10s
                interval: 50ms
              - click: "${devices[0]}"
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    polled = ran.step("2.1")
    assert polled.kind == "until"
    attempts = int(polled.message.removeprefix("matched after ").split(" ")[0])
    assert attempts >= 2, polled.message  # the first poll came before the click
    events = ran.variable("events")
    assert isinstance(events, list)
    assert len(events) == 1


def test_until_times_out_with_the_last_reply(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
          - name: wait for an enable nobody makes
            until:
              call: DescribeDevice
              with: {deviceId: "${devices[0]}"}
              expect: {body: {deviceDescription.enabled: true}}
            timeout: 300ms
            interval: 100ms
          - set: {after: 1}
        """,
        tmp_path,
    )
    timed_out = ran.step("2")
    assert timed_out.outcome is Outcome.FAILED
    assert timed_out.message.startswith("no match within 0.3 s (")
    assert "deviceDescription.enabled" in timed_out.message
    attempts = int(timed_out.message.removeprefix("no match within 0.3 s (").split(" ")[0])
    assert attempts >= 3  # polled every 100 ms, up to the deadline
    assert 0.3 <= timed_out.seconds < 3
    assert ran.sent("2")["operation"] == "DescribeDevice"
    assert timed_out.expected == {"body": {"deviceDescription.enabled": True}}
    assert ran.received("2")["status"] == 200
    assert ran.received("2")["body"]["deviceDescription"]["enabled"] is False
    assert ran.step("3").outcome is Outcome.SKIPPED


# --- click --------------------------------------------------------------------------


def test_click_types_and_press_timings(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
          - click: "${devices[0]}"
            type: double
          - click: "${devices[0]}"
            type: long
          - click: "${devices[0]}"
            press_ms: [90, 120, 90]
          - click: "${devices[0]}"
            press_ms: [90, 600, 90]
          - until:
              call: ListDeviceEvents
              with:
                deviceId: "${devices[0]}"
                fromTimeStamp: "${start}"
                toTimeStamp: "${now+1m}"
              expect:
                body:
                  events: {length: 5}
                  events[0].stdEvent: {json: {clickType: DOUBLE}}
                  events[1].stdEvent: {json: {clickType: LONG}}
                  events[2].stdEvent: {json: {clickType: DOUBLE}}
                  events[3].stdEvent: {json: {clickType: SINGLE}}
                  events[4].stdEvent: {json: {clickType: SINGLE}}
            timeout: 10s
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    clicks = [ran.received(path) for path in ("2", "3", "4", "5")]
    assert [received["clicks"] for received in clicks] == [
        ["DOUBLE"],
        ["LONG"],
        ["DOUBLE"],
        ["SINGLE", "SINGLE"],
    ]
    assert [received["acknowledged"] for received in clicks] == [1, 1, 1, 2]
    assert ran.sent("4") == {"device": ran.devices[0], "press_ms": [90, 120, 90]}
    assert ran.sent("3")["press_ms"][0] >= 1500  # held past the long-press threshold


def _tiny_battery(folder: Path) -> None:
    """A button whose whole battery is one click: the second press finds it dead."""
    text = (bundled_dir("profiles") / "aws-iot-enterprise-button.toml").read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        replaced = {
            "name": 'name = "tiny-battery"',
            "capacity_mah": "capacity_mah = 1.0",
            "wake_mah": "wake_mah = 0.5",
            "handshake_mah": "handshake_mah = 0.6",
        }
        lines.append(replaced.get(key, line))
    (folder / "tiny-battery.toml").write_text("\n".join(lines) + "\n")


def test_a_dead_battery_makes_no_click(tmp_path: Path) -> None:
    _tiny_battery(tmp_path)
    ran = run_scenario(
        """
        fleet: {profile: tiny-battery.toml}
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
          - name: the one click of its life
            click: "${devices[0]}"
          - name: dead
            click: "${devices[0]}"
            expect_delivered: false
          - call: ListDeviceEvents
            with: {deviceId: "${devices[0]}", fromTimeStamp: "${start}", toTimeStamp: "${now+1m}"}
            expect: {body: {events: {length: 1}}}
          - name: expecting a delivery from a dead button fails
            click: "${devices[0]}"
        """,
        tmp_path,
    )
    assert ran.outcomes() == {
        "1": Outcome.PASSED,
        "2": Outcome.PASSED,
        "3": Outcome.PASSED,
        "4": Outcome.PASSED,
        "5": Outcome.FAILED,
    }
    assert ran.step("2").received == {"clicks": ["SINGLE"], "acknowledged": 1, "remainingLife": 0}
    assert ran.step("3").received == {"clicks": [], "acknowledged": 0, "remainingLife": 0}
    failed = ran.step("5")
    assert failed.message == "the device made no click (is its battery dead?)"
    assert failed.expected == {"delivered": True}


def test_expect_delivered_false_fails_when_the_click_gets_through(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - click: "${devices[0]}"
            expect_delivered: false
        """,
        tmp_path,
    )
    failed = ran.step("1")
    assert failed.outcome is Outcome.FAILED
    assert failed.message == "1 click(s) acknowledged; expected none"
    assert failed.expected == {"delivered": False}
    assert ran.received("1")["acknowledged"] == 1


# --- containers ---------------------------------------------------------------------


def test_repeat_binds_index_and_numbers_each_iteration(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - set: {seen: ""}
          - repeat: 3
            steps:
              - set: {seen: "${seen}${index}"}
              - check: "${index}"
                expect: {ge: 0, lt: 3}
          - check: "${seen}"
            expect: "012"
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    assert [step.path for step in ran.result.steps] == [
        "1",
        "2[0].1",
        "2[0].2",
        "2[1].1",
        "2[1].2",
        "2[2].1",
        "2[2].2",
        "3",
    ]
    assert [ran.step(f"2[{i}].2").received for i in range(3)] == [0, 1, 2]
    assert ran.variable("seen") == "012"
    assert "index" not in ran.runner.variables.names()  # only inside the repeat


def test_for_each_visits_every_device_in_fleet_order(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        fleet: {count: 3}
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
          - set: {visited: ""}
          - for_each: button
            steps:
              - call: DescribeDevice
                with: {deviceId: "${button}"}
                expect: {body: {deviceDescription.deviceId: "${button}"}}
              - set: {visited: "${visited}${button}/${index} "}
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    devices = ran.devices
    assert len(devices) == 3
    assert ran.variable("visited") == "".join(f"{d}/{i} " for i, d in enumerate(devices))
    assert [step.path for step in ran.result.steps][2:] == [
        f"3[{i}].{n}" for i in range(3) for n in (1, 2)
    ]
    for index, device in enumerate(devices):
        assert ran.sent(f"3[{index}].1")["url"].endswith(f"/devices/{device}")


def test_parallel_runs_both_branches_with_a_result_each(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        accounts: [alice, bob]
        steps:
          - parallel:
              - call: InitiateDeviceClaim
                as: alice
                with: {deviceId: "${devices[0]}"}
                expect: {status: [200, 409]}
                save: {alice_status: $status}
              - call: InitiateDeviceClaim
                as: bob
                with: {deviceId: "${devices[0]}"}
                expect: {status: [200, 409]}
                save: {bob_status: $status}
          - check: "${alice_status} ${bob_status}"
            expect: {one_of: ["200 409", "409 200"]}
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    assert [step.path for step in ran.result.steps] == ["1.1", "1.2", "2"]
    assert {ran.variable("alice_status"), ran.variable("bob_status")} == {200, 409}
    for path, account in (("1.1", "alice"), ("1.2", "bob")):
        assert ran.sent(path)["as"] == account


def test_a_failing_parallel_branch_does_not_stop_its_sibling(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - parallel:
              - call: DescribeDevice
                with: {deviceId: "${devices[0]}"}
                expect: {status: 200}
              - click: "${devices[0]}"
          - sleep: 1ms
        """,
        tmp_path,
    )
    assert ran.outcomes() == {"1.1": Outcome.FAILED, "1.2": Outcome.PASSED, "2": Outcome.SKIPPED}
    assert ran.received("1.2")["acknowledged"] == 1
    assert ran.step("2").message == "not run: step 1.1 failed"


# --- time ---------------------------------------------------------------------------


def test_sleep_waits(tmp_path: Path) -> None:
    ran = run_scenario("steps: [{sleep: 300ms}]", tmp_path)
    assert_all_passed(ran)
    step = ran.step("1")
    assert step.kind == "sleep"
    assert 0.3 <= step.seconds < 2


def test_advance_moves_the_backend_clock_so_a_claim_expires(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        fleet: {count: 2}
        steps:
          - call: InitiateDeviceClaim
            with: {deviceId: "${devices[0]}"}
          - click: "${devices[0]}"
          - name: without time passing the claim goes through
            call: FinalizeDeviceClaim
            with: {deviceId: "${devices[0]}"}
            expect: {status: 200, body: {state: CLAIMED}}
          - call: InitiateDeviceClaim
            with: {deviceId: "${devices[1]}"}
          - click: "${devices[1]}"
          - advance: 16m
          - set: {later: "${now}"}
          - name: past the 15-minute window it has expired
            call: FinalizeDeviceClaim
            with: {deviceId: "${devices[1]}"}
            expect: {status: 412, error: PreconditionFailedException}
          - call: DescribeDevice
            with: {deviceId: "${devices[1]}"}
            expect: {status: 404}
        """,
        tmp_path,
    )
    assert_all_passed(ran)
    advance = ran.step("6")
    assert advance.kind == "advance"
    assert advance.message.startswith("simulated time is now ")
    moved = parse_timestamp(advance.message.removeprefix("simulated time is now "))
    assert moved - time.time() == pytest.approx(16 * 60, abs=60)
    assert parse_timestamp(str(ran.variable("later"))) - time.time() == pytest.approx(
        16 * 60, abs=60
    )


def test_backend_clock_steps_are_skipped_when_the_target_has_no_clock(tmp_path: Path) -> None:
    def without_clock(embedded: Target) -> Target:
        return Target(
            description="a backend whose clock the runner cannot move",
            api_url=embedded.api_url,
            broker=embedded.broker,
            accounts=embedded.accounts,
            region=embedded.region,
            backend_clock=False,
        )

    ran = run_scenario(
        """
        steps:
          - call: InitiateDeviceClaim
            with: {deviceId: "${devices[0]}"}
          - click: "${devices[0]}"
          - advance: 16m
          - advance: 1m
            backend: false
          - call: FinalizeDeviceClaim
            needs: [backend-clock]
            with: {deviceId: "${devices[0]}"}
            expect: {status: 412}
          - name: the run goes on after a skip; the backend's time did not move
            call: FinalizeDeviceClaim
            with: {deviceId: "${devices[0]}"}
            expect: {status: 200}
        """,
        tmp_path,
        retarget=without_clock,
    )
    assert ran.outcomes() == {
        "1": Outcome.PASSED,
        "2": Outcome.PASSED,
        "3": Outcome.SKIPPED,
        "4": Outcome.PASSED,
        "5": Outcome.SKIPPED,
        "6": Outcome.PASSED,
    }
    assert ran.result.ok
    assert ran.step("3").message == NO_CLOCK_REASON
    assert ran.step("5").message == NO_CLOCK_REASON
    assert ran.result.target == "a backend whose clock the runner cannot move"
    assert ran.runner.clock.offset == 60  # only the device-time advance ran


# --- webhook, set, check ------------------------------------------------------------


def test_the_webhook_receives_the_click_callback(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        webhook: true
        steps:
          - call: ClaimDevicesByClaimCode
            with: {claimCode: "${claim_code}"}
          - call: UpdateDeviceState
            with: {deviceId: "${devices[0]}", enabled: true}
          - call: InvokeDeviceMethod
            with:
              deviceId: "${devices[0]}"
              deviceMethod: {deviceType: button, methodName: setOnClickCallback}
              deviceMethodParameters: {callback: {url: "${webhook.url}"}}
          - click: "${devices[0]}"
            type: double
          - webhook:
              expect:
                count: 1
                events[0].deviceEvent.buttonClicked.clickType: DOUBLE
                events[0].deviceInfo.deviceId: "${devices[0]}"
            timeout: 10s
          - name: a second callback never comes
            webhook:
              expect: {count: 2}
            timeout: 300ms
        """,
        tmp_path,
    )
    assert ran.inbox is not None
    assert ran.inbox.url.startswith("http://127.0.0.1:")
    assert ran.outcomes() == {str(n): Outcome.PASSED for n in range(1, 6)} | {"6": Outcome.FAILED}
    (event,) = ran.inbox.events
    assert isinstance(event, dict)
    assert event["deviceInfo"]["deviceId"] == ran.devices[0]
    assert event["deviceEvent"]["buttonClicked"]["clickType"] == "DOUBLE"
    waited = ran.step("6")
    assert waited.kind == "webhook"
    assert waited.message.startswith("within 0.3 s: ")
    assert waited.expected == {"body": {"count": 2}}
    assert waited.received == {"count": 1, "events": [event]}


def test_set_keeps_types_and_check_compares(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        steps:
          - set:
              n: 3
              pair: [a, b]
              first: "${devices[0]}"
              label: "device ${devices[0]} of ${accounts.owner.id}"
          - check: "${n}"
            expect: {gt: 2, le: 3}
          - check: "${pair}"
            expect: {length: 2, contains: b}
          - check: "${label}"
            expect: {regex: "^device G030PM[0-9A-Z]{10} of 100000000001$"}
          - name: a check that does not hold
            check: "${n}"
            expect: 4
        """,
        tmp_path,
    )
    assert ran.variable("n") == 3
    assert ran.variable("pair") == ["a", "b"]
    assert ran.variable("first") == ran.devices[0]
    assert [ran.step(str(n)).outcome for n in range(1, 5)] == [Outcome.PASSED] * 4
    failed = ran.step("5")
    assert (failed.kind, failed.outcome) == ("check", Outcome.FAILED)
    assert failed.received == 3
    assert failed.expected == 4
    assert "4" in failed.message
    assert "3" in failed.message


def test_certificate_ids_follow_the_devices_order(tmp_path: Path) -> None:
    ran = run_scenario(
        """
        fleet: {count: 2}
        steps:
          - set: {ids: "${certificate_ids}"}
        """,
        tmp_path,
    )
    expected = [ran.runner.devices[d].record.certificate_id for d in ran.devices]
    assert ran.variable("ids") == expected
    assert all(len(cid) == 64 for cid in expected)


@pytest.mark.parametrize(
    ("step", "fragments"),
    [
        (
            'call: DescribeDevice\n    with: {deviceId: "${nosuch}"}',
            ("unknown variable 'nosuch'", "devices"),
        ),
        ('click: "${devices[3]}"', ("${devices[3]}",)),
        (
            "call: ListDevices\n    save: {token: nextToken}",
            ("nextToken",),
        ),
        ("click: G030PM0000NOSUCH", ("'G030PM0000NOSUCH' is not a device of the fleet",)),
    ],
    ids=["unknown-variable", "index-out-of-range", "save-missing-path", "not-a-device"],
)
def test_what_cannot_be_resolved_at_run_time_fails_the_step(
    tmp_path: Path, step: str, fragments: tuple[str, ...]
) -> None:
    ran = run_scenario(f"steps:\n  - {step}\n  - sleep: 1ms\n", tmp_path)
    failed = ran.step("1")
    assert failed.outcome is Outcome.FAILED
    assert "\n" not in failed.message
    for fragment in fragments:
        assert fragment in failed.message
    assert ran.step("2").outcome is Outcome.SKIPPED


# --- the target ---------------------------------------------------------------------


def test_an_unreachable_api_is_an_error_and_the_rest_is_skipped(tmp_path: Path) -> None:
    scenario = load(
        """
        steps:
          - call: ListDevices
          - set: {x: 1}
          - click: "${devices[0]}"
        """,
        tmp_path,
    )
    port = closed_port()
    result = run_with_nothing_listening(
        scenario, tmp_path, api_port=port, broker_port=closed_port()
    )
    assert [step.outcome for step in result.steps] == [
        Outcome.ERROR,
        Outcome.SKIPPED,
        Outcome.SKIPPED,
    ]
    assert f"127.0.0.1:{port}" in result.steps[0].message
    assert all(step.message == "not run: step 1 could not run" for step in result.steps[1:])
    assert not result.ok


@pytest.mark.parametrize(
    "step",
    ['{click: "${devices[0]}"}', '{publish: "${devices[0]}", payload: x}'],
    ids=["click", "publish"],
)
def test_an_unreachable_broker_is_an_error_not_a_failed_check(tmp_path: Path, step: str) -> None:
    scenario = load(f"steps: [{step}, {{sleep: 1ms}}]", tmp_path)
    port = closed_port()
    result = run_with_nothing_listening(
        scenario, tmp_path, api_port=closed_port(), broker_port=port
    )
    assert [step.outcome for step in result.steps] == [Outcome.ERROR, Outcome.SKIPPED]
    message = result.steps[0].message
    assert message.startswith(f"the device could not connect to the broker at 127.0.0.1:{port} (")
    assert message.endswith("is it up, and does it trust the fleet's CA?")


def test_the_same_seed_gives_the_same_fleet_and_accounts(tmp_path: Path) -> None:
    scenario = load(
        """
        fleet: {count: 3}
        accounts: [owner, rival]
        steps: [{sleep: 1ms}]
        """,
        tmp_path,
    )

    def fleet(seed: str, root: str) -> tuple[list[str], str]:
        workspace = prepare_workspace(scenario, seed=seed, root=tmp_path / root, ca_dir=None)
        ids = [device.record.device_id for device in workspace.fleet.devices]
        return ids, workspace.fleet.manifest.claim_code

    first, again, other = fleet("s1", "a"), fleet("s1", "b"), fleet("s2", "c")
    assert first == again
    assert len(set(first[0])) == 3
    assert set(first[0]).isdisjoint(other[0])
    assert first[1] != other[1]

    accounts = generated_accounts(scenario.accounts, "s1")
    assert accounts == generated_accounts(scenario.accounts, "s1")
    assert [a.account_id for a in accounts.values()] == ["100000000001", "100000000002"]
    assert accounts["owner"].credentials != accounts["rival"].credentials
    rival = generated_accounts(scenario.accounts, "s2")["owner"].credentials
    assert rival != accounts["owner"].credentials
