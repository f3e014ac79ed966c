"""A fleet manifest brought to life: firmware for each device, progress saved back.

``seq`` and the battery survive restarts: they are read from the manifest when a
device starts and written back (atomically) when it stops.
"""

from __future__ import annotations

import dataclasses
import random
import ssl
from dataclasses import dataclass
from pathlib import Path

from simulator.device.battery import Battery, BatteryState
from simulator.device.firmware import Firmware
from simulator.device.fleet import DeviceRecord, Manifest
from simulator.device.profile import Profile
from simulator.resources import load_profile
from simulator.runtime.connection import client_tls_context
from simulator.workspace import WorkspaceError, read_manifest, save_manifest


@dataclass(frozen=True, kw_only=True, slots=True)
class FleetDevice:
    record: DeviceRecord
    profile: Profile
    certificate: Path
    key: Path
    ca_certificate: Path

    def tls_context(self) -> ssl.SSLContext:
        return client_tls_context(
            ca_file=self.ca_certificate, certificate=self.certificate, key=self.key
        )

    def firmware(
        self,
        *,
        rng: random.Random,
        profile: Profile | None = None,
        battery: BatteryState | None = None,
    ) -> Firmware:
        """The device's firmware where the manifest left it (or with another profile)."""
        profile = profile if profile is not None else self.profile
        return Firmware(
            profile,
            device_id=self.record.device_id,
            certificate_id=self.record.certificate_id,
            battery=Battery(
                profile.battery, profile.plan, self.record.battery if battery is None else battery
            ),
            next_seq=self.record.seq,
            rng=rng,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Fleet:
    path: Path
    manifest: Manifest
    devices: tuple[FleetDevice, ...]

    @classmethod
    def open(cls, path: Path) -> Fleet:
        manifest = read_manifest(path)
        profiles: dict[str, Profile] = {}
        if manifest.profile_file is not None:
            profiles[manifest.profile] = load_profile(str(path.parent / manifest.profile_file))
        devices = []
        for record in manifest.devices:
            if record.profile not in profiles:
                profiles[record.profile] = load_profile(record.profile)
            devices.append(
                FleetDevice(
                    record=record,
                    profile=profiles[record.profile],
                    certificate=path.parent / record.certificate,
                    key=path.parent / record.key,
                    ca_certificate=path.parent / manifest.ca_certificate,
                )
            )
        return cls(path=path, manifest=manifest, devices=tuple(devices))

    def device(self, device_id: str) -> FleetDevice:
        for device in self.devices:
            if device.record.device_id == device_id:
                return device
        raise WorkspaceError(f"{self.path}: no device {device_id!r} in this fleet")

    def save_progress(self, firmwares: list[Firmware]) -> None:
        """Write each device's next seq and battery back into the manifest."""
        progress = {fw.device_id: fw for fw in firmwares}
        records = tuple(
            dataclasses.replace(
                record,
                seq=progress[record.device_id].next_seq,
                battery=progress[record.device_id].battery.state,
            )
            if record.device_id in progress
            else record
            for record in self.manifest.devices
        )
        save_manifest(self.path, dataclasses.replace(self.manifest, devices=records))
