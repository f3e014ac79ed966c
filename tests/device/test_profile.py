"""Device profiles: the bundled ones parse, and bad ones are refused precisely."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path
from typing import Final

import pytest

from simulator.device.profile import (
    ConnectionMode,
    IdFormat,
    ProfileError,
    parse_profile,
)
from simulator.protocol import ClickType, PayloadFormat

PROFILES: Final = Path(__file__).resolve().parents[2] / "profiles"
PROFILE_FILES: Final = sorted(PROFILES.glob("*.toml"))
REQUIRED_MODELS: Final = (
    "aws-iot-enterprise-button",
    "aws-iot-button-gen1",
    "aws-iot-button-gen2",
    "soracom-lte-m-button",
    "att-lte-m-button",
)
SOURCE: Final = "profiles/edited.toml"


def profile_text(name: str) -> str:
    return (PROFILES / f"{name}.toml").read_text()


ENTERPRISE: Final = profile_text("aws-iot-enterprise-button")
SORACOM: Final = profile_text("soracom-lte-m-button")


def edit(text: str, old: str, new: str) -> str:
    """Replace exactly one occurrence, so that each test changes what it says."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def line_of(text: str, start: str) -> int:
    """The (single) line number whose text starts with ``start``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if line.startswith(start)]
    assert len(found) == 1, f"{start!r} starts lines {found}"
    return found[0]


def refused(text: str) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(text, source=SOURCE)
    return str(info.value)


def assert_refused(text: str, *, key: str, line_start: str, reason: str) -> None:
    """The message is ``source:line: key: reason`` with the line of ``line_start``."""
    message = refused(text)
    line = line_of(text, line_start)
    assert message.startswith(f"{SOURCE}:{line}: {key}: "), message
    assert reason in message, message


# --- the bundled profiles ------------------------------------------------------------


def test_profiles_are_bundled() -> None:
    assert len(PROFILE_FILES) >= len(REQUIRED_MODELS)


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_bundled_profile_parses_and_is_named_after_its_file(path: Path) -> None:
    profile = parse_profile(path.read_text(), source=str(path))
    assert profile.name == path.stem
    assert profile.device_type == "button"
    t = profile.timings
    assert t.debounce_ms < t.long_press_ms
    assert profile.mqtt.backoff_base_s <= profile.mqtt.backoff_cap_s
    assert math.isclose(sum(share for _, share in profile.habits.mix), 1.0)
    assert [kind for kind, _ in profile.habits.mix] == list(ClickType)
    curve = profile.battery.curve
    assert curve[0][0] == 0.0
    assert curve[-1][0] == 100.0


@pytest.mark.parametrize("model", REQUIRED_MODELS)
def test_required_models_exist(model: str) -> None:
    assert PROFILES / f"{model}.toml" in PROFILE_FILES
    profile = parse_profile(profile_text(model), source=model)
    assert profile.connection is ConnectionMode.PER_CLICK


def test_known_model_facts() -> None:
    gen1 = parse_profile(profile_text("aws-iot-button-gen1"), source="gen1")
    assert gen1.payload is PayloadFormat.IOTBUTTON
    assert gen1.id.prefix == "G030JF"
    enterprise = parse_profile(ENTERPRISE, source="enterprise")
    assert enterprise.payload is PayloadFormat.ONECLICK
    assert enterprise.id.prefix == "G030PM"
    assert enterprise.plan is None
    soracom = parse_profile(SORACOM, source="soracom")
    assert soracom.plan is not None
    assert (soracom.plan.max_clicks, soracom.plan.max_days) == (1500, 365)
    persistent = parse_profile(profile_text("clicksim-persistent-button"), source="p")
    assert persistent.connection is ConnectionMode.PERSISTENT


# --- refused profiles: each test changes one thing -------------------------------------


def test_malformed_toml_names_source_and_line() -> None:
    text = edit(ENTERPRISE, "debounce_ms = 25", "debounce_ms = = 25")
    message = refused(text)
    assert message.startswith(f"{SOURCE}: ")
    assert "not valid TOML" in message
    assert f"line {line_of(text, 'debounce_ms')}" in message


def test_duplicate_key_is_malformed_toml() -> None:
    text = edit(ENTERPRISE, "debounce_ms = 25\n", "debounce_ms = 25\ndebounce_ms = 30\n")
    message = refused(text)
    assert message.startswith(f"{SOURCE}: ")
    assert "not valid TOML" in message


def test_missing_key_points_at_its_table() -> None:
    text = edit(ENTERPRISE, "keepalive_s = 30\n", "")
    assert_refused(text, key="[mqtt] keepalive_s", line_start="[mqtt]", reason="is missing")


def test_missing_top_level_key() -> None:
    message = refused(edit(ENTERPRISE, 'network = "wifi"\n', ""))
    assert message.startswith(f"{SOURCE}:1: network: ")
    assert "is missing" in message


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("keepalive_s = 30", 'keepalive_s = "30"', "[mqtt] keepalive_s", "an integer, got str"),
        ("keepalive_s = 30", "keepalive_s = 30.0", "[mqtt] keepalive_s", "an integer, got float"),
        ("capacity_mah = 1000.0", 'capacity_mah = "1000"', "[battery] capacity_mah", "number"),
        ("capacity_mah = 1000.0", "capacity_mah = true", "[battery] capacity_mah", "boolean"),
        ("offline_queue = 8", "offline_queue = false", "[mqtt] offline_queue", "boolean"),
        ('description = "AWS', "description = 5 #", "description", "a string, got int"),
        ('prefix = "G030PM"', "prefix = 30", "[id] prefix", "a string"),
        ('version = "3.1.1"', "version = 3.1", "[mqtt] version", "a string, got float"),
        ("curve = [[0, 1000]", 'curve = "[[0, 1000]" #', "[battery] curve", "a list"),
    ],
)
def test_wrong_type(old: str, new: str, key: str, reason: str) -> None:
    text = edit(ENTERPRISE, old, new)
    assert_refused(text, key=key, line_start=new.split(" =")[0], reason=reason)


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("keepalive_s = 30", "keepalive_s = 2", "[mqtt] keepalive_s", "5..65535, got 2"),
        ("debounce_ms = 25", "debounce_ms = -1", "[timings] debounce_ms", "got -1"),
        ("long_press_ms = 1500", "long_press_ms = 100", "[timings] long_press_ms", "got 100"),
        ("offline_queue = 8", "offline_queue = 0", "[mqtt] offline_queue", "got 0"),
        ("max_attempts = 4", "max_attempts = 0", "[mqtt] max_attempts", "got 0"),
        ("capacity_mah = 1000.0", "capacity_mah = 0.5", "[battery] capacity_mah", "got 0.5"),
        ("wake_mah = 0.10", "wake_mah = -0.10", "[battery] wake_mah", "got -0.1"),
        (
            "self_discharge_per_year = 0.01",
            "self_discharge_per_year = 1.5",
            "[battery] self_discharge_per_year",
            "got 1.5",
        ),
        ("connected_ma = 0.0", "connected_ma = nan", "[battery] connected_ma", "within"),
        ("backoff_base_s = 1.0", "backoff_base_s = inf", "[mqtt] backoff_base_s", "within"),
        ("clicks_per_hour = 0.5", "clicks_per_hour = -1", "[habits] clicks_per_hour", "within"),
        ("length = 16", "length = 9", "[id] length", "10..128, got 9"),
    ],
)
def test_out_of_range(old: str, new: str, key: str, reason: str) -> None:
    text = edit(ENTERPRISE, old, new)
    assert_refused(text, key=key, line_start=new.split(" =")[0], reason=reason)


def test_unknown_top_level_key_is_refused() -> None:
    text = edit(ENTERPRISE, 'network = "wifi"\n', 'network = "wifi"\nnetwrok = "wifi"\n')
    assert_refused(text, key="netwrok", line_start="netwrok", reason="not a profile setting")


def test_unknown_key_in_a_table_is_refused() -> None:
    text = edit(ENTERPRISE, "led_success_ms = 2000\n", "led_success_ms = 2000\nled_sucess_ms = 1\n")
    assert_refused(
        text, key="[timings] led_sucess_ms", line_start="led_sucess_ms", reason="a typo?"
    )


def test_typo_of_an_optional_key_is_refused() -> None:
    # max_clicks is optional, so without the unknown-key check the typo would silently
    # leave the SORACOM plan without its click limit.
    text = edit(SORACOM, "max_clicks = 1500", "max_click = 1500")
    assert_refused(text, key="[plan] max_click", line_start="max_click", reason="a typo?")


def test_unknown_table_is_refused() -> None:
    text = ENTERPRISE + "\n[extras]\ncolour = 'white'\n"
    assert_refused(text, key="[extras] colour", line_start="colour", reason="a typo?")


def test_a_table_given_as_a_value_is_refused() -> None:
    text = edit(ENTERPRISE, 'network = "wifi"\n', 'network = "wifi"\ntimings = 5\n')
    text = edit(text, "[timings]\n", "[old_timings]\n")
    assert_refused(text, key="timings", line_start="timings", reason="must be a table")


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        (
            'connection = "per-click"',
            'connection = "always"',
            "connection",
            "'always' is not one of 'per-click', 'persistent'",
        ),
        ('payload = "oneclick"', 'payload = "json"', "payload", "'iotbutton', 'oneclick'"),
        ('network = "wifi"', 'network = "WiFi"', "network", "'wifi', 'lte-m'"),
        ('version = "3.1.1"', 'version = "3.1"', "[mqtt] version", "'3.1.1', '5'"),
    ],
)
def test_bad_enum_value(old: str, new: str, key: str, reason: str) -> None:
    text = edit(ENTERPRISE, old, new)
    assert_refused(text, key=key, line_start=new.split(" =")[0], reason=reason)


CURVE: Final = (
    "curve = [[0, 1000], [5, 1200], [10, 1350], [20, 1450], [50, 1550], [80, 1615], "
    "[95, 1680], [100, 1750]]"
)


@pytest.mark.parametrize(
    ("curve", "reason"),
    [
        ("[[5, 1000], [100, 1750]]", "from life 0 to life 100"),
        ("[[0, 1000], [95, 1750]]", "from life 0 to life 100"),
        ("[[0, 1000]]", "from life 0 to life 100"),
        ("[]", "from life 0 to life 100"),
        ("[[0, 1000], [50, 1400], [50, 1500], [100, 1750]]", "rise strictly"),
        ("[[0, 1000], [60, 1400], [50, 1500], [100, 1750]]", "rise strictly"),
        ("[[0, 1000], [50, 1600], [100, 1500]]", "must not fall"),
        ("[[0, 1000], [50], [100, 1750]]", "each point"),
        ("[[0, 1000], [50, 1400, 3], [100, 1750]]", "each point"),
        ("[[0, 1000], [50, 1400.5], [100, 1750]]", "each point"),
        ('[[0, 1000], [50, "1400mV"], [100, 1750]]', "each point"),
        ("[[0, 1000], [true, 1400], [100, 1750]]", "each point"),
        ("[[0, 1000], 50, [100, 1750]]", "each point"),
        ("[[0, 0], [100, 1750]]", "1..99999 mV"),
        ("[[0, 1000], [100, 100000]]", "1..99999 mV"),
    ],
)
def test_bad_curve(curve: str, reason: str) -> None:
    text = edit(ENTERPRISE, CURVE, f"curve = {curve}")
    assert_refused(text, key="[battery] curve", line_start="curve", reason=reason)


def test_curve_may_use_float_lives() -> None:
    text = edit(ENTERPRISE, CURVE, "curve = [[0.0, 1000], [37.5, 1500], [100.0, 1750]]")
    profile = parse_profile(text, source=SOURCE)
    assert profile.battery.curve == ((0.0, 1000), (37.5, 1500), (100.0, 1750))


def test_habits_not_summing_to_one() -> None:
    text = edit(ENTERPRISE, "single = 0.8", "single = 0.7")
    assert_refused(text, key="[habits] single", line_start="single", reason="add up to 1")


def test_habits_summing_to_more_than_one() -> None:
    text = edit(ENTERPRISE, "long = 0.05", "long = 0.5")
    assert_refused(text, key="[habits] single", line_start="single", reason="add up to 1")


@pytest.mark.parametrize("debounce", [200, 300])
def test_debounce_not_shorter_than_long_press(debounce: int) -> None:
    # The one change is the relation: debounce_ms up to (or past) long_press_ms, both
    # within their own ranges.
    text = edit(ENTERPRISE, "long_press_ms = 1500", "long_press_ms = 200")
    text = edit(text, "debounce_ms = 25", f"debounce_ms = {debounce}")
    assert_refused(
        text, key="[timings] debounce_ms", line_start="debounce_ms", reason="long_press_ms"
    )


def test_backoff_cap_below_base() -> None:
    text = edit(ENTERPRISE, "backoff_cap_s = 30.0", "backoff_cap_s = 0.5")
    assert_refused(
        text, key="[mqtt] backoff_cap_s", line_start="backoff_cap_s", reason="backoff_base_s"
    )


def test_backoff_cap_equal_to_base_is_fine() -> None:
    text = edit(ENTERPRISE, "backoff_cap_s = 30.0", "backoff_cap_s = 1.0")
    assert parse_profile(text, source=SOURCE).mqtt.backoff_cap_s == 1.0


@pytest.mark.parametrize(
    "name", ["Enterprise", "aws iot", "-leading-dash", "", "a" * 64, "under_score"]
)
def test_bad_profile_name(name: str) -> None:
    text = edit(ENTERPRISE, 'name = "aws-iot-enterprise-button"', f'name = "{name}"')
    assert_refused(text, key="name", line_start="name", reason="not allowed")


def test_profile_name_with_trailing_newline_is_refused() -> None:
    # "lowercase letters, digits and '-'": a newline is none of those.
    text = edit(
        ENTERPRISE, 'name = "aws-iot-enterprise-button"', 'name = "aws-iot-enterprise-button\\n"'
    )
    assert_refused(text, key="name", line_start="name", reason="not allowed")


def test_id_prefix_with_trailing_newline_is_refused() -> None:
    text = edit(ENTERPRISE, 'prefix = "G030PM"', 'prefix = "G030PM\\n"')
    assert_refused(text, key="[id] prefix", line_start="prefix", reason="not allowed")


def test_blank_description_is_refused() -> None:
    text = edit(
        ENTERPRISE,
        'description = "AWS IoT Enterprise Button (Wi-Fi, AWS IoT 1-Click)"',
        'description = "  "',
    )
    assert_refused(text, key="description", line_start="description", reason="empty")


@pytest.mark.parametrize("alphabet", ["AA0123", "A", "ABC!"])
def test_bad_id_alphabet(alphabet: str) -> None:
    text = edit(
        ENTERPRISE,
        'alphabet = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"',
        f'alphabet = "{alphabet}"',
    )
    message = refused(text)
    assert message.startswith(f"{SOURCE}:{line_of(text, 'alphabet')}: [id] alphabet: ")


def test_plan_needs_a_limit() -> None:
    text = edit(SORACOM, "max_clicks = 1500\nmax_days = 365\n", "")
    message = refused(text)
    assert message.startswith(f"{SOURCE}:{line_of(text, '[plan]')}: [plan] max_clicks: ")


def test_plan_may_have_one_limit() -> None:
    profile = parse_profile(edit(SORACOM, "max_days = 365\n", ""), source=SOURCE)
    assert profile.plan is not None
    assert (profile.plan.max_clicks, profile.plan.max_days) == (1500, None)


def test_line_points_at_the_key_after_a_multi_line_curve() -> None:
    # A curve written one point per line is valid TOML; its "[0, 1000]," lines are not
    # table headers, and a bad key after it must still be found on its own line.
    text = edit(ENTERPRISE, CURVE + "\n", "")
    text = edit(text, "[battery]\n", "[battery]\ncurve = [\n  [0, 1000],\n  [100, 1750],\n]\n")
    text = edit(text, "connected_ma = 0.0", "connected_ma = -1.0")
    assert_refused(text, key="[battery] connected_ma", line_start="connected_ma", reason="got -1")


# --- ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda p: p.stem)
def test_id_format_make_gives_matching_ids(path: Path) -> None:
    fmt = parse_profile(path.read_text(), source=str(path)).id
    rng = random.Random(2024)
    symbols = (rng.randrange(1 << 30) for _ in itertools.count())
    ids = {fmt.make(symbols) for _ in range(50)}
    assert len(ids) == 50
    for device_id in ids:
        assert len(device_id) == fmt.length
        assert device_id.startswith(fmt.prefix)
        assert fmt.matches(device_id)


def test_id_format_make_maps_symbols_onto_the_alphabet() -> None:
    fmt = IdFormat(prefix="AB", length=6, alphabet="xyz")
    symbols = iter([0, 1, 2, 3, 4, 5, 6, 7])
    assert fmt.make(symbols) == "ABxyzx"  # four symbols, taken modulo the alphabet
    assert fmt.make(symbols) == "AByzxy"  # the next four: nothing else was consumed
    with pytest.raises(StopIteration):
        next(symbols)


def test_id_format_matches() -> None:
    fmt = IdFormat(prefix="G030PM", length=16, alphabet="0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
    assert fmt.matches("G030PM0123456789")
    assert fmt.matches("G030PMZZZZZZZZZZ")
    assert not fmt.matches("G030PM012345678")  # too short
    assert not fmt.matches("G030PM01234567890")  # too long
    assert not fmt.matches("G030JF0123456789")  # other prefix
    assert not fmt.matches("G030PM012345678I")  # I is not in the alphabet
    assert not fmt.matches("G030PM012345678a")  # lower case
    assert not fmt.matches("G030PM01234567/8"[:16])
    assert not fmt.matches("")
