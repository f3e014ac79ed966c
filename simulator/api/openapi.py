"""An OpenAPI 3.0 document of the Devices API, generated from the model.

For tools that speak OpenAPI rather than the AWS model (schemathesis, Postman,
client generators): every operation with its parameters, bounds and bodies, its
success and every modelled error response. Requests are signed with SigV4, which
OpenAPI cannot describe: the document names it as an ``Authorization`` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from simulator.api.model import OperationSpec, ServiceModel

OPENAPI_VERSION: Final = "3.0.3"
_SCHEMAS: Final = "#/components/schemas/"
_SECURITY: Final = "sigv4"
_SCALARS: Final[Mapping[str, Mapping[str, object]]] = {
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"},
    "double": {"type": "number", "format": "double"},
    "float": {"type": "number", "format": "float"},
}


def openapi_document(model: ServiceModel, *, server_url: str | None = None) -> dict[str, object]:
    """The document; ``server_url``, when given, is its one server."""
    schemas: dict[str, object] = {}
    paths: dict[str, dict[str, object]] = {}
    for spec in model.operations.values():
        paths.setdefault(spec.uri, {})[spec.method.lower()] = _operation(model, spec, schemas)
    document: dict[str, object] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": model.metadata.get("serviceFullName", "API"),
            "version": model.metadata.get("apiVersion", "1"),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                _SECURITY: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4, signing name "
                    f"{model.metadata.get('signingName', '')!r} (with X-Amz-Date)",
                }
            },
        },
        "security": [{_SECURITY: []}],
    }
    if server_url is not None:
        document["servers"] = [{"url": server_url}]
    return document


def _operation(model: ServiceModel, spec: OperationSpec, schemas: dict[str, object]) -> object:
    operation: dict[str, object] = {"operationId": spec.name}
    parameters = []
    body: dict[str, object] = {}
    required: list[str] = []
    for member in spec.inputs:
        schema = _schema(model, member.shape, schemas)
        if member.location == "body":
            body[member.location_name] = schema
            if member.required:
                required.append(member.location_name)
            continue
        parameter: dict[str, object] = {
            "name": member.location_name,
            "in": "path" if member.location == "uri" else "query",
            "required": member.required or member.location == "uri",
            "schema": schema,
        }
        if model.shapes[member.shape]["type"] == "list":
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    if parameters:
        operation["parameters"] = parameters
    if body:
        body_schema: dict[str, object] = {"type": "object", "properties": body}
        if required:
            body_schema["required"] = required
        operation["requestBody"] = {
            "required": bool(required),
            "content": {"application/json": {"schema": body_schema}},
        }
    success: dict[str, object] = {"description": f"{spec.name} succeeded"}
    if spec.output_shape is not None:
        success["content"] = {
            "application/json": {"schema": _schema(model, spec.output_shape, schemas)}
        }
    responses: dict[str, object] = {str(spec.status): success}
    for status, errors in sorted(_errors_by_status(model, spec).items()):
        refs = [_schema(model, error, schemas) for error in errors]
        responses[str(status)] = {
            "description": ", ".join(errors),
            "headers": {
                "X-Amzn-ErrorType": {
                    "description": "The error's name (SDKs read it before the body's code)",
                    "schema": {"type": "string", "enum": list(errors)},
                }
            },
            "content": {
                "application/json": {"schema": refs[0] if len(refs) == 1 else {"oneOf": refs}}
            },
        }
    operation["responses"] = responses
    return operation


def _errors_by_status(model: ServiceModel, spec: OperationSpec) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for error in spec.errors:
        status = int(model.shapes[error].get("error", {}).get("httpStatusCode", 400))
        found.setdefault(status, []).append(error)
    return found


def _schema(model: ServiceModel, name: str, schemas: dict[str, object]) -> dict[str, object]:
    """The JSON schema of a shape; structures become components, referenced."""
    shape: Mapping[str, Any] = model.shapes[name]
    kind = shape["type"]
    if kind == "structure":
        if name not in schemas:
            schemas[name] = {}  # a placeholder, should a structure contain itself
            properties: dict[str, object] = {}
            required: list[str] = []
            for member_name, member in shape["members"].items():
                wire = member.get("locationName", member_name)
                properties[wire] = _schema(model, member["shape"], schemas)
                if member_name in shape.get("required", ()):
                    required.append(wire)
            structure: dict[str, object] = {"type": "object", "properties": properties}
            if required:
                structure["required"] = required
            schemas[name] = structure
        return {"$ref": _SCHEMAS + name}
    if kind == "list":
        return {"type": "array", "items": _schema(model, shape["member"]["shape"], schemas)}
    if kind == "map":
        return {
            "type": "object",
            "additionalProperties": _schema(model, shape["value"]["shape"], schemas),
        }
    if kind == "timestamp":
        if shape.get("timestampFormat") == "unixTimestamp":
            return {"type": "number"}
        return {"type": "string", "format": "date-time"}
    schema = dict(_SCALARS[kind])
    bounds = ("minLength", "maxLength") if kind == "string" else ("minimum", "maximum")
    for key, bound in zip(("min", "max"), bounds, strict=True):
        if key in shape:
            schema[bound] = shape[key]
    return schema
