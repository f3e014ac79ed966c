"""A mosquitto configuration with the embedded broker's guarantees.

For users who test against a real broker: TLS with the fleet's CA, a client
certificate required, the certificate's CN used as the username, and an ACL that
lets each device publish only under its own id and the backend identity
(``clicksim-backend``) read every device topic.

One guarantee mosquitto cannot give: it does not tie the MQTT client id to the
certificate. A device cannot publish under another's id (the ACL is by CN), but it
can take over another device's session by connecting with that client id. The
embedded broker refuses such a CONNECT.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simulator.device.identity import BACKEND_CLIENT_CN
from simulator.protocol import BACKEND_SUBSCRIPTIONS, STATUS_SUBSCRIPTION, device_topic_patterns

_PLACEHOLDER = "DEVICE-ID-PLACEHOLDER"


@dataclass(frozen=True, kw_only=True, slots=True)
class MosquittoFiles:
    config: Path
    acl: Path


def acl_text() -> str:
    """Per-device patterns (``%u`` is the certificate's CN) and the backend's reads."""
    lines = ["# clicksim: devices publish under their own id only (%u = certificate CN)"]
    for topic in device_topic_patterns(_PLACEHOLDER):
        lines.append(f"pattern write {topic.replace(_PLACEHOLDER, '%u')}")
    lines += ["", f"user {BACKEND_CLIENT_CN}"]
    lines += [f"topic read {topic}" for topic in BACKEND_SUBSCRIPTIONS]
    lines.append(f"topic read {STATUS_SUBSCRIPTION}")
    return "\n".join(lines) + "\n"


def config_text(*, ca_dir: Path, acl: Path, host: str, port: int, user: str | None = None) -> str:
    """``user``: who mosquitto runs as when started as root (it must read the keys)."""
    ca = ca_dir.resolve()
    run_as = [f"user {user}"] if user else []
    return "\n".join(
        [
            "# clicksim: mutual TLS, CN as username, per-device ACL",
            *run_as,
            "per_listener_settings false",
            "allow_anonymous false",
            f"acl_file {acl.resolve()}",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "",
            f"listener {port} {host}",
            f"cafile {ca / 'ca.crt'}",
            f"certfile {ca / 'server.crt'}",
            f"keyfile {ca / 'server.key'}",
            "require_certificate true",
            "use_identity_as_username true",
            "",
        ]
    )


def write_mosquitto_config(
    *, ca_dir: Path, out_dir: Path, host: str, port: int, user: str | None = None
) -> MosquittoFiles:
    """Write ``mosquitto.conf`` and ``mosquitto.acl`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = MosquittoFiles(config=out_dir / "mosquitto.conf", acl=out_dir / "mosquitto.acl")
    files.acl.write_text(acl_text())
    files.config.write_text(
        config_text(ca_dir=ca_dir, acl=files.acl, host=host, port=port, user=user)
    )
    return files
