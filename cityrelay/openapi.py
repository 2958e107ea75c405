"""The OpenAPI 3.1 description of /api/v1, built from the app's routes and what each view
declares with ``web.openapi.operation`` (marshmallow schemas turned into JSON Schema by apispec).
Served at /api/v1/openapi.json, and for people at /docs (Swagger UI, served from this package).

A route under /api/v1 whose view declares nothing stops the build: nothing goes undescribed.
The document is built once per app, on first use.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask, Response, current_app, render_template, url_for
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields, validate
from werkzeug.routing import (
    FloatConverter,
    IntegerConverter,
    PathConverter,
    Rule,
    UnicodeConverter,
)

from intake.pages import CONTENT_SECURITY_POLICY
from web.assets import AssetBlueprint
from web.errors import ErrorSchema
from web.openapi import Answer, Header, Operation, SchemaLike, operation, operation_of

API_PREFIX = "/api/v1/"
EXTENSION = "cityrelay.openapi"
# The Swagger UI files under static/docs/swagger-ui/ come from this npm release (see README).
SWAGGER_UI_VERSION = "5.35.0"

bp = AssetBlueprint(
    "openapi",
    __name__,
    template_folder="templates",
    static_folder="static/docs",
    static_url_path="/docs/assets",
)

DESCRIPTION = """\
File city problems on the move and follow them from received to routed; offices reject or split
the cases in their queue; admins change the routing rules (every change is a new version).

**Authentication**: `Authorization: Bearer <key>`. A reporter key comes from
`POST /api/v1/reporters` or `cityrelay create-key`; office and admin keys from
`cityrelay create-key`. A missing, unknown, revoked (`cityrelay revoke-key`) or expired key is
401; a key of another role 403.

**Errors** all have one shape, and name the fields (or headers) at fault:
`{"error": {"code": "validation_failed", "message": "...", "fields": {"lat": ["..."]}}}`.
400 malformed body or header; 404 unknown id or code; 409 not in a state that allows it;
413 photo too large; 415 unsupported content type; 422 invalid fields; 429 too many requests
(code `rate_limited`, with `Retry-After` in seconds): filing, a reporter's actions and
self-registration are limited per key and per client address (see the server's configuration).

**Locations** are WGS-84 `lat`/`lon`; `0,0` is refused as "no position fix".
"""

TAGS = {
    "reports": "Reporters: register, file reports, follow them.",
    "directory": "Offices, categories and health, for anyone.",
    "offices": "What an office does with the cases in its queue.",
    "admin": "The routing rules, changed only by versioned changes.",
    "meta": "This description.",
}

# Said of the one error shape when an operation does not say more.
ERROR_DESCRIPTIONS = {
    400: "Malformed body or header.",
    401: "Missing, unknown, revoked or expired key.",
    403: "This key's role may not do this.",
    404: "Not found.",
    409: "Not in a state that allows this.",
    413: "Too large.",
    415: "Unsupported content type.",
    422: "Invalid or missing fields.",
}
SUCCESS_DESCRIPTIONS = {200: "OK.", 201: "Created.", 202: "Accepted."}
WWW_AUTHENTICATE = Header(
    'The scheme to use: Bearer (error="invalid_token" for an unknown, revoked or expired key).',
    required=True,
)
PHOTO_TYPES = "image/jpeg, image/png, image/webp, image/heic"
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class UndescribedRoute(RuntimeError):
    """A route under /api/v1 whose view has no ``@operation``."""


class OpenApiDocument(Schema):
    """The top of an OpenAPI 3.1 document (what this endpoint answers)."""

    openapi = fields.String(required=True, validate=validate.Regexp(r"^3\.1\.\d+$"))
    info = fields.Dict(required=True)
    tags = fields.List(fields.Dict(), required=True)
    paths = fields.Dict(required=True)
    components = fields.Dict(required=True)


def openapi_document(app: Flask) -> dict[str, Any]:
    """The document for this app, built on first use."""
    document: dict[str, Any] | None = app.extensions.get(EXTENSION)
    if document is None:
        document = app.extensions[EXTENSION] = build_document(app)
    return document


def build_document(app: Flask) -> dict[str, Any]:
    plugin = MarshmallowPlugin(schema_name_resolver=_SchemaNames())
    spec = APISpec(
        title="CityRelay API",
        version="1",
        openapi_version="3.1.0",
        plugins=[plugin],
        info={"description": DESCRIPTION},
    )
    spec.components.security_scheme(
        "bearer",
        {"type": "http", "scheme": "bearer", "description": "A CityRelay API key."},
    )
    undescribed = []
    used_tags: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(API_PREFIX):
            continue
        described = operation_of(app.view_functions[rule.endpoint])
        if described is None:
            undescribed.append(f"{rule.rule} ({rule.endpoint})")
            continue
        path, parameters = _path(rule)
        methods = sorted(_methods(rule))
        operations = {}
        for method in methods:
            operations[method.lower()] = _operation(plugin, described, parameters)
            # The Flask endpoint names the operation (unique, and stable while the view is).
            operation_id = rule.endpoint.replace(".", "_")
            if len(methods) > 1:
                operation_id += f"_{method.lower()}"
            operations[method.lower()]["operationId"] = operation_id
        used_tags += [t for t in described.tags if t not in used_tags]
        spec.path(path=path, operations=operations)
    if undescribed:
        raise UndescribedRoute(
            "Describe these routes with @web.openapi.operation: " + ", ".join(undescribed)
        )
    for tag in sorted(
        used_tags, key=lambda t: (list(TAGS).index(t) if t in TAGS else len(TAGS), t)
    ):
        spec.tag({"name": tag, "description": TAGS[tag]} if tag in TAGS else {"name": tag})
    document = spec.to_dict()
    # Listed by name, not in the order the routes first used them.
    schemas = document["components"]["schemas"]
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return OpenApiDocument().dump(document)


class _SchemaNames:
    """Names components after their schema class (without a ``Schema`` suffix) and refuses two
    schemas under one name: each schema is in the document once, under a name of its own."""

    def __init__(self) -> None:
        self.classes: dict[str, type[Schema]] = {}

    def __call__(self, schema: type[Schema] | Schema) -> str:
        cls = resolve_schema_cls(schema)
        assert isinstance(cls, type)
        name = cls.__name__.removesuffix("Schema") or cls.__name__
        known = self.classes.setdefault(name, cls)
        if known is not cls:
            raise ValueError(
                f"Two schemas would be the component {name!r}: {known.__module__}.{known.__name__}"
                f" and {cls.__module__}.{cls.__name__}; rename one."
            )
        return name


def _methods(rule: Rule) -> Iterable[str]:
    return (rule.methods or set()) - {"HEAD", "OPTIONS"}


_ARGUMENT = re.compile(r"<(?:[a-zA-Z_][\w]*(?:\([^)]*\))?:)?([a-zA-Z_]\w*)>")


def _path(rule: Rule) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path (``{name}`` for ``<converter:name>``) and its parameters, each typed
    from its URL converter: what the URL can match is what the document says."""
    path = _ARGUMENT.sub(r"{\1}", rule.rule)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _converter_schema(rule, name)}
        for name in _ARGUMENT.findall(rule.rule)
    ]
    return path, parameters


def _converter_schema(rule: Rule, name: str) -> dict[str, Any]:
    converter = rule._converters[name]  # werkzeug keeps the converters only here
    if isinstance(converter, IntegerConverter):
        schema: dict[str, Any] = {"type": "integer"}
        minimum = converter.min
        if minimum is None and not converter.signed:
            minimum = 0
        if minimum is not None:
            schema["minimum"] = minimum
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    if isinstance(converter, FloatConverter):
        return {"type": "number"}
    if isinstance(converter, UnicodeConverter | PathConverter):
        return {"type": "string", "pattern": f"^{converter.regex}$"}
    raise UndescribedRoute(
        f"{rule.rule}: no JSON Schema for the URL converter {type(converter).__name__} of "
        f"'{name}'; teach cityrelay.openapi._converter_schema about it"
    )


def _operation(
    plugin: MarshmallowPlugin, described: Operation, path_parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    parameters = copy.deepcopy(path_parameters)
    if described.query is not None:
        parameters.append({"in": "query", "schema": described.query})
    parameters += [
        {
            "name": name,
            "in": "header",
            "required": header.required,
            "description": header.description,
            "schema": dict(header.schema),
        }
        for name, header in described.headers.items()
    ]
    operation_object: dict[str, Any] = {
        "summary": described.summary,
        "responses": {
            str(status): _response(status, answer) for status, answer in described.responses.items()
        },
    }
    if described.description:
        operation_object["description"] = described.description
    if described.tags:
        operation_object["tags"] = list(described.tags)
    if parameters:
        operation_object["parameters"] = parameters
    if described.body is not None:
        operation_object["requestBody"] = {
            "required": described.body_required,
            "content": {
                media_type: _body_content(plugin, described, media_type)
                for media_type in described.body_media_types
            },
        }
    if described.security == "bearer":
        operation_object["security"] = [{"bearer": []}]
    return operation_object


def _body_content(plugin: MarshmallowPlugin, described: Operation, media_type: str) -> Any:
    assert described.body is not None
    if media_type not in FORM_TYPES:
        content = {"schema": described.body}
        if described.body_example is not None and media_type == "application/json":
            content["example"] = dict(described.body_example)
        return content
    # A form carries the body's fields as parts; a part cannot be null (leave it out instead).
    assert plugin.converter is not None
    if isinstance(described.body, dict):
        form: dict[str, Any] = copy.deepcopy(described.body)
    else:
        form = plugin.converter.schema2jsonschema(described.body)
    for field_schema in form.get("properties", {}).values():
        _drop_null(field_schema)
    content: dict[str, Any] = {"schema": form}
    if media_type == "multipart/form-data" and described.files:
        for name, description in described.files.items():
            form["properties"][name] = {
                "type": "array",
                "items": {"type": "string", "format": "binary"},
                "description": description,
            }
        content["encoding"] = {name: {"contentType": PHOTO_TYPES} for name in described.files}
    return content


def _drop_null(field_schema: dict[str, Any]) -> None:
    kinds = field_schema.get("type")
    if isinstance(kinds, list) and "null" in kinds:
        kinds = [kind for kind in kinds if kind != "null"]
        field_schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "enum" in field_schema:
        field_schema["enum"] = [value for value in field_schema["enum"] if value is not None]
    if "default" in field_schema and field_schema["default"] is None:
        del field_schema["default"]


def _response(status: int, answer: Answer) -> dict[str, Any]:
    is_error = _is_error_schema(answer.schema)
    description = answer.description or (
        ERROR_DESCRIPTIONS.get(status, "Error.")
        if is_error
        else SUCCESS_DESCRIPTIONS.get(status, "OK.")
    )
    response: dict[str, Any] = {"description": description}
    if answer.schema is not None:
        schema: SchemaLike = answer.schema
        response["content"] = {answer.media_type: {"schema": schema}}
    headers = dict(answer.headers)
    if status == 401 and is_error:
        headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
    if headers:
        response["headers"] = {
            name: {
                "description": header.description,
                "required": header.required,
                "schema": dict(header.schema),
            }
            for name, header in headers.items()
        }
    return response


def _is_error_schema(schema: SchemaLike | None) -> bool:
    if schema is None or isinstance(schema, dict):
        return False
    cls = schema if isinstance(schema, type) else type(schema)
    return issubclass(cls, ErrorSchema)


# ---------- the routes ----------


@bp.get("/api/v1/openapi.json")
@operation(
    summary="This document: the OpenAPI 3.1 description of /api/v1",
    responses={200: OpenApiDocument},
    tags=["meta"],
)
def openapi() -> ResponseReturnValue:
    return openapi_document(current_app)


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    """The API documentation for people: Swagger UI over /api/v1/openapi.json, every file from
    this server (the pages' Content-Security-Policy holds: no inline script, no other host)."""
    page = render_template(
        "openapi_docs.html",
        spec_url=url_for("openapi.openapi"),
        asset=bp.asset_url,
    )
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-cache"
    return response
