"""``clicksim click``: one virtual button wakes, clicks, and reports what it did."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import click

from simulator.cli.app import BROKER_OPTION, FLEET_OPTION
from simulator.device.firmware import (
    ClickDropped,
    ClickRecognised,
    ConnectRequested,
    Event,
    GaveUp,
    LedChanged,
    PoweredOff,
    PublishRequested,
)
from simulator.device.gestures import parse_press_ms, press_timings
from simulator.protocol import ClickType
from simulator.runtime.button import press_once
from simulator.runtime.connection import parse_broker_url
from simulator.runtime.fleet import Fleet


@click.command("click")
@click.argument("device_id")
@click.option(
    "--type",
    "click_type",
    type=click.Choice(["single", "double", "long"]),
    help="The click to make (default single).",
)
@click.option("--press-ms", help="Raw timings instead: press,gap,press... in ms, e.g. 90,120,90.")
@BROKER_OPTION
@FLEET_OPTION
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True)
def command(
    device_id: str,
    click_type: str | None,
    press_ms: str | None,
    broker: str,
    fleet_path: Path,
    timeout: float,
) -> None:
    """Wake DEVICE_ID, press its button, deliver the click, and sleep again.

    Prints the clicks recognised, the LED states, the connection, and the remaining
    life; saves the device's seq and battery back into the fleet. Exit status 1 when
    a click was not delivered.
    """
    if click_type is not None and press_ms is not None:
        raise click.UsageError("give --type or --press-ms, not both")
    address = parse_broker_url(broker)
    fleet = Fleet.open(fleet_path)
    device = fleet.device(device_id)
    if press_ms is not None:
        durations = parse_press_ms(press_ms)
    else:
        durations = press_timings(
            ClickType((click_type or "single").upper()), device.profile.timings
        )
    firmware = device.firmware(rng=random.Random())
    press = press_once(
        firmware,
        durations,
        broker=address,
        tls_context=device.tls_context() if address.tls else None,
        timeout=timeout,
        on_event=_report,
    )
    try:
        asyncio.run(press)
    except TimeoutError as exc:
        click.echo(f"  {exc}")
    finally:
        fleet.save_progress([firmware])
    battery = firmware.battery
    life = battery.remaining_life(time.time())
    counters = firmware.counters
    click.echo(
        f"{device_id}: {counters.published} of {counters.clicks} click(s) acknowledged; "
        f"remaining life {life:.2f}% ({battery.voltage_mv}mV)"
    )
    if counters.published < counters.clicks:
        raise SystemExit(1)


def _report(event: Event) -> None:
    line: str | None = None
    if isinstance(event, ClickRecognised):
        line = f"{event.click.click_type.value} click (seq {event.click.seq})"
    elif isinstance(event, LedChanged):
        line = f"led {event.led.value}"
    elif isinstance(event, ConnectRequested):
        line = f"connecting (attempt {event.attempt})"
    elif isinstance(event, PublishRequested):
        line = f"publishing to {event.topic} at QoS {event.qos}"
    elif isinstance(event, GaveUp):
        line = f"gave up after {event.attempts} attempt(s); {event.queued} click(s) kept"
    elif isinstance(event, ClickDropped):
        line = f"click seq {event.click.seq} dropped: {event.reason.value}"
    elif isinstance(event, PoweredOff):
        line = f"powered off: {event.reason}"
    if line is not None:
        click.echo(f"  {line}")
