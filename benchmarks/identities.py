"""How fast can clicksim mint a fleet's identities, against a bare-bones baseline?

    python benchmarks/identities.py [--count 10000]

(a) baseline: ``ec.generate_private_key`` plus a minimal certificate (no extensions,
    random serial, random ECDSA nonce) signed by a CA key: roughly the floor for
    "one certificate per device" with this cryptography build.
(b) clicksim: ``CertificateAuthority.issue_device`` with a per-device seed (derived key,
    full extension set, deterministic signature), plus the key and certificate PEM a
    fleet writes to disk.

Both run single-process in this process, one after the other, so the ratio is fair.
The target is 10,000 devices in under 5 seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

try:
    from simulator.device.identity import CertificateAuthority
except ModuleNotFoundError:  # run from a checkout: python benchmarks/identities.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from simulator.device.identity import CertificateAuthority

TARGET_DEVICES = 10_000
TARGET_SECONDS = 5.0
WARMUP = 50


def baseline(count: int) -> float:
    """Seconds for ``count`` fresh keys with minimal certificates signed by a CA key."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "baseline CA")])
    not_before = datetime(2025, 1, 1, tzinfo=UTC)
    not_after = datetime(2050, 1, 1, tzinfo=UTC)
    algorithm = hashes.SHA256()
    started = time.perf_counter()
    for n in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"dev{n}")]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .sign(ca_key, algorithm)
        )
    return time.perf_counter() - started


def clicksim(count: int) -> float:
    """Seconds for ``count`` seeded device identities, serialised to PEM."""
    ca = CertificateAuthority.create(seed=b"benchmark CA")
    started = time.perf_counter()
    for n in range(count):
        seed = hashlib.sha256(b"benchmark device" + n.to_bytes(8, "big")).digest()
        identity = ca.issue_device(f"G030PM{n:010d}", seed=seed)
        identity.key_pem()
        identity.certificate_pem()
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=TARGET_DEVICES, help="devices per run")
    args = parser.parse_args(argv)
    count: int = args.count
    if count < 1:
        parser.error("--count must be at least 1")

    baseline(WARMUP)
    clicksim(WARMUP)
    base_s = baseline(count)
    sim_s = clicksim(count)

    base_rate, sim_rate = count / base_s, count / sim_s
    projected = TARGET_DEVICES / sim_rate
    print(f"{count} EC P-256 devices, single process")
    print(f"(a) baseline generate + minimal cert : {base_rate:8.0f} devices/s ({base_s:.2f} s)")
    print(f"(b) issue_device + key/cert PEM      : {sim_rate:8.0f} devices/s ({sim_s:.2f} s)")
    print(f"ratio (b)/(a) time                   : {sim_s / base_s:8.2f}x")
    verdict = "yes" if projected < TARGET_SECONDS else "NO"
    print(
        f"{TARGET_DEVICES:,} devices in {TARGET_SECONDS:g} s        : "
        f"{verdict} ({projected:.2f} s projected)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
