"""The OpenAPI document: complete, valid, and in agreement with the model's parser."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, cast
from urllib.parse import quote, urlencode

import hypothesis
import pytest
import schemathesis

from simulator.api.model import ServiceModel, load_model, parse_input
from simulator.api.openapi import openapi_document

SERVER: Final = "http://127.0.0.1:8080"


@pytest.fixture(scope="module")
def model() -> ServiceModel:
    return load_model()


@pytest.fixture(scope="module")
def document(model: ServiceModel) -> dict[str, Any]:
    return cast(dict[str, Any], openapi_document(model, server_url=SERVER))


def operations(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for methods in document["paths"].values()
        for operation in methods.values()
    }


def test_every_operation_is_there_with_its_route(
    model: ServiceModel, document: dict[str, Any]
) -> None:
    assert document["openapi"] == "3.0.3"
    assert document["servers"] == [{"url": SERVER}]
    assert "servers" not in openapi_document(model)
    assert set(operations(document)) == set(model.operations)
    for spec in model.operations.values():
        assert document["paths"][spec.uri][spec.method.lower()]["operationId"] == spec.name


def test_parameters_carry_types_bounds_and_required(document: dict[str, Any]) -> None:
    ops = operations(document)
    events = {p["name"]: p for p in ops["ListDeviceEvents"]["parameters"]}
    assert events["deviceId"] == {
        "name": "deviceId",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    assert events["maxResults"]["schema"] == {
        "type": "integer",
        "format": "int32",
        "minimum": 1,
        "maximum": 250,
    }
    assert events["maxResults"]["required"] is False
    assert events["fromTimeStamp"]["required"] is True
    assert events["fromTimeStamp"]["schema"] == {"type": "string", "format": "date-time"}
    (claim_code,) = ops["ClaimDevicesByClaimCode"]["parameters"]
    assert claim_code["schema"] == {"type": "string", "minLength": 12, "maxLength": 40}
    arn, tag_keys = ops["UntagResource"]["parameters"]
    assert arn["name"] == "resource-arn"
    assert tag_keys == {
        "name": "tagKeys",
        "in": "query",
        "required": True,
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    }


def test_request_bodies_hold_the_body_members(document: dict[str, Any]) -> None:
    ops = operations(document)
    tag = ops["TagResource"]["requestBody"]
    assert tag["required"] is True
    assert tag["content"]["application/json"]["schema"] == {
        "type": "object",
        "properties": {"tags": {"type": "object", "additionalProperties": {"type": "string"}}},
        "required": ["tags"],
    }
    state = ops["UpdateDeviceState"]["requestBody"]
    assert state["required"] is False
    assert state["content"]["application/json"]["schema"]["properties"] == {
        "enabled": {"type": "boolean"}
    }
    invoke = ops["InvokeDeviceMethod"]["requestBody"]["content"]["application/json"]["schema"]
    assert invoke["properties"]["deviceMethod"] == {"$ref": "#/components/schemas/DeviceMethod"}
    assert "requestBody" not in ops["DescribeDevice"]


def test_responses_give_success_and_every_modelled_error(
    model: ServiceModel, document: dict[str, Any]
) -> None:
    schemas = document["components"]["schemas"]
    for name, operation in operations(document).items():
        spec = model.operations[name]
        statuses = {str(spec.status)} | {
            str(model.shapes[error]["error"]["httpStatusCode"]) for error in spec.errors
        }
        assert set(operation["responses"]) == statuses
        for error in spec.errors:
            status = str(model.shapes[error]["error"]["httpStatusCode"])
            response = operation["responses"][status]
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{error}"
            assert response["headers"]["X-Amzn-ErrorType"]["schema"]["enum"] == [error]
            assert set(schemas[error]["properties"]) == {"code", "message"}
    tag = operations(document)["TagResource"]["responses"]["204"]
    assert "content" not in tag
    listing = operations(document)["ListDevices"]["responses"]["200"]
    assert listing["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ListDevicesResponse"
    }
    description = schemas["DeviceDescription"]["properties"]
    assert description["remainingLife"] == {"type": "number", "format": "double"}
    assert description["tags"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert schemas["ListDevicesResponse"]["properties"]["devices"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/DeviceDescription"},
    }


def test_sigv4_is_named_as_the_security_scheme(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["sigv4"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert document["security"] == [{"sigv4": []}]


def load_with_schemathesis(document: dict[str, Any]) -> Any:
    return schemathesis.openapi.from_dict(document)


def test_schemathesis_loads_and_validates_the_document(document: dict[str, Any]) -> None:
    schema = load_with_schemathesis(document)
    schema.validate()
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert len(labels) == 13
    assert "DELETE /tags/{resource-arn}" in labels


def test_what_schemathesis_generates_from_the_document_the_model_accepts(
    model: ServiceModel, document: dict[str, Any]
) -> None:
    """Positive cases built from the document parse without error: the two agree."""
    schema = load_with_schemathesis(document)
    seen: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()

        def check(case: Any) -> None:
            found = model.match(case.method, case.formatted_path)
            assert found is not None, case.formatted_path
            spec, path_params = found
            query = urlencode(case.query or {}, doseq=True, quote_via=quote)
            body = json.dumps(case.body).encode() if isinstance(case.body, dict) else b""
            parse_input(spec, path_params, query, body, model)
            seen.add(spec.name)

        settings = hypothesis.settings(
            max_examples=25, database=None, deadline=None, derandomize=True
        )
        settings(hypothesis.given(case=operation.as_strategy())(check))()
    assert seen == set(model.operations)
