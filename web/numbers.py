"""Numbers as clients must write them: ASCII digits only.

Python's ``int()`` and ``float()`` also read "５", "١" and "3_1.1", so marshmallow's own
fields would take a full-width or Arabic-Indic digit, or an underscore, as a number. A form or
query value in such digits is refused instead, naming the field; JSON numbers are numbers
already and pass as they are.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from marshmallow import fields

ASCII_INTEGER = re.compile(r"[+-]?[0-9]+")
ASCII_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _checked(value: Any, pattern: re.Pattern[str], field: fields.Number) -> Any:
    if isinstance(value, str) and not pattern.fullmatch(value.strip()):
        raise field.make_error("invalid")
    return value


class Integer(fields.Integer):
    default_error_messages: ClassVar[dict[str, str]] = {
        "invalid": "Not a valid integer (ASCII digits only)."
    }

    def _validated(self, value: Any) -> Any:
        return super()._validated(_checked(value, ASCII_INTEGER, self))


class Float(fields.Float):
    default_error_messages: ClassVar[dict[str, str]] = {
        "invalid": "Not a valid number (ASCII digits only)."
    }

    def _validated(self, value: Any) -> Any:
        return super()._validated(_checked(value, ASCII_DECIMAL, self))
