"""URL pieces the doors share."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

# Ids are integer columns: on PostgreSQL 4 bytes, so no row has a larger id.
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """``<id:name>``: a row id, 1 to MAX_ROW_ID, in ASCII digits. A number outside that names no
    row, so the URL does not match (404) instead of reaching a database that cannot compare it
    with a column; ``\\d`` would also match "١" or "５", which name no row either."""

    regex = r"[0-9]{1,19}"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, min=1, max=MAX_ROW_ID)


CONVERTERS = {"id": RowIdConverter}
