"""A whole fleet pressing at random, per its profiles' habits, against one broker.

Each device gets a VirtualButton and a task that sleeps an exponential time between
presses (a Poisson process at the device's rate) and picks the click type by its
profile's mix. Everything random comes from one seeded generator per device.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from simulator.device.firmware import Firmware, LinkState
from simulator.device.gestures import press_timings
from simulator.device.profile import Profile
from simulator.protocol import ClickType
from simulator.runtime.button import VirtualButton
from simulator.runtime.connection import BrokerAddress
from simulator.runtime.fleet import Fleet

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Progress:
    devices: int
    connected: int
    clicks: int
    acknowledged: int
    queued: int
    dropped: int
    connect_failures: int
    dead: int
    mean_life: float

    def line(self) -> str:
        return (
            f"{self.devices} devices, {self.connected} connected | clicks {self.clicks}, "
            f"acked {self.acknowledged}, queued {self.queued}, dropped {self.dropped} | "
            f"connect failures {self.connect_failures} | dead {self.dead}, "
            f"mean life {self.mean_life:.2f}%"
        )


def progress_of(firmwares: list[Firmware], now: float) -> Progress:
    online = (LinkState.ONLINE, LinkState.PUBLISHING)
    return Progress(
        devices=len(firmwares),
        connected=sum(fw.link_state in online for fw in firmwares),
        clicks=sum(fw.counters.clicks for fw in firmwares),
        acknowledged=sum(fw.counters.published for fw in firmwares),
        queued=sum(fw.queued for fw in firmwares),
        dropped=sum(sum(fw.counters.dropped.values()) for fw in firmwares),
        connect_failures=sum(fw.counters.connect_failures for fw in firmwares),
        dead=sum(fw.dead for fw in firmwares),
        mean_life=sum(fw.battery.remaining_life(now) for fw in firmwares) / len(firmwares),
    )


def _pick(profile: Profile, rng: random.Random) -> ClickType:
    types = [click_type for click_type, _ in profile.habits.mix]
    weights = [share for _, share in profile.habits.mix]
    return rng.choices(types, weights)[0]


async def run_fleet(
    fleet: Fleet,
    *,
    broker: BrokerAddress,
    duration: float,
    rate: float | None,
    seed: str,
    on_progress: Callable[[Progress], None],
    settle_timeout: float = 60.0,
) -> Progress:
    """Press for ``duration`` seconds, let every click go out, and save progress."""
    firmwares = [
        device.firmware(rng=random.Random(f"{seed}/backoff/{device.record.device_id}"))
        for device in fleet.devices
    ]
    buttons = [
        VirtualButton(
            firmware,
            broker=broker,
            tls_context=device.tls_context() if broker.tls else None,
        )
        for device, firmware in zip(fleet.devices, firmwares, strict=True)
    ]
    per_device = None if rate is None else rate / len(buttons)
    stop_at = time.monotonic() + duration

    async def press_at_random(button: VirtualButton, rng: random.Random) -> None:
        profile = button.firmware.profile
        device_rate = per_device or profile.habits.clicks_per_hour / SECONDS_PER_HOUR
        if device_rate <= 0:
            return
        while True:
            pause = rng.expovariate(device_rate)
            if time.monotonic() + pause >= stop_at:
                return
            await asyncio.sleep(pause)
            await button.perform(press_timings(_pick(profile, rng), profile.timings))

    async def report() -> None:
        while True:
            on_progress(progress_of(firmwares, time.time()))
            await asyncio.sleep(1.0)

    try:
        for button in buttons:
            await button.__aenter__()
        reporter = asyncio.create_task(report())
        try:
            async with asyncio.TaskGroup() as group:
                for button in buttons:
                    rng = random.Random(f"{seed}/presses/{button.firmware.device_id}")
                    group.create_task(press_at_random(button, rng))
            await asyncio.gather(
                *(button.settle(settle_timeout) for button in buttons), return_exceptions=True
            )
        finally:
            reporter.cancel()
    finally:
        await asyncio.gather(*(b.__aexit__(None, None, None) for b in buttons))
        fleet.save_progress(firmwares)
    final = progress_of(firmwares, time.time())
    on_progress(final)
    return final
