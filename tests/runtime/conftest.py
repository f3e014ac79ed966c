"""A fleet and brokers (mosquitto and the embedded one) for the runtime tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from simulator.broker.embedded import EmbeddedBroker
from simulator.resources import load_profile
from simulator.runtime.connection import BrokerAddress
from simulator.runtime.fleet import Fleet
from simulator.workspace import CaFolder, create_fleet
from tests.support import Mosquitto, require_mosquitto

BrokerFactory = Callable[[int], AbstractAsyncContextManager[BrokerAddress]]
"""Start a broker (on the given port, 0 for any) for the length of an ``async with``."""


@pytest.fixture(scope="session")
def fleet_path(ca_folder: CaFolder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fleet") / "fleet.json"
    profile = load_profile("aws-iot-enterprise-button")
    create_fleet(profile, ca_folder=ca_folder, count=3, seed="runtime", claim_code=None, out=out)
    return out


@pytest.fixture
def fleet(fleet_path: Path, tmp_path: Path) -> Fleet:
    """The session fleet, its manifest copied so a test may save progress into it."""
    copy = fleet_path.parent / f"{tmp_path.name}.json"
    copy.write_text(fleet_path.read_text())
    return Fleet.open(copy)


@pytest.fixture(params=["mosquitto", "embedded"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def start_broker(broker_kind: str, ca_folder: CaFolder, tmp_path: Path) -> Iterator[BrokerFactory]:
    if broker_kind == "mosquitto":
        binary = require_mosquitto()

        @contextlib.asynccontextmanager
        async def mosquitto(port: int) -> AsyncIterator[BrokerAddress]:
            process = Mosquitto(binary, ca_dir=ca_folder.path, work_dir=tmp_path, port=port)
            process.start()
            try:
                yield BrokerAddress(host="127.0.0.1", port=process.port, tls=True)
            finally:
                process.stop()

        yield mosquitto
    else:

        @contextlib.asynccontextmanager
        async def embedded(port: int) -> AsyncIterator[BrokerAddress]:
            async with EmbeddedBroker(host="127.0.0.1", port=port, ca_dir=ca_folder.path) as broker:
                yield BrokerAddress(host="127.0.0.1", port=broker.port, tls=True)

        yield embedded
