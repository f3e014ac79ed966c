"""``clicksim profiles``: the device models clicksim can simulate."""

from __future__ import annotations

import click

from simulator.device.profile import ConnectionMode, Profile
from simulator.resources import load_profile, profile_names, profile_path


@click.group("profiles")
def group() -> None:
    """List and inspect device profiles."""


@group.command("list")
def list_() -> None:
    """The bundled profiles, one a line."""
    rows = [_summary(load_profile(name)) for name in profile_names()]
    width = max(len(row[0]) for row in rows)
    for name, text in rows:
        click.echo(f"{name:<{width}}  {text}")


@group.command("show")
@click.argument("reference")
def show(reference: str) -> None:
    """One profile: its settings and what they mean in clicks."""
    profile = load_profile(reference)
    t, b, m, plan = profile.timings, profile.battery, profile.mqtt, profile.plan
    rows = [
        ("file", str(profile_path(reference))),
        ("device type", profile.device_type),
        ("ids", f"{profile.id.prefix}… ({profile.id.length} characters)"),
        ("connection", f"{profile.connection.value} over {profile.network.value}"),
        ("mqtt", f"{m.version.value}, keepalive {m.keepalive_s} s"),
        ("payload", profile.payload.value),
        ("debounce", f"{t.debounce_ms} ms"),
        ("double click", f"second press within {t.double_click_window_ms} ms"),
        ("long press", f"held {t.long_press_ms} ms"),
        ("battery", f"{b.capacity_mah:g} mAh, {b.single_click_mah():g} mAh a click"),
        ("life from full", _life(profile)),
        ("offline", f"keeps {m.offline_queue} click(s), {m.max_attempts} connect attempt(s)"),
        ("backoff", f"full jitter, {m.backoff_base_s:g} s doubling up to {m.backoff_cap_s:g} s"),
    ]
    if plan is not None:
        limits = [f"{plan.max_clicks:,} clicks" if plan.max_clicks else ""]
        limits.append(f"{plan.max_days} days" if plan.max_days else "")
        rows.append(("plan", " or ".join(x for x in limits if x) + ", whichever comes first"))
    click.echo(f"{profile.name}: {profile.description}")
    for label, value in rows:
        click.echo(f"  {label:<15}{value}")


def _life(profile: Profile) -> str:
    """Life from full in the unit that limits it: clicks, or days kept connected."""
    battery = profile.battery
    if profile.connection is ConnectionMode.PERSISTENT and battery.connected_ma > 0:
        return f"~{battery.capacity_mah / battery.connected_ma / 24:,.0f} days connected"
    clicks = int(battery.capacity_mah / battery.single_click_mah())
    if profile.plan is not None and profile.plan.max_clicks is not None:
        clicks = min(clicks, profile.plan.max_clicks)
    return f"~{clicks:,} single clicks"


def _summary(profile: Profile) -> tuple[str, str]:
    return profile.name, (
        f"{profile.connection.value:<10} {profile.payload.value:<9} {profile.network.value:<5} "
        f"{_life(profile):<22} {profile.description}"
    )
