"""The SQLite store: schema versions, inventory, events in order, the callback outbox."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.backend.claims import DeviceClaim
from simulator.backend.store import SCHEMA_VERSION, InventoryDevice, Store, StoreError


def _device(device_id: str, *, cert: str = "a" * 64, code: str = "C-ABCDEFGHIJ") -> InventoryDevice:
    return InventoryDevice(
        device_id=device_id, device_type="button", certificate_id=cert, claim_code=code
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "clicksim.db")
    yield opened
    opened.close()


def test_a_new_database_is_at_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    assert store.schema_version == SCHEMA_VERSION
    store.close()
    with sqlite3.connect(tmp_path / "db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_a_database_from_a_newer_clicksim_is_refused(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "db")
    raw.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer than this clicksim"):
        Store(tmp_path / "db")


def test_a_file_that_is_not_a_database_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "db").write_text("not sqlite at all, just text" * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(tmp_path / "db")


def test_reopening_keeps_everything_and_migrates_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.add_devices([_device("G030PM0000000001")])
    key = store.secret("k")
    store.close()
    again = Store(tmp_path / "db")
    assert again.device("G030PM0000000001") is not None
    assert again.secret("k") == key
    again.close()


def test_importing_a_fleet_twice_adds_nothing(store: Store) -> None:
    assert store.add_devices([_device("D1"), _device("D2")]) == 2
    assert store.add_devices([_device("D1"), _device("D3")]) == 1
    assert store.count_devices() == 3


def test_one_id_with_two_certificates_is_refused_and_nothing_is_added(store: Store) -> None:
    store.add_devices([_device("D1")])
    with pytest.raises(StoreError, match="D1 is already in the inventory"):
        store.add_devices([_device("D2"), _device("D1", cert="b" * 64)])
    assert store.device("D2") is None


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    store.add_devices([_device("D1")])

    def claim_then_fail() -> None:
        with store.transaction():
            store.save_claim(DeviceClaim.unclaimed("D1").claim_by_code("111111111111", 0.0))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        claim_then_fail()
    row = store.device("D1")
    assert row is not None
    assert row.claim == DeviceClaim.unclaimed("D1")


def test_owned_devices_page_in_id_order_with_a_type_filter(store: Store) -> None:
    store.add_devices([_device(f"D{i}") for i in range(5)])
    for i in (0, 2, 3, 4):
        store.save_claim(DeviceClaim.unclaimed(f"D{i}").claim_by_code("111111111111", 0.0))
    first = store.owned_devices("111111111111", device_type=None, after=None, limit=2)
    rest = store.owned_devices("111111111111", device_type=None, after="D2", limit=10)
    assert [d.device_id for d in first + rest] == ["D0", "D2", "D3", "D4"]
    assert store.owned_devices("111111111111", device_type="other", after=None, limit=9) == []


def test_a_duplicate_seq_is_not_stored_twice(store: Store) -> None:
    store.add_devices([_device("D1")])
    kwargs = {"device_id": "D1", "account": "a", "at_ms": 5, "received_at": 1.0, "std_event": "{}"}
    assert store.add_event(seq=7, **kwargs) is True  # type: ignore[arg-type]
    assert store.add_event(seq=7, **kwargs) is False  # type: ignore[arg-type]
    assert store.add_event(seq=None, **kwargs) is True  # type: ignore[arg-type]
    assert store.add_event(seq=None, **kwargs) is True  # type: ignore[arg-type]
    assert store.count_events() == 3


def test_events_come_in_time_order_within_the_window_and_page_without_gaps(store: Store) -> None:
    store.add_devices([_device("D1")])
    for seq, at in enumerate([30, 10, 20, 20, 40, 5]):
        store.add_event(
            device_id="D1", account="a", seq=seq, at_ms=at, received_at=0.0, std_event=str(seq)
        )
    store.add_event(device_id="D1", account="b", seq=99, at_ms=20, received_at=0, std_event="b")
    seen: list[str] = []
    after = None
    while True:
        page = store.events("D1", "a", from_ms=10, to_ms=30, after=after, limit=1)
        if not page:
            break
        seen += [row.std_event for row in page]
        after = (page[-1].at_ms, page[-1].id)
    assert seen == ["1", "2", "3", "0"]


def test_the_outbox_hands_out_only_the_head_of_each_device(store: Store) -> None:
    for device, url in [("D1", "u1"), ("D1", "u2"), ("D2", "u3")]:
        store.enqueue_delivery(device_id=device, url=url, body=b"{}", now=10.0)
    assert store.next_due_at(after=0.0) == 10.0
    assert store.next_due_at(after=10.0) is None
    assert [d.url for d in store.due(now=9.0, limit=10)] == []
    heads = store.due(now=10.0, limit=10)
    assert sorted(d.url for d in heads) == ["u1", "u3"]
    first = next(d for d in heads if d.url == "u1")
    store.retry_later(first.id, next_at=20.0, error="503")
    assert [d.url for d in store.due(now=15.0, limit=10)] == ["u3"]
    again = store.due(now=20.0, limit=10)
    assert [(d.url, d.attempts) for d in again if d.device_id == "D1"] == [("u1", 1)]
    store.delivered(first.id)
    assert [d.url for d in store.due(now=20.0, limit=10) if d.device_id == "D1"] == ["u2"]
    assert store.pending_deliveries() == 2
