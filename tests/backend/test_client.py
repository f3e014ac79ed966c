"""clicksim's DevicesClient against the reference backend: every operation, real clicks.

Here, not in tests/api, because it uses the backend fixtures of tests/backend/conftest.py.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Final

from simulator.api.client import ApiReply, DevicesClient
from simulator.api.model import load_model
from simulator.api.sigv4 import Credentials
from simulator.backend.accounts import Account
from simulator.backend.server import ReferenceBackend
from simulator.runtime.fleet import Fleet
from tests.backend.conftest import ALICE, BOB, CLAIM_CODE, Clicker

CALLBACK: Final = {"callback": {"awsLambdaArn": "arn:aws:lambda:us-east-1:111111111111:function:f"}}


class Caller:
    """One account's client, called synchronously (the backend runs on its own thread)."""

    def __init__(self, backend: ReferenceBackend, account: Account) -> None:
        self.client = DevicesClient(backend.api_url, account.credentials)
        self.called: set[str] = set()

    def __call__(self, operation: str, **params: object) -> ApiReply:
        return self.call(operation, params)

    def call(self, operation: str, params: dict[str, object]) -> ApiReply:
        reply = asyncio.run(self.client.call(operation, params))
        self.called.add(operation)
        return reply


def ids(fleet: Fleet) -> list[str]:
    return sorted(record.device_id for record in fleet.manifest.devices)


def test_every_operation_through_the_client(
    backend: ReferenceBackend, backend_fleet: Fleet, press: Clicker
) -> None:
    alice = Caller(backend, ALICE)
    first = ids(backend_fleet)[0]

    claimed = alice("ClaimDevicesByClaimCode", claimCode=CLAIM_CODE)
    assert (claimed.status, claimed.body["total"], claimed.error_code) == (200, 5, None)
    assert claimed.request_id

    devices: list[str] = []
    token: object = None
    pages = 0
    while True:
        page = alice("ListDevices", maxResults=2, nextToken=token, deviceType="button")
        assert page.status == 200
        devices += [device["deviceId"] for device in page.body["devices"]]
        pages += 1
        token = page.body.get("nextToken")
        if token is None:
            break
    assert (devices, pages) == (ids(backend_fleet), 3)

    description = alice("DescribeDevice", deviceId=first).body["deviceDescription"]
    arn = description["arn"]
    assert arn == f"arn:aws:iot1click:us-east-1:{ALICE.account_id}:devices/{first}"
    assert alice("UpdateDeviceState", deviceId=first, enabled=True).status == 200
    assert alice("DescribeDevice", deviceId=first).body["deviceDescription"]["enabled"] is True

    methods = alice("GetDeviceMethods", deviceId=first).body["deviceMethods"]
    assert {"deviceType": "button", "methodName": "setOnClickCallback"} in methods
    invoked = alice(
        "InvokeDeviceMethod",
        deviceId=first,
        deviceMethod={"deviceType": "button", "methodName": "setOnClickCallback"},
        deviceMethodParameters=CALLBACK,
    )
    assert invoked.status == 200
    assert json.loads(invoked.request.body)["deviceMethodParameters"] == json.dumps(CALLBACK)
    got = alice(
        "InvokeDeviceMethod",
        deviceId=first,
        deviceMethod={"deviceType": "button", "methodName": "getOnClickCallback"},
    )
    assert json.loads(got.body["deviceMethodResponse"]) == CALLBACK

    tagged = alice.call("TagResource", {"resource-arn": arn, "tags": {"a": "1", "b": "2"}})
    assert (tagged.status, tagged.body, tagged.error_code) == (204, None, None)
    assert "/tags/arn%3Aaws%3Aiot1click%3Aus-east-1%3A" in tagged.request.url
    untagged = alice("UntagResource", resourceArn=arn, tagKeys=["a", "no-such-key"])
    assert (untagged.status, untagged.body) == (204, None)
    assert alice("ListTagsForResource", resourceArn=arn).body == {"tags": {"b": "2"}}

    assert alice("UnclaimDevice", deviceId=first).body == {"state": "UNCLAIMED"}
    assert alice("InitiateDeviceClaim", deviceId=first).body == {"state": "CLAIM_INITIATED"}
    press(first)
    finalized = alice("FinalizeDeviceClaim", deviceId=first, tags={"room": "kitchen"})
    assert finalized.body == {"state": "CLAIMED"}

    now = datetime.now(UTC)
    events = alice(
        "ListDeviceEvents",
        deviceId=first,
        fromTimeStamp=now - timedelta(days=1),
        toTimeStamp=(now + timedelta(days=1)).isoformat(),
    ).body["events"]
    assert [json.loads(event["stdEvent"])["clickType"] for event in events] == ["SINGLE"]

    assert alice.called == set(load_model().operations)


def test_errors_are_replies_with_their_code(
    backend: ReferenceBackend, backend_fleet: Fleet
) -> None:
    alice, bob = Caller(backend, ALICE), Caller(backend, BOB)
    device = ids(backend_fleet)[0]

    missing = alice("DescribeDevice", deviceId="NO-SUCH-DEVICE")
    assert (missing.status, missing.error_code) == (404, "ResourceNotFoundException")
    assert missing.body["code"] == "ResourceNotFoundException"
    assert "NO-SUCH-DEVICE" in missing.body["message"]
    assert missing.request_id

    assert alice("InitiateDeviceClaim", deviceId=device).status == 200
    conflict = bob("InitiateDeviceClaim", deviceId=device)
    assert (conflict.status, conflict.error_code) == (409, "ResourceConflictException")
    early = alice("FinalizeDeviceClaim", deviceId=device)
    assert (early.status, early.error_code) == (412, "PreconditionFailedException")
    forged = alice("ListDevices", nextToken="forged-token")
    assert (forged.status, forged.error_code) == (416, "RangeNotSatisfiableException")
    too_many = alice("ListDevices", maxResults=251)
    assert (too_many.status, too_many.error_code) == (400, "InvalidRequestException")

    wrong_secret = Credentials(access_key=ALICE.credentials.access_key, secret_key="x" * 40)
    stranger = DevicesClient(backend.api_url, wrong_secret)
    refused = asyncio.run(stranger.call("ListDevices", {}))
    assert (refused.status, refused.error_code) == (403, "InvalidSignatureException")
