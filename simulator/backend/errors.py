"""The API's modelled errors, as exceptions that carry their wire name and status.

moto's pattern: the service raises these; the HTTP adapter turns one into a response
with the ``X-Amzn-ErrorType`` header and a ``{"code", "message"}`` body, which is how
the AWS SDKs pick the exception class to raise.
"""

from __future__ import annotations

from typing import ClassVar


class ApiError(Exception):
    """An error the API reports to its caller; the message is safe to show them."""

    code: ClassVar[str] = "InternalFailureException"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ApiError):
    code = "InvalidRequestException"
    status = 400


class Forbidden(ApiError):
    code = "ForbiddenException"
    status = 403


class ResourceNotFound(ApiError):
    code = "ResourceNotFoundException"
    status = 404


class ResourceConflict(ApiError):
    code = "ResourceConflictException"
    status = 409


class PreconditionFailed(ApiError):
    code = "PreconditionFailedException"
    status = 412


class RangeNotSatisfiable(ApiError):
    code = "RangeNotSatisfiableException"
    status = 416
