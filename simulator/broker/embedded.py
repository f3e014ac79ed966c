"""A zero-setup MQTT broker that clicksim runs in-process: amqtt behind mutual TLS.

AWS IoT authenticates a button by its client certificate and lets it publish to its
own topics only. This broker does the same for a test bench:

* TLS only, with the ``server.crt``/``server.key`` of a clicksim CA folder, and a
  client certificate signed by its ``ca.crt`` required (``ssl.CERT_REQUIRED``): no
  certificate, another CA's or an expired one fails the handshake.
* The certificate's CN must be the MQTT client id, or the CONNECT gets CONNACK 5
  (not authorized); so does a CONNECT whose will topic the client may not publish to.
* A device (any CN but ``clicksim-backend``) may publish to
  ``device_topic_patterns(cn)`` and subscribe to topics under its own id; the backend
  identity may subscribe to ``BACKEND_SUBSCRIPTIONS`` (and any device's topics) and
  publish nowhere. A refused publish is dropped (MQTT 3.1.1 has no negative PUBACK)
  and never reaches subscribers; a refused subscription gets SUBACK 0x80.

How it sits on amqtt 0.12: the broker runs with one ``external`` listener, so amqtt
opens no socket; this module accepts TCP connections itself, does the TLS handshake
(``StreamWriter.start_tls``, so a refused handshake is logged here, in one line) and
reads the CONNECT to check the client id against the certificate *before* amqtt sees
the connection. That matters: amqtt deletes (clean session) or takes over (persistent
session) an existing session of the same client id before it asks its auth plugins,
so an impostor refused by a plugin alone would still knock the real device off. The
accepted connection is then handed to ``Broker.external_connected``, but amqtt does
not read the socket: a task of this module does, one whole packet at a time, and
feeds amqtt (the CONNECT first) through a bounded queue, ``_PacketFeed``. Two amqtt
plugins complete it: ``_CertificateAuthPlugin`` (amqtt requires an auth plugin to
accept anyone; it checks the CN against the client id again, from
``Session.ssl_object``) and ``_TopicAclPlugin`` (the topic ACL above).

Refusals are logged on ``clicksim.broker``, one line each, and counted on the broker
object; amqtt's own loggers are set to WARNING unless the application configured them.

QoS 1 and the publish hook: amqtt 0.12 (``ProtocolHandler._handle_qos1_message_flow``)
sends a publisher's PUBACK as soon as it has read the PUBLISH, before its ACL or any
subscriber has seen it. So ``on_publish`` (``simulator.broker.hook``) is awaited by
that reading task, for every PUBLISH the topic ACL allows, *before* the packet is fed
to amqtt: amqtt cannot acknowledge what it has not read. With a hook, a PUBACK means
"the hook returned" (the backend committed it). If the hook raises, that PUBLISH and
everything after it on the connection is never fed to amqtt: no PUBACK, amqtt sees
the end of the stream and closes the connection (one line on ``clicksim.broker``),
and the device sends it again after reconnecting. One client's packets wait while its
hook runs; different clients' hooks run concurrently. Without a hook, a PUBACK means
only "the broker read it". Either way a refused QoS 1 publish is acknowledged by
amqtt all the same (and dropped), and a will message, which amqtt publishes itself,
never goes through the hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from amqtt.adapters import BufferReader, ReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext, BrokerConfig, ListenerConfig, ListenerType
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, UNACCEPTABLE_PROTOCOL_VERSION, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from cryptography import x509
from cryptography.x509.oid import NameOID

from simulator.broker.hook import Publish, PublishHook
from simulator.device.identity import BACKEND_CLIENT_CN
from simulator.protocol import BACKEND_SUBSCRIPTIONS, ProtocolError, device_topic_patterns
from simulator.workspace import DEFAULT_CA_DIR

__all__ = [
    "DEFAULT_PORT",
    "EmbeddedBroker",
    "EmbeddedBrokerError",
    "publish_allowed",
    "serve",
    "subscribe_allowed",
]

LOGGER: Final = logging.getLogger("clicksim.broker")

DEFAULT_PORT: Final = 8883
"""MQTT over TLS (IANA)."""
DEFAULT_CONNECT_TIMEOUT: Final = 10.0
"""Seconds a client has to finish the TLS handshake and send its CONNECT."""
_CLOSE_TIMEOUT: Final = 5.0
"""Seconds to wait for a refused peer to answer the TLS close before dropping it."""
_MAX_CONNECT_BYTES: Final = 64 * 1024
MAX_PACKET_BYTES: Final = 256 * 1024
"""Larger packets close the connection: AWS IoT's own limit is 128 KB of payload."""
"""A larger CONNECT (only a will message or a password could make it so) is refused."""
_MQTT_311: Final = 4
_CONNECT_PACKET_TYPE: Final = 1
_PUBLISH_PACKET_TYPE: Final = 3
_FEED_DEPTH: Final = 16
"""Packets read ahead of amqtt per connection, at most."""
_LISTENER: Final = "default"
_TOPIC_CACHE_SIZE: Final = 16_384
"""Devices whose topic lists are kept (a few hundred bytes each): a busy fleet's worth."""
_CN_ATTRIBUTE: Final = "clicksim.common_name"
"""``Session.attributes`` key under which the auth plugin leaves the verified CN."""


class EmbeddedBrokerError(RuntimeError):
    """The broker cannot start (missing or unusable CA folder, port in use...)."""


# ------------------------------------------------------------------------- policy


def _filter_within(topic_filter: str, allowed: str) -> bool:
    """Whether every topic ``topic_filter`` matches is also matched by ``allowed``.

    Both are MQTT topic filters; a plain topic is a filter that matches only itself.
    """
    asked, granted = topic_filter.split("/"), allowed.split("/")
    for index, level in enumerate(granted):
        if level == "#":
            return True  # covers the parent level too, as MQTT's '#' does
        if index >= len(asked):
            return False
        if level == "+":
            if asked[index] == "#":
                return False
            continue
        if asked[index] != level:  # a '+' or '#' asked where a literal level is granted
            return False
    return len(asked) == len(granted)


@functools.lru_cache(maxsize=_TOPIC_CACHE_SIZE)
def _device_topics(common_name: str) -> tuple[str, ...]:
    """Cached: the ACL asks twice for every publish (the hook's pump, amqtt's plugin)."""
    try:
        return device_topic_patterns(common_name)
    except ProtocolError:  # a CN with '/', '+' or '#' gets no topic at all
        return ()


_ANY_DEVICE: Final = "clicksim-any-device"


@functools.cache
def _backend_filters() -> tuple[str, ...]:
    """``BACKEND_SUBSCRIPTIONS`` and every device topic with ``+`` for the device id."""
    every_device = (
        "/".join("+" if level == _ANY_DEVICE else level for level in topic.split("/"))
        for topic in device_topic_patterns(_ANY_DEVICE)
    )
    return tuple(dict.fromkeys((*BACKEND_SUBSCRIPTIONS, *every_device)))


def publish_allowed(common_name: str, topic: str) -> bool:
    """Whether the client whose certificate has CN ``common_name`` may publish to ``topic``."""
    if common_name == BACKEND_CLIENT_CN:
        return False
    return topic in _device_topics(common_name)


def subscribe_allowed(common_name: str, topic_filter: str) -> bool:
    """Whether the client whose certificate has CN ``common_name`` may subscribe to the filter.

    The backend may subscribe to ``BACKEND_SUBSCRIPTIONS`` and to any device's topics
    (``device_topic_patterns`` with ``+`` for the id), or narrower filters; a device to
    topics under its own id (``iotbutton/{id}/#``, ``oneclick/devices/{id}/#``).
    """
    if common_name == BACKEND_CLIENT_CN:
        granted: tuple[str, ...] = _backend_filters()
    elif _device_topics(common_name):
        granted = (f"iotbutton/{common_name}/#", f"oneclick/devices/{common_name}/#")
    else:
        granted = ()
    return any(_filter_within(topic_filter, allowed) for allowed in granted)


def _common_name(ssl_object: ssl.SSLObject | None) -> str | None:
    """The CN of the verified peer certificate; ``None`` if there is none or several."""
    if ssl_object is None:
        return None
    try:
        der = ssl_object.getpeercert(binary_form=True)
        if not der:
            return None
        certificate = x509.load_der_x509_certificate(der)
    except (ValueError, OSError):
        return None
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode(errors="replace")


def _identity_problem(common_name: str | None, client_id: str | None) -> str | None:
    """Why this certificate may not connect with this client id; ``None`` if it may."""
    if common_name is None:
        return "the client certificate has no single common name"
    if client_id != common_name:
        return f"client id {client_id!r} does not match certificate CN {common_name!r}"
    return None


class _Gatekeeper:
    """The decisions, their one-line log records and their counts, shared with the plugins."""

    def __init__(self) -> None:
        self.refused_connections = 0
        self.refused_publishes = 0
        self.refused_subscriptions = 0

    def refuse_connection(self, peer: str, reason: str) -> None:
        self.refused_connections += 1
        LOGGER.warning("refused connection from %s: %s", peer, reason)

    def check_topic(
        self, session: Session | None, topic: str | None, action: Action | None
    ) -> bool:
        common_name = session.attributes.get(_CN_ATTRIBUTE) if session is not None else None
        client = session.client_id if session is not None else None
        if action is Action.RECEIVE:
            return True  # what a client may receive was decided when it subscribed
        if action is Action.PUBLISH:
            if isinstance(common_name, str) and topic and publish_allowed(common_name, topic):
                return True
            self.refused_publishes += 1
            LOGGER.warning("refused publish from %r to %r: topic not allowed", client, topic)
            return False
        if action is Action.SUBSCRIBE:
            if isinstance(common_name, str) and topic and subscribe_allowed(common_name, topic):
                return True
            self.refused_subscriptions += 1
            LOGGER.warning("refused subscription of %r to %r: filter not allowed", client, topic)
            return False
        return False


# ------------------------------------------------------------------- amqtt plugins


class _CertificateAuthPlugin(BaseAuthPlugin):
    """Accepts a session whose TLS peer certificate's CN is its client id.

    The listener has already checked this on the live connection; amqtt only accepts
    a client if an auth plugin says so, and the topic ACL reads the CN left here.
    """

    @dataclass
    class Config:
        gatekeeper: _Gatekeeper

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._gatekeeper: _Gatekeeper = self.config.gatekeeper

    async def authenticate(self, *, session: Session) -> bool | None:
        common_name = _common_name(session.ssl_object)
        problem = _identity_problem(common_name, session.client_id)
        if problem is not None:
            peer = f"{session.remote_address}:{session.remote_port}"
            self._gatekeeper.refuse_connection(peer, problem)
            return False
        session.attributes[_CN_ATTRIBUTE] = common_name
        return True


class _TopicAclPlugin(BaseTopicPlugin):
    """The device/backend topic ACL (see ``publish_allowed`` and ``subscribe_allowed``)."""

    @dataclass
    class Config:
        gatekeeper: _Gatekeeper

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._gatekeeper: _Gatekeeper = self.config.gatekeeper

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        return self._gatekeeper.check_topic(session, topic, action)


# ---------------------------------------------------------------------- transport


class _PacketFeed(ReaderAdapter):
    """amqtt's side of a connection: whole packets that the listener let through.

    A bounded queue, so a client that sends faster than amqtt reads is slowed down by
    TCP, as it would be if amqtt read the socket itself. Reads are cancellation-safe
    (amqtt cancels a pending read when a keep-alive period passes in silence).
    """

    def __init__(self, connect: bytes) -> None:
        self._buffer = bytearray(connect)
        self._packets: asyncio.Queue[bytes] = asyncio.Queue(maxsize=_FEED_DEPTH)
        self._ended = False

    async def put(self, packet: bytes) -> None:
        await self._packets.put(packet)

    async def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            if self._ended and self._packets.empty():
                break
            packet = await self._packets.get()
            if not packet:  # the end marker
                break
            self._buffer += packet
        size = len(self._buffer) if n < 0 else min(n, len(self._buffer))
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def feed_eof(self) -> None:
        """No more packets: amqtt reads those queued, then the end of the stream."""
        self._ended = True
        with contextlib.suppress(asyncio.QueueFull):  # a full queue is read to its end
            self._packets.put_nowait(b"")


class _Refused(Exception):
    """A connection refused before amqtt saw it; the message is the log line's reason."""

    def __init__(self, reason: str, *, connack: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.connack = connack


class _Malformed(Exception):
    """Bytes that are not an MQTT packet: the connection cannot go on."""


async def _read_packet(
    reader: asyncio.StreamReader, first: bytes, *, limit: int | None = None
) -> bytes:
    """The raw bytes of the packet whose first byte is ``first`` (``limit``: on its body)."""
    header, length = bytearray(first), 0
    for shift in range(0, 28, 7):
        byte = (await reader.readexactly(1))[0]
        header.append(byte)
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
    else:
        raise _Malformed("bad remaining length")
    if limit is not None and length > limit:
        raise _Malformed(f"{length} bytes, more than {limit}")
    return bytes(header) + await reader.readexactly(length)


async def _read_connect(reader: asyncio.StreamReader) -> bytes:
    """The raw bytes of the first packet, which must be a CONNECT of sane size."""
    first = await reader.readexactly(1)
    if first[0] >> 4 != _CONNECT_PACKET_TYPE:
        raise _Refused(f"first packet is of type {first[0] >> 4}, not CONNECT")
    try:
        return await _read_packet(reader, first, limit=_MAX_CONNECT_BYTES)
    except _Malformed as exc:
        raise _Refused(f"malformed CONNECT ({exc})") from None


def _parse_publish(raw: bytes, client_id: str) -> Publish:
    """The application message of a raw PUBLISH packet (MQTT 3.1.1, section 3.3)."""
    qos = (raw[0] >> 1) & 0x03
    if qos == 3:
        raise _Malformed("PUBLISH with QoS 3")
    index = 1
    while raw[index] & 0x80:  # the remaining length, already checked by _read_packet
        index += 1
    index += 1
    if len(raw) < index + 2:
        raise _Malformed("PUBLISH without a topic")
    topic_end = index + 2 + int.from_bytes(raw[index : index + 2], "big")
    payload_start = topic_end + (2 if qos else 0)
    if len(raw) < payload_start:
        raise _Malformed("PUBLISH shorter than its topic and packet id")
    try:
        topic = raw[index + 2 : topic_end].decode()
    except UnicodeDecodeError:
        raise _Malformed("PUBLISH topic is not UTF-8") from None
    return Publish(topic=topic, payload=raw[payload_start:], qos=qos, client_id=client_id)


async def _parse_connect(raw: bytes) -> ConnectPacket:
    try:
        return await ConnectPacket.from_stream(BufferReader(raw))
    except Exception as exc:  # untrusted bytes: whatever the parser chokes on is malformed
        raise _Refused(f"malformed CONNECT ({exc!r})") from None


def _tls_failure(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS handshake failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.strerror or str(exc)
        return f"TLS handshake failed: {str(reason).replace('_', ' ').lower()}"
    return f"TLS handshake failed: {exc}"


def _server_context(ca_dir: Path) -> ssl.SSLContext:
    files = {name: ca_dir / name for name in ("ca.crt", "server.crt", "server.key")}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise EmbeddedBrokerError(
            f"{ca_dir}: missing {', '.join(missing)}; run 'clicksim ca init --dir {ca_dir}' first"
        )
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=files["ca.crt"])
        context.load_cert_chain(files["server.crt"], files["server.key"])
    except (ssl.SSLError, OSError) as exc:
        raise EmbeddedBrokerError(f"{ca_dir}: cannot load the broker's TLS files: {exc}") from None
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


_NOISY_LOGGERS: Final = ("amqtt", "transitions")
"""amqtt logs every connection and refusal at INFO, and its state machine library
(``transitions``) every state change of every session: clicksim logs its own lines."""


def _quiet_amqtt_logging() -> None:
    """Raise amqtt's loggers to WARNING, unless the application set their level itself."""
    for name in _NOISY_LOGGERS:
        noisy = logging.getLogger(name)
        if noisy.level == logging.NOTSET:
            noisy.setLevel(logging.WARNING)


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:  # (host, port) or (host, port, flow, scope)
        return f"{peer[0]}:{peer[1]}"
    return "unknown peer"


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close without waiting long for a peer that does not answer the TLS close_notify."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), _CLOSE_TIMEOUT)
    except (TimeoutError, OSError):
        writer.transport.abort()


# ------------------------------------------------------------------------- broker


class EmbeddedBroker:
    """An in-process MQTT 3.1.1 broker with mutual TLS and the clicksim topic ACL.

    Use it as an async context manager::

        async with EmbeddedBroker(host="127.0.0.1", port=0, ca_dir=Path("certs")) as broker:
            print(broker.port)  # the port it took

    ``port=0`` picks a free port (if ``host`` resolves to several addresses, each
    gets its own; ``port`` is the first one's). Refused connections, publishes and
    subscriptions are counted in ``refused_connections``, ``refused_publishes`` and
    ``refused_subscriptions``. ``on_publish`` is awaited for every publish the ACL
    allows, before the publisher gets its PUBACK (see the module's docstring).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        ca_dir: Path = DEFAULT_CA_DIR,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        on_publish: PublishHook | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout must be positive, got {connect_timeout}")
        self.host = host
        self.ca_dir = ca_dir
        self.connect_timeout = connect_timeout
        self._on_publish = on_publish
        self._requested_port = port
        self._bound_port: int | None = None
        self._gatekeeper = _Gatekeeper()
        self._broker: Broker | None = None
        self._server: asyncio.Server | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port the broker listens on (with ``port=0``, the one it took once started)."""
        if self._bound_port is not None:
            return self._bound_port
        if self._requested_port == 0:
            raise RuntimeError("port 0 is chosen when the broker starts; start it first")
        return self._requested_port

    @property
    def refused_connections(self) -> int:
        """Failed TLS handshakes and refused or malformed CONNECTs."""
        return self._gatekeeper.refused_connections

    @property
    def refused_publishes(self) -> int:
        return self._gatekeeper.refused_publishes

    @property
    def refused_subscriptions(self) -> int:
        return self._gatekeeper.refused_subscriptions

    @property
    def running(self) -> bool:
        return self._server is not None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load the TLS files, start amqtt and listen; prefer ``async with``."""
        if self._broker is not None:
            raise RuntimeError("the broker is already running")
        self._ssl_context = _server_context(self.ca_dir)
        _quiet_amqtt_logging()
        plugin_config = {"gatekeeper": self._gatekeeper}
        config = BrokerConfig(
            listeners={
                _LISTENER: ListenerConfig(
                    type=ListenerType.EXTERNAL, bind=f"{self.host}:{self._requested_port}"
                )
            },
            plugins={
                f"{__name__}.{_CertificateAuthPlugin.__name__}": plugin_config,
                f"{__name__}.{_TopicAclPlugin.__name__}": plugin_config,
            },
        )
        broker = Broker(config)
        await broker.start()
        self._broker = broker
        try:
            self._server = await asyncio.start_server(
                self._accept, self.host, self._requested_port, reuse_address=True
            )
        except OSError as exc:
            await self._shutdown_broker()
            raise EmbeddedBrokerError(
                f"cannot listen on {self.host}:{self._requested_port}: {exc.strerror or exc}"
            ) from None
        self._bound_port = self._server.sockets[0].getsockname()[1]
        LOGGER.info("MQTT broker listening on %s:%d (TLS)", self.host, self._bound_port)

    async def stop(self) -> None:
        """Stop listening, end every session and wait for the connections to close."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self._shutdown_broker()
        if self._connections:
            _, pending = await asyncio.wait(self._connections, timeout=_CLOSE_TIMEOUT)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if server is not None:
            await server.wait_closed()
        self._bound_port = None

    async def _shutdown_broker(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peer = _peer_name(writer)
        try:
            await self._serve_connection(reader, writer, peer)
        except Exception as exc:  # one line, not a traceback from asyncio's callback task
            LOGGER.error("connection from %s failed: %r", peer, exc)
            writer.transport.abort()
        finally:
            if task is not None:
                self._connections.discard(task)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        try:
            raw_connect, client_id = await self._admit(reader, writer)
        except _Refused as refusal:
            self._gatekeeper.refuse_connection(peer, refusal.reason)
            if refusal.connack is not None and not writer.is_closing():
                with contextlib.suppress(OSError):
                    writer.write(ConnackPacket.build(0, refusal.connack).to_bytes())
                    await writer.drain()
            await _close(writer)
            return
        except (OSError, EOFError, TimeoutError) as exc:  # gone or silent: not a refusal
            reason = str(exc) or type(exc).__name__
            LOGGER.info("dropped connection from %s before CONNECT: %s", peer, reason)
            await _close(writer)
            return
        broker = self._broker
        if broker is None:  # stopping
            await _close(writer)
            return
        feed = _PacketFeed(raw_connect)
        pump = asyncio.create_task(self._pump(reader, feed, client_id))
        try:
            await broker.external_connected(feed, StreamWriterAdapter(writer), _LISTENER)
        except (AMQTTError, MQTTError, NoDataError, OSError) as exc:
            LOGGER.warning("MQTT session from %s ended with an error: %r", peer, exc)
        finally:
            pump.cancel()  # amqtt is done with the connection; so is the hook
            await asyncio.wait([pump])
            if pump.cancelled() or pump.result():
                if not writer.is_closing():  # amqtt normally closes it itself
                    await _close(writer)
            else:  # a malformed packet: its sender may still be sending; drop it hard
                writer.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, feed: _PacketFeed, client_id: str) -> bool:
        """Pass the client's packets to amqtt, each PUBLISH it may send through the hook first.

        amqtt acknowledges a QoS 1 PUBLISH as soon as it has read it, so the hook runs
        before amqtt can read it. The packets stay in order; the client's next packet
        waits until the hook returned. If the hook raises, the PUBLISH and what follows
        are never passed on: amqtt sees the end of the stream and closes the connection.
        Returns False for a malformed packet, whose sender may still be sending.
        """
        try:
            while first := await reader.read(1):
                packet = await _read_packet(reader, first, limit=MAX_PACKET_BYTES)
                if (
                    first[0] >> 4 == _PUBLISH_PACKET_TYPE
                    and self._on_publish is not None
                    and not await self._hand_over(packet, client_id, self._on_publish)
                ):
                    return True
                await feed.put(packet)
            return True
        except (OSError, EOFError):  # the connection broke off mid-packet
            return True
        except _Malformed as exc:
            LOGGER.warning("closing the connection of %r: malformed packet (%s)", client_id, exc)
            return False
        finally:
            feed.feed_eof()

    @staticmethod
    async def _hand_over(packet: bytes, client_id: str, hook: PublishHook) -> bool:
        """Whether amqtt may have the PUBLISH: the hook took it, or the ACL will drop it."""
        publish = _parse_publish(packet, client_id)
        if not publish_allowed(client_id, publish.topic):
            return True  # amqtt's ACL plugin refuses it, logs and counts it
        try:
            await hook(publish)
        except Exception as exc:  # whatever the hook's trouble: not taken, not acknowledged
            LOGGER.error(
                "publish from %r to %r not acknowledged: the publish hook failed (%r); "
                "closing the connection",
                client_id,
                publish.topic,
                exc,
            )
            return False
        return True

    async def _admit(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[bytes, str]:
        """TLS handshake and CONNECT check; the raw CONNECT and client id of an admitted client."""
        assert self._ssl_context is not None
        async with asyncio.timeout(self.connect_timeout):
            try:
                await writer.start_tls(
                    self._ssl_context, ssl_handshake_timeout=self.connect_timeout
                )
            except (ssl.SSLEOFError, ConnectionError):
                raise
            except ssl.SSLError as exc:
                raise _Refused(_tls_failure(exc)) from None
            ssl_object = writer.get_extra_info("ssl_object")
            raw = await _read_connect(reader)
        connect = await _parse_connect(raw)
        if connect.proto_level != _MQTT_311:
            raise _Refused(
                f"MQTT protocol level {connect.proto_level} (only 3.1.1, level 4, is served)",
                connack=UNACCEPTABLE_PROTOCOL_VERSION,
            )
        client_id = None if connect.client_id_is_random else connect.client_id
        common_name = _common_name(ssl_object)
        problem = _identity_problem(common_name, client_id)
        if problem is None and connect.will_flag:
            # amqtt publishes a will without asking the topic plugins: check it here.
            will_topic = connect.will_topic
            if (
                common_name is None
                or not will_topic
                or not publish_allowed(common_name, will_topic)
            ):
                problem = f"will topic {will_topic!r} is not one {client_id!r} may publish to"
        if problem is not None or client_id is None:
            raise _Refused(problem or "no client id", connack=NOT_AUTHORIZED)
        return raw, client_id


async def serve(host: str, port: int, ca_dir: Path) -> None:
    """Run an embedded broker until cancelled."""
    async with EmbeddedBroker(host=host, port=port, ca_dir=ca_dir):
        await asyncio.Event().wait()
