"""The official AWS SDK (botocore 1.35.90, the last with iot1click-devices) against the backend.

Real HTTP, real SigV4, real MQTT clicks: every operation, every modelled error raised
as its own exception class, the paginators, isolation of accounts, the claim race.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from simulator.backend.accounts import Account
from simulator.backend.server import ReferenceBackend
from simulator.runtime.fleet import Fleet
from tests.backend.conftest import ALICE, BOB, CLAIM_CODE, Clicker, SdkFactory

WIDE = {
    "FromTimeStamp": datetime.now(UTC) - timedelta(days=1),
    "ToTimeStamp": datetime.now(UTC) + timedelta(days=1),
}


def ids(fleet: Fleet) -> list[str]:
    return sorted(record.device_id for record in fleet.manifest.devices)


def arn(account_id: str, device_id: str) -> str:
    return f"arn:aws:iot1click:us-east-1:{account_id}:devices/{device_id}"


def test_claim_by_code_then_describe_list_enable(sdk: SdkFactory, backend_fleet: Fleet) -> None:
    alice = sdk(ALICE)
    answer = alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
    assert (answer["ClaimCode"], answer["Total"]) == (CLAIM_CODE, 5)
    first = ids(backend_fleet)[0]
    description = alice.describe_device(DeviceId=first)["DeviceDescription"]
    assert description["DeviceId"] == first
    assert description["Type"] == "button"
    assert description["Enabled"] is False
    assert description["Arn"] == arn(ALICE.account_id, first)
    assert (
        alice.update_device_state(DeviceId=first, Enabled=True)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )
    assert alice.describe_device(DeviceId=first)["DeviceDescription"]["Enabled"] is True
    listed = alice.list_devices()["Devices"]
    assert [d["DeviceId"] for d in listed] == ids(backend_fleet)


def test_initiate_click_finalize_then_events(
    sdk: SdkFactory, backend_fleet: Fleet, press: Clicker
) -> None:
    alice = sdk(ALICE)
    device = ids(backend_fleet)[1]
    assert alice.initiate_device_claim(DeviceId=device)["State"] == "CLAIM_INITIATED"
    press(device)
    answer = alice.finalize_device_claim(DeviceId=device, Tags={"room": "kitchen"})
    assert answer["State"] == "CLAIMED"
    (event,) = alice.list_device_events(DeviceId=device, **WIDE)["Events"]
    assert event["Device"] == {"Attributes": {}, "DeviceId": device, "Type": "button"}
    std_event = json.loads(event["StdEvent"])
    assert std_event["clickType"] == "SINGLE"
    assert std_event["certificateId"] == backend_fleet.device(device).record.certificate_id
    tags = alice.list_tags_for_resource(ResourceArn=arn(ALICE.account_id, device))["Tags"]
    assert tags == {"room": "kitchen"}
    assert alice.unclaim_device(DeviceId=device)["State"] == "UNCLAIMED"


def test_every_modelled_error_arrives_as_its_own_exception_class(
    sdk: SdkFactory, backend_fleet: Fleet
) -> None:
    alice, bob = sdk(ALICE), sdk(BOB)
    device = ids(backend_fleet)[0]
    with pytest.raises(alice.exceptions.ForbiddenException):
        alice.claim_devices_by_claim_code(ClaimCode="C-NOSUCHCODE00")
    with pytest.raises(alice.exceptions.InvalidRequestException):
        alice.claim_devices_by_claim_code(ClaimCode="C-BAD!CODE!!!")
    with pytest.raises(alice.exceptions.ResourceNotFoundException):
        alice.describe_device(DeviceId="NO-SUCH-DEVICE")
    alice.initiate_device_claim(DeviceId=device)
    with pytest.raises(alice.exceptions.PreconditionFailedException):
        alice.finalize_device_claim(DeviceId=device)
    with pytest.raises(bob.exceptions.ResourceConflictException):
        bob.initiate_device_claim(DeviceId=device)
    with pytest.raises(alice.exceptions.RangeNotSatisfiableException):
        alice.list_devices(NextToken="forged-token")
    with pytest.raises(alice.exceptions.InvalidRequestException):
        alice.list_devices(MaxResults=251)


def test_errors_carry_the_aws_error_shape(sdk: SdkFactory) -> None:
    alice = sdk(ALICE)
    with pytest.raises(alice.exceptions.ResourceNotFoundException) as caught:
        alice.describe_device(DeviceId="NO-SUCH-DEVICE")
    response = caught.value.response
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert "NO-SUCH-DEVICE" in response["Error"]["Message"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["ResponseMetadata"]["RequestId"]


def test_tags_through_the_sdk(sdk: SdkFactory, backend_fleet: Fleet) -> None:
    alice = sdk(ALICE)
    alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
    resource = arn(ALICE.account_id, ids(backend_fleet)[0])
    alice.tag_resource(ResourceArn=resource, Tags={"a": "1", "b": "2", "c": "3"})
    alice.untag_resource(ResourceArn=resource, TagKeys=["a", "c"])
    assert alice.list_tags_for_resource(ResourceArn=resource)["Tags"] == {"b": "2"}
    with pytest.raises(alice.exceptions.InvalidRequestException):
        alice.tag_resource(ResourceArn=resource, Tags={"aws:reserved": "x"})
    with pytest.raises(alice.exceptions.ResourceNotFoundException):
        alice.list_tags_for_resource(ResourceArn=arn(BOB.account_id, ids(backend_fleet)[0]))


def test_device_methods_through_the_sdk(sdk: SdkFactory, backend_fleet: Fleet) -> None:
    alice = sdk(ALICE)
    alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
    device = ids(backend_fleet)[0]
    methods = alice.get_device_methods(DeviceId=device)["DeviceMethods"]
    assert {"DeviceType": "button", "MethodName": "setOnClickCallback"} in methods
    callback = {"callback": {"awsLambdaArn": "arn:aws:lambda:us-east-1:111111111111:function:f"}}
    alice.invoke_device_method(
        DeviceId=device,
        DeviceMethod={"DeviceType": "button", "MethodName": "setOnClickCallback"},
        DeviceMethodParameters=json.dumps(callback),
    )
    answer = alice.invoke_device_method(
        DeviceId=device, DeviceMethod={"DeviceType": "button", "MethodName": "getOnClickCallback"}
    )
    assert json.loads(answer["DeviceMethodResponse"]) == callback
    with pytest.raises(alice.exceptions.InvalidRequestException):
        alice.invoke_device_method(
            DeviceId=device,
            DeviceMethod={"DeviceType": "device", "MethodName": "getDeviceHealthParameters"},
            DeviceMethodParameters="",
        )


def test_paginators_lose_and_repeat_nothing(
    sdk: SdkFactory, backend_fleet: Fleet, press: Clicker
) -> None:
    alice = sdk(ALICE)
    alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
    pages = list(alice.get_paginator("list_devices").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(page["Devices"]) for page in pages] == [2, 2, 1]
    assert [d["DeviceId"] for page in pages for d in page["Devices"]] == ids(backend_fleet)
    device = ids(backend_fleet)[0]
    for _ in range(5):
        press(device)
    paginator = alice.get_paginator("list_device_events")
    events = [
        json.loads(event["StdEvent"])["reportedTime"]
        for page in paginator.paginate(DeviceId=device, PaginationConfig={"PageSize": 2}, **WIDE)
        for event in page["Events"]
    ]
    assert len(events) == 5
    assert events == sorted(events)


def test_one_account_never_sees_anothers_devices(sdk: SdkFactory, backend_fleet: Fleet) -> None:
    alice, bob = sdk(ALICE), sdk(BOB)
    alice.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)
    device = ids(backend_fleet)[0]
    assert bob.list_devices()["Devices"] == []
    call: Callable[[], object]
    for call in (
        lambda: bob.describe_device(DeviceId=device),
        lambda: bob.get_device_methods(DeviceId=device),
        lambda: bob.update_device_state(DeviceId=device, Enabled=True),
        lambda: bob.unclaim_device(DeviceId=device),
        lambda: bob.list_device_events(DeviceId=device, **WIDE),
    ):
        with pytest.raises(bob.exceptions.ResourceNotFoundException) as caught:
            call()
        assert ALICE.account_id not in str(caught.value)
    with pytest.raises(bob.exceptions.ForbiddenException):
        bob.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE)


def test_two_accounts_racing_for_one_device_one_wins(sdk: SdkFactory, backend_fleet: Fleet) -> None:
    device = ids(backend_fleet)[2]
    racers = [(ALICE, sdk(ALICE)), (BOB, sdk(BOB))] * 8

    def winners(attempt: Callable[[Any], object], refusal: str) -> set[str]:
        """The accounts whose call went through when all race; the rest got ``refusal``."""

        def race(racer: tuple[Account, Any]) -> str | None:
            account, client = racer
            try:
                attempt(client)
            except getattr(client.exceptions, refusal):
                return None
            return account.account_id

        with concurrent.futures.ThreadPoolExecutor(len(racers)) as pool:
            return {winner for winner in pool.map(race, racers) if winner is not None}

    initiated = winners(
        lambda client: client.initiate_device_claim(DeviceId=device), "ResourceConflictException"
    )
    assert len(initiated) == 1
    claimed = winners(
        lambda client: client.claim_devices_by_claim_code(ClaimCode=CLAIM_CODE),
        "ForbiddenException",
    )
    assert len(claimed) == 1


def test_unknown_keys_and_bad_secrets_are_refused_as_aws_names_them(
    backend: ReferenceBackend, sdk: SdkFactory
) -> None:
    from simulator.backend.accounts import parse_account

    stranger = sdk(parse_account("333333333333:AKIASTRANGER0000003:stranger-secret-00003"))
    with pytest.raises(stranger.exceptions.ClientError) as unknown:
        stranger.list_devices()
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    forger = sdk(parse_account(f"111111111111:{ALICE.credentials.access_key}:wrong-secret-000001"))
    with pytest.raises(forger.exceptions.ClientError) as forged:
        forger.list_devices()
    assert forged.value.response["Error"]["Code"] == "InvalidSignatureException"
