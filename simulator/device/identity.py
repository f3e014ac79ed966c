"""X.509 identities for virtual buttons, their CA, the broker and the backend service.

Real 1-Click buttons authenticate to AWS IoT with a client certificate, and the
1-Click API names a device's certificate by ``certificateId``, the SHA-256 of its DER.
A test bench needs the same, plus a CA and a server certificate for a local broker.

Everything here is a pure function of its arguments: keys are derived from a seed
(never drawn from the OS), ECDSA signatures are deterministic (RFC 6979), serial
numbers are hashed from the inputs and validity windows are passed in. So a seeded
run writes byte-identical keys and certificates, and a ``certificateId`` recorded in
one run names the same certificate in the next. This module reads no clock and no file.

The certificates are kept plain (X.509 v3, CN in the subject, critical
BasicConstraints and KeyUsage, SKI/AKI, EKU) so that OpenSSL in ``X509_STRICT`` mode,
brokers such as mosquitto with ``require_certificate`` and Python's ``ssl`` accept them.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import hmac
import ipaddress
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "BACKEND_CLIENT_CN",
    "DEFAULT_VALIDITY",
    "CertificateAuthority",
    "Identity",
    "IdentityError",
    "KeyType",
    "PrivateKey",
    "Validity",
    "certificate_id",
    "derive_private_key",
]


class KeyType(enum.StrEnum):
    EC = "ec"
    """ECDSA on P-256: what the buttons use, and fast to derive and sign."""
    RSA = "rsa"
    """RSA-2048, for backends that only expect RSA; slow to derive (pure-Python primes)."""


class IdentityError(ValueError):
    """An identity that cannot be made or loaded; the message says why."""


PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

BACKEND_CLIENT_CN: Final = "clicksim-backend"
"""Common name of the backend service's client identity (see ``issue_client``)."""


@dataclass(frozen=True, kw_only=True)
class Validity:
    """A certificate's validity window, in UTC and whole seconds as X.509 encodes it.

    Times are truncated to the second so that ``cert.not_valid_before_utc`` compares
    equal to what was asked for.
    """

    not_before: datetime
    not_after: datetime

    def __post_init__(self) -> None:
        for name in ("not_before", "not_after"):
            value: datetime = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"Validity.{name} must be timezone-aware, got {value!r}")
            object.__setattr__(self, name, value.astimezone(UTC).replace(microsecond=0))
        if self.not_before >= self.not_after:
            raise ValueError(
                f"Validity.not_before ({self.not_before.isoformat()}) must be before "
                f"not_after ({self.not_after.isoformat()})"
            )


DEFAULT_VALIDITY: Final = Validity(
    not_before=datetime(2025, 1, 1, tzinfo=UTC),
    not_after=datetime(2050, 1, 1, tzinfo=UTC),
)
"""Fixed rather than "now + N days", so that seeded runs replay byte for byte."""

_HOSTNAME: Final = re.compile(
    r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?"
)
"""LDH labels (underscores tolerated, as container names use them), optional wildcard."""
_HOSTNAME_MAX: Final = 253
_CN_MAX: Final = 64  # ub-common-name, RFC 5280
_SERIAL_BITS: Final = 159  # positive and at most 20 DER octets, RFC 5280 section 4.1.2.2
_TEMPLATE_CACHE_SIZE: Final = 32  # (key type, EKU, window) combinations kept per CA
_HKDF_SALT: Final = b"clicksim identity v1"
_SHA256: Final = hashes.SHA256()
_P256: Final = ec.SECP256R1()
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_RSA_BITS: Final = 2048
_RSA_E: Final = 65537
_MILLER_RABIN_ROUNDS: Final = 8
"""For random 1024-bit candidates 4 rounds bound the error below 2**-100 (Damgard,
Landrock and Pomerance 1993); 8 for margin. Composites nearly always fail the first."""

# Extensions are immutable value objects: build the shared ones once.
_CA_BASIC_CONSTRAINTS: Final = x509.BasicConstraints(ca=True, path_length=0)
_LEAF_BASIC_CONSTRAINTS: Final = x509.BasicConstraints(ca=False, path_length=None)
_CA_KEY_USAGE: Final = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _leaf_key_usage(key_encipherment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


_LEAF_KEY_USAGE: Final = {
    KeyType.EC: _leaf_key_usage(key_encipherment=False),
    KeyType.RSA: _leaf_key_usage(key_encipherment=True),  # RSA key exchange in TLS 1.2
}
_SERVER_EKU: Final = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
_CLIENT_EKU: Final = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])


# --------------------------------------------------------------------------- keys


def _field(value: str | bytes) -> bytes:
    """Length-prefixed encoding, so that concatenated inputs cannot collide."""
    raw = value.encode() if isinstance(value, str) else value
    return len(raw).to_bytes(4, "big") + raw


def _hkdf(seed: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=_SHA256, length=length, salt=_HKDF_SALT, info=info).derive(seed)


def derive_private_key(seed: bytes, label: str, key_type: KeyType) -> PrivateKey:
    """The private key that ``seed`` and ``label`` name: same inputs, same key.

    The label separates the keys one seed makes (the CA's, each device's), so a whole
    fleet can share one seed.
    """
    if key_type is KeyType.EC:
        return _derive_ec(seed, label)
    if key_type is KeyType.RSA:
        return _derive_rsa(seed, label)
    raise IdentityError(f"unknown key type {key_type!r}")  # pragma: no cover


def _derive_ec(seed: bytes, label: str) -> ec.EllipticCurvePrivateKey:
    """P-256 key from HKDF-SHA256; 384 bits reduced mod n-1 leave a bias below 2**-128."""
    okm = _hkdf(seed, b"ec\x00" + label.encode(), 48)
    scalar = int.from_bytes(okm, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, _P256)


class _Stream:
    """Deterministic bytes: HMAC-SHA256 in counter mode under a key derived from the seed.

    A PRF in counter mode is a sound DRBG for this purpose (the keys are test fixtures),
    and unlike a one-shot SHAKE digest it can be read incrementally.
    """

    __slots__ = ("_buffer", "_counter", "_key")

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0
        self._buffer = b""

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            block = hmac.digest(self._key, self._counter.to_bytes(8, "big"), "sha256")
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def below(self, bound: int) -> int:
        """Uniform integer in [0, bound) by rejection sampling."""
        nbytes = (bound.bit_length() + 7) // 8
        excess = nbytes * 8 - bound.bit_length()
        while True:
            value = int.from_bytes(self.read(nbytes), "big") >> excess
            if value < bound:
                return value


def _small_primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for i in range(2, math.isqrt(limit) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit, i)))
    return [i for i, is_prime in enumerate(sieve) if is_prime]


_SIEVE_PRIMES: Final = _small_primes(1 << 16)[1:]  # the odd ones
_SIEVE_WINDOW: Final = 4096
"""Odd candidates sieved per random start: primes near 2**1024 are ~710 apart."""


def _is_probable_prime(candidate: int, stream: _Stream) -> bool:
    """Miller-Rabin with bases drawn from the stream (so the result is reproducible)."""
    d, s = candidate - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(_MILLER_RABIN_ROUNDS):
        base = 2 + stream.below(candidate - 3)
        x = pow(base, d, candidate)
        if x in (1, candidate - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, candidate)
            if x == candidate - 1:
                break
        else:
            return False
    return True


def _random_prime(stream: _Stream, bits: int) -> int:
    """A prime of exactly ``bits`` bits with its top two bits set, coprime to e - 1.

    From a random odd start, a window of odd candidates is sieved by every prime below
    2**16, and only the survivors (about one in ten) pay for Miller-Rabin: in pure Python
    a 1024-bit modular exponentiation costs milliseconds, so this is where time goes.
    """
    top = 3 << (bits - 2)  # so that p * q has exactly 2 * bits bits
    while True:
        start = int.from_bytes(stream.read(bits // 8), "big") | top | 1
        alive = bytearray([1]) * _SIEVE_WINDOW
        for prime in _SIEVE_PRIMES:
            # start + 2 * i == 0 (mod prime)  <=>  i == -start / 2 (mod prime)
            first = (prime - start % prime) * ((prime + 1) // 2) % prime
            alive[first::prime] = bytes(len(range(first, _SIEVE_WINDOW, prime)))
        for offset in itertools.compress(range(_SIEVE_WINDOW), alive):
            candidate = start + 2 * offset
            if candidate.bit_length() != bits:
                break
            if (candidate - 1) % _RSA_E == 0:  # e is prime: this keeps gcd(e, p - 1) == 1
                continue
            if _is_probable_prime(candidate, stream):
                return candidate


def _derive_rsa(seed: bytes, label: str) -> rsa.RSAPrivateKey:
    """RSA-2048 from two seeded 1024-bit primes, with the FIPS 186-5 sanity checks."""
    stream = _Stream(_hkdf(seed, b"rsa\x00" + label.encode(), 32))
    half = _RSA_BITS // 2
    p = _random_prime(stream, half)
    while True:
        q = _random_prime(stream, half)
        if abs(p - q) <= 1 << (half - 100):
            continue
        lam = math.lcm(p - 1, q - 1)
        d = pow(_RSA_E, -1, lam)
        if d > 1 << half:
            break
    if p < q:
        p, q = q, p
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e=_RSA_E, n=p * q),
    )
    return numbers.private_key()


def _key_type_of(key: object) -> KeyType:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return KeyType.EC
    if isinstance(key, rsa.RSAPrivateKey):
        return KeyType.RSA
    raise IdentityError(f"unsupported key {type(key).__name__}: need an EC or RSA key")


# ------------------------------------------------------------------ certificates


def certificate_id(certificate: x509.Certificate) -> str:
    """The 1-Click ``certificateId``: lowercase hex SHA-256 of the certificate's DER."""
    return certificate.fingerprint(_SHA256).hex()


@dataclass(frozen=True, eq=False)
class Identity:
    """A private key and the certificate that binds it to a name.

    Equal when certificate and key are (key objects themselves compare by identity), so
    two identities made from one seed compare equal.
    """

    key: PrivateKey
    certificate: x509.Certificate

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return self.certificate == other.certificate and self.key_pem() == other.key_pem()

    def __hash__(self) -> int:
        return hash(self.certificate)

    @property
    def certificate_id(self) -> str:
        return certificate_id(self.certificate)

    @property
    def common_name(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names:
            raise IdentityError("certificate has no common name in its subject")
        value = names[0].value
        return value if isinstance(value, str) else value.decode()

    def key_pem(self) -> bytes:
        """PKCS#8, unencrypted: what brokers and TLS libraries load without a password."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    if not common_name or len(common_name) > _CN_MAX:
        raise IdentityError(
            f"common name must be 1 to {_CN_MAX} characters, got {len(common_name)}: "
            f"{common_name[:80]!r}"
        )
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@functools.lru_cache(maxsize=64)
def _serial_prefix(kind: str, key_type: KeyType, window: Validity) -> bytes:
    return (
        b"clicksim serial v1"
        + _field(kind)
        + _field(key_type.value)
        + _field(window.not_before.isoformat())
        + _field(window.not_after.isoformat())
    )


def _serial(kind: str, seed: bytes, common_name: str, key_type: KeyType, window: Validity) -> int:
    """Deterministic serial: unique per issuer as long as the inputs differ.

    The kind, key type and validity are hashed too, so that re-issuing one name with
    another key type or window does not repeat a serial under the same CA.
    """
    digest = hashlib.sha256(
        _serial_prefix(kind, key_type, window) + _field(seed) + _field(common_name)
    ).digest()
    return (int.from_bytes(digest[:20], "big") >> (160 - _SERIAL_BITS)) or 1


def _subject_key_identifier(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    """RFC 5280 method 1 (SHA-1 of the subjectPublicKey bits), as ``from_public_key`` does.

    Done by hand because it is a sizeable share of ``issue_device``'s Python overhead.
    """
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        bits = public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    else:
        bits = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.sha1(bits, usedforsecurity=False).digest()


def _sign(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return builder.sign(key, _SHA256, ecdsa_deterministic=True)
    return builder.sign(key, _SHA256)  # PKCS#1 v1.5 is deterministic


class CertificateAuthority:
    """A one-level CA that issues the broker's, the backend's and the devices' certificates.

    What every issue needs from the CA (its name, key, AKI extension, validity) is worked
    out once here, so that ``issue_device`` only derives a key and signs.
    """

    __slots__ = (
        "_aki",
        "_issuer",
        "_sign_key",
        "_templates",
        "_validity",
        "identity",
        "key_type",
    )

    identity: Identity
    key_type: KeyType

    def __init__(self, identity: Identity) -> None:
        """Wrap an existing CA identity; prefer ``create`` or ``from_pem``."""
        self.identity = identity
        self.key_type = _key_type_of(identity.key)
        certificate = identity.certificate
        self._sign_key = identity.key
        self._issuer = certificate.subject
        try:
            ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            self._aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)
        except x509.ExtensionNotFound:
            self._aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
                identity.key.public_key()
            )
        self._validity = Validity(
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )
        self._templates: dict[
            tuple[KeyType, x509.ExtendedKeyUsage, Validity], x509.CertificateBuilder
        ] = {}

    @property
    def validity(self) -> Validity:
        """The CA's own window, which issued certificates default to."""
        return self._validity

    @classmethod
    def create(
        cls,
        *,
        seed: bytes,
        key_type: KeyType = KeyType.EC,
        validity: Validity = DEFAULT_VALIDITY,
        common_name: str = "clicksim device CA",
    ) -> CertificateAuthority:
        """A self-signed CA whose key and certificate are a function of the arguments."""
        name = _name(common_name)
        key = derive_private_key(seed, f"ca:{common_name}", key_type)
        public_key = key.public_key()
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(_serial("ca", seed, common_name, key_type, validity))
            .not_valid_before(validity.not_before)
            .not_valid_after(validity.not_after)
            .add_extension(_CA_BASIC_CONSTRAINTS, critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(ski, critical=False)
        )
        return cls(Identity(key=key, certificate=_sign(builder, key)))

    @classmethod
    def from_pem(cls, *, certificate_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        """Load a CA written earlier (e.g. to ``certs/``), checking the key fits the cert."""
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem)
        except ValueError as exc:
            raise IdentityError(f"CA certificate is not a PEM X.509 certificate: {exc}") from exc
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except TypeError as exc:
            raise IdentityError(f"CA key is encrypted; give an unencrypted key: {exc}") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise IdentityError(f"CA key is not a PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise IdentityError(f"CA key is {type(key).__name__}: need an EC or RSA key")
        spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        try:
            certified = certificate.public_key().public_bytes(*spki)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise IdentityError(f"CA certificate has an unusable public key: {exc}") from exc
        if key.public_key().public_bytes(*spki) != certified:
            raise IdentityError(
                f"CA key does not match the certificate {certificate.subject.rfc4514_string()}"
            )
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.value.ca:
            raise IdentityError(
                f"certificate {certificate.subject.rfc4514_string()} is not a CA "
                "(BasicConstraints ca=True missing)"
            )
        return cls(Identity(key=key, certificate=certificate))

    def issue_server(
        self,
        *,
        seed: bytes,
        hosts: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
        validity: Validity | None = None,
    ) -> Identity:
        """A serverAuth certificate for the broker, valid for ``hosts`` (DNS names or IPs).

        The CN is the first host; clients match the subjectAltName, which lists them all.
        """
        if isinstance(hosts, str) or not hosts:
            raise IdentityError(f"hosts must be a non-empty sequence of names, got {hosts!r}")
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                if not _HOSTNAME.fullmatch(host) or len(host) > _HOSTNAME_MAX:
                    raise IdentityError(
                        f"bad host {host!r}: need an IP address or an ASCII DNS name"
                    ) from None
                names.append(x509.DNSName(host))
        return self._issue(
            kind="server",
            seed=seed,
            common_name=hosts[0],
            label=f"server:{','.join(hosts)}",
            key_type=self.key_type,
            validity=validity,
            eku=_SERVER_EKU,
            san=x509.SubjectAlternativeName(names),
        )

    def issue_client(
        self,
        *,
        seed: bytes,
        common_name: str,
        key_type: KeyType | None = None,
        validity: Validity | None = None,
    ) -> Identity:
        """A clientAuth certificate, e.g. for the backend service (``BACKEND_CLIENT_CN``)."""
        return self._issue(
            kind="client",
            seed=seed,
            common_name=common_name,
            label=f"client:{common_name}",
            key_type=key_type or self.key_type,
            validity=validity,
            eku=_CLIENT_EKU,
        )

    def issue_device(
        self,
        device_id: str,
        *,
        seed: bytes,
        key_type: KeyType | None = None,
        validity: Validity | None = None,
    ) -> Identity:
        """A button's clientAuth certificate with CN = ``device_id``, as AWS IoT expects.

        The device id is part of the key label, so one seed can serve a whole fleet.
        """
        return self._issue(
            kind="device",
            seed=seed,
            common_name=device_id,
            label=f"device:{device_id}",
            key_type=key_type or self.key_type,
            validity=validity,
            eku=_CLIENT_EKU,
        )

    def _issue(
        self,
        *,
        kind: str,
        seed: bytes,
        common_name: str,
        label: str,
        key_type: KeyType,
        validity: Validity | None,
        eku: x509.ExtendedKeyUsage,
        san: x509.SubjectAlternativeName | None = None,
    ) -> Identity:
        name = _name(common_name)
        window = validity or self._validity
        key = derive_private_key(seed, label, key_type)
        public_key = key.public_key()
        builder = (
            self._template(key_type, eku, window)
            .subject_name(name)
            .public_key(public_key)
            .serial_number(_serial(kind, seed, common_name, key_type, window))
            .add_extension(
                x509.SubjectKeyIdentifier(_subject_key_identifier(public_key)), critical=False
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return Identity(key=key, certificate=_sign(builder, self._sign_key))

    def _template(
        self, key_type: KeyType, eku: x509.ExtendedKeyUsage, window: Validity
    ) -> x509.CertificateBuilder:
        """The part of a leaf that is the same for a whole fleet, built once.

        Builders are immutable (each step returns a new one), so a template can be shared.
        """
        cache_key = (key_type, eku, window)
        template = self._templates.get(cache_key)
        if template is None:
            if len(self._templates) >= _TEMPLATE_CACHE_SIZE:
                self._templates.clear()
            template = (
                x509.CertificateBuilder()
                .issuer_name(self._issuer)
                .not_valid_before(window.not_before)
                .not_valid_after(window.not_after)
                .add_extension(_LEAF_BASIC_CONSTRAINTS, critical=True)
                .add_extension(_LEAF_KEY_USAGE[key_type], critical=True)
                .add_extension(eku, critical=False)
                .add_extension(self._aki, critical=False)
            )
            self._templates[cache_key] = template
        return template
