"""What each /api/v1 operation takes and answers, declared next to its view:

    @bp.post("/reports")
    @operation(
        summary="File a report",
        body=ReportIn,
        responses={202: ReportAccepted, 401: ERROR, 403: ERROR, 422: ERROR},
        security="bearer",
        tags=["reports"],
    )
    def create_report(): ...

The decorator only records this on the view function; it changes nothing the view does.
``cityrelay.openapi`` builds the OpenAPI document from the app's routes and these records, and
refuses to build when a route under /api/v1 has none, so no operation goes undescribed.

``responses`` must name every status the view can answer with (a 500 aside). A value is a
marshmallow schema (class or instance; ``Schema(many=True)`` for a list), ``ERROR`` (the one
error shape, described by its status), ``error("why")`` (the error shape, described), or an
``Answer`` for a description or response headers of its own. A 401 in the error shape is
described with its ``WWW-Authenticate`` header. Ids in the view's URL are ``<id:name>``
(``web.urls``): the document gives their range, and a number outside it is 404.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from marshmallow import Schema

from web.errors import ErrorSchema

# A marshmallow schema (class or instance), or a JSON Schema written out where no marshmallow
# schema describes the value (say, a whole OpenAPI document).
SchemaLike = type[Schema] | Schema | dict[str, Any]

View = TypeVar("View", bound=Callable[..., Any])

ATTRIBUTE = "__openapi_operation__"


@dataclass(frozen=True)
class Header:
    """A header a request may send or a response carries."""

    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False


@dataclass(frozen=True)
class Answer:
    """One response: its body's schema (None: no body), description and headers."""

    schema: SchemaLike | None
    description: str = ""
    headers: Mapping[str, Header] = field(default_factory=dict)
    media_type: str = "application/json"


# The one error shape of web.errors; the description comes from the status unless given.
ERROR = Answer(ErrorSchema)


def error(description: str) -> Answer:
    """The one error shape, with what this operation means by that status."""
    return Answer(ErrorSchema, description)


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: Mapping[int, Answer]
    description: str = ""
    body: SchemaLike | None = None
    body_required: bool = True
    # A JSON body that works: shown in /docs, and sent by the live schemathesis run.
    body_example: Mapping[str, Any] | None = None
    # Media types the body may come in; form types carry the body schema's fields as parts.
    body_media_types: tuple[str, ...] = ("application/json",)
    # File parts of a multipart body: name -> description; each may repeat.
    files: Mapping[str, str] = field(default_factory=dict)
    query: type[Schema] | Schema | None = None
    headers: Mapping[str, Header] = field(default_factory=dict)
    security: Literal["bearer"] | None = None
    tags: tuple[str, ...] = ()


def operation(
    *,
    summary: str,
    responses: Mapping[int, Answer | SchemaLike],
    description: str = "",
    body: SchemaLike | None = None,
    body_required: bool = True,
    body_example: Mapping[str, Any] | None = None,
    body_media_types: Sequence[str] = ("application/json",),
    files: Mapping[str, str] | None = None,
    query: type[Schema] | Schema | None = None,
    headers: Mapping[str, Header] | None = None,
    security: Literal["bearer"] | None = None,
    tags: Sequence[str] = (),
) -> Callable[[View], View]:
    """Records the operation on the view; see the module's docstring."""
    if not responses:
        raise ValueError(f"{summary!r}: an operation answers with at least one status")
    if files and not any(t.startswith("multipart/") for t in body_media_types):
        raise ValueError(f"{summary!r}: file parts need a multipart body")
    described = Operation(
        summary=summary,
        responses={
            status: answer if isinstance(answer, Answer) else Answer(answer)
            for status, answer in sorted(responses.items())
        },
        description=description,
        body=body,
        body_required=body_required,
        body_example=body_example,
        body_media_types=tuple(body_media_types),
        files=dict(files or {}),
        query=query,
        headers=dict(headers or {}),
        security=security,
        tags=tuple(tags),
    )

    def record(view: View) -> View:
        setattr(view, ATTRIBUTE, described)
        return view

    return record


def operation_of(view: Callable[..., Any]) -> Operation | None:
    """What ``@operation`` recorded on the view, if anything."""
    described = getattr(view, ATTRIBUTE, None)
    return described if isinstance(described, Operation) else None
