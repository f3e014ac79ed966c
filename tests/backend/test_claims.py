"""The claim lifecycle of one device: each rule of the design, then random sequences."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Final

import pytest

from simulator.backend.claims import (
    _NO_ROW,
    _TRANSITIONS,
    DEFAULT_CLAIM_WINDOW_S,
    ClaimError,
    ClaimState,
    DeviceClaim,
    Forbidden,
    InvalidRecord,
    Operation,
    PreconditionFailed,
    ResourceConflict,
    ResourceNotFound,
)

DEVICE: Final = "G030JF0512345678"
A: Final = "111111111111"
B: Final = "222222222222"
C: Final = "333333333333"
ACCOUNTS: Final = (A, B, C)
T0: Final = 1_700_000_000.0


def fresh() -> DeviceClaim:
    return DeviceClaim.unclaimed(DEVICE)


def initiated(by: str = A, at: float = T0, *, clicked: bool = False) -> DeviceClaim:
    claim = fresh().initiate(by, at)
    return claim.device_event(at + 1) if clicked else claim


def claimed(by: str = A) -> DeviceClaim:
    return initiated(by, clicked=True).finalize(by, T0 + 2)


def refused(
    error: type[ClaimError], code: str, status: int, call: Callable[[], object]
) -> ClaimError:
    with pytest.raises(error) as caught:
        call()
    assert caught.value.code == code
    assert caught.value.status == status
    return caught.value


def conflict(call: Callable[[], object]) -> ClaimError:
    return refused(ResourceConflict, "ResourceConflictException", 409, call)


def precondition(call: Callable[[], object]) -> ClaimError:
    return refused(PreconditionFailed, "PreconditionFailedException", 412, call)


def not_found(call: Callable[[], object]) -> ClaimError:
    return refused(ResourceNotFound, "ResourceNotFoundException", 404, call)


def forbidden(call: Callable[[], object]) -> ClaimError:
    return refused(Forbidden, "ForbiddenException", 403, call)


# --- initiate, click, finalize -----------------------------------------------------


def test_initiate_click_finalize_claims_the_device_for_the_initiator() -> None:
    claim = fresh().initiate(A, T0)
    assert claim.state is ClaimState.CLAIM_INITIATED
    assert claim.initiated_by == A
    assert claim.expires_at == T0 + DEFAULT_CLAIM_WINDOW_S
    assert not claim.event_seen
    claim = claim.device_event(T0 + 10)
    assert claim.event_seen
    claim = claim.finalize(A, T0 + 20)
    assert claim.state is ClaimState.CLAIMED
    assert claim.owner == A
    assert claim.initiated_by is None


def test_operations_return_new_values_and_leave_the_old_one_alone() -> None:
    before = fresh()
    after = before.initiate(A, T0)
    assert before == fresh()
    assert after is not before


def test_finalize_without_a_click_fails_its_precondition() -> None:
    error = precondition(lambda: initiated().finalize(A, T0 + 5))
    assert "device event" in str(error)


def test_finalize_on_an_unclaimed_device_fails_its_precondition() -> None:
    precondition(lambda: fresh().finalize(A, T0))


@pytest.mark.parametrize(
    ("elapsed", "ok"), [(899.0, True), (899.999, True), (900.0, False), (901.0, False)]
)
def test_finalize_works_only_inside_the_window(elapsed: float, ok: bool) -> None:
    claim = initiated(clicked=True)
    if ok:
        assert claim.finalize(A, T0 + elapsed).owner == A
    else:
        assert "expired" in str(precondition(lambda: claim.finalize(A, T0 + elapsed)))


def test_the_window_is_configurable() -> None:
    claim = fresh().initiate(A, T0, window_s=60).device_event(T0 + 1)
    assert claim.finalize(A, T0 + 59).owner == A
    precondition(lambda: claim.finalize(A, T0 + 61))


@pytest.mark.parametrize("window_s", [0.0, -1.0, float("nan")])
def test_a_window_must_be_positive(window_s: float) -> None:
    with pytest.raises(ValueError, match="window_s"):
        fresh().initiate(A, T0, window_s=window_s)


def test_an_event_before_the_initiation_does_not_count() -> None:
    claim = fresh().device_event(T0 - 5).initiate(A, T0)
    assert not claim.event_seen
    precondition(lambda: claim.finalize(A, T0 + 5))


def test_an_event_stamped_before_the_initiation_but_delivered_after_does_not_count() -> None:
    assert not initiated().device_event(T0 - 0.001).event_seen


def test_an_event_at_the_initiation_instant_counts() -> None:
    assert initiated().device_event(T0).event_seen


def test_an_event_after_expiry_does_not_count() -> None:
    claim = initiated().device_event(T0 + DEFAULT_CLAIM_WINDOW_S)
    assert not claim.event_seen


def test_events_on_unclaimed_and_claimed_devices_change_nothing() -> None:
    assert fresh().device_event(T0) == fresh()
    owned = claimed()
    assert owned.device_event(T0 + 50) == owned


def test_only_the_initiator_can_finalize() -> None:
    claim = initiated(A, clicked=True)
    precondition(lambda: claim.finalize(B, T0 + 5))


def test_restarting_an_initiation_forgets_the_click() -> None:
    claim = initiated(A, clicked=True).initiate(A, T0 + 100)
    assert claim.initiated_at == T0 + 100
    assert not claim.event_seen
    precondition(lambda: claim.finalize(A, T0 + 101))


@pytest.mark.parametrize("caller", [A, B])
def test_initiate_on_a_claimed_device_conflicts(caller: str) -> None:
    conflict(lambda: claimed(A).initiate(caller, T0 + 10))


# --- two accounts ------------------------------------------------------------------


def test_another_account_cannot_initiate_while_a_claim_is_pending() -> None:
    claim = initiated(A)
    conflict(lambda: claim.initiate(B, T0 + DEFAULT_CLAIM_WINDOW_S - 1))


def test_another_account_can_initiate_once_the_pending_claim_expired() -> None:
    claim = initiated(A, clicked=True).initiate(B, T0 + DEFAULT_CLAIM_WINDOW_S + 1)
    assert claim.initiated_by == B
    assert not claim.event_seen
    precondition(lambda: claim.finalize(A, T0 + DEFAULT_CLAIM_WINDOW_S + 2))


def test_when_two_accounts_race_the_first_finalize_wins() -> None:
    # Both users press "claim" at once: the store serialises them, A's initiate lands first.
    claim = initiated(A)
    conflict(lambda: claim.initiate(B, T0 + 0.5))
    claim = claim.device_event(T0 + 3)
    # Before A finishes, B's finalize lacks an initiation of its own: 412.
    precondition(lambda: claim.finalize(B, T0 + 4))
    # A finalizes first; B's finalize, arriving after, finds the device claimed: 409.
    done = claim.finalize(A, T0 + 5)
    error = conflict(lambda: done.finalize(B, T0 + 5))
    assert A not in str(error)


def test_finalizing_twice_conflicts_even_for_the_owner() -> None:
    conflict(lambda: claimed(A).finalize(A, T0 + 10))


# --- claim codes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [fresh(), initiated(A), initiated(B), initiated(B, clicked=True)],
    ids=["unclaimed", "initiated-by-caller", "initiated-by-other", "initiated-and-clicked"],
)
def test_a_claim_code_claims_unowned_devices_disabled(start: DeviceClaim) -> None:
    claim = start.claim_by_code(A, T0 + 10)
    assert claim.state is ClaimState.CLAIMED
    assert claim.owner == A
    assert not claim.enabled


def test_a_claim_code_is_idempotent_for_the_owner() -> None:
    owned = claimed(A).set_enabled(A, True)
    assert owned.claim_by_code(A, T0 + 10) == owned


def test_a_claim_code_used_by_another_account_is_forbidden() -> None:
    error = forbidden(lambda: claimed(A).claim_by_code(B, T0 + 10))
    assert A not in str(error)


# --- unclaim, enable, visibility ---------------------------------------------------


def test_newly_claimed_devices_are_disabled() -> None:
    assert not claimed(A).enabled
    assert not fresh().claim_by_code(A, T0).enabled


@pytest.mark.parametrize(
    "start", [fresh(), initiated(A), claimed(A)], ids=["unclaimed", "initiated", "claimed"]
)
def test_unclaim_by_a_non_owner_is_not_found(start: DeviceClaim) -> None:
    error = not_found(lambda: start.unclaim(B, T0 + 10))
    assert A not in str(error)
    # The same words whatever the true state: a 404 does not tell "owned by another".
    assert str(error) == str(not_found(lambda: fresh().unclaim(B, T0 + 10)))


def test_unclaim_by_the_owner_frees_the_device_for_anyone() -> None:
    claim = claimed(A).set_enabled(A, True).unclaim(A, T0 + 10)
    assert claim == fresh()
    assert claim.initiate(B, T0 + 11).device_event(T0 + 12).finalize(B, T0 + 13).owner == B


def test_an_unclaimed_initiation_needs_no_finalize_to_be_reclaimed_by_code() -> None:
    assert claimed(A).unclaim(A, T0 + 10).claim_by_code(A, T0 + 11).owner == A


def test_the_owner_enables_and_disables() -> None:
    claim = claimed(A).set_enabled(A, True)
    assert claim.enabled
    assert claim.owner == A
    assert not claim.set_enabled(A, False).enabled


@pytest.mark.parametrize(
    ("start", "caller"),
    [(fresh(), A), (initiated(A), A), (claimed(A), B)],
    ids=["unclaimed", "initiated", "owned-by-other"],
)
def test_set_enabled_by_a_non_owner_is_not_found(start: DeviceClaim, caller: str) -> None:
    error = not_found(lambda: start.set_enabled(caller, True))
    assert A not in str(error)


def test_only_the_owner_of_a_claimed_device_sees_it() -> None:
    assert claimed(A).visible_to(A)
    assert not claimed(A).visible_to(B)
    assert not initiated(A).visible_to(A)
    assert not fresh().visible_to(A)


def test_an_empty_caller_is_refused() -> None:
    with pytest.raises(ValueError, match="caller"):
        fresh().initiate("", T0)


# --- errors and the table ----------------------------------------------------------


def test_every_state_and_operation_has_a_row_or_a_named_error() -> None:
    for state, operation in itertools.product(ClaimState, Operation):
        assert (state, operation) in _TRANSITIONS or operation in _NO_ROW, (state, operation)


def test_an_error_names_the_operation_and_state() -> None:
    error = conflict(lambda: claimed(A).initiate(B, T0 + 10))
    assert error.operation is Operation.INITIATE
    assert error.state is ClaimState.CLAIMED
    assert "initiate" in str(error)
    assert "'claimed'" in str(error)
    assert DEVICE in str(error)


# --- records -----------------------------------------------------------------------

EVERY_STATE: Final = {
    "unclaimed": fresh(),
    "initiated": initiated(A),
    "initiated-clicked": initiated(A, clicked=True),
    "claimed-disabled": claimed(A),
    "claimed-enabled": claimed(A).set_enabled(A, True),
}


@pytest.mark.parametrize("claim", EVERY_STATE.values(), ids=EVERY_STATE.keys())
def test_a_record_round_trips(claim: DeviceClaim) -> None:
    record = claim.to_record()
    assert all(isinstance(value, str | float | bool | type(None)) for value in record.values())
    assert DeviceClaim.from_record(record) == claim


def test_integer_times_in_a_record_are_accepted() -> None:
    record = initiated(A).to_record() | {"initiated_at": 10, "expires_at": 910}
    assert DeviceClaim.from_record(record).expires_at == 910.0


BAD_RECORDS: Final = {
    "claimed-without-owner": claimed(A).to_record() | {"owner": None},
    "claimed-with-empty-owner": claimed(A).to_record() | {"owner": ""},
    "unclaimed-with-owner": fresh().to_record() | {"owner": A},
    "unclaimed-enabled": fresh().to_record() | {"enabled": True},
    "initiated-enabled": initiated(A).to_record() | {"enabled": True},
    "initiated-without-initiator": initiated(A).to_record() | {"initiated_by": None},
    "initiated-without-expiry": initiated(A).to_record() | {"expires_at": None},
    "expires-before-start": initiated(A).to_record() | {"expires_at": T0 - 1},
    "infinite-time": initiated(A).to_record() | {"expires_at": float("inf")},
    "claimed-with-initiation": claimed(A).to_record() | {"initiated_by": A},
    "claimed-with-event": claimed(A).to_record() | {"event_seen": True},
    "unknown-state": fresh().to_record() | {"state": "stolen"},
    "empty-device": fresh().to_record() | {"device_id": ""},
    "bool-as-time": initiated(A).to_record() | {"initiated_at": True},
    "str-as-time": initiated(A).to_record() | {"initiated_at": "1700000000"},
    "int-as-flag": claimed(A).to_record() | {"enabled": 1},
    "int-as-owner": claimed(A).to_record() | {"owner": 111111111111},
    "missing-key": {k: v for k, v in fresh().to_record().items() if k != "enabled"},
    "extra-key": fresh().to_record() | {"colour": "red"},
}


@pytest.mark.parametrize("record", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_an_invalid_record_is_refused(record: dict[str, object]) -> None:
    with pytest.raises(InvalidRecord):
        DeviceClaim.from_record(record)


def test_an_invalid_value_is_refused_when_built() -> None:
    with pytest.raises(InvalidRecord, match="owner"):
        DeviceClaim(device_id=DEVICE, state=ClaimState.CLAIMED)


# --- random sequences --------------------------------------------------------------


def apply(claim: DeviceClaim, operation: Operation, caller: str, now: float) -> DeviceClaim:
    if operation is Operation.INITIATE:
        return claim.initiate(caller, now)
    if operation is Operation.DEVICE_EVENT:
        return claim.device_event(now)
    if operation is Operation.FINALIZE:
        return claim.finalize(caller, now)
    if operation is Operation.CLAIM_BY_CODE:
        return claim.claim_by_code(caller, now)
    if operation is Operation.UNCLAIM:
        return claim.unclaim(caller, now)
    return claim.set_enabled(caller, enabled=now % 2 == 0)


def step(
    claim: DeviceClaim, rng: random.Random, now: float
) -> tuple[str, DeviceClaim | ClaimError]:
    """Apply one random operation by a random account: the caller and result or error."""
    caller = rng.choice(ACCOUNTS)
    operation = rng.choice(list(Operation))
    if operation is Operation.DEVICE_EVENT:
        now -= rng.choice([0.0, 0.0, 0.0, 30.0])  # now and then an event arrives late
    try:
        return caller, apply(claim, operation, caller, now)
    except ClaimError as error:
        return caller, error


@pytest.mark.parametrize("seed", range(20))
def test_random_sequences_keep_the_invariants(seed: int) -> None:
    rng = random.Random(seed)
    claim = fresh()
    now = T0
    seen_states: set[ClaimState] = set()
    for _ in range(500):
        now += rng.choice([0.0, 1.0, 30.0, 300.0, 1000.0])
        before = claim
        caller, outcome = step(claim, rng, now)
        if isinstance(outcome, ClaimError):
            assert outcome.status in {403, 404, 409, 412}
            assert not any(account in str(outcome) for account in ACCOUNTS)
            continue
        claim = outcome
        seen_states.add(claim.state)
        # CLAIMED exactly when there is an owner, and only the owner sees the device.
        assert (claim.state is ClaimState.CLAIMED) == (claim.owner is not None)
        assert {a for a in ACCOUNTS if claim.visible_to(a)} == (
            {claim.owner} if claim.owner else set()
        )
        # At most one owner: ownership never passes from one account straight to another,
        # and only the caller's own operation makes it an owner or takes it away.
        if before.owner is not None and claim.owner is not None:
            assert claim.owner == before.owner
        if claim.owner != before.owner:
            assert caller in (claim.owner, before.owner)
        # A device that just became owned is disabled.
        if before.owner is None and claim.owner is not None:
            assert not claim.enabled
        assert DeviceClaim.from_record(claim.to_record()) == claim
    assert seen_states == set(ClaimState)
