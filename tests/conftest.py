"""Fixtures shared by every test: the bundled profiles and a session-wide CA."""

from __future__ import annotations

import pytest

from simulator.device.identity import KeyType
from simulator.workspace import CaFolder, init_ca


@pytest.fixture(scope="session")
def ca_folder(tmp_path_factory: pytest.TempPathFactory) -> CaFolder:
    """One EC CA for the whole session (tests must not write into it)."""
    return init_ca(tmp_path_factory.mktemp("ca") / "certs", seed="tests", key_type=KeyType.EC)
