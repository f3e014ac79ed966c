"""A scenario once loaded: what the runner consumes, valid by construction.

The loader builds these from YAML and refuses a bad file before anything runs, so the
runner never meets an unknown operation, account or matcher. What cannot be checked
before running is kept raw: parameters and expected values may hold ``${...}``, which
the runner substitutes from its variables at each step. Each object keeps the line
of the file where it was written, for reports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from simulator.protocol import ClickType
from simulator.scenario.matchers import Matcher

DEFAULT_PROFILE: Final = "aws-iot-enterprise-button"
DEFAULT_ACCOUNT: Final = "owner"
BACKEND_CLOCK: Final = "backend-clock"
"""A step's need: the backend's clock must move with the scenario's (embedded only)."""

_DURATION: Final = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """``"500ms"``, ``"10s"``, ``"5m"``, ``"2h"``, ``"3d"`` -> seconds; ``ValueError`` else."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a duration such as 500ms, 10s, 5m, 2h or 3d")
    return float(found.group(1)) * _UNITS[found.group(2)]


@dataclass(frozen=True, kw_only=True)
class FleetSpec:
    profile: str
    """A bundled profile's name, or the absolute path of a ``.toml`` file."""
    count: int
    seed: str | None
    """``None``: the runner's ``--seed``, else the scenario's name."""
    claim_code: str | None
    line: int


@dataclass(frozen=True, kw_only=True)
class Expect:
    """What a reply must be. ``status`` and ``error`` both ``None``: any 2xx."""

    status: tuple[int, ...] | None
    error: str | None
    body: tuple[tuple[str, Matcher], ...]
    """(path, matcher) pairs, in the order written; see ``matchers.match_body``."""
    line: int
    headers: tuple[tuple[str, Matcher], ...] = ()
    """(header name as written, matcher) pairs; names match in any case."""
    shape: bool = False
    """The body must fit the operation's output shape (``validate_output``)."""


@dataclass(frozen=True, kw_only=True)
class Step:
    name: str
    """As written, or made from the step; may hold ``${...}`` for display."""
    account: str | None
    """The account a step that calls the API acts as (always set there); else ``None``."""
    needs: frozenset[str]
    line: int


@dataclass(frozen=True, kw_only=True)
class CallStep(Step):
    operation: str
    params: Mapping[str, object]
    """By wire name as written (``deviceId``, ``resource-arn`` or ``resourceArn``), raw."""
    expect: Expect | None
    save: Mapping[str, str]
    """Variable -> body path, saved once ``expect`` held."""
    paginate: bool = False
    """Follow the output token to the last page; the reply is the pages merged."""


REQUEST_TARGET: Final = re.compile(r"^/[\x21-\x22\x24-\x7e]*$")
"""A request step's path as sent: ``/`` then printable ASCII without spaces or ``#``."""

SIGN_MODES: Final = ("true", "false", "unknown-key", "bad-signature", "skewed")
"""How a request step signs: as its account; not at all; with a key no backend knows;
with the signature altered; at a time 20 minutes in the past."""


@dataclass(frozen=True, kw_only=True)
class RequestStep(Step):
    """A request written by hand (what ``call`` cannot send); reply operation ``request``."""

    method: str
    path: str
    """Raw, with ``${...}``; may carry ``?query``, sent as written."""
    body: object
    """``None``: no body; text: sent as is; a mapping or list: sent as JSON (raw)."""
    headers: Mapping[str, str | None]
    """Extra headers by name as written, values raw; ``None`` leaves a default out."""
    sign: str
    """One of ``SIGN_MODES``."""
    expect: Expect | None
    save: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class PublishStep(Step):
    """A raw MQTT publish (QoS 1) as a fleet device: its certificate, client id = its id."""

    device: str
    """An expression giving a device id, such as ``${devices[0]}``."""
    payload: object
    """Text: sent as is; a mapping or list: sent as JSON (raw, with ``${...}``)."""
    topic: str | None
    """``None``: the device's click topic for its profile's payload format."""
    expect_acknowledged: bool
    timeout: float
    """How long to wait for the PUBACK (connecting included)."""


@dataclass(frozen=True, kw_only=True)
class ClickStep(Step):
    device: str
    """An expression giving a device id, such as ``${devices[0]}``."""
    click_type: ClickType | None
    """Exactly one of ``click_type`` and ``press_ms`` is set."""
    press_ms: tuple[int, ...] | None
    """Press, gap, press... in milliseconds (an odd count)."""
    expect_delivered: bool


@dataclass(frozen=True, kw_only=True)
class UntilStep(Step):
    call: CallStep
    timeout: float
    interval: float


@dataclass(frozen=True, kw_only=True)
class RepeatStep(Step):
    times: int
    steps: tuple[Step, ...]


@dataclass(frozen=True, kw_only=True)
class ForEachStep(Step):
    variable: str
    steps: tuple[Step, ...]


@dataclass(frozen=True, kw_only=True)
class ParallelStep(Step):
    steps: tuple[Step, ...]
    """Only ``CallStep``, ``ClickStep``, ``UntilStep``, ``RequestStep`` and ``PublishStep``."""


@dataclass(frozen=True, kw_only=True)
class SleepStep(Step):
    seconds: float


@dataclass(frozen=True, kw_only=True)
class AdvanceStep(Step):
    seconds: float
    backend: bool
    """Move the backend's clock too (only the embedded reference backend's can be)."""


@dataclass(frozen=True, kw_only=True)
class WebhookStep(Step):
    expect: Expect
    """Only ``body`` is set: matched against ``{"count": N, "events": [...]}``."""
    timeout: float


@dataclass(frozen=True, kw_only=True)
class SetStep(Step):
    values: Mapping[str, object]


@dataclass(frozen=True, kw_only=True)
class CheckStep(Step):
    """Check a value the scenario computed (``"alice ${a}, bob ${b}"``) with a matcher."""

    value: object
    """Raw, with ``${...}``."""
    expect: Matcher


CONFORMANCE_KINDS: Final = ("model", "reference")
"""Where a conformance check's expectation comes from: the AWS service model, or the
reference semantics (the design's table)."""


@dataclass(frozen=True, kw_only=True)
class ConformanceHeader:
    """A scenario's ``conformance:`` header: it is a check of the conformance suite.

    ``clicksim run`` ignores it; ``clicksim conformance`` reads it to list and select checks.
    """

    kind: str
    """One of ``CONFORMANCE_KINDS``."""
    operations: tuple[str, ...]
    """The operations the check is about (model names), at least one, each once."""
    line: int


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    description: str
    path: Path
    fleet: FleetSpec
    accounts: tuple[str, ...]
    webhook: bool
    steps: tuple[Step, ...]
    conformance: ConformanceHeader | None = None
    """Set for a check of the conformance suite; ignored by ``clicksim run``."""
