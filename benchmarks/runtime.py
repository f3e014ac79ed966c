"""How fast and how light is a fleet of VirtualButtons, against bare aiomqtt clients?

    python benchmarks/runtime.py          # default sizes: about a minute
    python benchmarks/runtime.py --skip-clicks --persistent 15000 --steps 5
                                          # the design's full size: about 3.5 minutes

The script makes its own CA and fleets in a temporary folder and starts its own
mosquitto (clicksim's generated configuration: mutual TLS, certificate required, CN
as username, per-device ACL) on a free port of 127.0.0.1. Every figure is measured
beside its baseline, in the same run, against the same broker.

1. Per-click rate: connect + mutual TLS + PUBLISH QoS 1 + PUBACK + DISCONNECT.
   (a) baseline: a bare aiomqtt loop doing exactly that with each device's certificate;
   (b) clicksim: one VirtualButton per device, SINGLE clicks. The human timings are
       taken out (debounce 0, double-click window 50 ms, LED 0 ms, a 1 ms press):
       what is measured is the driver and the firmware, not a finger.
   Both with the same concurrency (``--concurrency`` devices, each doing ``--clicks``
   clicks one after the other) split over ``--workers`` processes, one event loop each.
   The CPU each side used (the workers, mosquitto) is reported too. Target: b/a >= 0.9.
2. Persistent connections (profile clicksim-persistent-button, MQTT as the profile says, last will):
   (a) bare aiomqtt clients connected and idle; (b) VirtualButtons after power_on.
   Ramped in ``--steps`` steps up to ``--persistent`` devices, ``--batch`` connects at
   a time per worker. Memory is the RSS growth of the worker processes (from
   /proc/self/statm, TLS contexts included) divided by the devices connected; the
   broker's count comes from its sockets (/proc/net/tcp) and its $SYS tree.
   The design's goal: 15,000 connected at < 60 KB each.

Flags for the full-size run: ``--persistent 15000`` (the open-file limit is raised to
its hard limit, for the workers and for mosquitto; 15,000 needs a hard limit above
15,000 / workers + a few hundred). ``--skip-clicks`` / ``--persistent 0`` run one
section only; ``--profile-out FILE`` saves a cProfile of worker 0 of run (b) of the
per-click section (read it with ``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import multiprocessing
import os
import random
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final, Literal

import aiomqtt

try:
    import simulator  # noqa: F401  (is the checkout importable?)
except ModuleNotFoundError:  # run from a checkout: python benchmarks/runtime.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.broker.mosquitto import write_mosquitto_config
from simulator.device.firmware import LinkState
from simulator.device.identity import BACKEND_CLIENT_CN, KeyType
from simulator.device.profile import Profile
from simulator.protocol import OFFLINE_STATUS, Click, ClickType, encode_click, status_topic
from simulator.resources import load_profile
from simulator.runtime.button import VirtualButton
from simulator.runtime.connection import BrokerAddress, client_tls_context
from simulator.runtime.fleet import Fleet, FleetDevice
from simulator.workspace import CaFolder, create_fleet, init_ca

HOST: Final = "127.0.0.1"
CLICK_PROFILE: Final = "aws-iot-enterprise-button"
PERSISTENT_PROFILE: Final = "clicksim-persistent-button"
TARGET_RATIO: Final = 0.9
TARGET_DEVICES: Final = 15_000
TARGET_BYTES: Final = 60 * 1024
NET_TIMEOUT: Final = 10.0
"""aiomqtt's timeout for one connect or publish, for (a) and (b) alike."""
SETTLE_TIMEOUT: Final = 30.0
MAX_CLICKS_PER_DEVICE: Final = 1000
"""The enterprise button's cell lasts about 2,000 clicks: stay well inside it."""
PAGE: Final = os.sysconf("SC_PAGE_SIZE")
TICK: Final = os.sysconf("SC_CLK_TCK")

Kind = Literal["a", "b"]
KINDS: Final[tuple[Kind, ...]] = ("a", "b")
LABELS: Final[dict[Kind, str]] = {"a": "(a) bare aiomqtt", "b": "(b) VirtualButton"}


# --- measuring processes -------------------------------------------------------------


def rss_bytes(pid: int | str = "self") -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def cpu_seconds(pid: int) -> float:
    """user + system time of a process we started (mosquitto), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: fields 14 and 15


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def established(port: int) -> int:
    """Broker-side sockets in ESTABLISHED state on ``port`` (IPv4, this namespace)."""
    count = 0
    with Path("/proc/net/tcp").open() as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rpartition(":")[2], 16) == port:
                count += 1
    return count


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


# --- the broker ----------------------------------------------------------------------


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(found).exists():
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
    return found


class Mosquitto:
    """clicksim's generated mosquitto configuration, plus $SYS for the backend identity."""

    def __init__(self, *, ca_dir: Path, work_dir: Path) -> None:
        self.port = free_port()
        files = write_mosquitto_config(
            ca_dir=ca_dir,
            out_dir=work_dir,
            host=HOST,
            port=self.port,
            user="root" if os.geteuid() == 0 else None,  # our keys are 0600
        )
        # To confirm the connection count: $SYS every second, readable by the backend.
        with files.config.open("a") as config:
            config.write("sys_interval 1\n")
        with files.acl.open("a") as acl:
            acl.write("topic read $SYS/broker/clients/#\n")
        self._config = files.config
        self._log = work_dir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self) -> None:
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self._config)],
                stdout=log,
                stderr=log,
                preexec_fn=raise_open_files,  # its own limit: one fd per connection
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self._log.read_text()}")
            with socket.socket() as probe:
                if probe.connect_ex((HOST, self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self._log.read_text()}")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None


async def sys_connected(address: BrokerAddress, ca: CaFolder, wait: float = 1.5) -> int | None:
    """Clients connected as mosquitto's $SYS tree says, this query's own left out.

    The first message is the retained value of the last tick; $SYS is refreshed every
    second, so a tick within ``wait`` counts this query too: one less is reported.
    """
    certificate, key = ca.identity_files("backend")
    context = client_tls_context(ca_file=ca.certificate, certificate=certificate, key=key)
    values: list[int] = []
    try:
        async with aiomqtt.Client(
            address.host,
            address.port,
            identifier=BACKEND_CLIENT_CN,
            tls_context=context,
            timeout=NET_TIMEOUT,
        ) as client:
            await client.subscribe("$SYS/broker/clients/connected")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    async for message in client.messages:
                        if isinstance(message.payload, bytes | bytearray):
                            values.append(int(message.payload))
    except (aiomqtt.MqttError, ValueError):
        return None
    if not values:
        return None
    return values[-1] - 1 if len(values) > 1 else values[-1]


# --- workers: one process, one event loop, a share of the devices -------------------


@dataclass(frozen=True, kw_only=True)
class Job:
    kind: Kind
    fleet: Path
    indices: tuple[int, ...]
    broker: BrokerAddress
    clicks: int = 0
    press_ms: int = 1
    profile: Profile | None = None
    """The profile the firmware runs (per-click: the fast-timings copy)."""
    batch: int = 100
    profile_out: Path | None = None


@dataclass(frozen=True, kw_only=True)
class ClickResult:
    started: float
    ended: float
    delivered: int
    failed: int
    cpu_s: float


@dataclass(frozen=True, kw_only=True)
class StepResult:
    connected: int
    failed: int
    rss_before: int
    """RSS when the ramp began (fleet loaded, nothing else)."""
    rss_contexts: int
    """RSS growth from building this step's TLS contexts."""
    rss: int
    seconds: float


async def receive(conn: Connection, timeout: float) -> object:
    """The parent's next command, without blocking the event loop meanwhile."""
    loop = asyncio.get_running_loop()
    readable = loop.create_future()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(conn.fileno(), wake)
    try:
        await asyncio.wait_for(readable, timeout)
    finally:
        loop.remove_reader(conn.fileno())
    return conn.recv()


def bare_client(
    device: FleetDevice, context: ssl.SSLContext, broker: BrokerAddress
) -> aiomqtt.Client:
    """The same MQTT options as VirtualButton gives the device's profile."""
    profile = device.profile
    persistent = profile.connection.value == "persistent"
    v5 = profile.mqtt.version.value == "5"
    device_id = device.record.device_id
    return aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=device_id,
        tls_context=context,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        keepalive=profile.mqtt.keepalive_s,
        clean_session=None if v5 else True,
        will=aiomqtt.Will(status_topic(device_id), OFFLINE_STATUS, qos=1) if persistent else None,
        timeout=NET_TIMEOUT,
    )


def sample_payload(device: FleetDevice) -> tuple[str, bytes]:
    """A realistic click, encoded once: the baseline sends it and models nothing."""
    click = Click(
        device_id=device.record.device_id,
        seq=1,
        click_type=ClickType.SINGLE,
        reported_at=time.time(),
        remaining_life=99.95,
        battery_mv=1750,
        certificate_id=device.record.certificate_id,
    )
    return encode_click(device.profile.payload, click)


async def click_worker(conn: Connection, job: Job) -> None:
    fleet = Fleet.open(job.fleet)
    devices = [fleet.devices[i] for i in job.indices]
    contexts = [device.tls_context() for device in devices]

    async def bare(n: int) -> tuple[int, int]:
        device, context = devices[n], contexts[n]
        topic, payload = sample_payload(device)
        delivered = 0
        for _ in range(job.clicks):
            with contextlib.suppress(aiomqtt.MqttError):
                async with bare_client(device, context, job.broker) as client:
                    await client.publish(topic, payload, qos=1, timeout=NET_TIMEOUT)
                delivered += 1
        return delivered, job.clicks - delivered

    async def button(n: int) -> tuple[int, int]:
        assert job.profile is not None
        firmware = dataclasses.replace(devices[n], profile=job.profile).firmware(
            rng=random.Random(job.indices[n])
        )
        async with VirtualButton(
            firmware, broker=job.broker, tls_context=contexts[n], connect_timeout=NET_TIMEOUT
        ) as vb:
            for _ in range(job.clicks):
                await vb.perform((job.press_ms,))
                try:
                    await vb.settle(SETTLE_TIMEOUT)
                except TimeoutError:
                    break
        delivered = firmware.counters.published
        return delivered, job.clicks - delivered

    runner: Callable[[int], Coroutine[Any, Any, tuple[int, int]]] = (
        bare if job.kind == "a" else button
    )
    conn.send(("ready", len(devices)))
    if await receive(conn, 600) != "go":
        return
    profiler = cProfile.Profile() if job.profile_out is not None else None
    cpu0, started = own_cpu_seconds(), time.monotonic()
    if profiler is not None:
        profiler.enable()
    results = await asyncio.gather(*(runner(n) for n in range(len(devices))))
    if profiler is not None:
        profiler.disable()
    ended = time.monotonic()
    if profiler is not None and job.profile_out is not None:
        profiler.dump_stats(job.profile_out)
    conn.send(
        (
            "done",
            ClickResult(
                started=started,
                ended=ended,
                delivered=sum(r[0] for r in results),
                failed=sum(r[1] for r in results),
                cpu_s=own_cpu_seconds() - cpu0,
            ),
        )
    )


class BareHolder:
    """(a): aiomqtt clients, connected and left idle."""

    def __init__(self, broker: BrokerAddress) -> None:
        self._broker = broker
        self.clients: list[aiomqtt.Client] = []

    async def add(self, batch: list[tuple[FleetDevice, ssl.SSLContext]]) -> int:
        clients = [bare_client(device, context, self._broker) for device, context in batch]
        outcomes = await asyncio.gather(
            *(client.__aenter__() for client in clients), return_exceptions=True
        )
        ok = [c for c, outcome in zip(clients, outcomes, strict=True) if outcome is c]
        self.clients += ok
        return len(ok)

    async def close(self) -> None:
        for start in range(0, len(self.clients), 500):
            await asyncio.gather(
                *(c.__aexit__(None, None, None) for c in self.clients[start : start + 500]),
                return_exceptions=True,
            )


class ButtonHolder:
    """(b): VirtualButtons of a persistent profile, powered on (they connect at once)."""

    def __init__(self, broker: BrokerAddress) -> None:
        self._broker = broker
        self.buttons: list[VirtualButton] = []

    async def add(self, batch: list[tuple[FleetDevice, ssl.SSLContext]]) -> int:
        buttons = [
            VirtualButton(
                device.firmware(rng=random.Random(device.record.device_id)),
                broker=self._broker,
                tls_context=context,
                connect_timeout=NET_TIMEOUT,
            )
            for device, context in batch
        ]
        for vb in buttons:
            await vb.__aenter__()
        self.buttons += buttons
        # settle() never returns for a persistent device (its watcher task is always
        # running), so watch the link state instead.
        deadline = time.monotonic() + 3 * NET_TIMEOUT
        while time.monotonic() < deadline:
            online = sum(vb.firmware.link_state is LinkState.ONLINE for vb in buttons)
            if online == len(buttons):
                break
            await asyncio.sleep(0.02)
        return sum(vb.firmware.link_state is LinkState.ONLINE for vb in buttons)

    async def close(self) -> None:
        for start in range(0, len(self.buttons), 500):
            await asyncio.gather(
                *(vb.__aexit__(None, None, None) for vb in self.buttons[start : start + 500]),
                return_exceptions=True,
            )


async def persistent_worker(conn: Connection, job: Job) -> None:
    fleet = Fleet.open(job.fleet)
    devices = [fleet.devices[i] for i in job.indices]
    holder = BareHolder(job.broker) if job.kind == "a" else ButtonHolder(job.broker)
    rss_before = rss_bytes()
    conn.send(("ready", len(devices)))
    done = connected = contexts_growth = 0
    for _ in range(1000):  # one command per step, then "stop": bounded by the parent
        command = await receive(conn, 600)
        if not (isinstance(command, tuple) and command[0] == "step"):
            break
        target = min(int(command[1]), len(devices))
        started = time.monotonic()
        rss0 = rss_bytes()
        step = [(device, device.tls_context()) for device in devices[done:target]]
        contexts_growth += rss_bytes() - rss0
        for start in range(0, len(step), job.batch):
            connected += await holder.add(step[start : start + job.batch])
        done = target
        seconds = time.monotonic() - started
        await asyncio.sleep(0.5)  # idle a moment: keepalive timers armed, buffers settled
        conn.send(
            (
                "stepped",
                StepResult(
                    connected=connected,
                    failed=done - connected,
                    rss_before=rss_before,
                    rss_contexts=contexts_growth,
                    rss=rss_bytes(),
                    seconds=seconds,
                ),
            )
        )
    await asyncio.wait_for(holder.close(), 120)
    conn.send(("closed", None))


def worker_main(conn: Connection, job: Job, section: Literal["clicks", "persistent"]) -> None:
    main = click_worker if section == "clicks" else persistent_worker
    try:
        asyncio.run(main(conn, job))
    finally:
        conn.close()


# --- the parent: starts workers, keeps time, reads the broker ------------------------


class Workers:
    def __init__(self, jobs: list[Job], section: Literal["clicks", "persistent"]) -> None:
        context = multiprocessing.get_context("fork")
        self.conns: list[Connection] = []
        self.processes: list[BaseProcess] = []
        for job in jobs:
            parent, child = context.Pipe()
            process = context.Process(target=worker_main, args=(child, job, section))
            process.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(process)

    def send(self, message: object) -> None:
        for conn in self.conns:
            conn.send(message)

    def gather(self, expect: str, timeout: float) -> list[object]:
        deadline = time.monotonic() + timeout
        answers: list[object] = []
        for conn in self.conns:
            if not conn.poll(max(deadline - time.monotonic(), 0.0)):
                raise TimeoutError(f"a worker did not answer {expect!r} in {timeout:g} s")
            tag, payload = conn.recv()
            if tag != expect:
                raise RuntimeError(f"a worker answered {tag!r}, not {expect!r}")
            answers.append(payload)
        return answers

    def stop(self) -> None:
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
        for conn in self.conns:
            conn.close()


def split(count: int, workers: int) -> list[tuple[int, ...]]:
    return [tuple(range(w, count, workers)) for w in range(workers)]


@dataclass(frozen=True, kw_only=True)
class ClickRun:
    kind: Kind
    clicks: int
    failed: int
    seconds: float
    workers_cpu_s: float
    broker_cpu_s: float

    @property
    def rate(self) -> float:
        return self.clicks / self.seconds


def run_clicks(
    kind: Kind, args: argparse.Namespace, fleet: Path, broker: Mosquitto, fast: Profile
) -> ClickRun:
    address = BrokerAddress(host=HOST, port=broker.port, tls=True)
    jobs = [
        Job(
            kind=kind,
            fleet=fleet,
            indices=indices,
            broker=address,
            clicks=args.clicks,
            press_ms=args.press_ms,
            profile=fast,
            profile_out=args.profile_out if kind == "b" and n == 0 else None,
        )
        for n, indices in enumerate(split(args.concurrency, args.workers))
    ]
    workers = Workers(jobs, "clicks")
    try:
        workers.gather("ready", 120)
        broker_cpu0 = cpu_seconds(broker.pid)
        workers.send("go")
        results = [r for r in workers.gather("done", args.timeout) if isinstance(r, ClickResult)]
        broker_cpu = cpu_seconds(broker.pid) - broker_cpu0
    finally:
        workers.stop()
    return ClickRun(
        kind=kind,
        clicks=sum(r.delivered for r in results),
        failed=sum(r.failed for r in results),
        seconds=max(r.ended for r in results) - min(r.started for r in results),
        workers_cpu_s=sum(r.cpu_s for r in results),
        broker_cpu_s=broker_cpu,
    )


@dataclass(frozen=True, kw_only=True)
class Step:
    devices: int
    added: int
    connected: int
    failed: int
    sockets: int
    sys_connected: int | None
    seconds: float
    client_growth: int
    contexts_growth: int
    broker_growth: int

    @property
    def per_device(self) -> float:
        return self.client_growth / max(self.connected, 1)


def run_persistent(
    kind: Kind, args: argparse.Namespace, fleet: Path, broker: Mosquitto, ca: CaFolder
) -> list[Step]:
    address = BrokerAddress(host=HOST, port=broker.port, tls=True)
    jobs = [
        Job(kind=kind, fleet=fleet, indices=indices, broker=address, batch=args.batch)
        for indices in split(args.persistent, args.workers)
    ]
    targets = [round(args.persistent * (s + 1) / args.steps) for s in range(args.steps)]
    steps: list[Step] = []
    broker_rss0 = rss_bytes(broker.pid)
    workers = Workers(jobs, "persistent")
    try:
        workers.gather("ready", 120)
        for target in targets:
            per_worker = -(-target // args.workers)
            workers.send(("step", per_worker))
            results = [
                r for r in workers.gather("stepped", args.timeout) if isinstance(r, StepResult)
            ]
            connected = sum(r.connected for r in results)
            steps.append(
                Step(
                    devices=target,
                    added=target - (steps[-1].devices if steps else 0),
                    connected=connected,
                    failed=sum(r.failed for r in results),
                    sockets=established(broker.port),
                    sys_connected=asyncio.run(sys_connected(address, ca)),
                    seconds=max(r.seconds for r in results),
                    client_growth=sum(r.rss - r.rss_before for r in results),
                    contexts_growth=sum(r.rss_contexts for r in results),
                    broker_growth=rss_bytes(broker.pid) - broker_rss0,
                )
            )
            print(f"  {LABELS[kind]}: {connected:>6} connected", flush=True)
        workers.send(("stop",))
        workers.gather("closed", 180)
    finally:
        workers.stop()
    deadline = time.monotonic() + 30  # let the broker drop them before the next run
    while established(broker.port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return steps


# --- setup and report ----------------------------------------------------------------


def fast_profile() -> Profile:
    """The enterprise button with the human timings taken out (no finger, no LED wait)."""
    profile = load_profile(CLICK_PROFILE)
    timings = dataclasses.replace(
        profile.timings, debounce_ms=0, double_click_window_ms=50, led_success_ms=0
    )
    return dataclasses.replace(profile, timings=timings)


def make_fleet(ca: CaFolder, profile_name: str, count: int, out: Path) -> Path:
    started = time.monotonic()
    create_fleet(
        load_profile(profile_name),
        ca_folder=ca,
        count=count,
        seed=f"benchmark-{profile_name}",
        claim_code=None,
        out=out,
    )
    print(f"  fleet of {count} {profile_name}: {time.monotonic() - started:.1f} s", flush=True)
    return out


def kb(value: float) -> str:
    return f"{value / 1024:7.1f}"


def report_clicks(args: argparse.Namespace, runs: dict[Kind, ClickRun]) -> None:
    print()
    print(
        f"1. per-click: connect + mTLS + PUBLISH QoS 1 + PUBACK + DISCONNECT, "
        f"{args.concurrency} concurrent devices x {args.clicks} clicks, "
        f"{args.workers} worker process(es), best of {args.repeat}"
    )
    print(
        f"   {'':20} {'clicks':>7} {'failed':>6} {'seconds':>8} {'clicks/s':>9} "
        f"{'workers CPU':>12} {'mosquitto CPU':>14}"
    )
    for kind, run in runs.items():
        print(
            f"   {LABELS[kind]:20} {run.clicks:>7} {run.failed:>6} {run.seconds:>8.2f} "
            f"{run.rate:>9.0f} {run.workers_cpu_s / run.seconds:>8.2f} core "
            f"{run.broker_cpu_s / run.seconds:>9.2f} core"
        )
    ratio = runs["b"].rate / runs["a"].rate
    verdict = "yes" if ratio >= TARGET_RATIO else "NO"
    print(f"   ratio (b)/(a) clicks/s: {ratio:.2f}  (target >= {TARGET_RATIO}: {verdict})")
    cpu_a = runs["a"].workers_cpu_s / max(runs["a"].clicks, 1) * 1e3
    cpu_b = runs["b"].workers_cpu_s / max(runs["b"].clicks, 1) * 1e3
    print(f"   client CPU per click: (a) {cpu_a:.2f} ms, (b) {cpu_b:.2f} ms")
    if args.profile_out is not None:
        print(f"   (b) ran with worker 0 under cProfile ({args.profile_out}): slower than usual")


def report_persistent(args: argparse.Namespace, ramps: dict[Kind, list[Step]]) -> None:
    print()
    print(
        f"2. persistent connections ({PERSISTENT_PROFILE}, mutual TLS), "
        f"{args.workers} worker process(es), {args.batch} connects at a time per worker"
    )
    print(
        f"   {'':20} {'devices':>7} {'online':>6} {'failed':>6} {'sockets':>7} {'$SYS':>6} "
        f"{'conn/s':>7} {'KB/dev':>7} {'of which TLS ctx':>16} {'broker KB/conn':>14}"
    )
    for number, (kind, steps) in enumerate(ramps.items()):
        for step in steps:
            broker_kb = kb(step.broker_growth / max(step.connected, 1)) if number == 0 else "-"
            sys_count = "?" if step.sys_connected is None else str(step.sys_connected)
            print(
                f"   {LABELS[kind]:20} {step.devices:>7} {step.connected:>6} {step.failed:>6} "
                f"{step.sockets:>7} {sys_count:>6} "
                f"{step.added / step.seconds:>7.0f} "
                f"{kb(step.per_device)} {kb(step.contexts_growth / max(step.connected, 1)):>16} "
                f"{broker_kb:>14}"
            )
    last_a, last_b = ramps["a"][-1], ramps["b"][-1]
    print(
        f"   (b) - (a) per device: {kb(last_b.per_device - last_a.per_device).strip()} KB; "
        f"(b)/(a) memory: {last_b.per_device / max(last_a.per_device, 1):.2f}"
    )
    held = "yes" if last_b.connected >= TARGET_DEVICES else f"not tried ({last_b.devices})"
    if last_b.devices >= TARGET_DEVICES and last_b.connected < TARGET_DEVICES:
        held = f"NO ({last_b.connected})"
    light = "yes" if last_b.per_device < TARGET_BYTES else "NO"
    print(
        f"   goal {TARGET_DEVICES:,} connected: {held}; "
        f"< {TARGET_BYTES // 1024} KB/device (VirtualButton, TLS context included): {light}"
    )
    print(
        "   KB/dev: RSS growth of the workers / devices online, TLS contexts included; "
        "conn/s: this step's\n   connects over its time; broker KB/conn: mosquitto's RSS "
        "growth, first run only (later runs reuse what it freed)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=2, help="processes, one loop each")
    parser.add_argument("--concurrency", type=int, default=200, help="per-click devices at once")
    parser.add_argument("--clicks", type=int, default=10, help="clicks per per-click device")
    parser.add_argument("--press-ms", type=int, default=1, help="(b) press duration")
    parser.add_argument("--repeat", type=int, default=2, help="per-click runs of each, best kept")
    parser.add_argument("--persistent", type=int, default=2000, help="persistent devices")
    parser.add_argument("--steps", type=int, default=2, help="ramp steps up to --persistent")
    parser.add_argument("--batch", type=int, default=100, help="connects at once per worker")
    parser.add_argument("--skip-clicks", action="store_true", help="persistent section only")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per phase, at most")
    parser.add_argument("--profile-out", type=Path, help="cProfile of (b) worker 0 to FILE")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.concurrency < args.workers or args.repeat < 1:
        parser.error("need --workers >= 1, --concurrency >= --workers, --repeat >= 1")
    if not 1 <= args.clicks <= MAX_CLICKS_PER_DEVICE:
        parser.error(f"--clicks must be within 1..{MAX_CLICKS_PER_DEVICE}")
    if not 0 <= args.persistent <= 50_000 or not 1 <= args.steps <= 50 or args.batch < 1:
        parser.error("need --persistent within 0..50000, --steps within 1..50, --batch >= 1")
    if not 0 <= args.press_ms <= 1000:
        parser.error("--press-ms must be within 0..1000")

    limit = raise_open_files()
    needed = -(-args.persistent // args.workers) + 200
    if needed > limit:
        parser.error(
            f"--persistent {args.persistent} needs {needed} open files per worker; "
            f"the limit is {limit}: add --workers"
        )
    print(f"open-file limit {limit}; {os.cpu_count()} CPUs; setting up", flush=True)
    with tempfile.TemporaryDirectory(prefix="clicksim-bench-") as tmp:
        work = Path(tmp)
        ca = init_ca(work / "certs", seed="benchmark", key_type=KeyType.EC)
        click_fleet = persistent_fleet = None
        if not args.skip_clicks:
            click_fleet = make_fleet(ca, CLICK_PROFILE, args.concurrency, work / "clicks.json")
        if args.persistent:
            persistent_fleet = make_fleet(
                ca, PERSISTENT_PROFILE, args.persistent, work / "persistent.json"
            )
        broker = Mosquitto(ca_dir=ca.path, work_dir=work / "mosquitto")
        broker.start()
        try:
            runs: dict[Kind, ClickRun] = {}
            if click_fleet is not None:
                fast = fast_profile()
                for _ in range(args.repeat):
                    for kind in KINDS:
                        run = run_clicks(kind, args, click_fleet, broker, fast)
                        print(f"  {LABELS[kind]}: {run.rate:.0f} clicks/s", flush=True)
                        if kind not in runs or run.rate > runs[kind].rate:
                            runs[kind] = run
            ramps: dict[Kind, list[Step]] = {}
            if persistent_fleet is not None:
                for kind in KINDS:
                    ramps[kind] = run_persistent(kind, args, persistent_fleet, broker, ca)
        finally:
            broker.stop()
    if runs:
        report_clicks(args, runs)
    if ramps:
        report_persistent(args, ramps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
