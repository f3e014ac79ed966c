"""The reference backend assembled: store, service, HTTP API, MQTT ingest, callbacks.

One async context manager (aiomqtt's shape) that the CLI's ``backend serve`` and the
in-process runs of ``run`` / ``conformance`` / ``load`` all use. The harness talks
to it only over HTTP and MQTT, as to any third-party backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from simulator.backend.accounts import Account, Accounts, development_account
from simulator.backend.app import ApiApp
from simulator.backend.http import HttpRequest, HttpResponse, HttpServer
from simulator.backend.recorder import ClickRecorder
from simulator.backend.service import DEFAULT_REGION, DevicesService
from simulator.backend.store import InventoryDevice, Store, StoreError
from simulator.backend.webhooks import Deliverer
from simulator.device.fleet import FleetError, Manifest
from simulator.workspace import WorkspaceError, read_manifest

DEVICE_TYPE: Final = "button"
BROKER_CONNECT_TIMEOUT_S: Final = 15.0

log = logging.getLogger("clicksim.backend")


class BackendError(Exception):
    """The backend cannot start as configured; the message says what to change."""


@dataclass(frozen=True, kw_only=True)
class BackendConfig:
    ca_dir: Path
    """The clicksim CA folder: the embedded broker's server identity and the CA devices use."""
    db: Path | str = ":memory:"
    host: str = "127.0.0.1"
    port: int = 0
    mqtt_port: int = 0
    """The embedded broker's port; ignored with ``broker_url``."""
    broker_url: str | None = None
    """Consume clicks from this external broker instead of running the embedded one."""
    fleets: Sequence[Path] = ()
    accounts: Sequence[Account] = ()
    """None: one development account, keys derived from the database."""
    admin_token: str | None = None
    """None: a random one, shown at start."""
    region: str = DEFAULT_REGION
    clock: Callable[[], float] = field(default=time.time)
    """The service's clock (claim windows, event times); a scenario may move it."""


class ReferenceBackend:
    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.admin_token = config.admin_token or secrets.token_urlsafe(24)
        self._stack = contextlib.AsyncExitStack()
        self.api_url = ""
        self.mqtt_url = ""
        self.accounts: Accounts = Accounts(())
        self.recorder: ClickRecorder | None = None

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        config = self.config
        try:
            store = Store(config.db)
        except StoreError as exc:
            raise BackendError(str(exc)) from None
        self._stack.callback(store.close)
        self.store = store
        accounts = list(config.accounts) or [development_account(store.secret("dev-account"))]
        self.accounts = Accounts(accounts)
        deliverer = Deliverer(store, clock=config.clock)
        self.service = DevicesService(
            store, region=config.region, clock=config.clock, on_delivery=deliverer.wake
        )
        for path in config.fleets:
            self.import_manifest(_read(path))
        await self._stack.enter_async_context(deliverer)
        self.recorder = await self._stack.enter_async_context(
            ClickRecorder(self.service, clock=config.clock)
        )
        await self._start_ingest(self.recorder)
        app = ApiApp(
            self.service,
            self.accounts,
            admin={"fleets": self._admin_fleets, "status": self._admin_status},
        )
        http = await self._stack.enter_async_context(
            HttpServer(app, host=config.host, port=config.port)
        )
        self.api_url = f"http://{_url_host(config.host)}:{http.port}"

    async def _start_ingest(self, recorder: ClickRecorder) -> None:
        config = self.config
        if config.broker_url is not None:
            from simulator.backend.ingest import ExternalIngest
            from simulator.runtime.connection import client_tls_context, parse_broker_url

            endpoint = parse_broker_url(config.broker_url)
            tls: ssl.SSLContext | None = None
            if endpoint.tls:
                certificate, key = (config.ca_dir / "backend.crt", config.ca_dir / "backend.key")
                tls = client_tls_context(
                    ca_file=config.ca_dir / "ca.crt", certificate=certificate, key=key
                )
            ingest = await self._stack.enter_async_context(
                ExternalIngest(config.broker_url, tls, recorder.record)
            )
            try:
                # Until the subscription stands, the broker keeps no clicks for us.
                await asyncio.wait_for(ingest.wait_connected(), BROKER_CONNECT_TIMEOUT_S)
            except TimeoutError:
                raise BackendError(
                    f"cannot connect and subscribe to {ingest.address} within "
                    f"{BROKER_CONNECT_TIMEOUT_S:.0f} s (see the log for why)"
                ) from None
            self.mqtt_url = config.broker_url
            return
        from simulator.broker.embedded import EmbeddedBroker, EmbeddedBrokerError

        broker = EmbeddedBroker(
            host=config.host,
            port=config.mqtt_port,
            ca_dir=config.ca_dir,
            on_publish=recorder.record,
        )
        try:
            await self._stack.enter_async_context(broker)
        except EmbeddedBrokerError as exc:
            raise BackendError(str(exc)) from None
        self.mqtt_url = f"mqtts://{_url_host(config.host)}:{broker.port}"

    def import_manifest(self, manifest: Manifest) -> int:
        devices = [
            InventoryDevice(
                device_id=record.device_id,
                device_type=DEVICE_TYPE,
                certificate_id=record.certificate_id,
                claim_code=record.claim_code,
            )
            for record in manifest.devices
        ]
        try:
            return self.service.add_inventory(devices)
        except StoreError as exc:
            raise BackendError(str(exc)) from None

    # --- the admin endpoint ---------------------------------------------------------

    def _admin_fleets(self, request: HttpRequest) -> HttpResponse:
        if denied := self._admin_denied(request, "POST"):
            return denied
        try:
            manifest = Manifest.from_json(request.body.decode(errors="replace"), source="body")
            added = self.import_manifest(manifest)
        except (FleetError, BackendError) as exc:
            return _admin_reply(400, {"code": "InvalidRequestException", "message": str(exc)})
        log.info("admin: imported a fleet of %d devices (%d new)", len(manifest.devices), added)
        return _admin_reply(200, {"added": added, "devices": self.store.count_devices()})

    def _admin_status(self, request: HttpRequest) -> HttpResponse:
        if denied := self._admin_denied(request, "GET"):
            return denied
        assert self.recorder is not None
        return _admin_reply(
            200,
            {
                "devices": self.store.count_devices(),
                "events": self.store.count_events(),
                "pendingCallbacks": self.store.pending_deliveries(),
                "ingest": self.recorder.counters.as_dict(),
            },
        )

    def _admin_denied(self, request: HttpRequest, method: str) -> HttpResponse | None:
        given = dict(request.headers).get("authorization", "")
        expected = f"Bearer {self.admin_token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _admin_reply(
                401, {"code": "UnauthorizedException", "message": "admin token required"}
            )
        if request.method != method:
            return _admin_reply(
                405, {"code": "MethodNotAllowedException", "message": f"use {method}"}
            )
        return None


def _admin_reply(status: int, document: dict[str, object]) -> HttpResponse:
    headers: list[tuple[str, str]] = [("content-type", "application/json")]
    if status >= 400:
        headers.append(("x-amzn-errortype", str(document["code"])))
    return HttpResponse(status=status, headers=tuple(headers), body=json.dumps(document).encode())


def _read(path: Path) -> Manifest:
    try:
        return read_manifest(path)
    except (FleetError, WorkspaceError) as exc:
        raise BackendError(str(exc)) from None


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
