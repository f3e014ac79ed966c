"""What a scenario runs against: the embedded reference backend, or someone else's.

Either way the runner gets the same :class:`Target`: an API endpoint, a broker, and
signing keys for each of the scenario's accounts. The runner then speaks only HTTP
and MQTT to it, exactly as to any third-party backend.

* Embedded (the default): a fresh reference backend on free ports, with its own
  SQLite file, the scenario's fleet in its inventory, one generated account per
  scenario account, and the runner's clock as its clock, so ``advance`` steps move
  the backend's time too.
* External (``--api`` and ``--broker``): the fleet must be in the backend's inventory
  (``--provision-cmd`` runs the user's command with the manifest's path), and each
  account signs with keys from the AWS credential chain (``--account NAME=PROFILE``).
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from simulator.api.client import parse_endpoint
from simulator.api.credentials import CredentialsError, resolve, resolve_region
from simulator.api.sigv4 import Credentials
from simulator.backend.accounts import Account
from simulator.backend.server import BackendConfig, ReferenceBackend
from simulator.device.identity import KeyType
from simulator.resources import load_profile
from simulator.runtime.connection import BrokerAddress, parse_broker_url
from simulator.runtime.fleet import Fleet
from simulator.scenario.model import Scenario
from simulator.workspace import CaFolder, create_fleet, init_ca

PROVISION_TIMEOUT_S = 300.0


class TargetError(Exception):
    """The target cannot be set up: bad credentials, a failed provisioning command."""


class ScenarioClock:
    """The runner's time: the wall clock plus whatever ``advance`` steps have added."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self.offset = 0.0

    def __call__(self) -> float:
        return self._wall() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass(frozen=True, kw_only=True, slots=True)
class ActingAccount:
    name: str
    account_id: str | None
    """None where the runner cannot know it (an external backend's account)."""
    credentials: Credentials


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    description: str
    api_url: str
    broker: BrokerAddress
    accounts: Mapping[str, ActingAccount]
    region: str
    backend_clock: bool
    """Whether ``advance`` moves the backend's clock (only the embedded backend's)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Workspace:
    """The scenario's CA and fleet, made fresh for the run from its seed."""

    ca_folder: CaFolder
    manifest: Path
    fleet: Fleet


def prepare_workspace(
    scenario: Scenario, *, seed: str, root: Path, ca_dir: Path | None
) -> Workspace:
    """Make the fleet (and, with no ``ca_dir``, a CA) under ``root``.

    An external broker must trust the devices' certificates, so against one the
    fleet is signed by the user's CA (``ca_dir``); the embedded broker trusts a CA
    made here from the seed.
    """
    if ca_dir is not None:
        ca_folder = CaFolder(path=ca_dir)
    else:
        ca_folder = init_ca(root / "certs", seed=f"{seed}/ca", key_type=KeyType.EC)
    profile_path = _profile_file(scenario)
    return make_workspace(
        profile_path or scenario.fleet.profile,
        count=scenario.fleet.count,
        seed=seed,
        claim_code=scenario.fleet.claim_code,
        root=root,
        ca_folder=ca_folder,
    )


def make_workspace(
    profile: str | Path,
    *,
    count: int,
    seed: str,
    claim_code: str | None,
    root: Path,
    ca_folder: CaFolder,
) -> Workspace:
    """A fleet of ``count`` devices of ``profile`` (a bundled name or a .toml file) under
    ``root``, signed by ``ca_folder``."""
    manifest = root / "fleet" / "fleet.json"
    create_fleet(
        load_profile(str(profile)),
        ca_folder=ca_folder,
        count=count,
        seed=seed,
        claim_code=claim_code,
        out=manifest,
        profile_file=profile if isinstance(profile, Path) else None,
    )
    return Workspace(ca_folder=ca_folder, manifest=manifest, fleet=Fleet.open(manifest))


def _profile_file(scenario: Scenario) -> Path | None:
    if not scenario.fleet.profile.endswith(".toml"):
        return None
    return (scenario.path.parent / scenario.fleet.profile).resolve()


def generated_accounts(names: Sequence[str], seed: str) -> dict[str, ActingAccount]:
    """One account per name, ids 100000000001 upwards, keys from the seed."""
    accounts = {}
    for number, name in enumerate(names, start=1):
        digest = hashlib.sha256(f"clicksim-account\0{seed}\0{name}".encode()).hexdigest()
        accounts[name] = ActingAccount(
            name=name,
            account_id=f"{100_000_000_000 + number}",
            credentials=Credentials(
                access_key="AKIA" + digest[:16].upper(), secret_key=digest[16:56]
            ),
        )
    return accounts


@contextlib.asynccontextmanager
async def embedded_target(
    *,
    ca_folder: CaFolder,
    manifests: Sequence[Path],
    account_names: Sequence[str],
    seed: str,
    clock: ScenarioClock,
    db: Path,
) -> AsyncIterator[Target]:
    """A fresh reference backend with ``manifests`` in its inventory, on the run's clock."""
    accounts = generated_accounts(account_names, seed)
    config = BackendConfig(
        ca_dir=ca_folder.path,
        db=db,
        port=0,
        mqtt_port=0,
        fleets=tuple(manifests),
        accounts=tuple(
            Account(account_id=str(a.account_id), credentials=a.credentials)
            for a in accounts.values()
        ),
        clock=clock,
    )
    async with ReferenceBackend(config) as backend:
        yield Target(
            description="the embedded reference backend",
            api_url=backend.api_url,
            broker=parse_broker_url(backend.mqtt_url),
            accounts=accounts,
            region=config.region,
            backend_clock=True,
        )


def external_target(
    account_names: Sequence[str],
    *,
    api_url: str,
    broker_url: str,
    profiles: Mapping[str, str],
    region: str | None,
    env: Mapping[str, str],
    every_account: bool = True,
) -> Target:
    """Resolve each account's keys and describe the target.

    The first account signs with the AWS credential chain unless ``profiles`` names
    one; the others need a profile. Without ``every_account``, an account with no
    profile is left out (the caller skips what needs it) instead of refused.
    """
    try:
        parse_endpoint(api_url)
    except ValueError as exc:
        raise TargetError(f"--api: {exc}") from None
    unknown = sorted(set(profiles) - set(account_names))
    if unknown:
        known = ", ".join(account_names)
        raise TargetError(f"--account {unknown[0]}: no such account (there are: {known})")
    accounts: dict[str, ActingAccount] = {}
    for index, name in enumerate(account_names):
        if name not in profiles and index > 0:
            if not every_account:
                continue
            raise TargetError(f"the account {name!r} needs keys: give --account {name}=PROFILE")
        try:
            credentials = resolve(profiles.get(name), env=env)
        except CredentialsError as exc:
            raise TargetError(f"account {name}: {exc}") from None
        accounts[name] = ActingAccount(name=name, account_id=None, credentials=credentials)
    first_profile = profiles.get(account_names[0])
    return Target(
        description=api_url,
        api_url=api_url,
        broker=parse_broker_url(broker_url),
        accounts=accounts,
        region=region or resolve_region(first_profile, env=env) or "us-east-1",
        backend_clock=False,
    )


def provision(command: str, manifest: Path, *, ca_dir: Path, env: Mapping[str, str]) -> None:
    """Run the user's command with the manifest's path; it must add the fleet and exit 0."""
    line = f"{command} {shlex.quote(str(manifest))}"
    try:
        done = subprocess.run(
            line,
            shell=True,  # the user's own command line, as they would type it
            env={**env, "CLICKSIM_MANIFEST": str(manifest), "CLICKSIM_CA_DIR": str(ca_dir)},
            capture_output=True,
            text=True,
            timeout=PROVISION_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TargetError(
            f"--provision-cmd did not finish within {PROVISION_TIMEOUT_S:.0f} s"
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output on stderr)"])[-1]
        raise TargetError(f"--provision-cmd exited with status {done.returncode}: {last}")
