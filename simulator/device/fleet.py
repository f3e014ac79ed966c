"""Fleets: a batch of devices of one profile and the manifest that describes them.

The manifest is what the runtime, the reference backend's inventory and the
scenario runner read (format in ``docs/fleets.md``). This module is pure: it plans
a fleet from a seed (ids, key seeds, claim code) and turns manifests into text and
back; ``simulator.workspace`` writes the files.

Everything derives from the fleet's seed, so the same seed gives the same ids,
keys and certificates, and a run can be replayed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from simulator.device.battery import BatteryState
from simulator.device.profile import Profile
from simulator.protocol import CERTIFICATE_ID, CLAIM_CODE

MANIFEST_FORMAT: Final = "clicksim-fleet/1"
MAX_FLEET_SIZE: Final = 1_000_000
_CLAIM_ALPHABET: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_CLAIM_CODE_LENGTH: Final = 20


class FleetError(ValueError):
    """A fleet request or manifest that cannot be used; says what and where."""


def seed_bytes(seed: str) -> bytes:
    """The bytes every derivation starts from; any text is a valid seed."""
    return hashlib.sha256(b"clicksim-seed\0" + seed.encode()).digest()


def derive(seed: str, label: str) -> bytes:
    """A 32-byte sub-seed for one purpose (``device/3``, ``ca``...)."""
    return hashlib.sha256(seed_bytes(seed) + b"\0" + label.encode()).digest()


def _symbols(seed: str, label: str) -> Iterator[int]:
    """An endless, deterministic stream of bytes for ids and codes."""
    counter = 0
    while True:
        yield from derive(seed, f"{label}/{counter}")
        counter += 1


def make_claim_code(seed: str) -> str:
    symbols = _symbols(seed, "claim-code")
    size = len(_CLAIM_ALPHABET)
    return "C-" + "".join(_CLAIM_ALPHABET[next(symbols) % size] for _ in range(_CLAIM_CODE_LENGTH))


def check_claim_code(code: str) -> str:
    if not CLAIM_CODE.fullmatch(code):
        raise FleetError(f"claim code {code!r} is not 'C-' followed by 10 to 38 letters or digits")
    return code


@dataclass(frozen=True, kw_only=True, slots=True)
class PlannedDevice:
    """A device before its identity exists: its id and the seed of its key."""

    index: int
    device_id: str
    key_seed: bytes


def plan_devices(profile: Profile, *, count: int, seed: str) -> list[PlannedDevice]:
    """``count`` distinct device ids in the profile's format, with their key seeds."""
    if not 1 <= count <= MAX_FLEET_SIZE:
        raise FleetError(f"count must be within 1..{MAX_FLEET_SIZE}, got {count}")
    symbols = _symbols(seed, "device-ids")
    seen: set[str] = set()
    planned: list[PlannedDevice] = []
    while len(planned) < count:
        device_id = profile.id.make(symbols)
        if device_id in seen:
            continue
        seen.add(device_id)
        index = len(planned)
        planned.append(
            PlannedDevice(
                index=index, device_id=device_id, key_seed=derive(seed, f"device/{index}")
            )
        )
    return planned


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceRecord:
    device_id: str
    device_type: str
    profile: str
    certificate: str
    """Path of the PEM certificate, relative to the manifest's folder."""
    key: str
    """Path of the PEM private key (mode 0600), relative to the manifest's folder."""
    certificate_id: str
    claim_code: str
    seq: int = 0
    """The next click's sequence number: survives restarts."""
    battery: BatteryState = field(default_factory=BatteryState)


@dataclass(frozen=True, kw_only=True, slots=True)
class Manifest:
    profile: str
    seed: str
    claim_code: str
    ca_certificate: str
    """Path of the CA certificate that signed the devices, relative to the manifest."""
    devices: tuple[DeviceRecord, ...]
    profile_file: str | None = None
    """Path of the profile's TOML, relative to the manifest, when it is not a bundled one."""

    def to_json(self) -> str:
        document = {
            "format": MANIFEST_FORMAT,
            "profile": self.profile,
            "seed": self.seed,
            "claimCode": self.claim_code,
            "caCertificate": self.ca_certificate,
            **({"profileFile": self.profile_file} if self.profile_file else {}),
            "devices": [_record_to_json(record) for record in self.devices],
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str) -> Manifest:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FleetError(f"{source}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        reader = _Fields(document, where=source)
        if reader.text("format") != MANIFEST_FORMAT:
            raise FleetError(f"{source}: format is not {MANIFEST_FORMAT!r}")
        raw_devices = reader.value("devices", list)
        devices = tuple(
            _record_from_json(item, where=f"{source}: devices[{i}]")
            for i, item in enumerate(raw_devices)
        )
        ids = [record.device_id for record in devices]
        if len(set(ids)) != len(ids):
            raise FleetError(f"{source}: a device id appears twice")
        return cls(
            profile=reader.text("profile"),
            seed=reader.text("seed"),
            claim_code=reader.text("claimCode"),
            ca_certificate=reader.text("caCertificate"),
            devices=devices,
            profile_file=reader.optional("profileFile", str),
        )


def _record_to_json(record: DeviceRecord) -> dict[str, Any]:
    state = record.battery
    return {
        "deviceId": record.device_id,
        "type": record.device_type,
        "profile": record.profile,
        "certificate": record.certificate,
        "key": record.key,
        "certificateId": record.certificate_id,
        "claimCode": record.claim_code,
        "seq": record.seq,
        "battery": {
            "usedMah": state.used_mah,
            "clicks": state.clicks,
            "firstClickAt": state.first_click_at,
            "updatedAt": state.updated_at,
        },
    }


def _record_from_json(item: object, *, where: str) -> DeviceRecord:
    fields = _Fields(item, where=where)
    battery = _Fields(fields.value("battery", dict), where=f"{where}.battery")
    certificate_id = fields.text("certificateId")
    if not CERTIFICATE_ID.fullmatch(certificate_id):
        raise FleetError(f"{where}: certificateId is not 64 lowercase hex characters")
    seq = fields.value("seq", int)
    if seq < 0:
        raise FleetError(f"{where}: seq {seq} is negative")
    try:
        state = BatteryState(
            used_mah=float(battery.value("usedMah", (int, float))),
            clicks=battery.value("clicks", int),
            first_click_at=battery.optional("firstClickAt", (int, float)),
            updated_at=battery.optional("updatedAt", (int, float)),
        )
    except ValueError as exc:
        raise FleetError(f"{where}.battery: {exc}") from None
    return DeviceRecord(
        device_id=fields.text("deviceId"),
        device_type=fields.text("type"),
        profile=fields.text("profile"),
        certificate=fields.text("certificate"),
        key=fields.text("key"),
        certificate_id=certificate_id,
        claim_code=check_claim_code(fields.text("claimCode")),
        seq=seq,
        battery=state,
    )


class _Fields:
    def __init__(self, document: object, *, where: str) -> None:
        if not isinstance(document, dict):
            raise FleetError(f"{where}: must be a JSON object")
        self._document: dict[str, Any] = document
        self._where = where

    def value(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self._document:
            raise FleetError(f"{self._where}: {key} is missing")
        found = self._document[key]
        if isinstance(found, bool) or not isinstance(found, kind):
            raise FleetError(f"{self._where}: {key} has the wrong type ({type(found).__name__})")
        return found

    def optional(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if self._document.get(key) is None:
            return None
        return self.value(key, kind)

    def text(self, key: str) -> str:
        found: str = self.value(key, str)
        if not found:
            raise FleetError(f"{self._where}: {key} is empty")
        return found
