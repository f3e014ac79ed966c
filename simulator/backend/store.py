"""The reference backend's durable state: one SQLite file in WAL mode.

Why SQLite: one file a user can copy, inspect with ``sqlite3`` and delete; no server
to run. WAL lets readers (the HTTP API) go on while the ingest commits, and with
``synchronous=NORMAL`` a commit is in the operating system's hands when ``COMMIT``
returns, so a ``kill -9`` of the backend loses nothing it acknowledged (a power cut
may lose the last commits: ``synchronous="FULL"`` closes that too, at a cost).

The store knows rows, not rules: the service decides what a call means and uses
these methods inside one :meth:`Store.transaction`. All calls happen on the event
loop's thread; each is a few indexed statements.

Schema changes are migrations: numbered scripts, applied in order inside one
transaction, with the version in ``PRAGMA user_version``. A database from a newer
clicksim is refused rather than guessed at.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from simulator.backend.claims import ClaimState, DeviceClaim, InvalidRecord
from simulator.backend.webhooks import Delivery

Synchronous = Literal["NORMAL", "FULL"]

_MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: inventory, claims, events, callback outbox, claim-code use, settings.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY,
        device_type TEXT NOT NULL,
        certificate_id TEXT NOT NULL,
        claim_code TEXT NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}',
        claim TEXT NOT NULL,
        owner TEXT,
        tags TEXT NOT NULL DEFAULT '{}',
        settings TEXT NOT NULL DEFAULT '{}',
        remaining_life REAL
    ) WITHOUT ROWID;
    CREATE INDEX devices_by_owner ON devices (owner, device_id);
    CREATE INDEX devices_by_claim_code ON devices (claim_code);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        account TEXT,
        seq INTEGER,
        at_ms INTEGER NOT NULL,
        received_at REAL NOT NULL,
        std_event TEXT NOT NULL,
        UNIQUE (device_id, seq)
    );
    CREATE INDEX events_by_window ON events (device_id, account, at_ms, id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        url TEXT NOT NULL,
        body BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        last_error TEXT
    );
    CREATE INDEX outbox_by_device ON outbox (device_id, id);
    """,
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)


class StoreError(Exception):
    """The database cannot be used: a newer schema, a corrupt row, a locked file."""


@dataclass(frozen=True, kw_only=True, slots=True)
class InventoryDevice:
    """A device as the manufacturer ships it: identity and batch claim code."""

    device_id: str
    device_type: str
    certificate_id: str
    claim_code: str
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceRow:
    device_id: str
    device_type: str
    certificate_id: str
    claim_code: str
    attributes: dict[str, str]
    claim: DeviceClaim
    tags: dict[str, str]
    settings: dict[str, object]
    """Per-owner device-method settings (callbacks, health threshold)."""
    remaining_life: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRow:
    id: int
    device_id: str
    device_type: str
    attributes: dict[str, str]
    at_ms: int
    std_event: str


_DEVICE_COLUMNS: Final = (
    "device_id, device_type, certificate_id, claim_code, attributes, claim, tags, settings,"
    " remaining_life"
)


class Store:
    """One open database. Not thread-safe: use it from one thread (the event loop's)."""

    def __init__(self, path: Path | str, *, synchronous: Synchronous = "NORMAL") -> None:
        self.path = str(path)
        try:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below).
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from None
        self._depth = 0

    def close(self) -> None:
        self._db.close()

    # --- transactions and schema ----------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing; nested uses join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    @property
    def schema_version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        return version

    def _migrate(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this clicksim's "
                f"({SCHEMA_VERSION}); upgrade clicksim"
            )
        if current == SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for version in range(current, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def secret(self, name: str) -> bytes:
        """A random key made once per database (e.g. for signing page tokens)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
        if row is not None:
            value: bytes = row[0]
            return value
        value = secrets.token_bytes(32)
        with self.transaction():
            self._db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (name, value))
            stored: bytes = self._db.execute(
                "SELECT value FROM meta WHERE key = ?", (name,)
            ).fetchone()[0]
        return stored

    # --- inventory and claims -------------------------------------------------------

    def add_devices(self, devices: Iterable[InventoryDevice]) -> int:
        """Add new devices; one already known with the same identity is skipped.

        Returns how many were new. A known id with another certificate is refused:
        two fleets may not give one id to two identities.
        """
        added = 0
        with self.transaction():
            for device in devices:
                row = self._db.execute(
                    "SELECT certificate_id FROM devices WHERE device_id = ?", (device.device_id,)
                ).fetchone()
                if row is not None:
                    if row[0] != device.certificate_id:
                        raise StoreError(
                            f"device {device.device_id} is already in the inventory "
                            "with another certificate"
                        )
                    continue
                claim = DeviceClaim.unclaimed(device.device_id)
                self._db.execute(
                    "INSERT INTO devices (device_id, device_type, certificate_id, claim_code,"
                    " attributes, claim) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        device.device_id,
                        device.device_type,
                        device.certificate_id,
                        device.claim_code,
                        json.dumps(dict(device.attributes)),
                        json.dumps(claim.to_record()),
                    ),
                )
                added += 1
        return added

    def device(self, device_id: str) -> DeviceRow | None:
        row = self._db.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE device_id = ?", (device_id,)
        ).fetchone()
        return None if row is None else _device_row(row)

    def devices_with_claim_code(self, claim_code: str) -> list[DeviceRow]:
        rows = self._db.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE claim_code = ? ORDER BY device_id",
            (claim_code,),
        ).fetchall()
        return [_device_row(row) for row in rows]

    def owned_devices(
        self, owner: str, *, device_type: str | None, after: str | None, limit: int
    ) -> list[DeviceRow]:
        """The owner's devices in id order, from just after ``after``."""
        rows = self._db.execute(
            f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE owner = ?"
            " AND (? IS NULL OR device_type = ?) AND device_id > ?"
            " ORDER BY device_id LIMIT ?",
            (owner, device_type, device_type, after or "", limit),
        ).fetchall()
        return [_device_row(row) for row in rows]

    def count_devices(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM devices").fetchone()[0]
        return count

    def save_claim(self, claim: DeviceClaim) -> None:
        owner = claim.owner if claim.state is ClaimState.CLAIMED else None
        self._db.execute(
            "UPDATE devices SET claim = ?, owner = ? WHERE device_id = ?",
            (json.dumps(claim.to_record()), owner, claim.device_id),
        )

    def save_tags(self, device_id: str, tags: Mapping[str, str]) -> None:
        self._db.execute(
            "UPDATE devices SET tags = ? WHERE device_id = ?", (json.dumps(dict(tags)), device_id)
        )

    def save_settings(self, device_id: str, settings: Mapping[str, object]) -> None:
        self._db.execute(
            "UPDATE devices SET settings = ? WHERE device_id = ?",
            (json.dumps(dict(settings)), device_id),
        )

    def save_remaining_life(self, device_id: str, remaining_life: float) -> None:
        self._db.execute(
            "UPDATE devices SET remaining_life = ? WHERE device_id = ?",
            (remaining_life, device_id),
        )

    # --- events ---------------------------------------------------------------------

    def add_event(
        self,
        *,
        device_id: str,
        account: str | None,
        seq: int | None,
        at_ms: int,
        received_at: float,
        std_event: str,
    ) -> bool:
        """Store one device event; ``False`` if (device, seq) is already stored."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO events (device_id, account, seq, at_ms, received_at,"
            " std_event) VALUES (?, ?, ?, ?, ?, ?)",
            (device_id, account, seq, at_ms, received_at, std_event),
        )
        return cursor.rowcount == 1

    def events(
        self,
        device_id: str,
        account: str,
        *,
        from_ms: int,
        to_ms: int,
        after: tuple[int, int] | None,
        limit: int,
    ) -> list[EventRow]:
        """The account's events of one device with ``from_ms <= at_ms <= to_ms``, in order.

        Order is (event time, arrival), and ``after`` is the last (at_ms, id) of the
        previous page, so a page boundary never skips or repeats an event.
        """
        after_at, after_id = after if after is not None else (from_ms - 1, 0)
        rows = self._db.execute(
            "SELECT e.id, e.device_id, d.device_type, d.attributes, e.at_ms, e.std_event"
            " FROM events e JOIN devices d USING (device_id)"
            " WHERE e.device_id = ? AND e.account = ? AND e.at_ms BETWEEN ? AND ?"
            " AND (e.at_ms > ? OR (e.at_ms = ? AND e.id > ?))"
            " ORDER BY e.at_ms, e.id LIMIT ?",
            (device_id, account, from_ms, to_ms, after_at, after_at, after_id, limit),
        ).fetchall()
        return [
            EventRow(
                id=row[0],
                device_id=row[1],
                device_type=row[2],
                attributes=json.loads(row[3]),
                at_ms=row[4],
                std_event=row[5],
            )
            for row in rows
        ]

    def count_events(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM events").fetchone()[0]
        return count

    # --- callback outbox (simulator.backend.webhooks.Outbox) -------------------------

    def enqueue_delivery(self, *, device_id: str, url: str, body: bytes, now: float) -> None:
        self._db.execute(
            "INSERT INTO outbox (device_id, url, body, next_at) VALUES (?, ?, ?, ?)",
            (device_id, url, body, now),
        )

    def due(self, now: float, limit: int) -> list[Delivery]:
        rows = self._db.execute(
            "SELECT o.id, o.device_id, o.url, o.body, o.attempts FROM outbox o"
            " JOIN (SELECT min(id) AS id FROM outbox GROUP BY device_id) head USING (id)"
            " WHERE o.next_at <= ? ORDER BY o.next_at, o.id LIMIT ?",
            (now, limit),
        ).fetchall()
        return [
            Delivery(id=row[0], device_id=row[1], url=row[2], body=bytes(row[3]), attempts=row[4])
            for row in rows
        ]

    def next_due_at(self, after: float) -> float | None:
        """When the next head that is not yet due (later than ``after``) falls due."""
        row = self._db.execute(
            "SELECT min(o.next_at) FROM outbox o"
            " JOIN (SELECT min(id) AS id FROM outbox GROUP BY device_id) head USING (id)"
            " WHERE o.next_at > ?",
            (after,),
        ).fetchone()
        value: float | None = row[0]
        return value

    def delivered(self, delivery_id: int) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM outbox WHERE id = ?", (delivery_id,))

    def retry_later(self, delivery_id: int, *, next_at: float, error: str) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ?"
                " WHERE id = ?",
                (next_at, error, delivery_id),
            )

    def pending_deliveries(self) -> int:
        count: int = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        return count


def _device_row(row: tuple[object, ...]) -> DeviceRow:
    (
        device_id,
        device_type,
        certificate_id,
        claim_code,
        attributes,
        claim,
        tags,
        settings,
        life,
    ) = row
    assert isinstance(device_id, str)
    try:
        claim_record = json.loads(str(claim))
        return DeviceRow(
            device_id=device_id,
            device_type=str(device_type),
            certificate_id=str(certificate_id),
            claim_code=str(claim_code),
            attributes=json.loads(str(attributes)),
            claim=DeviceClaim.from_record(claim_record),
            tags=json.loads(str(tags)),
            settings=json.loads(str(settings)),
            remaining_life=None if life is None else float(str(life)),
        )
    except (json.JSONDecodeError, InvalidRecord) as exc:
        raise StoreError(f"device {device_id}: corrupt row: {exc}") from None
