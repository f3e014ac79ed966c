"""Scenario files: YAML in, a checked ``Scenario`` out, or one line saying what is wrong.

Everything that can be known before running is checked here, so that a typo fails
in a second rather than after a fleet was made and half a scenario ran: unknown keys
(with the known ones listed), types, operations and their parameters, accounts,
matchers, durations, regular expressions and the syntax of ``${...}``. Whether a
variable will exist is not checked: steps save variables as the scenario runs.

Every error is ``FILE:LINE: PLACE: WHAT`` on one line (``steps[2].expect.body``);
the YAML is composed into nodes (``yaml.compose`` with the safe loader), which keep
their lines. Booleans are YAML 1.2's (``true``/``false``, so ``NO`` stays text) and
dates stay text, as the API takes ISO 8601 strings.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from simulator.api.model import load_model, paginators
from simulator.protocol import CLAIM_CODE, ClickType
from simulator.resources import profile_names
from simulator.scenario import model
from simulator.scenario.matchers import (
    MATCHER_KEYS,
    AllOf,
    Compare,
    Contains,
    Equals,
    Exists,
    Json,
    Length,
    Matcher,
    Not,
    OneOf,
    PathError,
    Regex,
    parse_path,
    show,
)
from simulator.scenario.variables import (
    BUILTINS,
    VARIABLE_NAME,
    TemplateError,
    check_template,
)

STEP_KINDS: Final = (
    "call",
    "click",
    "until",
    "repeat",
    "for_each",
    "parallel",
    "sleep",
    "advance",
    "webhook",
    "set",
    "check",
    "request",
    "publish",
)
ACCOUNT_NAME: Final = re.compile(r"^[a-z][a-z0-9_-]*$")
MAX_FLEET: Final = 1000
MAX_PRESS_MS: Final = 60_000
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_INTERVAL: Final = 0.25
DEFAULT_NO_ACK: Final = 3.0
"""How long a publish that must not be acknowledged waits for a PUBACK by default."""
NEEDS: Final = (model.BACKEND_CLOCK,)

_TOP: Final = ("name", "description", "fleet", "accounts", "webhook", "steps", "conformance")
_CONFORMANCE: Final = ("kind", "operations")
_FLEET: Final = ("profile", "count", "seed", "claim_code")
_COMMON: Final = ("name", "as", "needs")
_KIND_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "call": ("with", "expect", "save", "paginate"),
    "click": ("type", "press_ms", "expect_delivered"),
    "until": ("timeout", "interval"),
    "repeat": ("steps",),
    "for_each": ("steps",),
    "parallel": (),
    "sleep": (),
    "advance": ("backend",),
    "webhook": ("timeout",),
    "set": (),
    "check": ("expect",),
    "request": ("expect", "save"),
    "publish": ("payload", "topic", "expect_acknowledged", "timeout"),
}
_ACTING: Final = frozenset({"call", "until", "request", "repeat", "for_each", "parallel"})
"""Kinds that take ``as``: a call acts as it, a container passes it to its steps."""
_PARALLEL: Final = ("call", "click", "until", "request", "publish")
_UNTIL: Final = ("call", "as", "with", "expect", "save")
_EXPECT: Final = ("status", "error", "body", "headers", "shape")
_REQUEST: Final = ("method", "path", "body", "headers", "sign")
_SIGN: Final[dict[object, str]] = {
    True: "true",
    False: "false",
    **{mode: mode for mode in model.SIGN_MODES[2:]},
}
_TOKEN: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP method or header name (RFC 9110's token)."""
_FRAMING: Final = ("content-length", "transfer-encoding")
_SIGNER_SETS: Final = ("authorization", "x-amz-date", "x-amz-security-token")

_CLICK_TYPES: Final = {
    text: click_type for click_type in ClickType for text in (click_type.lower(), click_type)
}
_SIMPLE_KEY: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_SCHEMA: Final = "schema.json"


class ScenarioError(ValueError):
    """A scenario that cannot run; one line: ``FILE:LINE: PLACE: WHAT``."""


class _Loader(yaml.SafeLoader):
    """The safe loader with YAML 1.2's booleans and without timestamps."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag != "tag:yaml.org,2002:timestamp"
        and (tag != "tag:yaml.org,2002:bool" or first in "tTfF")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the format, for editors and other tools."""
    text = resources.files("simulator.scenario").joinpath(_SCHEMA).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def load_scenario(path: Path) -> model.Scenario:
    """Read and check a scenario file; a ``.toml`` profile is found beside it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}:1: not UTF-8 text ({exc.reason})") from None
    return load_scenario_text(text, source=str(path), base_dir=path.parent)


def load_scenario_text(text: str, *, source: str, base_dir: Path) -> model.Scenario:
    """Check a scenario's text; ``source`` names it in errors and gives its default
    name, ``base_dir`` is where a ``.toml`` profile path starts from."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ScenarioError(
            f"{source}:{line}: not valid YAML: character #x{exc.character:04x}: {exc.reason}"
        ) from None
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise ScenarioError(f"{source}:{_yaml_problem(exc)}") from None
        return _Builder(loader, source=source, base_dir=base_dir).scenario(root)
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """``LINE: not valid YAML: [CONTEXT on line N: ]PROBLEM`` from PyYAML's error."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = " ".join(str(exc.problem or exc.context).split())
    if exc.problem and exc.context and exc.context_mark is not None:
        problem = f"{' '.join(exc.context.split())} on line {exc.context_mark.line + 1}: {problem}"
    return f"{line}: not valid YAML: {problem}"


@dataclass(frozen=True)
class _Common:
    """What every step may say: its name, the account and its needs."""

    name: str | None
    account: str | None
    needs: frozenset[str]
    line: int


_Fields = dict[str, tuple[Node, Node]]


class _Builder:
    def __init__(self, loader: _Loader, *, source: str, base_dir: Path) -> None:
        self.loader = loader
        self.source = source
        self.base_dir = base_dir
        self.accounts: tuple[str, ...] = (model.DEFAULT_ACCOUNT,)
        self.webhook = False

    # --- the scenario -----------------------------------------------------------------

    def scenario(self, root: Node | None) -> model.Scenario:
        if root is None:
            raise ScenarioError(f"{self.source}:1: empty: a scenario is a mapping with steps")
        if not isinstance(root, MappingNode):
            self.fail(root, "scenario", f"must be a mapping with steps, got {self.got(root)}")
        fields = self.mapping(root, "", _TOP)
        if "accounts" in fields:
            self.accounts = self.account_names(fields["accounts"][1])
        if "webhook" in fields:
            self.webhook = self.boolean(fields["webhook"][1], "webhook")
        if "steps" not in fields:
            self.fail(root, "steps", "missing: a scenario needs a list of steps")
        return model.Scenario(
            name=(
                self.text(fields["name"][1], "name") if "name" in fields else Path(self.source).stem
            ),
            description=(
                self.text(fields["description"][1], "description", empty=True)
                if "description" in fields
                else ""
            ),
            path=self.base_dir / Path(self.source).name,
            fleet=self.fleet(fields["fleet"]) if "fleet" in fields else _default_fleet(),
            accounts=self.accounts,
            webhook=self.webhook,
            steps=self.steps(fields["steps"][1], "steps", self.accounts[0]),
            conformance=self.conformance(fields["conformance"])
            if "conformance" in fields
            else None,
        )

    def conformance(self, entry: tuple[Node, Node]) -> model.ConformanceHeader:
        key_node, node = entry
        fields = self.mapping(node, "conformance", _CONFORMANCE)
        if "kind" not in fields:
            self.fail(node, "conformance.kind", "missing: model or reference")
        if "operations" not in fields:
            self.fail(node, "conformance.operations", "missing: the operations the check is about")
        value = fields["kind"][1]
        kind = self.text(value, "conformance.kind")
        if kind not in model.CONFORMANCE_KINDS:
            self.fail(
                value,
                "conformance.kind",
                f"unknown kind {kind!r}{_suggest(kind, model.CONFORMANCE_KINDS)} "
                f"(kinds: {', '.join(model.CONFORMANCE_KINDS)})",
            )
        value = fields["operations"][1]
        items = self.sequence(value, "conformance.operations")
        if not items:
            self.fail(value, "conformance.operations", "empty: name at least one operation")
        operations: list[str] = []
        for index, item in enumerate(items):
            where = f"conformance.operations[{index}]"
            name = self.operation(item, where)
            if name in operations:
                self.fail(item, where, f"{name!r} is given twice")
            operations.append(name)
        return model.ConformanceHeader(
            kind=kind, operations=tuple(operations), line=_line(key_node)
        )

    def account_names(self, node: Node) -> tuple[str, ...]:
        items = self.sequence(node, "accounts")
        if not items:
            self.fail(node, "accounts", "empty: name at least one account")
        names: list[str] = []
        for index, item in enumerate(items):
            where = f"accounts[{index}]"
            name = self.text(item, where)
            if not ACCOUNT_NAME.fullmatch(name):
                self.fail(item, where, f"{name!r}: an account name is [a-z][a-z0-9_-]*")
            if name in names:
                self.fail(item, where, f"{name!r} is given twice")
            names.append(name)
        return tuple(names)

    def fleet(self, entry: tuple[Node, Node]) -> model.FleetSpec:
        key_node, node = entry
        fields = self.mapping(node, "fleet", _FLEET)
        profile = model.DEFAULT_PROFILE
        if "profile" in fields:
            profile = self.profile(fields["profile"][1])
        claim_code = None
        if "claim_code" in fields:
            value = fields["claim_code"][1]
            claim_code = self.text(value, "fleet.claim_code")
            if not CLAIM_CODE.fullmatch(claim_code):
                self.fail(
                    value,
                    "fleet.claim_code",
                    f"{claim_code!r}: a claim code is C- and 10 to 38 letters or digits",
                )
        seed = None
        if "seed" in fields:
            value = fields["seed"][1]
            found = self.scalar(value, "fleet.seed")
            if not isinstance(found, str | int) or isinstance(found, bool) or found == "":
                self.fail(value, "fleet.seed", f"must be text or an integer, got {self.got(value)}")
            seed = str(found)
        count = 1
        if "count" in fields:
            count = self.integer(fields["count"][1], "fleet.count", low=1, high=MAX_FLEET)
        return model.FleetSpec(
            profile=profile,
            count=count,
            seed=seed,
            claim_code=claim_code,
            line=_line(key_node),
        )

    def profile(self, node: Node) -> str:
        """A bundled profile's name, or the absolute path of a ``.toml`` file."""
        reference = self.text(node, "fleet.profile")
        if reference.endswith(".toml"):
            path = (self.base_dir / reference).resolve()
            if not path.is_file():
                self.fail(node, "fleet.profile", f"no such profile file: {path}")
            return str(path)
        if "/" in reference or reference not in profile_names():
            known = ", ".join(profile_names())
            self.fail(
                node,
                "fleet.profile",
                f"unknown profile {reference!r} (bundled: {known}; or a path ending .toml)",
            )
        return reference

    # --- steps ------------------------------------------------------------------------

    def steps(self, node: Node, where: str, account: str) -> tuple[model.Step, ...]:
        items = self.sequence(node, where)
        if not items:
            self.fail(node, where, "empty: give at least one step")
        return tuple(self.step(item, f"{where}[{i}]", account) for i, item in enumerate(items))

    def step(
        self, node: Node, where: str, account: str, kinds: Sequence[str] = STEP_KINDS
    ) -> model.Step:
        fields = self.keys(node, where)
        given = [key for key in fields if key in STEP_KINDS]
        if len(given) > 1:
            self.fail(
                fields[given[1]][0],
                where,
                f"two step kinds, {given[0]} and {given[1]}: a step does one thing",
            )
        if not given:
            for key, (key_node, _) in fields.items():
                if key not in _COMMON:
                    self.fail(
                        key_node,
                        _child(where, key),
                        f"unknown step kind{_suggest(key, STEP_KINDS)} "
                        f"(kinds: {', '.join(STEP_KINDS)})",
                    )
            self.fail(node, where, f"no step kind: give one of {', '.join(STEP_KINDS)}")
        kind = given[0]
        if kind not in kinds:
            self.fail(
                fields[kind][0],
                where,
                f"a {kind} step cannot run in parallel (only {', '.join(kinds)})",
            )
        self.refuse_unknown(fields, where, (*_COMMON, kind, *_KIND_KEYS[kind]))
        if "as" in fields:
            key_node, value = fields["as"]
            if kind not in _ACTING:
                self.fail(
                    key_node,
                    _child(where, "as"),
                    f"a {kind} step acts as no account "
                    f"(as belongs on {', '.join(sorted(_ACTING))} steps)",
                )
            account = self.account(value, _child(where, "as"))
        common = _Common(
            name=self.text(fields["name"][1], _child(where, "name"), template=True)
            if "name" in fields
            else None,
            account=account,
            needs=self.needs(fields["needs"][1], _child(where, "needs"))
            if "needs" in fields
            else frozenset(),
            line=_line(node),
        )
        build: Callable[[_Fields, str, _Common], model.Step] = getattr(self, f"_{kind}")
        return build(fields, where, common)

    def _call(self, fields: _Fields, where: str, common: _Common) -> model.CallStep:
        """A call step, or the call inside an until (``fields`` then are its)."""
        operation = self.operation(fields["call"][1], _child(where, "call"))
        account = common.account or self.accounts[0]
        paginate = False
        if "paginate" in fields:
            paginate = self.paginate(operation, fields, where)
        return model.CallStep(
            name=common.name or f"{operation} as {account}" + (" (all pages)" if paginate else ""),
            account=account,
            needs=common.needs,
            line=common.line,
            operation=operation,
            params=self.params(operation, fields["with"][1], _child(where, "with"))
            if "with" in fields
            else {},
            expect=self.expect(fields["expect"], _child(where, "expect"))
            if "expect" in fields
            else None,
            save=self.save(fields["save"][1], _child(where, "save")) if "save" in fields else {},
            paginate=paginate,
        )

    def paginate(self, operation: str, fields: _Fields, where: str) -> bool:
        key_node, value = fields["paginate"]
        place = _child(where, "paginate")
        if not self.boolean(value, place):
            return False
        paginated = paginators()
        if operation not in paginated:
            self.fail(
                key_node,
                place,
                f"{operation} has no paginator in the model "
                f"(paginated: {', '.join(sorted(paginated))})",
            )
        token = paginated[operation]["input_token"]
        if "with" in fields:
            known = known_params(operation)
            for name, (name_node, _) in self.keys(fields["with"][1], _child(where, "with")).items():
                if known.get(name) == token:
                    self.fail(
                        name_node,
                        _child(_child(where, "with"), name),
                        f"paginate follows {token} itself: leave it out",
                    )
        return True

    def _request(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        inner_where = _child(where, "request")
        node = fields["request"][1]
        inner = self.mapping(node, inner_where, _REQUEST)
        for key in ("method", "path"):
            if key not in inner:
                self.fail(
                    node, _child(inner_where, key), "missing: a request needs a method and a path"
                )
        value = inner["method"][1]
        method = self.text(value, _child(inner_where, "method"))
        if not _TOKEN.fullmatch(method):
            self.fail(value, _child(inner_where, "method"), f"{method!r} is not an HTTP method")
        value = inner["path"][1]
        path = self.text(value, _child(inner_where, "path"), template=True)
        if not model.REQUEST_TARGET.fullmatch(path):
            self.fail(
                value,
                _child(inner_where, "path"),
                f"{path!r}: a path starts with / and is printable ASCII without spaces or # "
                "(percent-encode the rest)",
            )
        sign = "true"
        if "sign" in inner:
            value = inner["sign"][1]
            written = self.scalar(value, _child(inner_where, "sign"))
            if not isinstance(written, str | bool) or written not in _SIGN:
                self.fail(
                    value,
                    _child(inner_where, "sign"),
                    f"must be {', '.join(model.SIGN_MODES[:-1])} or {model.SIGN_MODES[-1]}, "
                    f"got {self.got(value)}",
                )
            sign = _SIGN[written]
        body: object = None
        if "body" in inner:
            value = inner["body"][1]
            body = self.value(value, _child(inner_where, "body"))
            if not isinstance(body, str | dict | list):
                self.fail(
                    value,
                    _child(inner_where, "body"),
                    f"must be text (sent as is) or a mapping or list (sent as JSON), "
                    f"got {self.got(value)}",
                )
        headers = (
            self.request_headers(inner["headers"][1], _child(inner_where, "headers"), sign)
            if "headers" in inner
            else {}
        )
        account = common.account or self.accounts[0]
        signed = {"true": "", "false": " unsigned"}.get(sign, f" ({sign})")
        return model.RequestStep(
            name=common.name or f"{method} {path} as {account}{signed}",
            account=account,
            needs=common.needs,
            line=common.line,
            method=method,
            path=path,
            body=body,
            headers=headers,
            sign=sign,
            expect=self.expect(fields["expect"], _child(where, "expect"), operation=False)
            if "expect" in fields
            else None,
            save=self.save(fields["save"][1], _child(where, "save")) if "save" in fields else {},
        )

    def request_headers(self, node: Node, where: str, sign: str) -> dict[str, str | None]:
        headers: dict[str, str | None] = {}
        seen: dict[str, str] = {}
        for name, (key_node, value) in self.keys(node, where).items():
            place = _child(where, name)
            lower = name.lower()
            if not _TOKEN.fullmatch(name):
                self.fail(key_node, place, f"{name!r} is not a header name")
            if lower in seen:
                self.fail(
                    key_node, place, f"the same header as {seen[lower]!r} (names ignore case)"
                )
            seen[lower] = name
            if lower in _FRAMING:
                self.fail(key_node, place, "set from the body: leave it out")
            if lower in _SIGNER_SETS and sign != "false":
                self.fail(key_node, place, "the signer sets it; to send your own, say sign: false")
            headers[name] = self.header_value(value, place)
            if lower == "host" and headers[name] is None and sign != "false":
                self.fail(value, place, "a signed request needs its Host: give a value, not null")
        return headers

    def header_value(self, node: Node, where: str) -> str | None:
        """Text or a number (sent as text), with ``${...}``; null leaves a default out."""
        value = self.scalar(node, where)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(node, where, f"must be text, a number or null, got {show(value)}")
        text = value if isinstance(value, str) else str(value)
        self.template(node, where, text)
        if any(ord(char) < 0x20 or ord(char) == 0x7F or ord(char) > 0xFF for char in text):
            self.fail(
                node, where, f"{text!r}: a header value is Latin-1 without control characters"
            )
        return text

    def _publish(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        key_node, node = fields["publish"]
        device = self.text(node, _child(where, "publish"), template=True)
        if "payload" not in fields:
            self.fail(key_node, _child(where, "payload"), "missing: say what to publish")
        value = fields["payload"][1]
        payload = self.value(value, _child(where, "payload"))
        if not isinstance(payload, str | dict | list):
            self.fail(
                value,
                _child(where, "payload"),
                f"must be text (sent as is) or a mapping or list (sent as JSON), "
                f"got {self.got(value)}",
            )
        topic = None
        if "topic" in fields:
            value = fields["topic"][1]
            topic = self.text(value, _child(where, "topic"), template=True)
            if any(char in topic for char in "#+\0"):
                self.fail(
                    value,
                    _child(where, "topic"),
                    f"{topic!r}: a topic to publish to holds no wildcard (+, #) or NUL",
                )
        acknowledged = True
        if "expect_acknowledged" in fields:
            acknowledged = self.boolean(
                fields["expect_acknowledged"][1], _child(where, "expect_acknowledged")
            )
        return model.PublishStep(
            name=common.name
            or f"publish as {device}"
            + (f" to {topic}" if topic else "")
            + ("" if acknowledged else " (not acknowledged)"),
            account=None,
            needs=common.needs,
            line=common.line,
            device=device,
            payload=payload,
            topic=topic,
            expect_acknowledged=acknowledged,
            timeout=self.seconds(
                fields, where, "timeout", DEFAULT_TIMEOUT if acknowledged else DEFAULT_NO_ACK
            ),
        )

    def _until(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        inner_where = _child(where, "until")
        inner_node = fields["until"][1]
        inner = self.mapping(inner_node, inner_where, _UNTIL)
        if "call" not in inner:
            self.fail(inner_node, inner_where, "call: missing; until polls a call")
        account = common.account
        if "as" in inner:
            if "as" in fields:
                self.fail(inner["as"][0], _child(inner_where, "as"), "as is given on the step too")
            account = self.account(inner["as"][1], _child(inner_where, "as"))
        call = self._call(inner, inner_where, _Common(None, account, common.needs, common.line))
        return model.UntilStep(
            name=common.name or f"until {call.operation} as {call.account} matches",
            account=call.account,
            needs=common.needs,
            line=common.line,
            call=call,
            timeout=self.seconds(fields, where, "timeout", DEFAULT_TIMEOUT),
            interval=self.seconds(fields, where, "interval", DEFAULT_INTERVAL),
        )

    def _click(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        device = self.text(fields["click"][1], _child(where, "click"), template=True)
        click_type: ClickType | None = ClickType.SINGLE
        press_ms: tuple[int, ...] | None = None
        if "type" in fields:
            value = fields["type"][1]
            written = self.scalar(value, _child(where, "type"))
            if not isinstance(written, str) or written not in _CLICK_TYPES:
                self.fail(
                    value,
                    _child(where, "type"),
                    f"must be single, double or long, got {self.got(value)}",
                )
            click_type = _CLICK_TYPES[written]
        if "press_ms" in fields:
            key_node, value = fields["press_ms"]
            if "type" in fields:
                self.fail(key_node, _child(where, "press_ms"), "give type or press_ms, not both")
            press_ms = self.press_ms(value, _child(where, "press_ms"))
            click_type = None
        delivered = True
        if "expect_delivered" in fields:
            delivered = self.boolean(
                fields["expect_delivered"][1], _child(where, "expect_delivered")
            )
        how = click_type.lower() if click_type else ",".join(map(str, press_ms or ())) + " ms"
        return model.ClickStep(
            name=common.name
            or f"click {how} on {device}" + ("" if delivered else " (not delivered)"),
            account=None,
            needs=common.needs,
            line=common.line,
            device=device,
            click_type=click_type,
            press_ms=press_ms,
            expect_delivered=delivered,
        )

    def _repeat(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        times = self.integer(fields["repeat"][1], _child(where, "repeat"), low=1)
        return model.RepeatStep(
            name=common.name or f"repeat {times} times",
            account=None,
            needs=common.needs,
            line=common.line,
            times=times,
            steps=self.inner_steps(fields, where, "repeat", common),
        )

    def _for_each(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        variable = self.variable(fields["for_each"][1], _child(where, "for_each"))
        return model.ForEachStep(
            name=common.name or f"for each device as {variable}",
            account=None,
            needs=common.needs,
            line=common.line,
            variable=variable,
            steps=self.inner_steps(fields, where, "for_each", common),
        )

    def inner_steps(
        self, fields: _Fields, where: str, kind: str, common: _Common
    ) -> tuple[model.Step, ...]:
        if "steps" not in fields:
            self.fail(fields[kind][0], _child(where, "steps"), f"missing: {kind} needs steps")
        account = common.account or self.accounts[0]
        return self.steps(fields["steps"][1], _child(where, "steps"), account)

    def _parallel(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        node = fields["parallel"][1]
        inner_where = _child(where, "parallel")
        items = self.sequence(node, inner_where)
        if not items:
            self.fail(node, inner_where, "empty: give the steps to run at once")
        account = common.account or self.accounts[0]
        return model.ParallelStep(
            name=common.name or f"{len(items)} steps at once",
            account=None,
            needs=common.needs,
            line=common.line,
            steps=tuple(
                self.step(item, f"{inner_where}[{i}]", account, _PARALLEL)
                for i, item in enumerate(items)
            ),
        )

    def _sleep(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        seconds = self.duration(fields["sleep"][1], _child(where, "sleep"), zero=True)
        return model.SleepStep(
            name=common.name or f"sleep {_duration_text(seconds)}",
            account=None,
            needs=common.needs,
            line=common.line,
            seconds=seconds,
        )

    def _advance(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        seconds = self.duration(fields["advance"][1], _child(where, "advance"))
        backend = True
        if "backend" in fields:
            backend = self.boolean(fields["backend"][1], _child(where, "backend"))
        return model.AdvanceStep(
            name=common.name
            or f"advance {_duration_text(seconds)}" + ("" if backend else " (devices only)"),
            account=None,
            needs=common.needs,
            line=common.line,
            seconds=seconds,
            backend=backend,
        )

    def _webhook(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        key_node, node = fields["webhook"]
        inner_where = _child(where, "webhook")
        if not self.webhook:
            self.fail(
                key_node,
                inner_where,
                "the scenario must set 'webhook: true' (at the top) to run a receiver",
            )
        inner = self.mapping(node, inner_where, ("expect",))
        if "expect" not in inner:
            self.fail(node, inner_where, "expect: missing; say what the receiver must have got")
        expect_node = inner["expect"][1]
        return model.WebhookStep(
            name=common.name or "webhook receiver matches",
            account=None,
            needs=common.needs,
            line=common.line,
            expect=model.Expect(
                status=None,
                error=None,
                body=self.body(expect_node, _child(inner_where, "expect")),
                line=_line(inner["expect"][0]),
            ),
            timeout=self.seconds(fields, where, "timeout", DEFAULT_TIMEOUT),
        )

    def _set(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        node = fields["set"][1]
        inner_where = _child(where, "set")
        values: dict[str, object] = {}
        for name, (key_node, value) in self.keys(node, inner_where).items():
            self.variable(key_node, _child(inner_where, name))
            values[name] = self.value(value, _child(inner_where, name))
        if not values:
            self.fail(node, inner_where, "empty: give variables and their values")
        return model.SetStep(
            name=common.name or f"set {', '.join(values)}",
            account=None,
            needs=common.needs,
            line=common.line,
            values=values,
        )

    def _check(self, fields: _Fields, where: str, common: _Common) -> model.Step:
        key_node, node = fields["check"]
        if "expect" not in fields:
            self.fail(key_node, _child(where, "expect"), "missing: say what the value must be")
        value = self.value(node, _child(where, "check"))
        return model.CheckStep(
            name=common.name or f"check {value if isinstance(value, str) else show(value)}",
            account=None,
            needs=common.needs,
            line=common.line,
            value=value,
            expect=self.matcher(fields["expect"][1], _child(where, "expect")),
        )

    # --- parts of steps ---------------------------------------------------------------

    def operation(self, node: Node, where: str) -> str:
        name = self.text(node, where)
        operations = load_model().operations
        if name not in operations:
            self.fail(
                node,
                where,
                f"unknown operation {name!r}{_suggest(name, operations)} "
                f"(operations: {', '.join(sorted(operations))})",
            )
        return name

    def params(self, operation: str, node: Node, where: str) -> dict[str, object]:
        known = known_params(operation)
        params: dict[str, object] = {}
        seen: dict[str, str] = {}
        for name, (key_node, value) in self.keys(node, where).items():
            place = _child(where, name)
            if name not in known:
                listed = ", ".join(sorted(set(known.values()))) or "none"
                self.fail(
                    key_node,
                    place,
                    f"{operation} has no parameter {name!r}{_suggest(name, known)} "
                    f"(its parameters: {listed})",
                )
            if known[name] in seen:
                self.fail(key_node, place, f"the same parameter as {seen[known[name]]!r}; give one")
            seen[known[name]] = name
            params[name] = self.value(value, place)
        return params

    def expect(
        self, entry: tuple[Node, Node], where: str, *, operation: bool = True
    ) -> model.Expect:
        """A reply's expectations; ``shape`` only where there is an ``operation``."""
        key_node, node = entry
        fields = self.mapping(node, where, _EXPECT)
        status: tuple[int, ...] | None = None
        if "status" in fields:
            value = fields["status"][1]
            items = value.value if isinstance(value, SequenceNode) else [value]
            if not items:
                self.fail(value, _child(where, "status"), "empty: give a status or a list")
            status = tuple(
                self.integer(item, _child(where, "status"), low=100, high=599) for item in items
            )
        error = None
        if "error" in fields:
            key_node, value = fields["error"]
            error = self.text(value, _child(where, "error"))
            if status is not None and all(200 <= code < 300 for code in status):
                self.fail(
                    key_node,
                    _child(where, "error"),
                    f"an error cannot come with status {', '.join(map(str, status))}",
                )
        body = self.body(fields["body"][1], _child(where, "body")) if "body" in fields else ()
        headers = (
            self.expect_headers(fields["headers"][1], _child(where, "headers"))
            if "headers" in fields
            else ()
        )
        shape = False
        if "shape" in fields:
            shape_key, value = fields["shape"]
            shape = self.boolean(value, _child(where, "shape"))
            if shape and not operation:
                self.fail(
                    shape_key,
                    _child(where, "shape"),
                    "a request has no operation whose output shape the body could fit "
                    "(shape belongs on call and until)",
                )
            if shape and (
                error is not None
                or (status is not None and not all(200 <= code < 300 for code in status))
            ):
                self.fail(
                    shape_key,
                    _child(where, "shape"),
                    "the output shape is that of a 2xx reply: it cannot come with an error "
                    "or a status outside 2xx",
                )
        return model.Expect(
            status=status,
            error=error,
            body=body,
            line=_line(key_node),
            headers=headers,
            shape=shape,
        )

    def expect_headers(self, node: Node, where: str) -> tuple[tuple[str, Matcher], ...]:
        """Header name -> matcher; names are matched in any case, so each once."""
        found: list[tuple[str, Matcher]] = []
        seen: dict[str, str] = {}
        for name, (key_node, value) in self.keys(node, where).items():
            place = _child(where, name)
            if not _TOKEN.fullmatch(name):
                self.fail(key_node, place, f"{name!r} is not a header name")
            if name.lower() in seen:
                self.fail(
                    key_node,
                    place,
                    f"the same header as {seen[name.lower()]!r} (names ignore case)",
                )
            seen[name.lower()] = name
            found.append((name, self.matcher(value, place)))
        return tuple(found)

    def body(self, node: Node, where: str) -> tuple[tuple[str, Matcher], ...]:
        """Path -> matcher pairs (``expect.body``, a webhook's ``expect``, ``json``)."""
        found: list[tuple[str, Matcher]] = []
        for path, (key_node, value) in self.keys(node, where).items():
            place = _child(where, path)
            try:
                parse_path(path)
            except PathError as exc:
                self.fail(key_node, place, str(exc))
            found.append((path, self.matcher(value, place)))
        return tuple(found)

    def matcher(self, node: Node, where: str) -> Matcher:
        """A mapping of matcher keys (several: all must hold), else ``equals``."""
        if not isinstance(node, MappingNode):
            return Equals(self.value(node, where))
        fields = self.keys(node, where)
        named = [key for key in fields if key in MATCHER_KEYS]
        others = [key for key in fields if key not in MATCHER_KEYS]
        for key in others:
            close = _suggest(key, MATCHER_KEYS, cutoff=0.8)
            if named or close:
                beside = f" beside {named[0]}" if named else ""
                self.fail(
                    fields[key][0],
                    _child(where, key),
                    f"unknown matcher{beside}{close} (matchers: {', '.join(MATCHER_KEYS)}; "
                    "to compare a whole object, write equals: {...})",
                )
        if not named:
            return Equals(self.value(node, where))
        matchers = [
            self.one_matcher(key, value, _child(where, key)) for key, (_, value) in fields.items()
        ]
        return matchers[0] if len(matchers) == 1 else AllOf(tuple(matchers))

    def one_matcher(self, key: str, node: Node, where: str) -> Matcher:
        if key == "equals":
            return Equals(self.value(node, where))
        if key == "contains":
            return Contains(self.value(node, where))
        if key == "regex":
            pattern = self.text(node, where, template=True, empty=True)
            if "${" not in pattern:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    self.fail(node, where, f"{pattern!r} is not a regular expression: {exc}")
            return Regex(pattern)
        if key in ("gt", "ge", "lt", "le"):
            return Compare(key, self.number(node, where))
        if key == "length":
            if isinstance(node, MappingNode):
                inner = self.matcher(node, where)
                if isinstance(inner, Equals):
                    self.fail(node, where, "give a number or matchers such as {ge: 1}")
                return Length(inner)
            return Length(Equals(self.number(node, where, integer=True)))
        if key == "exists":
            return Exists(self.boolean(node, where))
        if key == "json":
            if isinstance(node, MappingNode):
                return Json(self.body(node, where))
            return Json(Equals(self.value(node, where)))
        if key == "not":
            return Not(self.matcher(node, where))
        options = self.sequence(node, where)
        if not options:
            self.fail(node, where, "empty: give the values allowed")
        return OneOf(tuple(self.value(item, f"{where}[{i}]") for i, item in enumerate(options)))

    def number(self, node: Node, where: str, *, integer: bool = False) -> object:
        """A number (an integer >= 0 if ``integer``), or one ``${...}`` that gives it."""
        value = self.scalar(node, where)
        if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            self.template(node, where, value)
            return value
        if integer:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                self.fail(node, where, f"must be an integer >= 0 or ${{...}}, got {show(value)}")
        elif not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(node, where, f"must be a number or ${{...}}, got {show(value)}")
        return value

    def save(self, node: Node, where: str) -> dict[str, str]:
        saved: dict[str, str] = {}
        for name, (key_node, value) in self.keys(node, where).items():
            place = _child(where, name)
            self.variable(key_node, place)
            path = self.text(value, place)
            try:
                parse_path(path)
            except PathError as exc:
                self.fail(value, place, str(exc))
            saved[name] = path
        return saved

    def press_ms(self, node: Node, where: str) -> tuple[int, ...]:
        items = node.value if isinstance(node, SequenceNode) else [node]
        durations = tuple(
            self.integer(item, where, low=1, high=MAX_PRESS_MS, what="a duration in ms")
            for item in items
        )
        if len(durations) % 2 == 0:
            self.fail(
                node, where, f"press, gap, press... must end with a press (got {len(durations)})"
            )
        return durations

    def needs(self, node: Node, where: str) -> frozenset[str]:
        items = node.value if isinstance(node, SequenceNode) else [node]
        found = set()
        for item in items:
            need = self.text(item, where)
            if need not in NEEDS:
                self.fail(item, where, f"unknown need {need!r} (known: {', '.join(NEEDS)})")
            found.add(need)
        return frozenset(found)

    def account(self, node: Node, where: str) -> str:
        name = self.text(node, where)
        if name not in self.accounts:
            self.fail(
                node,
                where,
                f"unknown account {name!r} (the scenario's accounts: {', '.join(self.accounts)})",
            )
        return name

    def variable(self, node: Node, where: str) -> str:
        name = self.text(node, where)
        if not VARIABLE_NAME.fullmatch(name):
            self.fail(node, where, f"{name!r}: a variable name is letters, digits and _")
        if name in BUILTINS:
            self.fail(node, where, f"{name!r} is a built-in variable; choose another name")
        return name

    def seconds(self, fields: _Fields, where: str, key: str, default: float) -> float:
        if key not in fields:
            return default
        return self.duration(fields[key][1], _child(where, key))

    def duration(self, node: Node, where: str, *, zero: bool = False) -> float:
        value = self.scalar(node, where)
        seconds: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str):
            try:
                seconds = model.parse_duration(value)
            except ValueError as exc:
                self.fail(node, where, str(exc))
        if seconds is None or seconds < 0 or (seconds == 0 and not zero):
            bound = "at least 0" if zero else "more than 0"
            self.fail(
                node,
                where,
                f"must be a duration {bound}, such as 500ms, 10s, 5m, 2h, 3d or seconds, "
                f"got {show(value)}",
            )
        return seconds

    # --- YAML nodes -------------------------------------------------------------------

    def fail(self, node: Node, where: str, what: str) -> NoReturn:
        place = f"{where}: " if where else ""
        raise ScenarioError(f"{self.source}:{_line(node)}: {place}{what}")

    def got(self, node: Node) -> str:
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        return show(self.scalar(node, ""))

    def keys(self, node: Node, where: str) -> _Fields:
        """A mapping's entries by key (text, each once), with their key nodes."""
        if not isinstance(node, MappingNode):
            self.fail(node, where, f"must be a mapping, got {self.got(node)}")
        try:
            self.loader.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            self.fail(node, where, f"bad merge: {exc.problem}")
        fields: _Fields = {}
        for key_node, value in node.value:
            key = self.scalar(key_node, where) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                self.fail(key_node, where, f"keys must be text, got {self.got(key_node)}")
            if key in fields:
                first = _line(fields[key][0])
                self.fail(key_node, _child(where, key), f"given twice (first on line {first})")
            fields[key] = (key_node, value)
        return fields

    def mapping(self, node: Node, where: str, known: Sequence[str]) -> _Fields:
        fields = self.keys(node, where)
        self.refuse_unknown(fields, where, known)
        return fields

    def refuse_unknown(self, fields: _Fields, where: str, known: Sequence[str]) -> None:
        for key, (key_node, _) in fields.items():
            if key not in known:
                self.fail(
                    key_node,
                    _child(where, key),
                    f"unknown key{_suggest(key, known)} (known here: {', '.join(known)})",
                )

    def sequence(self, node: Node, where: str) -> list[Node]:
        if not isinstance(node, SequenceNode):
            self.fail(node, where, f"must be a list, got {self.got(node)}")
        items: list[Node] = node.value
        return items

    def scalar(self, node: Node, where: str) -> object:
        """A scalar as JSON has them: text, a finite number, a boolean or null."""
        if not isinstance(node, ScalarNode):
            kind = "a mapping" if isinstance(node, MappingNode) else "a list"
            self.fail(node, where, f"must be a single value, got {kind}")
        try:
            value: object = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.fail(node, where, " ".join(f"not a YAML value: {problem}".split()))
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(node, where, f"{node.value!r} is not a JSON number")
        if value is not None and not isinstance(value, str | int | float | bool):
            self.fail(node, where, f"{node.value!r} is {type(value).__name__}, not a JSON value")
        return value

    def value(self, node: Node, where: str) -> object:
        """Any JSON value; text may hold ``${...}``, whose syntax is checked."""
        if isinstance(node, MappingNode):
            return {
                key: self.value(item, _child(where, key))
                for key, (_, item) in self.keys(node, where).items()
            }
        if isinstance(node, SequenceNode):
            return [self.value(item, f"{where}[{i}]") for i, item in enumerate(node.value)]
        value = self.scalar(node, where)
        if isinstance(value, str):
            self.template(node, where, value)
        return value

    def template(self, node: Node, where: str, text: str) -> None:
        try:
            check_template(text)
        except TemplateError as exc:
            self.fail(node, where, str(exc))

    def text(self, node: Node, where: str, *, template: bool = False, empty: bool = False) -> str:
        value = self.scalar(node, where)
        if not isinstance(value, str):
            self.fail(node, where, f"must be text, got {show(value)}")
        if not value and not empty:
            self.fail(node, where, "must not be empty")
        if template:
            self.template(node, where, value)
        return value

    def integer(
        self,
        node: Node,
        where: str,
        *,
        low: int,
        high: int | None = None,
        what: str = "an integer",
    ) -> int:
        value = self.scalar(node, where)
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < low
            or (high is not None and value > high)
        ):
            bounds = f"in {low}..{high}" if high is not None else f"of at least {low}"
            self.fail(node, where, f"must be {what} {bounds}, got {show(value)}")
        return value

    def boolean(self, node: Node, where: str) -> bool:
        value = self.scalar(node, where)
        if not isinstance(value, bool):
            self.fail(node, where, f"must be true or false, got {show(value)}")
        return value


def known_params(operation: str) -> dict[str, str]:
    """An operation's parameter names as a scenario may write them -> the wire name.

    The wire name is the one the API reference shows (``deviceId``, ``resource-arn``);
    a member that travels under another name may be written as its model name in
    camel case too (``resourceArn``).
    """
    known: dict[str, str] = {}
    for member in load_model().operations[operation].inputs:
        known[member.location_name] = member.location_name
        known.setdefault(member.name[:1].lower() + member.name[1:], member.location_name)
    return known


def _default_fleet() -> model.FleetSpec:
    return model.FleetSpec(
        profile=model.DEFAULT_PROFILE, count=1, seed=None, claim_code=None, line=1
    )


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _child(where: str, key: str) -> str:
    """The place of ``key`` inside ``where``: ``steps[0].with``, ``body["a b"]``."""
    if not where:
        return key if _SIMPLE_KEY.fullmatch(key) else json.dumps(key)
    return f"{where}.{key}" if _SIMPLE_KEY.fullmatch(key) else f"{where}[{json.dumps(key)}]"


def _suggest(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f", did you mean {close[0]!r}?" if close else ""


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s" if seconds >= 1 or seconds == 0 else f"{seconds * 1000:g}ms"
