"""How fast does the reference backend ingest clicks and answer, against bare baselines?

    python benchmarks/backend.py            # about 1 minute 45
    python benchmarks/backend.py --quick    # about 45 seconds, one run of each

The script makes its own CA and fleet in a temporary folder, and claims the fleet for
one account (ClaimDevicesByClaimCode), so clicks take the owner's path. Each server runs
in a process of its own, forked by this script: the reference backend
(``ReferenceBackend``: embedded broker, SQLite file in WAL, HTTP API, as ``clicksim
backend serve`` runs it, without request logging) and the bare baselines, both up from
start to end; the one not measured idles. Not in-process: the backend is one event loop
on one core, and inside the measuring process it would share a GIL with the clients
and the probe, so every figure would measure both. The load (MQTT publishers, HTTP
clients) runs in one more process with one event loop; this process keeps time, reads
the admin status and runs the visibility probe. On a 2-core machine that is a core for
the server and a core for the load. Each row shows how the server spent its window
(cores busy, share idle in select(), share waiting: neither, so for a core or the
disk) and the load's CPU. Throughput runs alternate backend and baseline and keep the
best of ``--repeat``: this VM's speed drifts by tens of percent from minute to minute,
so the ratios are steadier than the absolute figures.

The publishers are a minimal MQTT 3.1.1 client written here (mutual TLS with each
device's certificate, CONNECT, pipelined QoS 1 PUBLISH, PUBACK), not aiomqtt: paho's
per-message cost would take the second core before the server is saturated.

1. Ingest. ``--devices`` connections publish oneclick clicks (``encode_click``, a new
   seq and remaining life each), ``--window`` in flight per connection, the next sent
   as each PUBACK comes back. After a warm-up, the figure is events committed per
   second: the admin status endpoint's event count at both ends of the window.
   Baselines:
   (a) bare SQLite: the same event rows, the backend's schema, WAL, synchronous=NORMAL,
       the INSERT of ``Store.add_event``, in transactions of the mean batch the
       recorder committed in. Per-row commits would charge SQLite a cost the recorder
       does not pay; with the same batches the ratio is the cost of all the rest
       (MQTT, TLS, decoding, the device lookup and updates around the INSERT);
   (b) bare broker: the same embedded broker (TLS listener, amqtt) with no publish
       hook, the same load: the PUBACK rate of raw MQTT on this stack, the ingest's
       ceiling.
2. Latency at ``--rate`` clicks/s offered, open loop (each click is timed from the
   moment it was due, so a late publisher shows as latency, not as a lower rate):
   publish -> PUBACK for every click. The embedded broker sends a PUBACK only after
   the commit, so this bounds publish -> committed from above. Beside it, a probe
   device publishes 10 clicks/s and polls ListDeviceEvents (SigV4, keep-alive, every
   2 ms) until each shows up: publish -> visible on that sample (its p99 is about its
   maximum), and a count of polls sent after the PUBACK that did not show the click
   (must be 0). Baseline: publish -> PUBACK of the bare broker under the same load.
3. DescribeDevice through HTTP with SigV4: ``--clients`` keep-alive connections, one
   request in flight each, each request signed once (the server verifies every one).
   Baseline: ``HttpServer`` with a handler returning DescribeDevice's JSON as a
   constant, under the same client.

``--profile-out FILE`` saves a cProfile of the backend process during its (last)
ingest window (read it with ``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import json
import logging
import multiprocessing
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, urlsplit

try:
    import simulator  # noqa: F401  (is the checkout importable?)
except ModuleNotFoundError:  # run from a checkout: python benchmarks/backend.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.api import sigv4
from simulator.api.http_client import send
from simulator.backend.accounts import parse_account
from simulator.backend.http import HttpRequest, HttpResponse, HttpServer
from simulator.backend.server import BackendConfig, ReferenceBackend
from simulator.backend.service import DevicesService
from simulator.backend.store import Store
from simulator.broker.embedded import EmbeddedBroker
from simulator.device.identity import KeyType
from simulator.protocol import Click, ClickType, PayloadFormat, encode_click, format_timestamp
from simulator.resources import load_profile
from simulator.runtime.fleet import Fleet, FleetDevice
from simulator.workspace import create_fleet, init_ca

HOST: Final = "127.0.0.1"
REGION: Final = "us-east-1"
PROFILE: Final = "aws-iot-enterprise-button"
ACCOUNT: Final = parse_account("111122223333:AKIABENCHMARK00000001:benchmark-secret-key-000001")
ADMIN_TOKEN: Final = "benchmark-admin-token"
GOAL_RATE: Final = 5000.0
GOAL_P99_MS: Final = 100.0
KEEPALIVE_S: Final = 120
PROBE_EVERY_S: Final = 0.1
POLL_EVERY_S: Final = 0.002
DRAIN_TIMEOUT: Final = 15.0
SEQ_STRIDE: Final = 10_000_000
"""Each run's seqs start at a new multiple: (device, seq) stays unique across runs."""

ServerKind = Literal["backend", "bare"]
_T = TypeVar("_T")


# --- measuring -----------------------------------------------------------------------


def own_cpu_seconds() -> float:
    return time.process_time()


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


# --- a minimal MQTT 3.1.1 publisher --------------------------------------------------


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        length, byte = divmod(length, 128)
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def connect_packet(client_id: str) -> bytes:
    name = client_id.encode()
    body = (
        b"\x00\x04MQTT\x04\x02"  # protocol name and level 4; flags: clean session
        + KEEPALIVE_S.to_bytes(2, "big")
        + len(name).to_bytes(2, "big")
        + name
    )
    return b"\x10" + _remaining_length(len(body)) + body


def publish_packet(topic: bytes, packet_id: int, payload: bytes) -> bytes:
    head = len(topic).to_bytes(2, "big") + topic + packet_id.to_bytes(2, "big")
    return b"\x32" + _remaining_length(len(head) + len(payload)) + head + payload


AckHandler = Callable[["Link", float, float], None]


class Link:
    """One device's MQTT connection: QoS 1 publishes in flight, each PUBACK timed."""

    def __init__(
        self,
        device: FleetDevice,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        seq: int,
    ) -> None:
        self.device_id = device.record.device_id
        self.certificate_id = device.record.certificate_id
        self.seq = seq
        self.in_flight: dict[int, float] = {}
        """Packet id -> the moment its latency counts from."""
        self.on_ack: AckHandler = lambda link, since, now: None
        self._reader = reader
        self._writer = writer
        self._packet_id = 0

    @classmethod
    async def open(cls, device: FleetDevice, port: int, seq: int) -> Link:
        reader, writer = await asyncio.open_connection(HOST, port, ssl=device.tls_context())
        writer.write(connect_packet(device.record.device_id))
        connack = await reader.readexactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise RuntimeError(f"{device.record.device_id}: CONNACK {connack.hex()}")
        return cls(device, reader, writer, seq)

    def publish(self, since: float) -> str:
        """Send the next click; its reportedTime."""
        self.seq += 1
        click = Click(
            device_id=self.device_id,
            seq=self.seq,
            click_type=ClickType.SINGLE,
            reported_at=time.time(),
            remaining_life=self.remaining_life(),
            battery_mv=1710,
            certificate_id=self.certificate_id,
        )
        topic, payload = encode_click(PayloadFormat.ONECLICK, click)
        self._packet_id = self._packet_id % 0xFFFF + 1
        self.in_flight[self._packet_id] = since
        self._writer.write(publish_packet(topic.encode(), self._packet_id, payload))
        return format_timestamp(click.reported_at)

    def remaining_life(self) -> float:
        """Down 0.05 % a click, as a cell lasting 2,000 clicks: a new value every click."""
        return round(100.0 - (self.seq % 2000) * 0.05, 2)

    async def read_acks(self) -> None:
        while True:
            packet = await self._reader.readexactly(4)
            now = time.monotonic()
            if packet[0] != 0x40:
                raise RuntimeError(f"{self.device_id}: unexpected packet {packet.hex()}")
            since = self.in_flight.pop(int.from_bytes(packet[2:4], "big"))
            self.on_ack(self, since, now)

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            self._writer.write(b"\xe0\x00")  # DISCONNECT
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 2)


async def open_links(devices: Sequence[FleetDevice], port: int, seq: int) -> list[Link]:
    links: list[Link] = []
    for start in range(0, len(devices), 50):
        links += await asyncio.gather(
            *(Link.open(device, port, seq) for device in devices[start : start + 50])
        )
    return links


# --- a minimal keep-alive HTTP/1.1 client --------------------------------------------

_CONTENT_LENGTH: Final = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


def signed_request(method: str, path: str, query: str, port: int) -> bytes:
    """A request signed with the benchmark account (``sigv4.sign``), as raw bytes."""
    host = f"{HOST}:{port}"
    headers = [("host", host)]
    headers += sigv4.sign(
        sigv4.Request(method=method, path=path, query=query, headers=headers),
        ACCOUNT.credentials,
        region=REGION,
        service=sigv4.DEFAULT_SERVICE,
        now=datetime.now(UTC),
    )
    target = path + (f"?{query}" if query else "")
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class KeepAlive:
    """One HTTP/1.1 connection kept open: a request, then its whole response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> KeepAlive:
        return cls(*await asyncio.open_connection(HOST, port))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        found = _CONTENT_LENGTH.search(head)
        body = await self._reader.readexactly(int(found[1])) if found else b""
        return int(head[9:12]), body

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


# --- processes: a server, a load, and the pipes between -------------------------------


@dataclass(frozen=True, kw_only=True)
class ServerJob:
    kind: ServerKind
    ca_dir: Path
    fleet: Path
    db: Path | str = ":memory:"
    fixed_body: bytes = b"{}"
    """The bare HTTP handler's answer."""


@dataclass(frozen=True, kw_only=True)
class Usage:
    """A server's counters at one moment; the difference of two says how a window went."""

    at: float
    cpu_s: float
    idle_s: float
    """Time its event loop waited in select(): nothing to do."""
    batches: int = 0
    clicks: int = 0
    """What the recorder committed (counted around ``record_clicks``)."""

    def since(self, before: Usage) -> tuple[float, float, float]:
        """Cores busy, share of the time idle, share waiting (for a core, the disk)."""
        wall = self.at - before.at
        busy = (self.cpu_s - before.cpu_s) / wall
        idle = (self.idle_s - before.idle_s) / wall
        return busy, idle, max(0.0, 1.0 - busy - idle)

    def batch(self, before: Usage) -> float:
        batches = self.batches - before.batches
        return (self.clicks - before.clicks) / batches if batches else float("nan")


@dataclass(kw_only=True)
class Counters:
    idle_s: float = 0.0
    batches: int = 0
    clicks: int = 0


def count_commits(service: DevicesService, counters: Counters) -> None:
    record_clicks = service.record_clicks

    def counting(clicks: Sequence[Any], *, received_at: float) -> Any:
        counters.batches += 1
        counters.clicks += len(clicks)
        return record_clicks(clicks, received_at=received_at)

    service.record_clicks = counting  # type: ignore[method-assign]


def count_idle(loop: asyncio.AbstractEventLoop, counters: Counters) -> None:
    """Time the loop's selector.select() (asyncio's private ``_selector``): its idle time."""
    selector = getattr(loop, "_selector", None)
    if selector is None:
        return
    select = selector.select

    def timed(timeout: float | None = None) -> Any:
        started = time.perf_counter()
        try:
            return select(timeout)
        finally:
            counters.idle_s += time.perf_counter() - started

    selector.select = timed


async def serve(conn: Connection, job: ServerJob) -> None:
    counters = Counters()
    profiler: cProfile.Profile | None = None
    async with contextlib.AsyncExitStack() as stack:
        if job.kind == "backend":
            config = BackendConfig(
                ca_dir=job.ca_dir,
                db=job.db,
                host=HOST,
                fleets=(job.fleet,),
                accounts=(ACCOUNT,),
                admin_token=ADMIN_TOKEN,
            )
            backend = await stack.enter_async_context(ReferenceBackend(config))
            count_commits(backend.service, counters)
            ports = (urlsplit(backend.mqtt_url).port, urlsplit(backend.api_url).port)
        else:
            broker = EmbeddedBroker(host=HOST, port=0, ca_dir=job.ca_dir)  # no hook
            await stack.enter_async_context(broker)
            body = job.fixed_body

            async def fixed(request: HttpRequest) -> HttpResponse:
                return HttpResponse(200, (("content-type", "application/json"),), body)

            http = await stack.enter_async_context(HttpServer(fixed, host=HOST))
            ports = (broker.port, http.port)
        stopping = asyncio.Event()

        def command() -> None:
            nonlocal profiler
            try:
                message = conn.recv()
            except EOFError:
                message = ("stop",)
            if message[0] == "stats":
                conn.send(
                    Usage(
                        at=time.monotonic(),
                        cpu_s=time.process_time(),
                        idle_s=counters.idle_s,
                        batches=counters.batches,
                        clicks=counters.clicks,
                    )
                )
            elif message[0] == "profile" and message[1] is None and profiler is None:
                profiler = cProfile.Profile()
                profiler.enable()
            elif message[0] == "profile" and message[1] is not None and profiler is not None:
                profiler.disable()
                profiler.dump_stats(message[1])
                profiler = None
            elif message[0] == "stop":
                stopping.set()

        loop = asyncio.get_running_loop()
        count_idle(loop, counters)
        loop.add_reader(conn.fileno(), command)
        conn.send(("ready", ports))
        await stopping.wait()
        loop.remove_reader(conn.fileno())


@dataclass(frozen=True, kw_only=True)
class LoadJob:
    """One load process: MQTT publishers (closed or open loop) or HTTP clients."""

    kind: Literal["closed", "open", "http"]
    port: int
    warmup: float
    seconds: float
    fleet: Path | None = None
    indices: tuple[int, ...] = ()
    window: int = 1
    rate: float = 0.0
    seq: int = 0
    requests: tuple[bytes, ...] = ()
    """http: one pre-signed request per connection."""


@dataclass(kw_only=True)
class LoadResult:
    done: int = 0
    """PUBACKs (or 200 responses) received within the window."""
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    """open: publish -> PUBACK of the clicks due within the window."""
    sent: int = 0
    unanswered: int = 0
    errors: int = 0
    max_lag_ms: float = 0.0
    """open: how late the publisher sent a click, at worst."""
    cpu_s: float = 0.0
    wall_s: float = 0.0


async def run_load(conn: Connection, job: LoadJob) -> None:
    if job.kind == "http":
        await http_load(conn, job)
    else:
        await mqtt_load(conn, job)


async def wait_go(conn: Connection) -> float:
    message = await asyncio.to_thread(conn.recv)
    assert message[0] == "go"
    start: float = message[1]
    return start


async def mqtt_load(conn: Connection, job: LoadJob) -> None:
    assert job.fleet is not None
    fleet = Fleet.open(job.fleet)
    links = await open_links([fleet.devices[i] for i in job.indices], job.port, job.seq)
    readers = [asyncio.create_task(link.read_acks()) for link in links]
    conn.send(("ready", len(links)))
    start = await wait_go(conn)
    opens, closes = start + job.warmup, start + job.warmup + job.seconds
    result = LoadResult(seconds=job.seconds)

    def counted(now: float) -> None:
        if opens <= now <= closes:
            result.done += 1

    def closed_loop(link: Link, since: float, now: float) -> None:
        counted(now)
        if now < closes:
            link.publish(now)
            result.sent += 1

    def open_loop(link: Link, since: float, now: float) -> None:
        counted(now)
        if opens <= since < closes:
            result.latencies_ms.append((now - since) * 1000)

    async def pace(link: Link, phase: float) -> None:
        period = len(links) / job.rate
        due = start + phase
        while due < closes:
            await sleep_until(due)
            link.publish(due)
            result.sent += 1
            result.max_lag_ms = max(result.max_lag_ms, (time.monotonic() - due) * 1000)
            due += period

    await sleep_until(start)
    cpu0, wall0 = own_cpu_seconds(), time.monotonic()
    if job.kind == "closed":
        for link in links:
            link.on_ack = closed_loop
            for _ in range(job.window):
                link.publish(time.monotonic())
                result.sent += 1
        await sleep_until(closes)
    else:
        for link in links:
            link.on_ack = open_loop
        period = len(links) / job.rate
        await asyncio.gather(*(pace(link, period * n / len(links)) for n, link in enumerate(links)))
    drained = time.monotonic() + DRAIN_TIMEOUT
    while any(link.in_flight for link in links) and time.monotonic() < drained:
        await asyncio.sleep(0.01)
    result.cpu_s, result.wall_s = own_cpu_seconds() - cpu0, time.monotonic() - wall0
    result.unanswered = sum(len(link.in_flight) for link in links)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.gather(*(link.close() for link in links))
    conn.send(("done", result))


async def http_load(conn: Connection, job: LoadJob) -> None:
    clients = [await KeepAlive.open(job.port) for _ in job.requests]
    conn.send(("ready", len(clients)))
    start = await wait_go(conn)
    opens, closes = start + job.warmup, start + job.warmup + job.seconds
    result = LoadResult(seconds=job.seconds)

    async def client(keep_alive: KeepAlive, request: bytes) -> None:
        while time.monotonic() < closes:
            status, _ = await keep_alive.request(request)
            result.sent += 1
            if status != 200:
                result.errors += 1
            elif opens <= time.monotonic() <= closes:
                result.done += 1

    await sleep_until(start)
    cpu0, wall0 = own_cpu_seconds(), time.monotonic()
    await asyncio.gather(*(client(c, r) for c, r in zip(clients, job.requests, strict=True)))
    result.cpu_s, result.wall_s = own_cpu_seconds() - cpu0, time.monotonic() - wall0
    await asyncio.gather(*(c.close() for c in clients))
    conn.send(("done", result))


def server_main(conn: Connection, job: ServerJob) -> None:
    # amqtt warns at shutdown of the messages its broadcast loop has not reached yet:
    # after a saturating run there are thousands (it takes one per loop iteration).
    logging.getLogger("amqtt.broker").setLevel(logging.ERROR)
    try:
        asyncio.run(serve(conn, job))
    finally:
        conn.close()


def load_main(conn: Connection, job: LoadJob) -> None:
    try:
        asyncio.run(run_load(conn, job))
    finally:
        conn.close()


class Child:
    """A forked process and its end of the pipe: ``ready`` first, then messages."""

    def __init__(self, target: Callable[[Connection, Any], None], job: object) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process: BaseProcess = context.Process(target=target, args=(child, job))
        self.process.start()
        child.close()
        self.ready = self.receive("ready", 120)

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def receive(self, tag: str, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"no {tag!r} from a child in {timeout:g} s")
        got, payload = self.conn.recv()
        if got != tag:
            raise RuntimeError(f"a child answered {got!r}, not {tag!r}")
        return payload

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(("stop",))
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
        self.conn.close()


class Server(Child):
    def __init__(self, job: ServerJob) -> None:
        super().__init__(server_main, job)
        self.kind = job.kind
        self.mqtt_port, self.http_port = self.ready

    def usage(self) -> Usage:
        self.conn.send(("stats",))
        usage = self.conn.recv()
        assert isinstance(usage, Usage)
        return usage

    def profile(self, out: Path | None) -> None:
        self.conn.send(("profile", None if out is None else str(out)))


class Load(Child):
    def __init__(self, job: LoadJob) -> None:
        super().__init__(load_main, job)

    def go(self, lead: float = 0.3) -> float:
        start = time.monotonic() + lead
        self.conn.send(("go", start))
        return start

    async def result(self, timeout: float) -> LoadResult:
        payload = await asyncio.to_thread(self.receive, "done", timeout)
        assert isinstance(payload, LoadResult)
        return payload


# --- the API from this process ---------------------------------------------------------


async def api_call(port: int, method: str, path: str, query: str = "") -> tuple[int, bytes]:
    """One signed call through ``http_client.send`` (a connection of its own)."""
    host = f"{HOST}:{port}"
    headers = [("host", host)]
    headers += sigv4.sign(
        sigv4.Request(method=method, path=path, query=query, headers=headers),
        ACCOUNT.credentials,
        region=REGION,
        service=sigv4.DEFAULT_SERVICE,
        now=datetime.now(UTC),
    )
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    reply = await send(url, method=method, headers=headers)
    return reply.status, reply.body


async def committed_events(port: int) -> tuple[int, float]:
    """The backend's event count (admin status endpoint) and when it was read."""
    sent = time.monotonic()
    reply = await send(
        f"http://{HOST}:{port}/_clicksim/status",
        method="GET",
        headers=[("authorization", f"Bearer {ADMIN_TOKEN}")],
    )
    if reply.status != 200:
        raise RuntimeError(f"admin status: {reply.status} {reply.body[:200]!r}")
    events: int = json.loads(reply.body)["events"]
    return events, (sent + time.monotonic()) / 2


def events_query(reported: str) -> str:
    """A ListDeviceEvents window of 2 s around a click's reportedTime."""
    at = datetime.fromisoformat(reported).timestamp()
    window = (format_timestamp(at - 1), format_timestamp(at + 1))
    return f"fromTimeStamp={quote(window[0], safe='')}&toTimeStamp={quote(window[1], safe='')}"


@dataclass(kw_only=True)
class ProbeResult:
    visible_ms: list[float] = field(default_factory=list)
    acked_ms: list[float] = field(default_factory=list)
    polls: int = 0
    stale_after_ack: int = 0
    """Polls sent after the click's PUBACK that did not show it: must stay 0."""
    never_seen: int = 0


async def probe(device: FleetDevice, server: Server, start: float, end: float) -> ProbeResult:
    """Publish a click every PROBE_EVERY_S, poll ListDeviceEvents until it shows up."""
    result = ProbeResult()
    link = await Link.open(device, server.mqtt_port, 0)
    acked: dict[float, float] = {}
    link.on_ack = lambda _, since, now: acked.__setitem__(since, now)
    reader = asyncio.create_task(link.read_acks())
    http = await KeepAlive.open(server.http_port)
    path = f"/devices/{device.record.device_id}/events"
    slot = start
    try:
        while slot < end:
            await sleep_until(slot)
            published = time.monotonic()
            reported = link.publish(published)
            request = signed_request("GET", path, events_query(reported), server.http_port)
            while True:
                sent = time.monotonic()
                status, body = await http.request(request)
                result.polls += 1
                if status != 200:
                    raise RuntimeError(f"ListDeviceEvents: {status} {body[:200]!r}")
                if reported.encode() in body:
                    result.visible_ms.append((time.monotonic() - published) * 1000)
                    break
                ack = acked.get(published)
                if ack is not None and ack < sent:
                    result.stale_after_ack += 1
                if sent - published > 5:
                    result.never_seen += 1
                    break
                await asyncio.sleep(POLL_EVERY_S)
            while published not in acked and time.monotonic() - published < 5:
                await asyncio.sleep(POLL_EVERY_S)
            if published in acked:
                result.acked_ms.append((acked[published] - published) * 1000)
            slot += PROBE_EVERY_S
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await link.close()
        await http.close()
    return result


# --- the sections ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Share:
    """How a server spent a window: cores busy, share idle, share waiting (neither)."""

    busy: float
    idle: float
    waiting: float

    @classmethod
    def of(cls, before: Usage, after: Usage) -> Share:
        busy, idle, waiting = after.since(before)
        return cls(busy=busy, idle=idle, waiting=waiting)

    def __str__(self) -> str:
        return f"{self.busy:4.2f} {self.idle:5.0%} {self.waiting:5.0%}"


@dataclass(frozen=True, kw_only=True)
class IngestRun:
    rate: float
    """committed clicks/s (backend), PUBACKs/s (bare broker)"""
    acked_rate: float
    batch: float
    """mean clicks per commit in the window (backend)"""
    server: Share
    load_cores: float
    unanswered: int


def publishers(args: argparse.Namespace, fleet: Path, server: Server, **job: Any) -> Load:
    return Load(
        LoadJob(
            port=server.mqtt_port,
            fleet=fleet,
            indices=tuple(range(args.devices)),
            window=args.window,
            rate=args.rate,
            warmup=args.warmup,
            seconds=args.seconds,
            **job,
        )
    )


def ingest(args: argparse.Namespace, fleet: Path, server: Server, run: int) -> IngestRun:
    load = publishers(args, fleet, server, kind="closed", seq=run * SEQ_STRIDE)
    backend = server.kind == "backend"

    async def events() -> tuple[int, float]:
        return await committed_events(server.http_port) if backend else (0, 0.0)

    async def measure() -> tuple[LoadResult, float, Usage, Usage]:
        start = load.go()
        await sleep_until(start + args.warmup)
        before, usage0 = await events(), server.usage()
        if args.profile_out is not None and backend:
            server.profile(None)
        await sleep_until(start + args.warmup + args.seconds)
        if args.profile_out is not None and backend:
            server.profile(args.profile_out)
        after, usage1 = await events(), server.usage()
        result = await load.result(args.seconds + 60)
        committed = (after[0] - before[0]) / (after[1] - before[1]) if backend else 0.0
        return result, committed, usage0, usage1

    try:
        result, committed, usage0, usage1 = asyncio.run(measure())
    finally:
        load.stop()
    acked = result.done / result.seconds
    return IngestRun(
        rate=committed if backend else acked,
        acked_rate=acked,
        batch=usage1.batch(usage0),
        server=Share.of(usage0, usage1),
        load_cores=result.cpu_s / result.wall_s,
        unanswered=result.unanswered,
    )


@dataclass(frozen=True, kw_only=True)
class LatencyRun:
    acked_ms: list[float]
    sent: int
    max_lag_ms: float
    unanswered: int
    server: Share
    probe: ProbeResult | None


def latency(
    args: argparse.Namespace, fleet: Path, server: Server, run: int, probe_device: FleetDevice
) -> LatencyRun:
    load = publishers(args, fleet, server, kind="open", seq=run * SEQ_STRIDE)

    async def measure() -> tuple[LoadResult, Share, ProbeResult | None]:
        start = load.go()
        opens, closes = start + args.warmup, start + args.warmup + args.seconds
        probing: asyncio.Task[ProbeResult] | None = None
        if server.kind == "backend":
            probing = asyncio.create_task(probe(probe_device, server, opens, closes))
        await sleep_until(opens)
        usage0 = server.usage()
        await sleep_until(closes)
        share = Share.of(usage0, server.usage())
        result = await load.result(args.seconds + 60)
        return result, share, (await probing if probing is not None else None)

    try:
        result, share, probed = asyncio.run(measure())
    finally:
        load.stop()
    return LatencyRun(
        acked_ms=result.latencies_ms,
        sent=result.sent,
        max_lag_ms=result.max_lag_ms,
        unanswered=result.unanswered,
        server=share,
        probe=probed,
    )


@dataclass(frozen=True, kw_only=True)
class DescribeRun:
    rate: float
    errors: int
    server: Share
    load_cores: float


def describe(args: argparse.Namespace, server: Server, requests: tuple[bytes, ...]) -> DescribeRun:
    load = Load(
        LoadJob(
            kind="http",
            port=server.http_port,
            warmup=args.warmup,
            seconds=args.http_seconds,
            requests=requests,
        )
    )

    async def measure() -> tuple[LoadResult, Share]:
        start = load.go()
        await sleep_until(start + args.warmup)
        usage0 = server.usage()
        await sleep_until(start + args.warmup + args.http_seconds)
        share = Share.of(usage0, server.usage())
        return await load.result(args.http_seconds + 60), share

    try:
        result, share = asyncio.run(measure())
    finally:
        load.stop()
    return DescribeRun(
        rate=result.done / result.seconds,
        errors=result.errors,
        server=share,
        load_cores=result.cpu_s / result.wall_s,
    )


def describe_requests(args: argparse.Namespace, fleet: Fleet, port: int) -> tuple[bytes, ...]:
    """One signed DescribeDevice per client connection, each for another device."""
    devices = fleet.devices[: args.clients]
    return tuple(
        signed_request("GET", f"/devices/{devices[n % len(devices)].record.device_id}", "", port)
        for n in range(args.clients)
    )


def sqlite_baseline(path: Path, fleet: Fleet, rows: int, batch: int) -> float:
    """Rows/s for bare INSERTs of event rows into the backend's schema, ``batch`` per commit."""
    Store(path).close()  # the schema, WAL mode (kept by the file)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    devices = fleet.devices
    now = time.time()
    data = []
    for n in range(rows):
        record = devices[n % len(devices)].record
        at = now + n / 1000
        std_event = {
            "clickType": "SINGLE",
            "reportedTime": format_timestamp(at),
            "certificateId": record.certificate_id,
            "remainingLife": 97.5,
            "testMode": False,
        }
        data.append(
            (
                record.device_id,
                ACCOUNT.account_id,
                n,
                int(at * 1000),
                now,
                json.dumps(std_event, separators=(",", ":")),
            )
        )
    insert = (
        "INSERT OR IGNORE INTO events (device_id, account, seq, at_ms, received_at,"
        " std_event) VALUES (?, ?, ?, ?, ?, ?)"
    )
    started = time.perf_counter()
    for first in range(0, rows, batch):
        db.execute("BEGIN IMMEDIATE")
        for row in data[first : first + batch]:
            db.execute(insert, row)
        db.execute("COMMIT")
    seconds = time.perf_counter() - started
    db.close()
    return rows / seconds


# --- setup and report ------------------------------------------------------------------


@dataclass(kw_only=True)
class Figures:
    ingest: dict[ServerKind, IngestRun] = field(default_factory=dict)
    sqlite_rate: float = 0.0
    sqlite_batch: int = 1
    latency: dict[ServerKind, LatencyRun] = field(default_factory=dict)
    describe: dict[ServerKind, DescribeRun] = field(default_factory=dict)


def run_sections(args: argparse.Namespace, work: Path, fleet_path: Path, ca_dir: Path) -> Figures:
    """Both servers up at once (the one not measured idles); throughput runs alternate."""
    figures = Figures()
    fleet = Fleet.open(fleet_path)
    runs = iter(range(1, 1000))  # each run's seqs start afresh: (device, seq) stays unique
    backend = Server(
        ServerJob(kind="backend", ca_dir=ca_dir, db=work / "backend.db", fleet=fleet_path)
    )
    try:
        status, body = asyncio.run(
            api_call(backend.http_port, "PUT", f"/claims/{fleet.manifest.claim_code}")
        )
        if status != 200:
            raise RuntimeError(f"ClaimDevicesByClaimCode: {status} {body[:200]!r}")
        device_id = fleet.devices[0].record.device_id
        status, described = asyncio.run(api_call(backend.http_port, "GET", f"/devices/{device_id}"))
        if status != 200:
            raise RuntimeError(f"DescribeDevice: {status} {described[:200]!r}")
        bare = Server(ServerJob(kind="bare", ca_dir=ca_dir, fleet=fleet_path, fixed_body=described))
        try:
            servers: tuple[tuple[ServerKind, Server], ...] = (("backend", backend), ("bare", bare))
            for attempt in range(args.repeat):
                for kind, server in servers:
                    run = step(
                        f"ingest, {kind} ({attempt + 1}/{args.repeat})",
                        functools.partial(ingest, args, fleet_path, server, next(runs)),
                    )
                    best = figures.ingest.get(kind)
                    if best is None or run.rate > best.rate:
                        figures.ingest[kind] = run
            for kind, server in servers:
                figures.latency[kind] = step(
                    f"latency, {kind}",
                    functools.partial(
                        latency, args, fleet_path, server, next(runs), fleet.devices[-1]
                    ),
                )
            for attempt in range(args.repeat):
                for kind, server in servers:
                    requests = describe_requests(args, fleet, server.http_port)
                    described_run = step(
                        f"DescribeDevice, {kind} ({attempt + 1}/{args.repeat})",
                        functools.partial(describe, args, server, requests),
                    )
                    best_http = figures.describe.get(kind)
                    if best_http is None or described_run.rate > best_http.rate:
                        figures.describe[kind] = described_run
        finally:
            bare.stop()
    finally:
        backend.stop()
    mean = figures.ingest["backend"].batch
    figures.sqlite_batch = max(1, round(mean)) if mean == mean else 1
    rows = max(20_000, round(figures.ingest["backend"].rate * args.seconds))
    for attempt in range(args.repeat):
        rate = step(
            f"bare SQLite ({attempt + 1}/{args.repeat})",
            functools.partial(
                sqlite_baseline, work / f"bare{attempt}.db", fleet, rows, figures.sqlite_batch
            ),
        )
        figures.sqlite_rate = max(figures.sqlite_rate, rate)
    return figures


def step(name: str, run: Callable[[], _T]) -> _T:
    started = time.monotonic()
    result = run()
    shown = ""
    if isinstance(result, IngestRun | DescribeRun):
        shown = f": {result.rate:,.0f}/s, server {result.server}"
    elif isinstance(result, float):
        shown = f": {result:,.0f}/s"
    print(f"  {name} ({time.monotonic() - started:.1f} s){shown}", flush=True)
    return result


def verdict(met: bool) -> str:
    return "yes" if met else "NO"


def ratio(figure: float, baseline: float) -> str:
    return f"{figure / baseline:.2f}" if baseline else "-"


def report(args: argparse.Namespace, figures: Figures) -> None:
    ib, ia = figures.ingest["backend"], figures.ingest["bare"]
    lb, la = figures.latency["backend"], figures.latency["bare"]
    db, da = figures.describe["backend"], figures.describe["bare"]
    server = f"{'busy':>4} {'idle':>5} {'wait':>5}"
    print()
    print(
        f"1. ingest: {args.devices} mTLS connections x {args.window} QoS 1 in flight, "
        f"{args.warmup:g} s warm-up, {args.seconds:g} s measured"
    )
    print(f"   {'':40} {'clicks/s':>9}  server {server}  load")
    print(f"   {'backend: committed (admin status)':40} {ib.rate:>9,.0f}  {ib.server}", end="")
    print(f"  {ib.load_cores:.2f}")
    print(f"   {'backend: PUBACKs received':40} {ib.acked_rate:>9,.0f}")
    print(
        f"   {f'(a) bare SQLite, {figures.sqlite_batch} rows a commit':40} "
        f"{figures.sqlite_rate:>9,.0f}  (in this process, no MQTT)"
    )
    print(f"   {'(b) bare broker, no hook: PUBACKs':40} {ia.rate:>9,.0f}  {ia.server}", end="")
    print(f"  {ia.load_cores:.2f}")
    print(
        f"   mean commit {ib.batch:.0f} clicks; server CPU per click: backend "
        f"{ib.server.busy / ib.rate * 1e6:.0f} us, "
        f"bare broker {ia.server.busy / ia.rate * 1e6:.0f} us, "
        f"bare SQLite {1e6 / figures.sqlite_rate:.0f} us; unanswered at the end: "
        f"{ib.unanswered + ia.unanswered}"
    )
    print()
    print(
        f"2. latency at {args.rate:g} clicks/s offered, open loop over {args.devices} connections, "
        f"{args.seconds:g} s measured"
    )
    print(f"   {'':40} {'clicks':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}  server {server}")

    def row(label: str, values: Sequence[float], share: Share | None = None) -> None:
        print(
            f"   {label:40} {len(values):>7} {percentile(values, 0.5):>7.1f} "
            f"{percentile(values, 0.99):>7.1f} {max(values, default=float('nan')):>7.1f}"
            + (f"  {share}" if share is not None else "")
        )

    row("backend: publish -> PUBACK (committed)", lb.acked_ms, lb.server)
    if lb.probe is not None:
        row("backend probe: publish -> PUBACK", lb.probe.acked_ms)
        row("backend probe: publish -> ListDeviceEvents", lb.probe.visible_ms)
    row("(b) bare broker: publish -> PUBACK", la.acked_ms, la.server)
    if lb.probe is not None:
        print(
            f"   probe: {lb.probe.polls} polls; sent after the PUBACK yet not showing the click: "
            f"{lb.probe.stale_after_ack}; never seen: {lb.probe.never_seen}"
        )
    print(
        f"   publisher at worst {max(lb.max_lag_ms, la.max_lag_ms):.1f} ms late; "
        f"unanswered at the end: {lb.unanswered + la.unanswered}"
    )
    print()
    print(f"3. DescribeDevice over {args.clients} keep-alive connections, SigV4 on every request")
    print(f"   {'':40} {'req/s':>9}  server {server}  load  errors")
    for label, run in (("backend: DescribeDevice", db), ("(c) bare h11 handler, fixed JSON", da)):
        print(f"   {label:40} {run.rate:>9,.0f}  {run.server}  {run.load_cores:.2f}  {run.errors}")
    print(
        "   server: cores busy, share of the window idle in select() and waiting (neither: "
        "for a core, the disk); load: cores"
    )

    p99, p99_bare = percentile(lb.acked_ms, 0.99), percentile(la.acked_ms, 0.99)
    lines = [
        (
            "ingest, committed clicks/s",
            f"{ib.rate:,.0f}",
            f">= {GOAL_RATE:,.0f}",
            verdict(ib.rate >= GOAL_RATE),
            f"(b) broker {ia.rate:,.0f}",
            ratio(ib.rate, ia.rate),
        ),
        (
            "",
            "",
            "",
            "",
            f"(a) SQLite {figures.sqlite_rate:,.0f}",
            ratio(ib.rate, figures.sqlite_rate),
        ),
        (
            f"p99 publish->PUBACK @{args.rate:g}/s",
            f"{p99:.1f} ms",
            f"< {GOAL_P99_MS:g} ms",
            verdict(p99 < GOAL_P99_MS),
            f"(b) broker {p99_bare:.1f} ms",
            ratio(p99, p99_bare),
        ),
    ]
    if lb.probe is not None:
        visible = percentile(lb.probe.visible_ms, 0.99)
        lines.append(
            (
                "p99 publish->visible (probe)",
                f"{visible:.1f} ms",
                f"< {GOAL_P99_MS:g} ms",
                verdict(visible < GOAL_P99_MS),
                "",
                "",
            )
        )
    lines.append(
        (
            "DescribeDevice req/s",
            f"{db.rate:,.0f}",
            "-",
            "",
            f"(c) bare h11 {da.rate:,.0f}",
            ratio(db.rate, da.rate),
        )
    )
    print()
    print(f"   {'summary':34} {'figure':>10} {'goal':>10} {'met':>4} {'baseline':>20} {'ratio':>6}")
    for name, figure, goal, met, base, times in lines:
        print(f"   {name:34} {figure:>10} {goal:>10} {met:>4} {base:>20} {times:>6}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=200, help="MQTT connections")
    parser.add_argument("--window", type=int, default=4, help="QoS 1 in flight per connection")
    parser.add_argument("--rate", type=float, default=1000.0, help="latency: clicks/s offered")
    parser.add_argument("--clients", type=int, default=8, help="DescribeDevice connections")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each window")
    parser.add_argument("--seconds", type=float, default=8.0, help="MQTT measuring window")
    parser.add_argument("--http-seconds", type=float, default=5.0, help="HTTP measuring window")
    parser.add_argument("--repeat", type=int, default=2, help="throughput runs, best kept")
    parser.add_argument("--quick", action="store_true", help="short windows (about a minute)")
    parser.add_argument("--profile-out", type=Path, help="cProfile of the backend's ingest")
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.seconds, args.http_seconds, args.repeat = 1.0, 4.0, 3.0, 1
    if not 1 <= args.devices <= 2000 or not 1 <= args.window <= 1000 or args.clients < 1:
        parser.error("need --devices within 1..2000, --window within 1..1000, --clients >= 1")
    if args.rate <= 0 or args.seconds <= 0 or args.http_seconds <= 0 or args.warmup < 0:
        parser.error("need a positive --rate, --seconds, --http-seconds and --warmup >= 0")
    if not 1 <= args.repeat <= 10:
        parser.error("--repeat must be within 1..10")

    print(
        f"{os.cpu_count()} CPUs; each server and the load in processes of their own; "
        f"throughput: best of {args.repeat}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="clicksim-bench-") as tmp:
        work = Path(tmp)
        ca = init_ca(work / "certs", seed="benchmark", key_type=KeyType.EC)
        fleet_path = work / "fleet.json"
        create_fleet(
            load_profile(PROFILE),
            ca_folder=ca,
            count=args.devices + 1,  # the last one is the visibility probe
            seed="benchmark-backend",
            claim_code=None,
            out=fleet_path,
        )
        figures = run_sections(args, work, fleet_path, ca.path)
    report(args, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
