"""Who owns one device: the claim lifecycle as a pure state machine (h11 style).

A device is ``UNCLAIMED``, ``CLAIM_INITIATED`` by one account (InitiateDeviceClaim,
waiting for a click from the device and then FinalizeDeviceClaim), or ``CLAIMED`` by
one owner. ClaimDevicesByClaimCode claims directly; UnclaimDevice releases it;
UpdateDeviceState flips the ``enabled`` flag.

Every operation takes the calling account and the time (``now``, POSIX seconds) and
returns a new immutable ``DeviceClaim``, or raises a ``ClaimError`` carrying the AWS
error code and HTTP status. The model never reads a clock or touches storage: the
backend loads a record, applies one operation and stores the result.

Errors never name another account: a per-device call on a device the caller does not
own is a 404, as if the device did not exist.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import ClassVar, Final, TypeVar

DEFAULT_CLAIM_WINDOW_S: Final = 900.0
"""How long an initiated claim waits for its click and its finalize (15 minutes)."""

_T = TypeVar("_T")

Record = dict[str, str | float | bool | None]
"""A ``DeviceClaim`` as plain values, for a store to persist."""


class ClaimState(enum.Enum):
    UNCLAIMED = "unclaimed"
    CLAIM_INITIATED = "claim-initiated"
    """An account started a claim; it needs a device event, then a finalize."""
    CLAIMED = "claimed"


class Operation(enum.Enum):
    INITIATE = "initiate"
    DEVICE_EVENT = "device_event"
    FINALIZE = "finalize"
    CLAIM_BY_CODE = "claim_by_code"
    UNCLAIM = "unclaim"
    SET_ENABLED = "set_enabled"


class ClaimError(Exception):
    """An operation the device's claim refuses, as the API reports it."""

    code: ClassVar[str] = "InternalFailureException"
    status: ClassVar[int] = 500

    def __init__(
        self, *, device_id: str, state: ClaimState, operation: Operation, reason: str
    ) -> None:
        super().__init__(self._describe(device_id, state, operation, reason))
        self.device_id = device_id
        self.state = state
        """The true state, for server logs; a 404 message does not repeat it."""
        self.operation = operation
        self.reason = reason

    def _describe(
        self, device_id: str, state: ClaimState, operation: Operation, reason: str
    ) -> str:
        return f"{operation.value} on device {device_id!r} in state {state.value!r}: {reason}"


class ResourceConflict(ClaimError):
    code = "ResourceConflictException"
    status = 409


class PreconditionFailed(ClaimError):
    code = "PreconditionFailedException"
    status = 412


class Forbidden(ClaimError):
    code = "ForbiddenException"
    status = 403


class ResourceNotFound(ClaimError):
    """The caller does not own the device; whether anyone else does stays hidden."""

    code = "ResourceNotFoundException"
    status = 404

    def _describe(
        self, device_id: str, state: ClaimState, operation: Operation, reason: str
    ) -> str:
        return f"{operation.value} on device {device_id!r}: {reason}"


class InvalidRecord(ValueError):
    """A stored record that is not a valid ``DeviceClaim``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Request:
    """One operation's inputs, handed to its handler in the table below."""

    operation: Operation
    caller: str = ""
    now: float = 0.0
    enabled: bool = False
    window_s: float = DEFAULT_CLAIM_WINDOW_S


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceClaim:
    """The claim of one device. Operations return a new value; this one never changes."""

    device_id: str
    state: ClaimState = ClaimState.UNCLAIMED
    initiated_by: str | None = None
    """The account whose claim is pending (``CLAIM_INITIATED`` only)."""
    initiated_at: float | None = None
    expires_at: float | None = None
    """The initiation is live for ``initiated_at <= now < expires_at``."""
    event_seen: bool = False
    """A device event arrived inside the live initiation."""
    owner: str | None = None
    """The owning account (``CLAIMED`` only)."""
    enabled: bool = False
    """Only a claimed device can be enabled; a newly claimed one is not."""

    def __post_init__(self) -> None:
        if not self.device_id:
            raise InvalidRecord("device_id must not be empty")
        initiated = self.state is ClaimState.CLAIM_INITIATED
        claimed = self.state is ClaimState.CLAIMED
        _need(bool(self.initiated_by) == initiated, self, "initiated_by")
        _need((self.initiated_at is not None) == initiated, self, "initiated_at")
        _need((self.expires_at is not None) == initiated, self, "expires_at")
        _need(initiated or not self.event_seen, self, "event_seen")
        _need(bool(self.owner) == claimed, self, "owner")
        _need(claimed or not self.enabled, self, "enabled")
        if self.initiated_at is not None and self.expires_at is not None:
            if not (math.isfinite(self.initiated_at) and math.isfinite(self.expires_at)):
                raise InvalidRecord("initiation times must be finite")
            if self.expires_at <= self.initiated_at:
                raise InvalidRecord("an initiation must expire after it starts")

    @classmethod
    def unclaimed(cls, device_id: str) -> DeviceClaim:
        return cls(device_id=device_id)

    # --- operations -----------------------------------------------------------------

    def initiate(
        self, caller: str, now: float, *, window_s: float = DEFAULT_CLAIM_WINDOW_S
    ) -> DeviceClaim:
        """InitiateDeviceClaim: start (or restart) a claim that lives for ``window_s``."""
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        return self._apply(
            _Request(operation=Operation.INITIATE, caller=caller, now=now, window_s=window_s)
        )

    def device_event(self, now: float) -> DeviceClaim:
        """The device clicked: it proves the initiating account holds it."""
        return self._apply(_Request(operation=Operation.DEVICE_EVENT, now=now))

    def finalize(self, caller: str, now: float) -> DeviceClaim:
        """FinalizeDeviceClaim: the initiator, after a click, becomes the owner."""
        return self._apply(_Request(operation=Operation.FINALIZE, caller=caller, now=now))

    def claim_by_code(self, caller: str, now: float) -> DeviceClaim:
        """One device of a ClaimDevicesByClaimCode batch: claimed at once, no click."""
        return self._apply(_Request(operation=Operation.CLAIM_BY_CODE, caller=caller, now=now))

    def unclaim(self, caller: str, now: float) -> DeviceClaim:
        """UnclaimDevice: the owner lets the device go."""
        return self._apply(_Request(operation=Operation.UNCLAIM, caller=caller, now=now))

    def set_enabled(self, caller: str, enabled: bool) -> DeviceClaim:
        """UpdateDeviceState: the owner enables or disables the device."""
        return self._apply(
            _Request(operation=Operation.SET_ENABLED, caller=caller, enabled=enabled)
        )

    def visible_to(self, caller: str) -> bool:
        """Only the owner sees a device; every other per-device call gets a 404."""
        return self.state is ClaimState.CLAIMED and self.owner == caller

    # --- plumbing -------------------------------------------------------------------

    def _apply(self, request: _Request) -> DeviceClaim:
        if request.operation is not Operation.DEVICE_EVENT and not request.caller:
            raise ValueError(f"{request.operation.value}: caller must not be empty")
        handler = _TRANSITIONS.get((self.state, request.operation))
        if handler is None:
            raise _NO_ROW[request.operation](
                device_id=self.device_id,
                state=self.state,
                operation=request.operation,
                reason=_NO_ROW_REASONS[request.operation],
            )
        return handler(self, request)

    def _refuse(self, error: type[ClaimError], request: _Request, reason: str) -> ClaimError:
        return error(
            device_id=self.device_id,
            state=self.state,
            operation=request.operation,
            reason=reason,
        )

    def _expired(self, now: float) -> bool:
        """Whether the pending initiation ran out by ``now`` (the window is half-open)."""
        return self.expires_at is None or now >= self.expires_at

    def _live(self, now: float) -> bool:
        """Whether ``now`` falls inside the pending initiation."""
        return self.initiated_at is not None and self.initiated_at <= now and not self._expired(now)

    # --- handlers: each returns the next value or raises ----------------------------

    def _unchanged(self, request: _Request) -> DeviceClaim:
        return self

    def _start_initiation(self, request: _Request) -> DeviceClaim:
        return DeviceClaim(
            device_id=self.device_id,
            state=ClaimState.CLAIM_INITIATED,
            initiated_by=request.caller,
            initiated_at=request.now,
            expires_at=request.now + request.window_s,
        )

    def _restart_initiation(self, request: _Request) -> DeviceClaim:
        """The initiator may start over; anyone may once it expired. A seen click is lost."""
        if request.caller != self.initiated_by and not self._expired(request.now):
            raise self._refuse(ResourceConflict, request, "a claim by another account is pending")
        return self._start_initiation(request)

    def _already_claimed(self, request: _Request) -> DeviceClaim:
        """Claimed by anyone, the caller included: there is nothing to claim."""
        raise self._refuse(ResourceConflict, request, "the device is already claimed")

    def _note_event(self, request: _Request) -> DeviceClaim:
        if self.event_seen or not self._live(request.now):
            return self
        return replace(self, event_seen=True)

    def _finalize(self, request: _Request) -> DeviceClaim:
        if request.caller != self.initiated_by:
            raise self._refuse(
                PreconditionFailed, request, "no claim was initiated by this account"
            )
        if self._expired(request.now):
            raise self._refuse(PreconditionFailed, request, "the claim initiation expired")
        if not self.event_seen:
            raise self._refuse(
                PreconditionFailed, request, "no device event since the claim was initiated"
            )
        return self._claimed_by(request.caller)

    def _claim_by_code(self, request: _Request) -> DeviceClaim:
        return self._claimed_by(request.caller)

    def _reclaim_by_code(self, request: _Request) -> DeviceClaim:
        if request.caller == self.owner:
            return self
        raise self._refuse(Forbidden, request, "the claim code was used by another account")

    def _unclaim(self, request: _Request) -> DeviceClaim:
        self._need_owner(request)
        return DeviceClaim.unclaimed(self.device_id)

    def _set_enabled(self, request: _Request) -> DeviceClaim:
        self._need_owner(request)
        return replace(self, enabled=request.enabled)

    def _claimed_by(self, account: str) -> DeviceClaim:
        return DeviceClaim(
            device_id=self.device_id, state=ClaimState.CLAIMED, owner=account, enabled=False
        )

    def _need_owner(self, request: _Request) -> None:
        if request.caller != self.owner:
            raise self._refuse(ResourceNotFound, request, _NOT_YOURS)

    # --- persistence ----------------------------------------------------------------

    def to_record(self) -> Record:
        return {
            "device_id": self.device_id,
            "state": self.state.value,
            "initiated_by": self.initiated_by,
            "initiated_at": self.initiated_at,
            "expires_at": self.expires_at,
            "event_seen": self.event_seen,
            "owner": self.owner,
            "enabled": self.enabled,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> DeviceClaim:
        """Rebuild a claim from ``to_record``'s dict; anything else is ``InvalidRecord``."""
        if set(record) != _RECORD_KEYS:
            missing = sorted(_RECORD_KEYS - set(record))
            extra = sorted(set(record) - _RECORD_KEYS)
            raise InvalidRecord(f"record keys: missing {missing}, unexpected {extra}")
        try:
            state = ClaimState(record["state"])
        except ValueError:
            raise InvalidRecord(f"unknown state {record['state']!r}") from None
        return cls(
            device_id=_field(record, "device_id", str),
            state=state,
            initiated_by=_optional(record, "initiated_by", str),
            initiated_at=_optional_time(record, "initiated_at"),
            expires_at=_optional_time(record, "expires_at"),
            event_seen=_field(record, "event_seen", bool),
            owner=_optional(record, "owner", str),
            enabled=_field(record, "enabled", bool),
        )


_NOT_YOURS: Final = "no such device claimed by this account"

_RECORD_KEYS: Final = frozenset(field.name for field in fields(DeviceClaim))


def _need(ok: bool, claim: DeviceClaim, name: str) -> None:
    if not ok:
        raise InvalidRecord(f"{name} does not fit state {claim.state.value!r}")


def _field(record: Mapping[str, object], name: str, kind: type[_T]) -> _T:
    value = record[name]
    if not isinstance(value, kind):
        raise InvalidRecord(f"{name} must be {kind.__name__}, got {value!r}")
    return value


def _optional(record: Mapping[str, object], name: str, kind: type[_T]) -> _T | None:
    return None if record[name] is None else _field(record, name, kind)


def _optional_time(record: Mapping[str, object], name: str) -> float | None:
    value = record[name]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecord(f"{name} must be a number, got {value!r}")
    return float(value)


_TRANSITIONS: Final[
    dict[tuple[ClaimState, Operation], Callable[[DeviceClaim, _Request], DeviceClaim]]
] = {
    # Nobody holds the device: the caller starts a claim.
    (ClaimState.UNCLAIMED, Operation.INITIATE): DeviceClaim._start_initiation,
    # Same caller restarts; another account only once the pending one expired, else 409.
    (ClaimState.CLAIM_INITIATED, Operation.INITIATE): DeviceClaim._restart_initiation,
    # Claimed by anyone (the owner too): 409.
    (ClaimState.CLAIMED, Operation.INITIATE): DeviceClaim._already_claimed,
    # A click with no claim pending proves nothing.
    (ClaimState.UNCLAIMED, Operation.DEVICE_EVENT): DeviceClaim._unchanged,
    # A click inside the live initiation is the proof of possession.
    (ClaimState.CLAIM_INITIATED, Operation.DEVICE_EVENT): DeviceClaim._note_event,
    # An owned device clicks as it likes; the claim does not care.
    (ClaimState.CLAIMED, Operation.DEVICE_EVENT): DeviceClaim._unchanged,
    # Initiator, live, clicked: claimed (disabled); otherwise 412.
    (ClaimState.CLAIM_INITIATED, Operation.FINALIZE): DeviceClaim._finalize,
    # Someone finished first (or the caller finalizes twice): 409.
    (ClaimState.CLAIMED, Operation.FINALIZE): DeviceClaim._already_claimed,
    # A claim code needs no click.
    (ClaimState.UNCLAIMED, Operation.CLAIM_BY_CODE): DeviceClaim._claim_by_code,
    # The code wins over anyone's pending initiation.
    (ClaimState.CLAIM_INITIATED, Operation.CLAIM_BY_CODE): DeviceClaim._claim_by_code,
    # The same account again: unchanged (200); another account: 403.
    (ClaimState.CLAIMED, Operation.CLAIM_BY_CODE): DeviceClaim._reclaim_by_code,
    # The owner releases the device; anyone else: 404.
    (ClaimState.CLAIMED, Operation.UNCLAIM): DeviceClaim._unclaim,
    # The owner flips the flag; anyone else: 404.
    (ClaimState.CLAIMED, Operation.SET_ENABLED): DeviceClaim._set_enabled,
}
"""The claim machine: every (state, operation) pair that can succeed, and its handler."""

_NO_ROW: Final[dict[Operation, type[ClaimError]]] = {
    Operation.FINALIZE: PreconditionFailed,  # on an unclaimed device: nothing initiated
    Operation.UNCLAIM: ResourceNotFound,  # only an owner can; nobody owns it
    Operation.SET_ENABLED: ResourceNotFound,
}
"""The error for an operation in a state that has no row above."""

_NO_ROW_REASONS: Final[dict[Operation, str]] = {
    Operation.FINALIZE: "no claim was initiated by this account",
    Operation.UNCLAIM: _NOT_YOURS,
    Operation.SET_ENABLED: _NOT_YOURS,
}
