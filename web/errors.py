"""The one JSON error shape every endpoint answers with:

    {"error": {"code": "validation_failed", "message": "...", "fields": {"lat": ["..."]}}}

``fields`` is present only when particular input fields are at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from flask import Flask, Response, jsonify, make_response, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from services.errors import (
    Conflict,
    Forbidden,
    InvalidField,
    InvalidFields,
    NotFound,
    ServiceError,
    TooLarge,
)


class ErrorDetailSchema(Schema):
    code = fields.String(
        required=True, metadata={"description": "Stable, for programs: e.g. validation_failed."}
    )
    message = fields.String(required=True, metadata={"description": "For people."})
    fields_ = fields.Dict(
        attribute="fields",
        data_key="fields",
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Only when particular input fields (or headers) are at fault."},
    )
    status = fields.String(
        metadata={"description": "Only when an action on a case is refused: the case's status now."}
    )
    allowed_actions = fields.List(
        fields.String(),
        metadata={
            "description": "Only when an action on a case is refused: what the caller may do "
            "to the case now (perhaps nothing)."
        },
    )


class ErrorSchema(Schema):
    """The one error shape (the OpenAPI description is built from this)."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields
        self.headers = headers or {}
        # More members of the error object (ErrorDetailSchema declares each one).
        self.details = details or {}


def field_error(field: str, message: str, status: int = 422) -> ApiError:
    return ApiError(
        status, "validation_failed", f"Invalid value for '{field}'.", {field: [message]}
    )


def json_object_body() -> dict[str, Any]:
    """The request's JSON body, which must be an object; 400 naming the body otherwise."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(
            400, "bad_request", "The body must be a JSON object.", {"_body": ["Not a JSON object."]}
        )
    return body


def error_body(
    code: str,
    message: str,
    fields: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {**(details or {}), "code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def flatten_messages(messages: Any) -> dict[str, list[str]]:
    """marshmallow nests messages for nested fields; clients get dotted field names instead."""
    flat: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            flat.setdefault(prefix or "_body", []).extend(value)
        else:
            flat.setdefault(prefix or "_body", []).append(str(value))

    walk("", messages)
    return flat


def from_service_error(error: ServiceError) -> ApiError:
    """A service's refusal as this API's error: the status follows the kind of refusal."""
    if isinstance(error, TooLarge):
        return ApiError(
            413, "validation_failed", f"Invalid value for '{error.field}'.", error.fields
        )
    if isinstance(error, InvalidField):
        return ApiError(
            422, "validation_failed", f"Invalid value for '{error.field}'.", error.fields
        )
    if isinstance(error, InvalidFields):
        names = ", ".join(sorted(error.fields))
        return ApiError(
            422, "validation_failed", f"Invalid or missing fields: {names}.", error.fields
        )
    if isinstance(error, NotFound):
        fields = {error.field: [error.message]} if error.field else None
        return ApiError(404, "not_found", error.message, fields)
    if isinstance(error, Forbidden):
        return ApiError(403, error.code, error.message, details=error.details)
    if isinstance(error, Conflict):
        return ApiError(409, error.code, error.message, details=error.details)
    return ApiError(422, error.code, error.message)


def _too_large_words() -> tuple[str, dict[str, list[str]]]:
    limit = request.max_content_length
    parts = request.max_form_parts
    words = f"At most {limit} bytes" if limit else "A smaller body"
    if request.mimetype == "multipart/form-data" and parts:
        words += f" and {parts} parts"
    return "The request body is too large.", {"_body": [f"{words}."]}


HttpErrorRenderer = Callable[[HTTPException], Response]

# The database unreachable (or a lock or statement timeout): 503 with Retry-After, never 500.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    SQLAlchemyTimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
DATABASE_RETRY_AFTER_SECONDS = 5


def register_error_handlers(
    app: Flask, http_errors_by_prefix: Mapping[str, HttpErrorRenderer] | None = None
) -> None:
    """Every error in the one JSON shape; ``http_errors_by_prefix`` lets a door whose protocol
    has its own error shape (Open311) answer unknown paths and methods under its prefix."""
    prefixes = dict(http_errors_by_prefix or {})

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> ResponseReturnValue:
        return (
            jsonify(error_body(error.code, error.message, error.fields, error.details)),
            error.status,
            error.headers,
        )

    @app.errorhandler(ServiceError)
    def _service_error(error: ServiceError) -> ResponseReturnValue:
        return _api_error(from_service_error(error))

    @app.errorhandler(ValidationError)
    def _validation_error(error: ValidationError) -> ResponseReturnValue:
        fields = flatten_messages(error.messages)
        names = ", ".join(sorted(fields))
        body = error_body("validation_failed", f"Invalid or missing fields: {names}.", fields)
        return jsonify(body), 422

    def _database_unavailable(error: Exception) -> ResponseReturnValue:
        # Down, restarting, out of connections, or past a lock or statement timeout: nothing
        # was written (the transaction rolled back), and trying again later is the answer.
        app.logger.warning("database unavailable: %s", str(error).splitlines()[0])
        unavailable = ServiceUnavailable(
            "The database is not answering; nothing was saved. Try again shortly."
        )
        response = make_response(_http_error(unavailable))
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> ResponseReturnValue:
        # The exception's own headers (Allow on a 405, RFC 9110) travel with any error shape.
        headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
        for prefix, render in prefixes.items():
            if request.path.startswith(prefix):
                response = render(error)
                response.headers.extend(headers)
                return response
        status = error.code or 500
        code = (error.name or "error").lower().replace(" ", "_")
        if status == 413:
            return jsonify(error_body(code, *_too_large_words())), status, headers
        return jsonify(error_body(code, error.description or error.name)), status, headers

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> ResponseReturnValue:
        if isinstance(error, DATABASE_UNAVAILABLE):
            return _database_unavailable(error)
        app.logger.exception("unhandled error")
        return jsonify(error_body("internal_error", "Something went wrong on our side.")), 500
