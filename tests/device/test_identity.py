"""Identities: deterministic from a seed, and accepted by real X.509 verifiers and TLS."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)
from freezegun import freeze_time

from simulator.device.identity import (
    BACKEND_CLIENT_CN,
    DEFAULT_VALIDITY,
    CertificateAuthority,
    Identity,
    IdentityError,
    KeyType,
    Validity,
    certificate_id,
    derive_private_key,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DEVICE_ID = "G030PM0123456789"


@dataclass(frozen=True)
class Pki:
    """A CA and one identity of each kind."""

    ca: CertificateAuthority
    server: Identity
    client: Identity
    device: Identity


def _pki(key_type: KeyType) -> Pki:
    ca = CertificateAuthority.create(seed=b"test ca", key_type=key_type)
    return Pki(
        ca=ca,
        server=ca.issue_server(seed=b"server"),
        # An EC client under the RSA CA too: one RSA key fewer, and mixed chains get tested.
        client=ca.issue_client(seed=b"backend", common_name=BACKEND_CLIENT_CN, key_type=KeyType.EC),
        device=ca.issue_device(DEVICE_ID, seed=b"fleet"),
    )


# Session-scoped: an RSA key comes from a pure-Python prime search (~0.5 s on average).
@pytest.fixture(scope="session")
def ec_pki() -> Pki:
    return _pki(KeyType.EC)


@pytest.fixture(scope="session")
def rsa_pki() -> Pki:
    return _pki(KeyType.RSA)


@pytest.fixture(scope="session", params=[KeyType.EC, KeyType.RSA], ids=["ec", "rsa"])
def pki(request: pytest.FixtureRequest, ec_pki: Pki, rsa_pki: Pki) -> Pki:
    return ec_pki if request.param is KeyType.EC else rsa_pki


@pytest.fixture(scope="session")
def foreign_ca() -> CertificateAuthority:
    """Same CN as the test CAs but another key: only the signature tells them apart."""
    return CertificateAuthority.create(seed=b"someone else's CA")


# ---------------------------------------------------------------- determinism


def _pem_pair(identity: Identity) -> tuple[bytes, bytes]:
    return identity.key_pem(), identity.certificate_pem()


def test_same_seed_gives_identical_ec_ca_and_leaves() -> None:
    first = CertificateAuthority.create(seed=b"replay")
    again = CertificateAuthority.create(seed=b"replay")
    assert _pem_pair(first.identity) == _pem_pair(again.identity)
    issuers: list[Callable[[CertificateAuthority], Identity]] = [
        lambda ca: ca.issue_device(DEVICE_ID, seed=b"fleet"),
        lambda ca: ca.issue_server(seed=b"server"),
        lambda ca: ca.issue_client(seed=b"backend", common_name=BACKEND_CLIENT_CN),
    ]
    for issue in issuers:
        assert _pem_pair(issue(first)) == _pem_pair(issue(again))


def test_same_seed_gives_identical_rsa_ca_and_device(rsa_pki: Pki) -> None:
    again = CertificateAuthority.create(seed=b"test ca", key_type=KeyType.RSA)
    assert _pem_pair(again.identity) == _pem_pair(rsa_pki.ca.identity)
    assert _pem_pair(rsa_pki.ca.issue_device(DEVICE_ID, seed=b"fleet")) == _pem_pair(rsa_pki.device)


def test_different_rsa_inputs_give_different_keys(rsa_pki: Pki) -> None:
    """Seed and label both differ between these; a fresh RSA key would cost ~0.5 s."""
    keys = {rsa_pki.ca.identity.key_pem(), rsa_pki.server.key_pem(), rsa_pki.device.key_pem()}
    assert len(keys) == 3


def test_different_seed_gives_different_identities(ec_pki: Pki) -> None:
    other_ca = CertificateAuthority.create(seed=b"another ca")
    assert other_ca.identity.key_pem() != ec_pki.ca.identity.key_pem()
    assert other_ca.identity.certificate_pem() != ec_pki.ca.identity.certificate_pem()
    other = ec_pki.ca.issue_device(DEVICE_ID, seed=b"another fleet")
    assert other.key_pem() != ec_pki.device.key_pem()
    assert other.certificate.serial_number != ec_pki.device.certificate.serial_number


# Pinned outputs for the fixtures' seeds. If these change, certificateIds recorded by
# earlier runs no longer replay: change the derivation only on purpose, and say so.
GOLDEN = {
    KeyType.EC: (
        "10c6812da8361d2a5189a215051d37cd5a5b7f771052d74bb409e3388c39fd59",
        "2d921429f1f6cf88a30044950ae7a727770f23524917c787332e80874498de08",
        "f636979f36a2c91c90f13377c74c7a0109e872b4e2d47316d635ca265e86e8a8",
    ),
    KeyType.RSA: (
        "184424057fe303e0305fe81b1de235a06cca18d4f6e11f9947debad158d92dfc",
        "c89a3481c0e3a22a0b6402ff6d961c9baf5d0cf380105b1db066cb80bbd50c9f",
        "b09341b62107f232f756c271432aefda77025836cad5b5510b58706922e52f32",
    ),
}


def test_outputs_are_pinned_across_runs(pki: Pki) -> None:
    """Same seed, same bytes, in every process and on every machine, not just twice here."""
    ca_id, device_id, device_key_sha256 = GOLDEN[pki.ca.key_type]
    assert pki.ca.identity.certificate_id == ca_id
    assert pki.device.certificate_id == device_id
    assert hashlib.sha256(pki.device.key_pem()).hexdigest() == device_key_sha256


def test_identities_compare_by_content(ec_pki: Pki) -> None:
    again = ec_pki.ca.issue_device(DEVICE_ID, seed=b"fleet")
    assert again == ec_pki.device
    assert hash(again) == hash(ec_pki.device)
    assert again != ec_pki.ca.issue_device(DEVICE_ID, seed=b"other")
    assert again != ec_pki.client


def test_one_seed_serves_a_fleet(ec_pki: Pki) -> None:
    """The device id is part of the key label: a shared seed still gives distinct keys."""
    ids = [f"G030PM{n:010d}" for n in range(20)]
    devices = [ec_pki.ca.issue_device(device_id, seed=b"fleet") for device_id in ids]
    assert len({d.key_pem() for d in devices}) == len(ids)
    assert len({d.certificate.serial_number for d in devices}) == len(ids)


def test_no_clock_is_read() -> None:
    """Issuing under a frozen, absurd clock gives the very same bytes."""
    expected = CertificateAuthority.create(seed=b"clock").issue_device(DEVICE_ID, seed=b"f")
    with freeze_time("1999-12-31 23:59:59"):
        frozen = CertificateAuthority.create(seed=b"clock").issue_device(DEVICE_ID, seed=b"f")
    assert _pem_pair(frozen) == _pem_pair(expected)


def test_derive_private_key_ec_is_p256_and_labelled() -> None:
    key = derive_private_key(b"seed", "a", KeyType.EC)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    same = derive_private_key(b"seed", "a", KeyType.EC)
    assert isinstance(same, ec.EllipticCurvePrivateKey)
    assert same.private_numbers() == key.private_numbers()
    other = derive_private_key(b"seed", "b", KeyType.EC)
    assert isinstance(other, ec.EllipticCurvePrivateKey)
    assert other.private_numbers() != key.private_numbers()


def test_derived_rsa_key_is_sound(rsa_pki: Pki) -> None:
    key = rsa_pki.ca.identity.key
    assert isinstance(key, rsa.RSAPrivateKey)
    numbers = key.private_numbers()
    assert key.key_size == 2048
    assert numbers.public_numbers.e == 65537
    assert numbers.p * numbers.q == numbers.public_numbers.n
    assert numbers.p.bit_length() == numbers.q.bit_length() == 1024
    assert numbers.p != numbers.q
    # The key really works: sign and verify (raises on failure).
    signature = key.sign(b"click", padding.PKCS1v15(), hashes.SHA256())
    key.public_key().verify(signature, b"click", padding.PKCS1v15(), hashes.SHA256())


# ----------------------------------------------------------- certificate content


def test_certificate_id_is_sha256_of_der(ec_pki: Pki) -> None:
    cert = ec_pki.device.certificate
    der = cert.public_bytes(serialization.Encoding.DER)
    expected = hashlib.sha256(der).hexdigest()
    assert certificate_id(cert) == expected
    assert ec_pki.device.certificate_id == expected
    assert len(expected) == 64
    assert expected == expected.lower()


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_common_names_and_ekus(pki: Pki) -> None:
    assert pki.device.common_name == DEVICE_ID
    assert pki.client.common_name == BACKEND_CLIENT_CN
    assert pki.server.common_name == "localhost"
    assert pki.ca.identity.common_name == "clicksim device CA"
    assert _eku(pki.device.certificate) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _eku(pki.client.certificate) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _eku(pki.server.certificate) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_server_san_lists_dns_names_and_ips(ec_pki: Pki) -> None:
    san = ec_pki.server.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_ca_extensions(pki: Pki) -> None:
    extensions = pki.ca.identity.certificate.extensions
    constraints = extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_leaf_extensions(pki: Pki) -> None:
    ca_ski = pki.ca.identity.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    for leaf in (pki.server, pki.client, pki.device):
        extensions = leaf.certificate.extensions
        assert not extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature
        assert not usage.key_cert_sign
        assert usage.key_encipherment is isinstance(leaf.key, rsa.RSAPrivateKey)
        aki = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == ca_ski.digest
        ski = extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(leaf.key.public_key())
        assert leaf.certificate.version is x509.Version.v3
        assert leaf.certificate.issuer == pki.ca.identity.certificate.subject
        assert 0 < leaf.certificate.serial_number < 2**159


def test_validity_defaults_to_the_cas(ec_pki: Pki) -> None:
    ca_cert = ec_pki.ca.identity.certificate
    assert ca_cert.not_valid_before_utc == DEFAULT_VALIDITY.not_before
    assert ca_cert.not_valid_after_utc == DEFAULT_VALIDITY.not_after
    assert ec_pki.ca.validity == DEFAULT_VALIDITY
    for leaf in (ec_pki.server, ec_pki.client, ec_pki.device):
        assert leaf.certificate.not_valid_before_utc == ca_cert.not_valid_before_utc
        assert leaf.certificate.not_valid_after_utc == ca_cert.not_valid_after_utc


def test_explicit_validity_and_key_type(rsa_pki: Pki) -> None:
    window = Validity(
        not_before=datetime(2026, 1, 1, 12, 30, 15, 999, tzinfo=UTC),
        not_after=datetime(2027, 1, 1, tzinfo=timezone(timedelta(hours=2))),
    )
    device = rsa_pki.ca.issue_device(DEVICE_ID, seed=b"ec", key_type=KeyType.EC, validity=window)
    assert isinstance(device.key, ec.EllipticCurvePrivateKey)
    assert device.certificate.not_valid_before_utc == datetime(2026, 1, 1, 12, 30, 15, tzinfo=UTC)
    assert device.certificate.not_valid_after_utc == datetime(2026, 12, 31, 22, tzinfo=UTC)
    usage = device.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert not usage.key_encipherment  # EC key, even though the CA is RSA


def test_default_validity_is_fixed() -> None:
    assert DEFAULT_VALIDITY.not_before == datetime(2025, 1, 1, tzinfo=UTC)
    assert DEFAULT_VALIDITY.not_after == datetime(2050, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("not_before", "not_after"),
    [
        (datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),
        (datetime(2031, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),
        # Equal once truncated to whole seconds, as X.509 encodes them.
        (datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, 0, 0, 0, 5, tzinfo=UTC)),
        (datetime(2030, 1, 1), datetime(2031, 1, 1, tzinfo=UTC)),
        (datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1)),
    ],
)
def test_bad_validity_is_refused(not_before: datetime, not_after: datetime) -> None:
    with pytest.raises(ValueError, match="Validity"):
        Validity(not_before=not_before, not_after=not_after)


@pytest.mark.parametrize("common_name", ["", "x" * 65])
def test_bad_common_name_is_refused(ec_pki: Pki, common_name: str) -> None:
    with pytest.raises(IdentityError, match="common name"):
        ec_pki.ca.issue_device(common_name, seed=b"s")


@pytest.mark.parametrize("hosts", [(), "localhost", ("bad host name!",)])
def test_bad_hosts_are_refused(ec_pki: Pki, hosts: tuple[str, ...]) -> None:
    with pytest.raises(IdentityError, match="host"):
        ec_pki.ca.issue_server(seed=b"s", hosts=hosts)


# ---------------------------------------------------------------- from_pem


def test_from_pem_round_trip(pki: Pki) -> None:
    loaded = CertificateAuthority.from_pem(
        certificate_pem=pki.ca.identity.certificate_pem(), key_pem=pki.ca.identity.key_pem()
    )
    assert loaded.key_type is pki.ca.key_type
    assert loaded.validity == pki.ca.validity
    assert _pem_pair(loaded.identity) == _pem_pair(pki.ca.identity)
    # A loaded CA issues exactly what the original did.
    if pki.ca.key_type is KeyType.EC:
        assert _pem_pair(loaded.issue_device(DEVICE_ID, seed=b"fleet")) == _pem_pair(pki.device)
    else:  # skip a second RSA keygen: an EC leaf shows the RSA signature is the same
        original = pki.ca.issue_device(DEVICE_ID, seed=b"fleet", key_type=KeyType.EC)
        reissued = loaded.issue_device(DEVICE_ID, seed=b"fleet", key_type=KeyType.EC)
        assert _pem_pair(reissued) == _pem_pair(original)


def test_from_pem_refuses_garbage(ec_pki: Pki) -> None:
    good_cert, good_key = ec_pki.ca.identity.certificate_pem(), ec_pki.ca.identity.key_pem()
    with pytest.raises(IdentityError, match="certificate"):
        CertificateAuthority.from_pem(certificate_pem=b"not a cert", key_pem=good_key)
    with pytest.raises(IdentityError, match="key"):
        CertificateAuthority.from_pem(certificate_pem=good_cert, key_pem=b"not a key")
    with pytest.raises(IdentityError, match="key"):
        CertificateAuthority.from_pem(certificate_pem=good_cert, key_pem=good_cert)


def test_from_pem_refuses_mismatched_key(ec_pki: Pki, foreign_ca: CertificateAuthority) -> None:
    with pytest.raises(IdentityError, match="does not match"):
        CertificateAuthority.from_pem(
            certificate_pem=ec_pki.ca.identity.certificate_pem(),
            key_pem=foreign_ca.identity.key_pem(),
        )


def test_from_pem_refuses_encrypted_key(ec_pki: Pki) -> None:
    encrypted = ec_pki.ca.identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(IdentityError, match="encrypted"):
        CertificateAuthority.from_pem(
            certificate_pem=ec_pki.ca.identity.certificate_pem(), key_pem=encrypted
        )


def test_from_pem_refuses_a_leaf(ec_pki: Pki) -> None:
    with pytest.raises(IdentityError, match="not a CA"):
        CertificateAuthority.from_pem(
            certificate_pem=ec_pki.device.certificate_pem(), key_pem=ec_pki.device.key_pem()
        )


# ------------------------------------------------- chains, by cryptography's verifier


def _policy(ca: CertificateAuthority) -> PolicyBuilder:
    return PolicyBuilder().store(Store([ca.identity.certificate])).time(NOW)


def _client_policy(ca: CertificateAuthority) -> PolicyBuilder:
    """The WebPKI client profile, except that a subjectAltName is optional.

    Client and device certificates carry no SAN, like the ones AWS IoT issues; the
    identity is the CN. Everything else (EKU, key usage, AKI, signatures) is checked.
    """
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
    )
    return _policy(ca).extension_policies(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy
    )


@pytest.mark.parametrize(
    "subject",
    [
        DNSName("localhost"),
        IPAddress(ipaddress.ip_address("127.0.0.1")),
        IPAddress(ipaddress.ip_address("::1")),
    ],
    ids=["localhost", "127.0.0.1", "::1"],
)
def test_server_chain_verifies(pki: Pki, subject: DNSName | IPAddress) -> None:
    chain = _policy(pki.ca).build_server_verifier(subject).verify(pki.server.certificate, [])
    assert chain == [pki.server.certificate, pki.ca.identity.certificate]


def test_server_chain_refuses_other_hosts(ec_pki: Pki) -> None:
    verifier = _policy(ec_pki.ca).build_server_verifier(DNSName("broker.example"))
    with pytest.raises(VerificationError):
        verifier.verify(ec_pki.server.certificate, [])


def test_client_and_device_chains_verify(pki: Pki) -> None:
    verifier = _client_policy(pki.ca).build_client_verifier()
    for leaf in (pki.client, pki.device):
        verified = verifier.verify(leaf.certificate, [])
        assert verified.chain == [leaf.certificate, pki.ca.identity.certificate]


def test_eku_is_enforced(ec_pki: Pki) -> None:
    with pytest.raises(VerificationError, match="EKU"):
        _client_policy(ec_pki.ca).build_client_verifier().verify(ec_pki.server.certificate, [])
    with pytest.raises(VerificationError):  # (it fails on the missing SAN first)
        _policy(ec_pki.ca).build_server_verifier(DNSName("localhost")).verify(
            ec_pki.device.certificate, []
        )


def test_foreign_device_does_not_verify(ec_pki: Pki, foreign_ca: CertificateAuthority) -> None:
    stranger = foreign_ca.issue_device(DEVICE_ID, seed=b"fleet")
    with pytest.raises(VerificationError):
        _client_policy(ec_pki.ca).build_client_verifier().verify(stranger.certificate, [])


# ------------------------------------------------------ a real TLS handshake (ssl)


def _files(tmp_path: Path, name: str, identity: Identity) -> tuple[str, str]:
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert.write_bytes(identity.certificate_pem())
    key.write_bytes(identity.key_pem())
    return str(cert), str(key)


def _server_context(
    tmp_path: Path, server: Identity, trusted: CertificateAuthority
) -> ssl.SSLContext:
    """A broker-like server: requires a client certificate from ``trusted``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_files(tmp_path, "server", server))
    cafile = tmp_path / "server-trust.pem"
    cafile.write_bytes(trusted.identity.certificate_pem())
    context.load_verify_locations(cafile=str(cafile))
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def _client_context(
    tmp_path: Path, client: Identity, trusted: CertificateAuthority
) -> ssl.SSLContext:
    """A device: checks the server's chain and host name, presents its own certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_cert_chain(*_files(tmp_path, "client", client))
    cafile = tmp_path / "client-trust.pem"
    cafile.write_bytes(trusted.identity.certificate_pem())
    context.load_verify_locations(cafile=str(cafile))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def _peer_common_name(tls: ssl.SSLSocket) -> str:
    peer = tls.getpeercert()
    assert peer is not None
    subject = cast("tuple[tuple[tuple[str, str], ...], ...]", peer["subject"])
    return next(value for rdn in subject for key, value in rdn if key == "commonName")


def _serve_once(context: ssl.SSLContext, sock: socket.socket) -> str:
    """Handshake, reply, and say which common name the client proved."""
    with context.wrap_socket(sock, server_side=True) as tls:
        common_name = _peer_common_name(tls)
        tls.sendall(b"ok")
        return common_name


def _handshake(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, server_hostname: str
) -> tuple[concurrent.futures.Future[str], bytes | None]:
    """Run one TLS handshake over a socket pair; the server side runs in a thread."""
    server_sock, client_sock = socket.socketpair()
    with server_sock, client_sock, concurrent.futures.ThreadPoolExecutor(1) as pool:
        server_sock.settimeout(10)
        client_sock.settimeout(10)
        served = pool.submit(_serve_once, server_context, server_sock)
        reply: bytes | None = None
        with (
            contextlib.suppress(ssl.SSLError, ConnectionError),
            client_context.wrap_socket(client_sock, server_hostname=server_hostname) as tls,
        ):
            reply = tls.recv(2)
        concurrent.futures.wait([served], timeout=10)
    return served, reply


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1", "::1"])
def test_tls_handshake_with_device_certificate(
    tmp_path: Path, pki: Pki, server_hostname: str
) -> None:
    served, reply = _handshake(
        _server_context(tmp_path, pki.server, pki.ca),
        _client_context(tmp_path, pki.device, pki.ca),
        server_hostname,
    )
    assert served.result() == DEVICE_ID
    assert reply == b"ok"


def test_tls_handshake_with_backend_certificate(tmp_path: Path, pki: Pki) -> None:
    served, reply = _handshake(
        _server_context(tmp_path, pki.server, pki.ca),
        _client_context(tmp_path, pki.client, pki.ca),
        "localhost",
    )
    assert served.result() == BACKEND_CLIENT_CN
    assert reply == b"ok"


def test_tls_refuses_device_from_another_ca(
    tmp_path: Path, ec_pki: Pki, foreign_ca: CertificateAuthority
) -> None:
    stranger = foreign_ca.issue_device(DEVICE_ID, seed=b"fleet")
    served, reply = _handshake(
        _server_context(tmp_path, ec_pki.server, ec_pki.ca),
        _client_context(tmp_path, stranger, ec_pki.ca),
        "localhost",
    )
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):
        served.result()
    assert reply != b"ok"
