"""The vendored model: routing and input parsing, against what botocore sends."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import botocore.parsers
import botocore.serialize
import botocore.session
import botocore.utils
import pytest

from simulator.api.model import (
    InvalidInput,
    Member,
    OperationSpec,
    ServiceModel,
    load_model,
    paginators,
    parse_input,
    validate_output,
)

ARN: Final = "arn:aws:iot1click:us-east-1:123456789012:devices/G030PM0000000001"
ENCODED_ARN: Final = "arn%3Aaws%3Aiot1click%3Aus-east-1%3A123456789012%3Adevices%2FG030PM0000000001"
DEVICE: Final = "G030PM0000000001"
FROM: Final = datetime(2024, 1, 1, tzinfo=UTC)
TO: Final = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)

# For every operation: botocore's parameters, and what parse_input must make of them.
CASES: Final[dict[str, tuple[dict[str, Any], dict[str, object]]]] = {
    "ClaimDevicesByClaimCode": ({"ClaimCode": "C-1234567890"}, {"claimCode": "C-1234567890"}),
    "DescribeDevice": ({"DeviceId": DEVICE}, {"deviceId": DEVICE}),
    "FinalizeDeviceClaim": (
        {"DeviceId": DEVICE, "Tags": {"room": "kitchen"}},
        {"deviceId": DEVICE, "tags": {"room": "kitchen"}},
    ),
    "GetDeviceMethods": ({"DeviceId": DEVICE}, {"deviceId": DEVICE}),
    "InitiateDeviceClaim": ({"DeviceId": DEVICE}, {"deviceId": DEVICE}),
    "InvokeDeviceMethod": (
        {
            "DeviceId": DEVICE,
            "DeviceMethod": {"DeviceType": "button", "MethodName": "getOnClickCallback"},
            "DeviceMethodParameters": "{}",
        },
        {
            "deviceId": DEVICE,
            "deviceMethod": {"deviceType": "button", "methodName": "getOnClickCallback"},
            "deviceMethodParameters": "{}",
        },
    ),
    "ListDeviceEvents": (
        {
            "DeviceId": DEVICE,
            "FromTimeStamp": FROM,
            "ToTimeStamp": TO,
            "MaxResults": 5,
            "NextToken": "t/1+",
        },
        {
            "deviceId": DEVICE,
            "fromTimeStamp": FROM,
            "toTimeStamp": TO,
            "maxResults": 5,
            "nextToken": "t/1+",
        },
    ),
    "ListDevices": (
        {"DeviceType": "button", "MaxResults": 250},
        {"deviceType": "button", "maxResults": 250},
    ),
    "ListTagsForResource": ({"ResourceArn": ARN}, {"resource-arn": ARN}),
    "TagResource": (
        {"ResourceArn": ARN, "Tags": {"a": "1", "b c": ""}},
        {"resource-arn": ARN, "tags": {"a": "1", "b c": ""}},
    ),
    "UnclaimDevice": ({"DeviceId": DEVICE}, {"deviceId": DEVICE}),
    "UntagResource": (
        {"ResourceArn": ARN, "TagKeys": ["a", "b c", "é&="]},
        {"resource-arn": ARN, "tagKeys": ["a", "b c", "é&="]},
    ),
    "UpdateDeviceState": (
        {"DeviceId": DEVICE, "Enabled": False},
        {"deviceId": DEVICE, "enabled": False},
    ),
}


@pytest.fixture(scope="module")
def model() -> ServiceModel:
    return load_model()


def botocore_request(name: str, params: Mapping[str, Any]) -> tuple[str, str, str, bytes]:
    """Method, raw path, raw query and body, as botocore puts them on the wire."""
    service = botocore.session.get_session().get_service_model("iot1click-devices")
    serializer = botocore.serialize.create_serializer("rest-json", include_validation=True)
    request = serializer.serialize_to_request(params, service.operation_model(name))
    query = botocore.utils.percent_encode_sequence(request["query_string"])
    body = request["body"]
    return (
        request["method"],
        request["url_path"],
        query,
        body if isinstance(body, bytes) else body.encode(),
    )


def op(model: ServiceModel, name: str) -> OperationSpec:
    return model.operations[name]


def test_the_model_has_the_13_operations_of_botocores(model: ServiceModel) -> None:
    service = botocore.session.get_session().get_service_model("iot1click-devices")
    assert set(model.operations) == set(service.operation_names) == set(CASES)
    assert model.metadata["signingName"] == "iot1click"


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_operation_routes_and_parses_what_botocore_sends(
    model: ServiceModel, name: str
) -> None:
    params, expected = CASES[name]
    method, path, query, body = botocore_request(name, params)
    found = model.match(method, path)
    assert found is not None, (method, path)
    spec, path_params = found
    assert spec.name == name
    assert parse_input(spec, path_params, query, body, model) == expected


def test_an_arn_travels_percent_encoded_as_one_segment(model: ServiceModel) -> None:
    _, path, _, _ = botocore_request("ListTagsForResource", {"ResourceArn": ARN})
    assert path == f"/tags/{ENCODED_ARN}"
    assert model.match("GET", path) == (op(model, "ListTagsForResource"), {"resource-arn": ARN})
    # Left unencoded, the ARN's "/" splits it: no operation has that many segments.
    assert model.match("GET", f"/tags/{ARN}") is None


def test_specs_carry_the_models_http_bindings(model: ServiceModel) -> None:
    tag = op(model, "TagResource")
    assert (tag.method, tag.uri, tag.status, tag.output_shape) == (
        "POST",
        "/tags/{resource-arn}",
        204,
        None,
    )
    assert tag.inputs == (
        Member("ResourceArn", "__string", "uri", "resource-arn", required=True),
        Member("Tags", "__mapOf__string", "body", "tags", required=True),
    )
    events = op(model, "ListDeviceEvents")
    assert events.status == 200
    assert events.output_shape == "ListDeviceEventsResponse"
    assert "RangeNotSatisfiableException" in events.errors
    # The request's claim code is bounded as the model bounds it in the response.
    assert op(model, "ClaimDevicesByClaimCode").inputs[0].shape == "__stringMin12Max40"


def test_routing_misses(model: ServiceModel) -> None:
    assert model.match("PATCH", "/devices/x") is None
    assert model.match("GET", "/devices/x/nope") is None
    assert model.match("GET", "/devices/") is None  # a label is never empty
    assert model.match("GET", "devices") is None
    assert model.methods_for("/devices/x/methods") == {"GET", "POST"}
    assert model.methods_for(f"/tags/{ENCODED_ARN}") == {"GET", "POST", "DELETE"}
    assert model.methods_for("/devices") == {"GET"}
    assert model.methods_for("/nowhere") == frozenset()


def test_labels_are_decoded_and_literals_compared_decoded(model: ServiceModel) -> None:
    assert model.match("GET", "/devices/a%20b+c") == (
        op(model, "DescribeDevice"),
        {"deviceId": "a b+c"},
    )
    assert model.match("GET", "/devices/%C3%A9/ev%65nts") == (
        op(model, "ListDeviceEvents"),
        {"deviceId": "é"},
    )


def test_a_label_that_is_not_utf8_is_invalid_input(model: ServiceModel) -> None:
    found = model.match("GET", "/devices/%FF")
    assert found is not None
    with pytest.raises(InvalidInput, match=r"^deviceId: not valid UTF-8"):
        parse_input(found[0], found[1], "", b"", model)


def parse(
    model: ServiceModel, name: str, query: str = "", body: bytes = b"", **labels: str
) -> dict[str, object]:
    spec = op(model, name)
    path_params = {"deviceId": DEVICE, "resource-arn": ARN, "claimCode": "C-1234567890"}
    path_params.update(labels)
    return parse_input(spec, path_params, query, body, model)


EVENTS_QUERY: Final = "fromTimeStamp=2024-01-01T00:00:00Z&toTimeStamp=2024-01-02T00:00:00Z"


@pytest.mark.parametrize(
    ("name", "query", "body", "message"),
    [
        ("ListDevices", "maxResults=0", b"", "maxResults: must be an integer in 1..250, got '0'"),
        (
            "ListDevices",
            "maxResults=251",
            b"",
            "maxResults: must be an integer in 1..250, got '251'",
        ),
        ("ListDevices", "maxResults=x", b"", "maxResults: must be an integer in 1..250, got 'x'"),
        ("ListDevices", "maxResults=", b"", "maxResults: must be an integer in 1..250, got ''"),
        (
            "ListDevices",
            "maxResults=1.5",
            b"",
            "maxResults: must be an integer in 1..250, got '1.5'",
        ),
        (
            "ListDevices",
            "maxResults=1&maxResults=2",
            b"",
            "maxResults: given 2 times, expected once",
        ),
        (
            "ListDeviceEvents",
            "toTimeStamp=2024-01-02T00:00:00Z",
            b"",
            "fromTimeStamp: required but missing",
        ),
        (
            "ListDeviceEvents",
            "fromTimeStamp=yesterday&toTimeStamp=2024-01-02T00:00:00Z",
            b"",
            "fromTimeStamp: must be an ISO 8601 date-time with its time zone, such as "
            "2024-05-01T12:00:00Z, got 'yesterday'",
        ),
        (
            "ListDeviceEvents",
            "fromTimeStamp=2024-01-01T00:00:00&toTimeStamp=2024-01-02T00:00:00Z",
            b"",
            "fromTimeStamp: must be an ISO 8601 date-time with its time zone",
        ),
        (
            "ListDeviceEvents",
            "fromTimeStamp=1704067200&toTimeStamp=2024-01-02T00:00:00Z",
            b"",
            "fromTimeStamp: must be an ISO 8601 date-time",
        ),
        (
            "ListDeviceEvents",
            "fromTimeStamp=2024-02-30T00:00:00Z&toTimeStamp=2024-01-02T00:00:00Z",
            b"",
            "fromTimeStamp: must be an ISO 8601 date-time",
        ),
        (
            "ListDeviceEvents",
            "fromTimeStamp=2024-01-01&toTimeStamp=2024-01-02T00:00:00Z",
            b"",
            "fromTimeStamp: must be an ISO 8601 date-time",
        ),
        (
            "ListDeviceEvents",
            "fromTimeStamp=2024-01-01T00:00:00%2B25:00&toTimeStamp=2024-01-02T00:00:00Z",
            b"",
            "fromTimeStamp: must be an ISO 8601 date-time",
        ),
        (
            "ListDeviceEvents",
            "fromTimeStamp=%D9%A2024-01-01T00:00:00Z&toTimeStamp=2024-01-02T00:00:00Z",
            b"",
            "fromTimeStamp: must be an ISO 8601 date-time",
        ),
        (
            "ListDeviceEvents",
            EVENTS_QUERY + "&maxResults=-1",
            b"",
            "maxResults: must be an integer in 1..250",
        ),
        ("ListDevices", "nextToken=%FF", b"", "nextToken: not valid UTF-8"),
        ("UntagResource", "", b"", "tagKeys: required but missing"),
        ("TagResource", "", b"", "tags: required but missing"),
        ("TagResource", "", b"{}", "tags: required but missing"),
        ("TagResource", "", b'{"tags": null}', "tags: required but missing"),
        ("TagResource", "", b"{not json", "body: not valid JSON (Expecting property name"),
        ("TagResource", "", b'{"tags": NaN}', "body: not valid JSON (NaN is not JSON)"),
        ("TagResource", "", b"\xff\xfe\x00", "body: not valid JSON"),
        ("TagResource", "", b"[" * 100_000, "body: not valid JSON (nested too deeply)"),
        ("TagResource", "", b" ", "body: not valid JSON"),
        ("TagResource", "", b"[]", "body: must be a JSON object, got an array"),
        ("TagResource", "", b'"tags"', "body: must be a JSON object, got a string"),
        ("TagResource", "", b"null", "body: must be a JSON object, got null"),
        ("TagResource", "", b"7", "body: must be a JSON object, got a number"),
        ("TagResource", "", b"true", "body: must be a JSON object, got a boolean"),
        ("TagResource", "", b'{"tags": ["a"]}', 'tags: must be a JSON object, got ["a"]'),
        ("TagResource", "", b'{"tags": "a=b"}', 'tags: must be a JSON object, got "a=b"'),
        ("TagResource", "", b'{"tags": {"a": 1}}', "tags['a']: must be a string, got 1"),
        ("TagResource", "", b'{"tags": {"a": null}}', "tags['a']: must be a string, got null"),
        (
            "TagResource",
            "",
            b'{"tags": {"a": {"b": "c"}}}',
            'tags[\'a\']: must be a string, got {"b": "c"}',
        ),
        ("TagResource", "", b'{"tags": {"\\ud800": "x"}}', "tags key: not valid UTF-8"),
        (
            "FinalizeDeviceClaim",
            "",
            b'{"tags": {"a": true}}',
            "tags['a']: must be a string, got true",
        ),
        (
            "UpdateDeviceState",
            "",
            b'{"enabled": "true"}',
            'enabled: must be true or false, got "true"',
        ),
        ("UpdateDeviceState", "", b'{"enabled": 1}', "enabled: must be true or false, got 1"),
        (
            "InvokeDeviceMethod",
            "",
            b'{"deviceMethod": "x"}',
            'deviceMethod: must be a JSON object, got "x"',
        ),
        (
            "InvokeDeviceMethod",
            "",
            b'{"deviceMethod": {"methodName": 5}}',
            "deviceMethod.methodName: must be a string, got 5",
        ),
        (
            "InvokeDeviceMethod",
            "",
            b'{"deviceMethodParameters": {}}',
            "deviceMethodParameters: must be a string, got {}",
        ),
    ],
)
def test_invalid_input_is_one_line_naming_the_member(
    model: ServiceModel, name: str, query: str, body: bytes, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(model, name, query, body)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("C-12345678", "claimCode: must be 12..40 characters long, got 10: 'C-12345678'"),
        ("C-" + "1" * 39, "claimCode: must be 12..40 characters long, got 41: 'C-1111"),
    ],
)
def test_claim_code_length(model: ServiceModel, code: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(model, "ClaimDevicesByClaimCode", claimCode=code)
    assert str(caught.value).startswith(message)
    for good in ("C-" + "1" * 10, "C-" + "1" * 38):
        assert parse(model, "ClaimDevicesByClaimCode", claimCode=good) == {"claimCode": good}


def test_long_values_are_cut_short_in_messages(model: ServiceModel) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(model, "ListDevices", "maxResults=" + "9" * 500)
    assert len(str(caught.value)) < 120
    assert str(caught.value).endswith("...")


def test_repeated_tag_keys_make_a_list_in_order(model: ServiceModel) -> None:
    assert parse(model, "UntagResource", "tagKeys=b&tagKeys=a&tagKeys=&tagKeys=b%26c")[
        "tagKeys"
    ] == [
        "b",
        "a",
        "",
        "b&c",
    ]
    assert parse(model, "UntagResource", "tagKeys=only")["tagKeys"] == ["only"]
    assert parse(model, "UntagResource", "tagKeys=a+b&&tagKeys")["tagKeys"] == ["a+b", ""]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T00:00:00.5Z", datetime(2024, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("2024-01-01T00:00:00.123456789Z", datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2024-01-01T02:00:00%2B02:00", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2023-12-31T19:30:00-0430", datetime(2024, 1, 1, tzinfo=UTC)),
        ("0001-01-01T00:00:00%2B00:01", datetime.min.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59-01:00", datetime.max.replace(tzinfo=UTC)),
    ],
)
def test_timestamps_are_iso8601_and_come_out_aware_utc(
    model: ServiceModel, text: str, expected: datetime
) -> None:
    found = parse(
        model, "ListDeviceEvents", f"fromTimeStamp={text}&toTimeStamp=2024-01-02T00:00:00Z"
    )
    stamp = found["fromTimeStamp"]
    assert stamp == expected
    assert isinstance(stamp, datetime)
    assert stamp.tzinfo is UTC


def test_unknown_members_are_ignored_and_absent_ones_left_out(model: ServiceModel) -> None:
    assert parse(model, "ListDevices", "other=1&maxResults=7") == {"maxResults": 7}
    assert parse(model, "UpdateDeviceState", body=b'{"enabled": true, "extra": [1]}') == {
        "deviceId": DEVICE,
        "enabled": True,
    }
    assert parse(model, "UpdateDeviceState") == {"deviceId": DEVICE}
    assert parse(model, "UpdateDeviceState", body=b"{}") == {"deviceId": DEVICE}
    assert parse(model, "UpdateDeviceState", body=b'{"enabled": null}') == {"deviceId": DEVICE}
    # An operation without body members reads no body.
    assert parse(model, "InitiateDeviceClaim", body=b"not json") == {"deviceId": DEVICE}
    assert parse(model, "InvokeDeviceMethod", body=b'{"deviceMethod": {"other": 1}}') == {
        "deviceId": DEVICE,
        "deviceMethod": {},
    }


def test_paginators_use_wire_names() -> None:
    assert paginators() == {
        "ListDevices": {
            "input_token": "nextToken",
            "limit_key": "maxResults",
            "output_token": "nextToken",
            "result_key": "devices",
        },
        "ListDeviceEvents": {
            "input_token": "nextToken",
            "limit_key": "maxResults",
            "output_token": "nextToken",
            "result_key": "events",
        },
    }


def test_the_vendored_model_is_botocores() -> None:
    from importlib import resources

    vendored = json.loads(
        resources.files("simulator.api")
        .joinpath("data", "iot1click-devices-2018-05-14.service.json")
        .read_text()
    )
    loader = botocore.session.get_session().get_component("data_loader")
    assert vendored == loader.load_service_model("iot1click-devices", "service-2", "2018-05-14")


def test_unsupported_model_features_fail_at_load() -> None:
    service: dict[str, Any] = {
        "metadata": {},
        "shapes": {
            "In": {
                "type": "structure",
                "members": {"X": {"shape": "S", "location": "header", "locationName": "x"}},
            },
            "S": {"type": "string"},
        },
        "operations": {
            "Op": {
                "name": "Op",
                "http": {"method": "GET", "requestUri": "/x"},
                "input": {"shape": "In"},
            },
        },
    }
    with pytest.raises(ValueError, match=r"Op\.X: cannot be read from header"):
        ServiceModel(service)
    service["shapes"]["S"] = {"type": "blob"}
    with pytest.raises(ValueError, match="shape S: type 'blob' is not supported"):
        ServiceModel(service)


# --- validate_output ---------------------------------------------------------------

DESCRIPTION: Final = {
    "arn": ARN,
    "attributes": {"projectRegion": "us-east-1"},
    "deviceId": DEVICE,
    "enabled": False,
    "remainingLife": 99.5,
    "type": "button",
    "tags": {"room": "kitchen"},
}
EVENT: Final = {
    "device": {"attributes": {}, "deviceId": DEVICE, "type": "button"},
    "stdEvent": '{"clickType": "SINGLE"}',
}
GOOD_OUTPUTS: Final = {
    "ClaimDevicesByClaimCode": {"claimCode": "C-0123456789", "total": 2},
    "DescribeDevice": {"deviceDescription": DESCRIPTION},
    "FinalizeDeviceClaim": {"state": "CLAIMED"},
    "GetDeviceMethods": {"deviceMethods": [{"deviceType": "button", "methodName": "m"}]},
    "InitiateDeviceClaim": {"state": "CLAIM_INITIATED"},
    "InvokeDeviceMethod": {"deviceMethodResponse": "{}"},
    "ListDeviceEvents": {"events": [EVENT], "nextToken": "t"},
    "ListDevices": {"devices": [DESCRIPTION, {"deviceId": "G2", "remainingLife": 100}]},
    "ListTagsForResource": {"tags": {}},
    "TagResource": None,
    "UnclaimDevice": {"state": "UNCLAIMED"},
    "UntagResource": {},
    "UpdateDeviceState": {},
}


def test_every_operations_modelled_output_fits(model: ServiceModel) -> None:
    assert set(GOOD_OUTPUTS) == set(model.operations)
    for name, body in GOOD_OUTPUTS.items():
        assert validate_output(op(model, name), body, model) == [], name
        assert validate_output(op(model, name), None, model) == [], name  # an empty body is {}


@pytest.mark.parametrize(
    ("operation", "body", "problems"),
    [
        pytest.param(
            "ListDevices",
            {"devices": [{**DESCRIPTION, "enabled": "yes", "colour": "red"}], "count": 1},
            [
                'devices[0].enabled: must be true or false, got "yes"',
                "devices[0].colour: not in the model",
                "count: not in the model",
            ],
            id="types-and-unknown-members",
        ),
        pytest.param(
            "ListDevices",
            {"devices": {"a": 1}, "nextToken": 5},
            ['devices: must be a JSON array, got {"a": 1}', "nextToken: must be a string, got 5"],
            id="a-list-and-a-string",
        ),
        pytest.param(
            "ListDevices",
            {"devices": [None, {"deviceId": None, "remainingLife": "90"}], "nextToken": None},
            [
                "devices[0]: null, expected a JSON object",
                'devices[1].remainingLife: must be a number, got "90"',
            ],
            id="null-members-are-absent-null-items-are-not",
        ),
        pytest.param(
            "DescribeDevice",
            {"deviceDescription": {"tags": {"a": 1, "b c": "d"}, "attributes": []}},
            [
                "deviceDescription.attributes: must be a JSON object, got []",
                'deviceDescription.tags["a"]: must be a string, got 1',
            ],
            id="maps",
        ),
        pytest.param(
            "ListDeviceEvents",
            {"events": [{**EVENT, "device": {"attributes": {"x": "y"}, "deviceId": DEVICE}}]},
            ["events[0].device.attributes.x: not in the model"],
            id="an-empty-structure",
        ),
        pytest.param(
            "ClaimDevicesByClaimCode",
            {"claimCode": "C-1", "total": 2.5},
            [
                "claimCode: must be 12..40 characters long, got 3",
                "total: must be an integer, got 2.5",
            ],
            id="bounds-and-integers",
        ),
        pytest.param(
            "ClaimDevicesByClaimCode",
            {"total": True},
            ["total: must be an integer, got true"],
            id="a-boolean-is-no-integer",
        ),
        pytest.param(
            "ListDevices", [1, 2], ["body: must be a JSON object, got [1, 2]"], id="not-an-object"
        ),
        pytest.param(
            "ListDevices", "<html>", ['body: must be a JSON object, got "<html>"'], id="not-json"
        ),
        pytest.param(
            "TagResource",
            {"tags": {}},
            ['body: TagResource has no output in the model, got {"tags": {}}'],
            id="no-output-shape",
        ),
    ],
)
def test_what_does_not_fit_the_output_shape(
    model: ServiceModel, operation: str, body: object, problems: list[str]
) -> None:
    assert validate_output(op(model, operation), body, model) == problems


SYNTHETIC: Final = {
    "metadata": {"protocol": "rest-json", "endpointPrefix": "x"},
    "operations": {
        "Get": {
            "name": "Get",
            "http": {"method": "GET", "requestUri": "/x"},
            "output": {"shape": "Out"},
        }
    },
    "shapes": {
        "Out": {
            "type": "structure",
            "required": ["Id"],
            "members": {
                "Id": {"shape": "Id", "locationName": "id"},
                "Colour": {"shape": "Colour", "locationName": "colour"},
                "At": {"shape": "Unix", "locationName": "at"},
                "Default": {"shape": "Stamp", "locationName": "default"},
                "Iso": {"shape": "Iso", "locationName": "iso"},
                "Count": {"shape": "Count", "locationName": "count"},
                "Names": {"shape": "Names", "locationName": "names"},
                "ByColour": {"shape": "ByColour", "locationName": "byColour"},
                "Etag": {"shape": "Id", "location": "header", "locationName": "ETag"},
            },
        },
        "Id": {"type": "string"},
        "Colour": {"type": "string", "enum": ["red", "blue"]},
        "Unix": {"type": "timestamp", "timestampFormat": "unixTimestamp"},
        "Stamp": {"type": "timestamp"},
        "Iso": {"type": "timestamp", "timestampFormat": "iso8601"},
        "Count": {"type": "long", "min": 1, "max": 10},
        "Names": {"type": "list", "member": {"shape": "Id"}, "max": 2},
        "ByColour": {"type": "map", "key": {"shape": "Colour"}, "value": {"shape": "Count"}},
    },
}


def test_required_members_enums_timestamps_and_bounds() -> None:
    synthetic = ServiceModel(SYNTHETIC)
    spec = synthetic.operations["Get"]
    good = {
        "id": "a",
        "colour": "red",
        "at": 1714564800,
        "default": 1714564800.5,
        "iso": "2024-05-01T12:00:00Z",
        "count": 10,
        "names": ["a", "b"],
        "byColour": {"blue": 1},
    }
    assert validate_output(spec, good, synthetic) == []
    bad = {
        "colour": "green",
        "at": "2024-05-01T12:00:00Z",
        "default": True,
        "iso": 1714564800,
        "count": 0,
        "names": ["a", "b", "c"],
        "byColour": {"green": 1},
        "ETag": "x",
    }
    assert validate_output(spec, bad, synthetic) == [
        "id: required but missing",
        'colour: "green" is not one of red, blue',
        'at: must be a timestamp in seconds since the epoch (a number), got "2024-05-01T12:00:00Z"',
        "default: must be a timestamp in seconds since the epoch (a number), got true",
        "iso: must be an ISO 8601 date-time string, got 1714564800",
        "count: must be 1..10, got 0",
        "names: must be at most 2 items, got 3",
        "byColour: key 'green' is not one of red, blue",
        "ETag: not in the model",  # a header member is not a body member
    ]


def test_botocore_reads_what_validate_output_accepts(model: ServiceModel) -> None:
    """The good outputs parse with botocore's own rest-json parser, member for member."""
    session = botocore.session.get_session()
    service = session.get_service_model("iot1click-devices")
    parser = botocore.parsers.RestJSONParser()
    for name, body in GOOD_OUTPUTS.items():
        operation = service.operation_model(name)
        raw = b"" if body is None else json.dumps(body).encode()
        response = {"status_code": 200, "headers": {}, "body": raw}
        parsed = parser.parse(response, operation.output_shape)
        parsed.pop("ResponseMetadata", None)
        assert validate_output(op(model, name), body, model) == []
        if isinstance(body, dict):
            assert len(parsed) == len(body), name
