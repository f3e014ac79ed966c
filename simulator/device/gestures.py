"""What a finger does for each click type: press timings a firmware will recognise.

Timings are alternating press and gap durations in milliseconds (``90,120,90`` is
press 90 ms, wait 120 ms, press 90 ms), chosen well inside the profile's thresholds
so that the intended click is the one recognised.
"""

from __future__ import annotations

from simulator.device.profile import Timings
from simulator.protocol import ClickType


class GestureError(ValueError):
    """Press timings that are not a list of positive durations."""


def press_timings(click_type: ClickType, timings: Timings) -> tuple[int, ...]:
    short = max(timings.debounce_ms * 2, 80)
    if click_type is ClickType.SINGLE:
        return (short,)
    if click_type is ClickType.DOUBLE:
        return (short, max(timings.double_click_window_ms // 3, 1), short)
    return (timings.long_press_ms + 200,)


def parse_press_ms(text: str) -> tuple[int, ...]:
    """``"90,120,90"`` -> ``(90, 120, 90)``: presses at even places, gaps between."""
    try:
        durations = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise GestureError(
            f"--press-ms {text!r}: give whole milliseconds separated by commas, like 90,120,90"
        ) from None
    if len(durations) % 2 == 0:
        raise GestureError(f"--press-ms {text!r}: must end with a press (an odd count)")
    if any(d <= 0 or d > 60_000 for d in durations):
        raise GestureError(f"--press-ms {text!r}: each duration must be within 1..60000 ms")
    return durations
