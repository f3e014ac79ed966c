"""The embedded broker over real TLS on 127.0.0.1: who may connect, publish and subscribe.

Each test runs one broker on a free port inside ``asyncio.run``; clients are aiomqtt,
or plain paho in a worker thread where aiomqtt cannot tell a refused handshake from a
slow broker (with TLS 1.3 the client's handshake completes before the server checks
its certificate, and aiomqtt then waits for a CONNACK until its timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import aiomqtt
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from simulator.broker.embedded import (
    MAX_PACKET_BYTES,
    EmbeddedBroker,
    EmbeddedBrokerError,
    publish_allowed,
    subscribe_allowed,
)
from simulator.broker.hook import Publish, PublishHook
from simulator.device.identity import (
    BACKEND_CLIENT_CN,
    CertificateAuthority,
    Identity,
    KeyType,
    Validity,
)
from simulator.protocol import (
    BACKEND_SUBSCRIPTIONS,
    Click,
    ClickType,
    PayloadFormat,
    click_topic,
    device_topic_patterns,
    encode_click,
    status_topic,
)
from simulator.workspace import init_ca

DEVICE: Final = "G030PM0123456789"
OTHER: Final = "G030PM9876543210"
TEST_TIMEOUT: Final = 8.0
"""Upper bound for one scenario; the whole module takes a second or two."""
QUIET_PERIOD: Final = 0.2
"""How long "never arrives" waits, after a later message already arrived."""
_REFUSAL_LOGGER: Final = "clicksim.broker"


class ClientContext(ssl.SSLContext):
    """A client TLS context that remembers the sockets it wrapped.

    paho (2.2, ``Client._ssl_wrap_socket``) drops the socket whose handshake failed
    without closing it; ``close_sockets`` does, so that no ResourceWarning escapes.
    """

    def __init__(self, _protocol: int = ssl.PROTOCOL_TLS_CLIENT) -> None:
        super().__init__()
        self.wrapped: list[ssl.SSLSocket] = []

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        wrapped = super().wrap_socket(
            sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            session=session,
        )
        self.wrapped.append(wrapped)
        return wrapped

    def close_sockets(self) -> None:
        for wrapped in self.wrapped:
            wrapped.close()


@dataclass(frozen=True)
class Bench:
    ca_dir: Path
    ca: CertificateAuthority
    pem_dir: Path

    def context(self, identity: Identity | None, name: str) -> ClientContext:
        """A client TLS context trusting the broker's CA, presenting ``identity``."""
        context = ClientContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cafile=self.ca_dir / "ca.crt")
        if identity is not None:
            certificate, key = self.pem_dir / f"{name}.crt", self.pem_dir / f"{name}.key"
            certificate.write_bytes(identity.certificate_pem())
            key.write_bytes(identity.key_pem())
            context.load_cert_chain(certificate, key)
        return context

    def device_context(self, device_id: str) -> ClientContext:
        identity = self.ca.issue_device(device_id, seed=device_id.encode())
        return self.context(identity, device_id)

    def backend_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_dir / "ca.crt")
        context.load_cert_chain(self.ca_dir / "backend.crt", self.ca_dir / "backend.key")
        return context


@pytest.fixture(scope="session")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    root = tmp_path_factory.mktemp("broker")
    folder = init_ca(root / "certs", seed="broker tests", key_type=KeyType.EC)
    pem_dir = root / "clients"
    pem_dir.mkdir()
    return Bench(ca_dir=folder.path, ca=folder.load(), pem_dir=pem_dir)


def run_with_broker(
    bench: Bench,
    scenario: Callable[[EmbeddedBroker], Awaitable[None]],
    *,
    on_publish: PublishHook | None = None,
) -> EmbeddedBroker:
    """Run ``scenario`` against a fresh broker; return the (stopped) broker for its counts."""

    async def main() -> EmbeddedBroker:
        async with EmbeddedBroker(
            host="127.0.0.1", port=0, ca_dir=bench.ca_dir, on_publish=on_publish
        ) as broker:
            await asyncio.wait_for(scenario(broker), TEST_TIMEOUT)
        return broker

    return asyncio.run(main())


def client(
    broker: EmbeddedBroker,
    identifier: str,
    context: ssl.SSLContext,
    will: aiomqtt.Will | None = None,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", broker.port, identifier=identifier, tls_context=context, timeout=5, will=will
    )


def is_not_authorized(refusal: aiomqtt.MqttCodeError) -> bool:
    """CONNACK 5, which paho 2 reports as the MQTT 5 reason "Not authorized"."""
    return isinstance(refusal.rc, ReasonCode) and refusal.rc.getName() == "Not authorized"


async def subscribe_backend(backend: aiomqtt.Client) -> None:
    for topic_filter in BACKEND_SUBSCRIPTIONS:
        await backend.subscribe(topic_filter, qos=1)


async def next_message(receiver: aiomqtt.Client, timeout: float = 5.0) -> aiomqtt.Message:
    return await asyncio.wait_for(anext(aiter(receiver.messages)), timeout)


async def assert_nothing_more(receiver: aiomqtt.Client) -> None:
    try:
        message = await next_message(receiver, timeout=QUIET_PERIOD)
    except TimeoutError:
        return
    pytest.fail(f"unexpected message on {message.topic}: {message.payload!r}")


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.01)


def click_payload(device_id: str) -> tuple[str, bytes]:
    click = Click(
        device_id=device_id,
        seq=7,
        click_type=ClickType.DOUBLE,
        reported_at=1_750_000_000.25,
        remaining_life=87.5,
        battery_mv=1580,
        certificate_id="ab" * 32,
    )
    return encode_click(PayloadFormat.ONECLICK, click)


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The refusal lines logged, after checking nothing else (amqtt, tracebacks) was."""
    noisy = [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name != _REFUSAL_LOGGER
    ]
    assert noisy == []
    lines = [record for record in caplog.records if record.name == _REFUSAL_LOGGER]
    assert all(record.exc_info is None and "\n" not in record.getMessage() for record in lines)
    return [record.getMessage() for record in lines if record.levelno >= logging.WARNING]


# ------------------------------------------------------------------------ delivery


def test_device_click_reaches_backend_byte_for_byte(bench: Bench) -> None:
    topic, payload = click_payload(DEVICE)
    received: list[aiomqtt.Message] = []

    async def scenario(broker: EmbeddedBroker) -> None:
        assert broker.port > 0
        async with client(broker, BACKEND_CLIENT_CN, bench.backend_context()) as backend:
            await subscribe_backend(backend)
            async with client(broker, DEVICE, bench.device_context(DEVICE)) as device:
                await device.publish(topic, payload, qos=1)
            received.append(await next_message(backend))

    broker = run_with_broker(bench, scenario)
    (message,) = received
    assert message.topic.value == topic == f"oneclick/devices/{DEVICE}/events"
    assert message.payload == payload
    assert message.qos == 1
    assert (broker.refused_connections, broker.refused_publishes) == (0, 0)


def test_iotbutton_topic_is_delivered_too(bench: Bench) -> None:
    topic = click_topic(PayloadFormat.IOTBUTTON, DEVICE)
    payload = b'{"serialNumber":"%s","batteryVoltage":"1580mV","clickType":"SINGLE"}' % (
        DEVICE.encode()
    )

    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, BACKEND_CLIENT_CN, bench.backend_context()) as backend:
            await subscribe_backend(backend)
            async with client(broker, DEVICE, bench.device_context(DEVICE)) as device:
                await device.publish(topic, payload, qos=1)
            message = await next_message(backend)
            assert (message.topic.value, message.payload) == (topic, payload)

    run_with_broker(bench, scenario)


# ------------------------------------------------------------------ authorization


def test_publish_to_another_devices_topic_is_dropped(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    forged_topic, forged = click_payload(OTHER)
    own_topic, genuine = click_payload(DEVICE)

    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, BACKEND_CLIENT_CN, bench.backend_context()) as backend:
            await subscribe_backend(backend)
            async with client(broker, DEVICE, bench.device_context(DEVICE)) as device:
                # amqtt acknowledges a QoS 1 publish before the ACL sees it: no error here.
                await device.publish(forged_topic, forged, qos=1)
                await device.publish(own_topic, genuine, qos=1)
            # Messages from one client are handled in order: had the forged one gone
            # through, it would arrive first.
            message = await next_message(backend)
            assert (message.topic.value, message.payload) == (own_topic, genuine)
            await assert_nothing_more(backend)

    broker = run_with_broker(bench, scenario)
    assert broker.refused_publishes == 1
    assert broker.refused_connections == 0
    assert refusal_lines(caplog) == [
        f"refused publish from {DEVICE!r} to {forged_topic!r}: topic not allowed"
    ]


def test_backend_may_not_publish_and_device_may_not_subscribe_elsewhere(bench: Bench) -> None:
    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, BACKEND_CLIENT_CN, bench.backend_context()) as backend:
            await subscribe_backend(backend)
            async with client(broker, DEVICE, bench.device_context(DEVICE)) as device:
                granted = await device.subscribe(f"oneclick/devices/{OTHER}/events", qos=1)
                assert [_is_failure(code) for code in granted] == [True]
                granted = await device.subscribe(f"oneclick/devices/{DEVICE}/#", qos=1)
                assert [_is_failure(code) for code in granted] == [False]
            await backend.publish(click_topic(PayloadFormat.ONECLICK, DEVICE), b"{}", qos=1)
            await assert_nothing_more(backend)

    broker = run_with_broker(bench, scenario)
    assert (broker.refused_subscriptions, broker.refused_publishes) == (1, 1)


def _is_failure(code: int | ReasonCode) -> bool:
    return code.is_failure if isinstance(code, ReasonCode) else code >= 0x80


@pytest.mark.parametrize(
    ("common_name", "topic", "allowed"),
    [
        (DEVICE, f"oneclick/devices/{DEVICE}/events", True),
        (DEVICE, f"iotbutton/{DEVICE}", True),
        (DEVICE, f"oneclick/devices/{OTHER}/events", False),
        (DEVICE, f"oneclick/devices/{DEVICE}/events/more", False),
        (DEVICE, f"oneclick/devices/{DEVICE}", False),
        (DEVICE, "clicksim/anything", False),
        (BACKEND_CLIENT_CN, f"oneclick/devices/{DEVICE}/events", False),
        ("evil/+", "oneclick/devices/evil/+/events", False),
    ],
)
def test_publish_acl(common_name: str, topic: str, allowed: bool) -> None:
    assert publish_allowed(common_name, topic) is allowed


@pytest.mark.parametrize(
    ("common_name", "topic_filter", "allowed"),
    [
        (BACKEND_CLIENT_CN, "oneclick/devices/+/events", True),
        (BACKEND_CLIENT_CN, "iotbutton/+", True),
        (BACKEND_CLIENT_CN, f"oneclick/devices/{DEVICE}/events", True),
        (BACKEND_CLIENT_CN, "#", False),
        (BACKEND_CLIENT_CN, "oneclick/#", False),
        (BACKEND_CLIENT_CN, "oneclick/devices/+/+", False),
        (BACKEND_CLIENT_CN, "iotbutton/#", False),
        (DEVICE, f"oneclick/devices/{DEVICE}/events", True),
        (DEVICE, f"oneclick/devices/{DEVICE}/#", True),
        (DEVICE, f"iotbutton/{DEVICE}", True),
        (DEVICE, "oneclick/devices/+/events", False),
        (DEVICE, f"oneclick/devices/{OTHER}/events", False),
        (DEVICE, "#", False),
        ("evil/#", "oneclick/devices/evil/#", False),
    ],
)
def test_subscribe_acl(common_name: str, topic_filter: str, allowed: bool) -> None:
    assert subscribe_allowed(common_name, topic_filter) is allowed


def test_backend_may_read_every_device_topic_and_devices_their_own() -> None:
    for topic in device_topic_patterns(DEVICE):
        assert subscribe_allowed(BACKEND_CLIENT_CN, topic), topic
        assert subscribe_allowed(DEVICE, topic), topic
        assert not subscribe_allowed(OTHER, topic), topic
        assert publish_allowed(DEVICE, topic), topic
        assert not publish_allowed(OTHER, topic), topic


# ------------------------------------------------------------------ authentication


def test_client_id_other_than_certificate_cn_is_refused(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    topic, payload = click_payload(DEVICE)

    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, BACKEND_CLIENT_CN, bench.backend_context()) as backend:
            await subscribe_backend(backend)
            # A device posing as the connected backend: refused, and the backend's
            # session is untouched (amqtt alone would have replaced it first).
            impostor = client(broker, BACKEND_CLIENT_CN, bench.device_context(DEVICE))
            with pytest.raises(aiomqtt.MqttCodeError) as refused:
                async with impostor:
                    pytest.fail("the impostor got connected")
            assert is_not_authorized(refused.value)
            async with client(broker, DEVICE, bench.device_context(DEVICE)) as device:
                await device.publish(topic, payload, qos=1)
            message = await next_message(backend)
            assert message.payload == payload

    broker = run_with_broker(bench, scenario)
    assert (broker.refused_connections, broker.refused_publishes) == (1, 0)
    (line,) = refusal_lines(caplog)
    assert line.startswith("refused connection from 127.0.0.1:")
    assert line.endswith(
        f": client id {BACKEND_CLIENT_CN!r} does not match certificate CN {DEVICE!r}"
    )


def test_will_on_a_topic_the_device_may_not_publish_to_is_refused(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    forged_topic, forged = click_payload(OTHER)
    own_topic, _ = click_payload(DEVICE)

    async def scenario(broker: EmbeddedBroker) -> None:
        forger = client(
            broker, DEVICE, bench.device_context(DEVICE), will=aiomqtt.Will(forged_topic, forged)
        )
        with pytest.raises(aiomqtt.MqttCodeError) as refused:
            async with forger:
                pytest.fail("connected with a will on another device's topic")
        assert is_not_authorized(refused.value)
        own_will = aiomqtt.Will(own_topic, b"{}")
        async with client(broker, DEVICE, bench.device_context(DEVICE), will=own_will):
            pass

    broker = run_with_broker(bench, scenario)
    assert broker.refused_connections == 1
    (line,) = refusal_lines(caplog)
    assert line.endswith(f": will topic {forged_topic!r} is not one {DEVICE!r} may publish to")


def paho_attempt(port: int, client_id: str, context: ClientContext) -> str:
    """Connect with paho and report what the client saw, without waiting for timeouts."""
    outcome: list[str] = []
    mqtt = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    mqtt.tls_set_context(context)

    def on_connect(
        _client: paho.Client,
        _userdata: object,
        _flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: object,
    ) -> None:
        outcome.append(f"CONNACK {reason_code}")

    mqtt.on_connect = on_connect
    try:
        try:
            mqtt.connect("127.0.0.1", port, keepalive=10)
        except OSError as exc:  # ssl.SSLError included: refused in the handshake (TLS 1.2)
            return f"handshake failed: {exc}"
        deadline = time.monotonic() + 5
        while not outcome and time.monotonic() < deadline:
            rc = mqtt.loop(timeout=0.05)
            if rc != paho.MQTT_ERR_SUCCESS:  # with TLS 1.3 the refusal comes after it
                outcome.append(f"connection lost before CONNACK: {paho.error_string(rc)}")
    finally:
        with contextlib.suppress(OSError):
            mqtt.disconnect()
        context.close_sockets()
    return outcome[0] if outcome else "no answer"


def _capped(context: ClientContext, version: ssl.TLSVersion | None) -> ClientContext:
    if version is not None:
        context.maximum_version = version
    return context


def _expired(bench: Bench) -> ClientContext:
    validity = Validity(
        not_before=datetime(2020, 1, 1, tzinfo=UTC), not_after=datetime(2021, 1, 1, tzinfo=UTC)
    )
    identity = bench.ca.issue_device("G030PM0000EXPIRED", seed=b"expired", validity=validity)
    return bench.context(identity, "expired")


def _foreign(bench: Bench) -> ClientContext:
    foreign_ca = CertificateAuthority.create(seed=b"another CA", common_name="another CA")
    identity = foreign_ca.issue_device("G030PM00000FOREIGN", seed=b"foreign")
    return bench.context(identity, "foreign")


def _anonymous(bench: Bench) -> ClientContext:
    return bench.context(None, "anonymous")


@pytest.mark.parametrize("tls_max", [None, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"])
@pytest.mark.parametrize(
    ("make_context", "client_id", "reason"),
    [
        (_anonymous, DEVICE, "peer did not return a certificate"),
        (_foreign, "G030PM00000FOREIGN", "unable to get local issuer certificate"),
        (_expired, "G030PM0000EXPIRED", "certificate has expired"),
    ],
    ids=["no-certificate", "other-ca", "expired"],
)
def test_handshake_is_refused(
    bench: Bench,
    caplog: pytest.LogCaptureFixture,
    make_context: Callable[[Bench], ClientContext],
    client_id: str,
    reason: str,
    tls_max: ssl.TLSVersion | None,
) -> None:
    outcomes: list[str] = []

    async def scenario(broker: EmbeddedBroker) -> None:
        context = _capped(make_context(bench), tls_max)
        outcomes.append(await asyncio.to_thread(paho_attempt, broker.port, client_id, context))
        await eventually(lambda: broker.refused_connections == 1)

    run_with_broker(bench, scenario)
    (outcome,) = outcomes
    assert outcome.startswith(("handshake failed", "connection lost before CONNACK")), outcome
    (line,) = refusal_lines(caplog)
    assert line.startswith("refused connection from 127.0.0.1:")
    assert line.endswith(f": TLS handshake failed: {reason}")


# ---------------------------------------------------------------------- lifecycle


def test_port_is_known_only_once_started(bench: Bench) -> None:
    broker = EmbeddedBroker(port=0, ca_dir=bench.ca_dir)
    with pytest.raises(RuntimeError, match="start it first"):
        _ = broker.port
    assert EmbeddedBroker(port=18883, ca_dir=bench.ca_dir).port == 18883


def test_missing_ca_folder_is_reported(tmp_path: Path) -> None:
    async def start() -> None:
        async with EmbeddedBroker(port=0, ca_dir=tmp_path / "nowhere"):
            pytest.fail("started without a CA")

    with pytest.raises(EmbeddedBrokerError, match=r"missing ca\.crt, server\.crt, server\.key"):
        asyncio.run(start())


def test_stopping_with_clients_connected_closes_them(bench: Bench) -> None:
    async def scenario(broker: EmbeddedBroker) -> None:
        backend = client(broker, BACKEND_CLIENT_CN, bench.backend_context())
        await backend.__aenter__()
        await subscribe_backend(backend)
        started = time.monotonic()
        await broker.stop()
        assert time.monotonic() - started < 2
        assert not broker.running
        with pytest.raises(aiomqtt.MqttError):
            await next_message(backend, timeout=2)
        await backend.__aexit__(None, None, None)

    run_with_broker(bench, scenario)


# ------------------------------------------------------------------- publish hook


def test_puback_waits_for_the_publish_hook(bench: Bench) -> None:
    topic, payload = click_payload(DEVICE)
    second = payload.replace(b'"seq":7', b'"seq":8')
    taken: list[Publish] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def hook(publish: Publish) -> None:
        taken.append(publish)
        entered.set()
        await release.wait()

    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, BACKEND_CLIENT_CN, bench.backend_context()) as backend:
            await subscribe_backend(backend)
            async with client(broker, DEVICE, bench.device_context(DEVICE)) as device:
                # aiomqtt's publish returns when paho has the PUBACK (QoS 1).
                first_done = asyncio.create_task(device.publish(topic, payload, qos=1))
                await entered.wait()
                second_done = asyncio.create_task(device.publish(topic, second, qos=1))
                await asyncio.sleep(QUIET_PERIOD)
                assert not first_done.done(), "PUBACK before the hook returned"
                assert not second_done.done()
                assert len(taken) == 1, "the next publish overtook the one in the hook"
                await assert_nothing_more(backend)  # nor do subscribers see it yet
                release.set()
                await first_done
                await second_done
            assert [(await next_message(backend)).payload for _ in range(2)] == [payload, second]

    run_with_broker(bench, scenario, on_publish=hook)
    assert taken == [
        Publish(topic=topic, payload=payload, qos=1, client_id=DEVICE),
        Publish(topic=topic, payload=second, qos=1, client_id=DEVICE),
    ]


def paho_publish_until_acked(
    port: int, client_id: str, context: ClientContext, topic: str, payload: bytes
) -> list[str]:
    """Publish once at QoS 1 as a device does: persistent session, reconnect until PUBACK.

    paho sends the unacknowledged PUBLISH again after it reconnects; returns what the
    client saw, in order ("disconnected", "PUBACK").
    """
    events: list[str] = []
    mqtt = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv311,
        clean_session=False,
    )
    mqtt.tls_set_context(context)
    mqtt.on_publish = lambda *_: events.append("PUBACK")
    mqtt.on_disconnect = lambda *_: events.append("disconnected")
    try:
        mqtt.connect("127.0.0.1", port, keepalive=10)
        mqtt.publish(topic, payload, qos=1)
        deadline = time.monotonic() + 5
        while "PUBACK" not in events and time.monotonic() < deadline:
            if mqtt.loop(timeout=0.05) != paho.MQTT_ERR_SUCCESS:
                mqtt.reconnect()
    finally:
        mqtt.on_disconnect = None  # our own disconnect is not news
        with contextlib.suppress(OSError):
            mqtt.disconnect()
        context.close_sockets()
    return events


def test_failing_hook_gets_no_puback_and_the_device_retries(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    topic, payload = click_payload(DEVICE)
    attempts: list[Publish] = []

    async def hook(publish: Publish) -> None:
        attempts.append(publish)
        if len(attempts) == 1:
            raise RuntimeError("database is locked")

    seen: list[str] = []

    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, BACKEND_CLIENT_CN, bench.backend_context()) as backend:
            await subscribe_backend(backend)
            context = bench.device_context(DEVICE)
            seen.extend(
                await asyncio.to_thread(
                    paho_publish_until_acked, broker.port, DEVICE, context, topic, payload
                )
            )
            message = await next_message(backend)
            assert message.payload == payload
            await assert_nothing_more(backend)

    run_with_broker(bench, scenario, on_publish=hook)
    assert seen == ["disconnected", "PUBACK"]
    assert [publish.payload for publish in attempts] == [payload, payload]
    assert refusal_lines(caplog) == [  # one line, no traceback, nothing from amqtt
        f"publish from {DEVICE!r} to {topic!r} not acknowledged: the publish hook failed "
        "(RuntimeError('database is locked')); closing the connection"
    ]


def test_refused_publish_never_reaches_the_hook(bench: Bench) -> None:
    forged_topic, forged = click_payload(OTHER)
    own_topic, genuine = click_payload(DEVICE)
    status = status_topic(DEVICE)
    taken: list[Publish] = []

    async def hook(publish: Publish) -> None:
        taken.append(publish)

    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, DEVICE, bench.device_context(DEVICE)) as device:
            await device.publish(forged_topic, forged, qos=1)
            await device.publish(f"iotbutton/{DEVICE}/more", genuine, qos=1)
            await device.publish(own_topic, genuine, qos=1)
            await device.publish(status, b"{}", qos=0)
            await eventually(lambda: len(taken) == 2)

    broker = run_with_broker(bench, scenario, on_publish=hook)
    assert taken == [
        Publish(topic=own_topic, payload=genuine, qos=1, client_id=DEVICE),
        Publish(topic=status, payload=b"{}", qos=0, client_id=DEVICE),
    ]
    assert broker.refused_publishes == 2


def test_an_oversized_publish_closes_the_connection_unseen(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    """A client may not make the broker buffer a packet of any size it announces."""
    own_topic, _ = click_payload(DEVICE)
    taken: list[Publish] = []

    async def hook(publish: Publish) -> None:
        taken.append(publish)

    async def scenario(broker: EmbeddedBroker) -> None:
        with pytest.raises(aiomqtt.MqttError):
            async with client(broker, DEVICE, bench.device_context(DEVICE)) as device:
                await device.publish(own_topic, b"x" * (MAX_PACKET_BYTES + 1), qos=1, timeout=5)

    run_with_broker(bench, scenario, on_publish=hook)
    assert taken == []
    assert any("malformed packet" in record.getMessage() for record in caplog.records)
