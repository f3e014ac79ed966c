"""Run a loaded scenario against a target: steps in, one result per step out.

The runner holds what a scenario acts with: an API client per account, the fleet's
devices (their seq and battery carried from click to click), the variables, the
simulated clock, and the webhook inbox. Each leaf step (call, click, until, sleep,
advance, webhook, set, check, request, publish) gives one :class:`StepResult`;
containers (repeat, for_each, parallel) give their children's. The first failure
stops the run: later steps are listed as skipped, since they would act on a state the
scenario did not expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from simulator.api.client import ApiReply, ApiUnreachable, DevicesClient, Signing
from simulator.api.model import load_model, paginators, validate_output
from simulator.api.sigv4 import Credentials
from simulator.backend.http import HttpRequest, HttpResponse, HttpServer
from simulator.device.firmware import ClickRecognised, GaveUp
from simulator.device.fleet import DeviceRecord
from simulator.device.gestures import press_timings
from simulator.device.profile import MqttVersion
from simulator.protocol import ClickType, ProtocolError, click_topic, format_timestamp
from simulator.runtime.button import press_once
from simulator.runtime.fleet import FleetDevice
from simulator.scenario import model
from simulator.scenario.matchers import Matcher, PathMissing, Resolve, lookup, match_body, show
from simulator.scenario.report import Outcome, Progress, ScenarioResult, StepResult
from simulator.scenario.target import ScenarioClock, Target, Workspace
from simulator.scenario.variables import UnknownVariable, Variables

CLICK_TIMEOUT_S: Final = 30.0
MAX_PAGES: Final = 1000
"""A paginated call gives up (and fails) when a token still comes back after this many."""
STATUS: Final = "$status"
"""The save path that names the reply's HTTP status rather than a body member."""


class Unreachable(Exception):
    """The backend stopped answering: the run cannot go on (exit status 2)."""


class WebhookInbox:
    """An HTTP endpoint the scenario's callbacks point at; it keeps what it receives."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self.url = ""
        self._arrived = asyncio.Event()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[WebhookInbox]:
        async with HttpServer(self._receive, host="127.0.0.1", port=0) as server:
            self.url = f"http://127.0.0.1:{server.port}/hook"
            yield self

    async def _receive(self, request: HttpRequest) -> HttpResponse:
        try:
            self.events.append(json.loads(request.body))
        except ValueError:
            self.events.append(request.body.decode(errors="replace"))
        self._arrived.set()
        return HttpResponse(status=200, headers=(("content-type", "application/json"),), body=b"{}")

    def document(self) -> dict[str, object]:
        return {"count": len(self.events), "events": list(self.events)}

    async def next_arrival(self, timeout: float) -> None:
        self._arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), timeout)


class Runner:
    def __init__(
        self,
        scenario: model.Scenario,
        target: Target,
        workspace: Workspace,
        *,
        seed: str,
        clock: ScenarioClock,
        progress: Progress | None = None,
        webhook: WebhookInbox | None = None,
    ) -> None:
        self.scenario = scenario
        self.target = target
        self.seed = seed
        self.clock = clock
        self.progress = progress
        self.webhook = webhook
        self.clients = {
            name: DevicesClient(target.api_url, account.credentials, region=target.region)
            for name, account in target.accounts.items()
        }
        self.stranger = DevicesClient(
            target.api_url, unknown_credentials(seed), region=target.region
        )
        """Signs ``sign: unknown-key`` requests: a well-formed key no backend knows."""
        self.devices: dict[str, FleetDevice] = {
            device.record.device_id: device for device in workspace.fleet.devices
        }
        self.records: dict[str, DeviceRecord] = {
            device_id: device.record for device_id, device in self.devices.items()
        }
        started = clock()
        self.variables = Variables(
            {
                "devices": [device.record.device_id for device in workspace.fleet.devices],
                "certificate_ids": [
                    device.record.certificate_id for device in workspace.fleet.devices
                ],
                "claim_code": workspace.fleet.manifest.claim_code,
                "accounts": {
                    name: {"id": account.account_id} for name, account in target.accounts.items()
                },
                "webhook": {"url": webhook.url if webhook is not None else None},
                "region": target.region,
                "start": format_timestamp(started - 60),
            },
            clock=clock,
        )
        self.results: list[StepResult] = []
        self._stopped = ""

    async def run(self) -> ScenarioResult:
        started_wall, started = time.time(), time.perf_counter()
        if self.progress is not None:
            self.progress.begin(self.scenario.name, len(self.scenario.steps))
        try:
            await self._steps(self.scenario.steps, self.variables, prefix="")
        finally:
            if self.progress is not None:
                self.progress.close()
        return ScenarioResult(
            scenario=self.scenario.name,
            path=str(self.scenario.path),
            target=self.target.description,
            seed=self.seed,
            started_at=started_wall,
            seconds=time.perf_counter() - started,
            steps=self.results,
        )

    # --- walking the steps ----------------------------------------------------------

    async def _steps(self, steps: Sequence[model.Step], scope: Variables, *, prefix: str) -> None:
        for number, step in enumerate(steps, start=1):
            await self._step(step, scope, f"{prefix}{number}")

    async def _step(self, step: model.Step, scope: Variables, path: str) -> None:
        if isinstance(step, model.RepeatStep):
            for index in range(step.times):
                inner = scope.child({"index": index})
                await self._steps(step.steps, inner, prefix=f"{path}[{index}].")
            return
        if isinstance(step, model.ForEachStep):
            for index, device_id in enumerate(self.records):
                inner = scope.child({step.variable: device_id, "index": index})
                await self._steps(step.steps, inner, prefix=f"{path}[{index}].")
            return
        if isinstance(step, model.ParallelStep):
            await asyncio.gather(
                *(
                    self._step(branch, scope, f"{path}.{number}")
                    for number, branch in enumerate(step.steps, start=1)
                )
            )
            return
        await self._leaf(step, scope, path)

    async def _leaf(self, step: model.Step, scope: Variables, path: str) -> None:
        name = self._display_name(step, scope)
        result = StepResult(
            path=path, name=name, kind=_KIND[type(step)], outcome=Outcome.PASSED, seconds=0.0,
            line=step.line,
        )  # fmt: skip
        if self._stopped:
            skipped = dataclasses.replace(result, outcome=Outcome.SKIPPED, message=self._stopped)
            self._record(skipped)
            return
        skip = self._skip_reason(step)
        if skip:
            self._record(dataclasses.replace(result, outcome=Outcome.SKIPPED, message=skip))
            return
        if self.progress is not None:
            self.progress.start(path, name)
        started = time.perf_counter()
        try:
            result = await self._execute(step, scope, result)
        except (UnknownVariable, PathMissing) as exc:
            result = dataclasses.replace(result, outcome=Outcome.FAILED, message=str(exc))
        except Unreachable as exc:
            result = dataclasses.replace(result, outcome=Outcome.ERROR, message=str(exc))
        result = dataclasses.replace(result, seconds=time.perf_counter() - started)
        self._record(result)
        if result.outcome is Outcome.FAILED:
            self._stopped = f"not run: step {path} failed"
        elif result.outcome is Outcome.ERROR:
            self._stopped = f"not run: step {path} could not run"

    def _record(self, result: StepResult) -> None:
        self.results.append(result)
        if self.progress is not None:
            self.progress.finish(result)

    def _skip_reason(self, step: model.Step) -> str:
        needs_clock = model.BACKEND_CLOCK in step.needs or (
            isinstance(step, model.AdvanceStep) and step.backend
        )
        if needs_clock and not self.target.backend_clock:
            return (
                "skipped: needs the backend's clock, which the runner can move only in the "
                "embedded reference backend"
            )
        return ""

    def _display_name(self, step: model.Step, scope: Variables) -> str:
        try:
            return str(scope.resolve(step.name))
        except UnknownVariable:
            return step.name

    # --- the leaves -----------------------------------------------------------------

    async def _execute(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        handler = _HANDLERS[type(step)]
        return await handler(self, step, scope, result)

    async def _call(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        assert isinstance(step, model.CallStep)
        if step.paginate:
            reply, failure = await self._paginate(step, scope)
            if failure:
                result = self._with_exchange(result, step.account, step.expect, reply)
                return dataclasses.replace(result, outcome=Outcome.FAILED, message=failure)
            failures = self._check(step.expect, reply, scope, operation=None)
        else:
            reply = await self._send(step, scope)
            failures = self._check(step.expect, reply, scope, operation=step.operation)
        result = self._with_exchange(result, step.account, step.expect, reply)
        if failures:
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=failures[0])
        _save(step.save, reply, scope)
        return result

    async def _paginate(
        self, step: model.CallStep, scope: Variables
    ) -> tuple[ApiReply, str | None]:
        """Every page of a paginated call: the merged reply, or a page's reply and why it
        fails (not 2xx, not the output shape, a token or an item seen before)."""
        paginator = paginators()[step.operation]
        token_in, token_out = paginator["input_token"], paginator["output_token"]
        key = paginator["result_key"]
        shape = step.expect is not None and step.expect.shape
        params = scope.resolve(dict(step.params))
        assert isinstance(params, dict)
        items: list[object] = []
        item_pages: dict[str, int] = {}
        token_pages: dict[str, int] = {}
        token: object = None
        for page in range(1, MAX_PAGES + 1):
            sent = params if token is None else {**params, token_in: token}
            reply = await self._api_call(step.account, step.operation, sent)
            if not 200 <= reply.status < 300:
                return (
                    reply,
                    f"page {page}: status {reply.status} ({reply.error_code}), expected 2xx",
                )
            if shape:
                problems = validate_output(
                    load_model().operations[step.operation], reply.body, load_model()
                )
                if problems:
                    return reply, f"page {page}: not the output shape: {'; '.join(problems)}"
            body = {} if reply.body is None else reply.body
            if not isinstance(body, dict):
                return reply, f"page {page}: the body is not a JSON object"
            found = body.get(key)
            if not isinstance(found, list | None):
                return reply, f"page {page}: {key} is not a list"
            for item in found or ():
                text = json.dumps(item, sort_keys=True)
                if text in item_pages:
                    first = item_pages[text]
                    where = (
                        f"twice on page {page}" if first == page else f"on pages {first} and {page}"
                    )
                    return reply, f"item {show(item)} {where}"
                item_pages[text] = page
                items.append(item)
            token = body.get(token_out)
            if token is None:
                return dataclasses.replace(reply, body={key: items, "pages": page}), None
            text = json.dumps(token, sort_keys=True)
            if text in token_pages:
                return reply, (
                    f"page {page}: {token_out} {show(token)} came back "
                    f"(first on page {token_pages[text]})"
                )
            token_pages[text] = page
        return reply, f"still a {token_out} after {MAX_PAGES} pages"

    async def _request(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        assert isinstance(step, model.RequestStep)
        path = scope.resolve(step.path)
        headers: dict[str, str | None] = {}
        problem = ""
        if not isinstance(path, str) or not model.REQUEST_TARGET.fullmatch(path):
            problem = (
                f"path {show(path)}: a path starts with / and is printable ASCII without "
                "spaces or # (percent-encode the rest)"
            )
        for name, value in step.headers.items():
            resolved = None if value is None else scope.resolve(value)
            text = None if resolved is None else str(resolved)
            if text is not None and any(
                ord(c) < 0x20 or ord(c) == 0x7F or ord(c) > 0xFF for c in text
            ):
                problem = f"header {name}: {show(text)} is not Latin-1 without control characters"
            headers[name] = text
        body = b""
        if step.body is not None:
            resolved_body = scope.resolve(step.body)
            body = (
                resolved_body.encode()
                if isinstance(resolved_body, str)
                else json.dumps(resolved_body).encode()
            )
        sent = {
            "operation": "request",
            "as": step.account,
            "method": step.method,
            "path": path,
            "headers": dict(headers) or None,
            "sign": step.sign,
            "body": body.decode(errors="replace") or None,
        }
        if problem:
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=problem, sent=sent)
        assert isinstance(path, str)
        client = self.stranger if step.sign == "unknown-key" else self._client(step.account)
        try:
            reply = await client.request(
                step.method, path, body=body, headers=headers, sign=_SIGNING[step.sign]
            )
        except ApiUnreachable as exc:
            raise Unreachable(str(exc)) from None
        except ValueError as exc:  # what the loader could not see, such as Host: ${null}
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=str(exc), sent=sent)
        failures = self._check(step.expect, reply, scope, operation=None)
        result = self._with_exchange(result, step.account, step.expect, reply)
        result = dataclasses.replace(result, sent={**sent, "url": reply.request.url})
        if failures:
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=failures[0])
        _save(step.save, reply, scope)
        return result

    async def _publish(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        assert isinstance(step, model.PublishStep)
        device_id = scope.resolve(step.device)
        if not isinstance(device_id, str) or device_id not in self.devices:
            message = f"{show(device_id)} is not a device of the fleet"
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=message)
        device = self.devices[device_id]
        topic = scope.resolve(step.topic) if step.topic is not None else None
        if topic is None:
            try:
                topic = click_topic(device.profile.payload, device_id)
            except ProtocolError as exc:
                return dataclasses.replace(result, outcome=Outcome.FAILED, message=str(exc))
        payload = scope.resolve(step.payload)
        data = (
            payload.encode()
            if isinstance(payload, str)
            else json.dumps(payload, separators=(",", ":")).encode()
        )
        result = dataclasses.replace(
            result,
            sent={"device": device_id, "topic": topic, "qos": 1, "payload": data.decode()},
            expected={"acknowledged": step.expect_acknowledged},
        )
        if not isinstance(topic, str) or not topic or any(c in topic for c in "#+\0"):
            message = f"topic {show(topic)}: a topic to publish to holds no wildcard (+, #) or NUL"
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=message)
        try:
            refused = await self._mqtt_publish(device, topic, data, step.timeout)
        except _NoConnection as exc:
            broker = f"{self.target.broker.host}:{self.target.broker.port}"
            message = (
                f"the device could not connect to the broker at {broker} ({exc}): "
                "is it up, and does it trust the fleet's CA?"
            )
            return dataclasses.replace(result, outcome=Outcome.ERROR, message=message)
        result = dataclasses.replace(result, received={"acknowledged": refused is None})
        if step.expect_acknowledged and refused is not None:
            message = f"not acknowledged (QoS 1): {refused}"
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=message)
        if not step.expect_acknowledged and refused is None:
            message = "the broker acknowledged the publish; expected no PUBACK"
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=message)
        return result

    async def _mqtt_publish(
        self, device: FleetDevice, topic: str, payload: bytes, timeout: float
    ) -> str | None:
        """Connect as ``device``, publish at QoS 1 and disconnect: ``None`` once the
        broker acknowledged it, else why not; ``_NoConnection`` if it could not connect."""
        broker = self.target.broker
        mqtt = device.profile.mqtt
        v5 = mqtt.version is MqttVersion.V5
        client = aiomqtt.Client(
            broker.host,
            broker.port,
            identifier=device.record.device_id,
            username=broker.username,
            password=broker.password,
            tls_context=device.tls_context() if broker.tls else None,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            keepalive=mqtt.keepalive_s,
            clean_session=None if v5 else True,
            timeout=timeout,
        )
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise _NoConnection(str(exc) or type(exc).__name__) from None
        # aiomqtt takes any PUBACK as success; an MQTT 5 one may carry a failure reason.
        reasons: list[ReasonCode] = []
        paho = client._client
        acknowledged = paho.on_publish

        def note(*args: Any) -> None:
            reasons.append(args[3])
            if acknowledged is not None:
                acknowledged(*args)

        paho.on_publish = note
        try:
            await client.publish(topic, payload, qos=1, timeout=timeout)
        except aiomqtt.MqttError as exc:
            return f"{exc or type(exc).__name__} (within {timeout:g} s)"
        finally:
            with contextlib.suppress(aiomqtt.MqttError, OSError):
                await client.__aexit__(None, None, None)
        refusals = [reason for reason in reasons if reason.is_failure]
        if refusals:
            return f"the PUBACK says {refusals[0]} (reason code {refusals[0].value:#04x})"
        return None

    async def _until(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        assert isinstance(step, model.UntilStep)
        deadline = time.monotonic() + step.timeout
        attempts = 0
        while True:
            attempts += 1
            reply = await self._send(step.call, scope)
            failures = self._check(step.call.expect, reply, scope, operation=step.call.operation)
            if not failures:
                _save(step.call.save, reply, scope)
                return dataclasses.replace(result, message=f"matched after {attempts} attempt(s)")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failed = self._with_exchange(result, step.call.account, step.call.expect, reply)
                return dataclasses.replace(
                    failed,
                    outcome=Outcome.FAILED,
                    message=f"no match within {step.timeout:g} s ({attempts} attempts): "
                    f"{failures[0]}",
                )
            await asyncio.sleep(min(step.interval, remaining))

    async def _click(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        assert isinstance(step, model.ClickStep)
        device_id = scope.resolve(step.device)
        if not isinstance(device_id, str) or device_id not in self.devices:
            message = f"{device_id!r} is not a device of the fleet"
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=message)
        device = self.devices[device_id]
        durations = step.press_ms or press_timings(
            ClickType((step.click_type or "single").upper()), device.profile.timings
        )
        firmware = dataclasses.replace(device, record=self.records[device_id]).firmware(
            rng=random.Random(f"{self.seed}/{device_id}/{self.records[device_id].seq}")
        )
        recognised: list[str] = []
        gave_up: list[GaveUp] = []
        try:
            await press_once(
                firmware,
                durations,
                broker=self.target.broker,
                tls_context=device.tls_context() if self.target.broker.tls else None,
                timeout=CLICK_TIMEOUT_S,
                clock=self.clock,
                on_event=lambda event: _note_click(event, recognised, gave_up),
                until="delivered",
            )
            timed_out = ""
        except TimeoutError as exc:
            timed_out = str(exc)
        self.records[device_id] = dataclasses.replace(
            self.records[device_id], seq=firmware.next_seq, battery=firmware.battery.state
        )
        counters = firmware.counters
        received = {
            "clicks": recognised,
            "acknowledged": counters.published,
            "remainingLife": round(firmware.battery.remaining_life(self.clock()), 2),
        }
        result = dataclasses.replace(
            result, sent={"device": device_id, "press_ms": list(durations)}, received=received
        )
        delivered = bool(recognised) and counters.published == len(recognised)
        if gave_up and not counters.published:
            broker = f"{self.target.broker.host}:{self.target.broker.port}"
            message = (
                f"the device could not connect to the broker at {broker} "
                f"({gave_up[0].attempts} attempts): is it up, and does it trust the fleet's CA?"
            )
            return dataclasses.replace(result, outcome=Outcome.ERROR, message=message)
        if step.expect_delivered and not delivered:
            reason = timed_out or (
                "the device made no click (is its battery dead?)"
                if not recognised
                else f"{len(recognised)} click(s), {counters.published} acknowledged"
            )
            return dataclasses.replace(
                result, outcome=Outcome.FAILED, expected={"delivered": True}, message=reason
            )
        if not step.expect_delivered and counters.published:
            return dataclasses.replace(
                result,
                outcome=Outcome.FAILED,
                expected={"delivered": False},
                message=f"{counters.published} click(s) acknowledged; expected none",
            )
        return result

    async def _sleep(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        assert isinstance(step, model.SleepStep)
        await asyncio.sleep(step.seconds)
        return result

    async def _advance(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        assert isinstance(step, model.AdvanceStep)
        self.clock.advance(step.seconds)
        return dataclasses.replace(
            result, message=f"simulated time is now {format_timestamp(self.clock())}"
        )

    async def _webhook(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        assert isinstance(step, model.WebhookStep)
        assert self.webhook is not None, "the loader requires webhook: true"
        deadline = time.monotonic() + step.timeout
        while True:
            document = self.webhook.document()
            failures = match_body(document, step.expect.body, scope.resolve)
            if not failures:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return dataclasses.replace(
                    result,
                    outcome=Outcome.FAILED,
                    message=f"within {step.timeout:g} s: {failures[0]}",
                    expected=_describe(step.expect),
                    received=document,
                )
            await self.webhook.next_arrival(remaining)

    async def _check_value(
        self, step: model.Step, scope: Variables, result: StepResult
    ) -> StepResult:
        assert isinstance(step, model.CheckStep)
        value = scope.resolve(step.value)
        failure = step.expect.check(value, resolve=scope.resolve)
        result = dataclasses.replace(result, expected=step.expect.describe(), received=value)
        if failure is not None:
            return dataclasses.replace(result, outcome=Outcome.FAILED, message=failure)
        return result

    async def _set(self, step: model.Step, scope: Variables, result: StepResult) -> StepResult:
        assert isinstance(step, model.SetStep)
        for variable, value in step.values.items():
            scope.set_global(variable, scope.resolve(value))
        return result

    # --- calls ----------------------------------------------------------------------

    async def _send(self, step: model.CallStep, scope: Variables) -> ApiReply:
        params = scope.resolve(dict(step.params))
        assert isinstance(params, dict)
        return await self._api_call(step.account, step.operation, params)

    async def _api_call(
        self, account: str | None, operation: str, params: dict[str, object]
    ) -> ApiReply:
        try:
            return await self._client(account).call(operation, params)
        except ApiUnreachable as exc:
            raise Unreachable(str(exc)) from None

    def _client(self, account: str | None) -> DevicesClient:
        return self.clients[account or self.scenario.accounts[0]]

    def _check(
        self,
        expect: model.Expect | None,
        reply: ApiReply,
        scope: Variables,
        *,
        operation: str | None,
    ) -> list[str]:
        """Why ``reply`` is not what ``expect`` says; ``operation`` (else None) gives the
        output shape that ``shape: true`` holds the body to."""
        failures: list[str] = []
        any_status = expect is None or (expect.status is None and expect.error is None)
        if any_status and not 200 <= reply.status < 300:
            failures.append(f"status {reply.status} ({reply.error_code}), expected 2xx")
        if expect is None:
            return failures
        if expect.status is not None and reply.status not in expect.status:
            wanted = " or ".join(str(status) for status in expect.status)
            failures.append(f"status {reply.status} ({reply.error_code}), expected {wanted}")
        if expect.error is not None and reply.error_code != expect.error:
            failures.append(f"error {reply.error_code or 'none'}, expected {expect.error}")
        if not failures:
            failures += match_body(reply.body, expect.body, scope.resolve)
            failures += _match_headers(reply.headers, expect.headers, scope.resolve)
        if not failures and expect.shape and operation is not None:
            problems = validate_output(load_model().operations[operation], reply.body, load_model())
            if problems:
                failures.append(f"not the output shape of {operation}: {'; '.join(problems)}")
        return failures

    def _with_exchange(
        self,
        result: StepResult,
        account: str | None,
        expect: model.Expect | None,
        reply: ApiReply,
    ) -> StepResult:
        received: dict[str, object] = {
            "status": reply.status,
            "error": reply.error_code,
            "body": reply.body,
        }
        if expect is not None and expect.headers:
            received["headers"] = dict(reply.headers)
        return dataclasses.replace(
            result,
            sent={
                "operation": reply.request.operation,
                "as": account or self.scenario.accounts[0],
                "method": reply.request.method,
                "url": reply.request.url,
                "body": reply.request.body or None,
            },
            expected=_describe(expect) if expect is not None else {"status": "2xx"},
            received=received,
        )


class _NoConnection(Exception):
    """A publish step's device could not connect to the broker."""


_SIGNING: Final[dict[str, Signing]] = {
    "true": "sigv4",
    "false": "none",
    "unknown-key": "sigv4",
    "bad-signature": "bad-signature",
    "skewed": "skewed",
}


def unknown_credentials(seed: str) -> Credentials:
    """A well-formed access key pair, made from the seed, that no backend knows."""
    digest = hashlib.sha256(f"clicksim-unknown-key\0{seed}".encode()).hexdigest()
    return Credentials(access_key="AKIA" + digest[:16].upper(), secret_key=digest[16:56])


def _match_headers(
    headers: Mapping[str, str], expectations: Sequence[tuple[str, Matcher]], resolve: Resolve
) -> list[str]:
    """Every failed header expectation as ``header NAME: reason`` (names in any case)."""
    failures: list[str] = []
    for name, matcher in expectations:
        value = headers.get(name.lower())
        if value is None:
            reason = matcher.check_missing(f"no {name} header")
        else:
            reason = matcher.check(value, resolve=resolve)
        if reason is not None:
            failures.append(f"header {name}: {reason}")
    return failures


def _save(save: Mapping[str, str], reply: ApiReply, scope: Variables) -> None:
    """``save``: body paths into variables; ``$status`` is the reply's HTTP status."""
    for variable, body_path in save.items():
        value = reply.status if body_path == STATUS else lookup(reply.body, body_path)
        scope.set_global(variable, value)


def _describe(expect: model.Expect) -> dict[str, Any]:
    described: dict[str, Any] = {}
    if expect.status is not None:
        described["status"] = list(expect.status)
    if expect.error is not None:
        described["error"] = expect.error
    if expect.body:
        described["body"] = {path: matcher.describe() for path, matcher in expect.body}
    if expect.headers:
        described["headers"] = {name: matcher.describe() for name, matcher in expect.headers}
    if expect.shape:
        described["shape"] = True
    return described


def _note_click(event: object, recognised: list[str], gave_up: list[GaveUp]) -> None:
    if isinstance(event, ClickRecognised):
        recognised.append(event.click.click_type.value)
    elif isinstance(event, GaveUp):
        gave_up.append(event)


_Handler = Callable[[Runner, Any, Variables, StepResult], Awaitable[StepResult]]

_HANDLERS: Final[dict[type, _Handler]] = {
    model.CallStep: Runner._call,
    model.UntilStep: Runner._until,
    model.ClickStep: Runner._click,
    model.SleepStep: Runner._sleep,
    model.AdvanceStep: Runner._advance,
    model.WebhookStep: Runner._webhook,
    model.SetStep: Runner._set,
    model.CheckStep: Runner._check_value,
    model.RequestStep: Runner._request,
    model.PublishStep: Runner._publish,
}

_KIND: Final[dict[type, str]] = {
    model.CallStep: "call",
    model.UntilStep: "until",
    model.ClickStep: "click",
    model.SleepStep: "sleep",
    model.AdvanceStep: "advance",
    model.WebhookStep: "webhook",
    model.SetStep: "set",
    model.CheckStep: "check",
    model.RequestStep: "request",
    model.PublishStep: "publish",
}
