"""Where a report is: coordinates, or at least an address or landmark a person can place. One
check for every door; each door names the fields in its own words (Open311 says ``long`` and
``address_string`` where the REST API says ``lon`` and ``address``)."""

from __future__ import annotations

from models.limits import MAX_ADDRESS_CHARS, MAX_ADDRESS_ID_CHARS
from services.errors import InvalidField, InvalidFields

NO_FIX = "0,0 is not a real location; the device had no position fix."
# Codes of the refusals, so that each door can word them for its own clients.
LOCATION_MISSING = "location_missing"
COORDINATES_APART = "coordinates_apart"
NO_POSITION_FIX = "no_position_fix"


def check_location(
    lat: float | None,
    lon: float | None,
    address: str = "",
    address_id: str = "",
) -> None:
    """Refuses a report that cannot be placed, naming the fields ``lat``, ``lon``, ``address``
    and ``address_id``."""
    if len(address) > MAX_ADDRESS_CHARS:
        raise InvalidField("address", f"At most {MAX_ADDRESS_CHARS} characters.")
    if len(address_id) > MAX_ADDRESS_ID_CHARS:
        raise InvalidField("address_id", f"At most {MAX_ADDRESS_ID_CHARS} characters.")
    if lat is None and lon is None:
        if not address.strip() and not address_id.strip():
            hint = "Give lat and lon, or an address or landmark."
            raise InvalidFields(
                {"lat": [hint], "lon": [hint], "address": [hint]}, code=LOCATION_MISSING
            )
        return
    if lat is None or lon is None:
        missing, given = ("lat", "lon") if lat is None else ("lon", "lat")
        raise InvalidField(
            missing, f"Give {missing} together with {given}.", code=COORDINATES_APART
        )
    if not -90 <= lat <= 90:
        raise InvalidField("lat", "Must be from -90 to 90.")
    if not -180 <= lon <= 180:
        raise InvalidField("lon", "Must be from -180 to 180.")
    # (0, 0) is what a phone sends when it has no fix; no city is there.
    if lat == 0 and lon == 0:
        raise InvalidField("lat", NO_FIX, code=NO_POSITION_FIX)
