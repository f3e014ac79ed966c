"""Where a device connects, and with what: broker URLs and TLS contexts."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


class BrokerUrlError(ValueError):
    """A --broker URL that cannot be used."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtts://host:port`` (client certificates) or ``mqtt://user:pass@host:port``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BrokerUrlError(f"--broker {url!r}: use mqtts://HOST:PORT or mqtt://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        raise BrokerUrlError(f"--broker {url!r}: the port is not a number in 1..65535") from None
    if not parts.hostname:
        raise BrokerUrlError(f"--broker {url!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError(f"--broker {url!r}: a broker URL has no path or query")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def client_tls_context(*, ca_file: Path, certificate: Path, key: Path) -> ssl.SSLContext:
    """Mutual TLS as a button does it: trust the fleet's CA, present the device's cert."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    # The buttons speak TLS 1.2. It matters here too: under TLS 1.3 a broker refuses a
    # client certificate only after the client's handshake is done, so the refusal
    # surfaces as a silent connect timeout instead of a TLS failure (a red-tls LED).
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.sslsocket_class = _ClosingSSLSocket
    context.load_cert_chain(certfile=str(certificate), keyfile=str(key))
    return context


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when its handshake fails.

    paho 2.2 (``Client._ssl_wrap_socket``) drops a socket whose handshake failed
    without closing it: every refused connection would leak a file descriptor.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise
