"""What a use case can refuse, in the service's own words. Each door turns these into its own
error shape (the JSON error of /api/v1, Open311's error list, a page's message)."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A refusal a caller can act on; ``code`` is stable, ``message`` is for people."""

    code = "refused"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidField(ServiceError):
    """One named input field is wrong."""

    code = "validation_failed"

    def __init__(self, field: str, message: str, code: str | None = None) -> None:
        super().__init__(message, code)
        self.field = field

    @property
    def fields(self) -> dict[str, list[str]]:
        return {self.field: [self.message]}


class InvalidFields(ServiceError):
    """Several named fields are wrong together (say, a location given by neither way)."""

    code = "validation_failed"

    def __init__(self, fields: dict[str, list[str]], code: str | None = None) -> None:
        super().__init__("; ".join(f"{name}: {' '.join(ms)}" for name, ms in fields.items()), code)
        self.fields = fields


class TooLarge(InvalidField):
    """An upload is larger than allowed."""

    code = "too_large"


class NotFound(ServiceError):
    """The thing named (by id, code or in a field) does not exist."""

    code = "not_found"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Forbidden(ServiceError):
    """The caller is known but may not act on this thing (say, another office's case)."""

    code = "forbidden"

    def __init__(
        self, message: str, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code)
        self.details = details or {}


class Conflict(ServiceError):
    """The request is well formed but the thing is not in a state that allows it. ``details``
    says what the state is (a case's ``status`` and ``allowed_actions``)."""

    code = "conflict"

    def __init__(
        self, message: str, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code)
        self.details = details or {}
