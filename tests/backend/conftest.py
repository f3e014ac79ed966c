"""The reference backend on a real socket, and the AWS SDK pointed at it."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import botocore.session
import pytest

from simulator.backend.accounts import Account, parse_account
from simulator.backend.server import BackendConfig, ReferenceBackend
from simulator.device.gestures import press_timings
from simulator.protocol import ClickType
from simulator.resources import load_profile
from simulator.runtime.button import press_once
from simulator.runtime.connection import parse_broker_url
from simulator.runtime.fleet import Fleet
from simulator.workspace import CaFolder, create_fleet

ALICE = parse_account("111111111111:AKIAALICE0000000001:alice-secret-key-0000000001")
BOB = parse_account("222222222222:AKIABOB00000000000002:bob-secret-key-00000000000002")
CLAIM_CODE = "C-BACKENDTEST01"

_T = TypeVar("_T")


class BackendThread:
    """A ReferenceBackend on its own event loop, so sync clients (botocore) can call it."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.backend = ReferenceBackend(config)

    def __enter__(self) -> ReferenceBackend:
        self._thread.start()
        self.run(self.backend.__aenter__())
        return self.backend

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.run(self.backend.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)


@pytest.fixture(scope="session")
def backend_fleet_path(ca_folder: CaFolder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("backend-fleet") / "fleet.json"
    profile = load_profile("aws-iot-enterprise-button")
    create_fleet(
        profile, ca_folder=ca_folder, count=5, seed="backend", claim_code=CLAIM_CODE, out=out
    )
    return out


@pytest.fixture
def backend_fleet(backend_fleet_path: Path, tmp_path: Path) -> Fleet:
    """The session fleet with its own manifest copy, so seq numbers stay per test."""
    copy = backend_fleet_path.parent / f"{tmp_path.name}.json"
    copy.write_text(backend_fleet_path.read_text())
    return Fleet.open(copy)


@pytest.fixture
def backend_config(
    ca_folder: CaFolder, backend_fleet: Fleet, backend_fleet_path: Path, tmp_path: Path
) -> BackendConfig:
    return BackendConfig(
        ca_dir=ca_folder.path,
        db=tmp_path / "backend.db",
        fleets=(backend_fleet_path,),
        accounts=(ALICE, BOB),
        admin_token="test-admin-token",
    )


@pytest.fixture
def backend(backend_config: BackendConfig) -> Iterator[ReferenceBackend]:
    with BackendThread(backend_config) as running:
        yield running


SdkFactory = Callable[[Account], Any]
WAIT = 15.0


def sdk_client(api_url: str, account: Account) -> Any:
    """A real botocore iot1click-devices client for an account, pointed at a backend."""
    return botocore.session.get_session().create_client(
        "iot1click-devices",
        region_name="us-east-1",
        endpoint_url=api_url,
        aws_access_key_id=account.credentials.access_key,
        aws_secret_access_key=account.credentials.secret_key,
    )


@pytest.fixture
def sdk(backend: ReferenceBackend) -> SdkFactory:
    return lambda account: sdk_client(backend.api_url, account)


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)


def admin_status(backend: ReferenceBackend) -> dict[str, Any]:
    """The backend's /_clicksim/status document."""
    request = urllib.request.Request(
        f"{backend.api_url}/_clicksim/status",
        headers={"Authorization": f"Bearer {backend.admin_token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        document: dict[str, Any] = json.load(reply)
    return document


Clicker = Callable[..., None]


@pytest.fixture
def press(backend: ReferenceBackend, backend_fleet: Fleet) -> Clicker:
    """Press a fleet device's button over real MQTT; return once the click is acknowledged."""
    address = parse_broker_url(backend.mqtt_url)

    def press_button(device_id: str, click_type: ClickType = ClickType.SINGLE) -> None:
        fleet = Fleet.open(backend_fleet.path)  # the seq saved by the last press
        device = fleet.device(device_id)
        firmware = device.firmware(rng=random.Random(0))
        durations = press_timings(click_type, device.profile.timings)
        asyncio.run(
            press_once(
                firmware, durations, broker=address, tls_context=device.tls_context(), timeout=30
            )
        )
        fleet.save_progress([firmware])
        assert firmware.counters.published == firmware.counters.clicks == 1

    return press_button
