"""Photo checks and cleaning. Every accepted photo is decoded and written anew with
Pillow: upright as its EXIF orientation says, without any metadata (EXIF and its GPS, XMP, ICC
profile, comments), so neither a reporter's position nor a file that is half image and half
something else is ever stored. Where the cleaned photos are kept is ``services.photo_store``'s
business: they are named by the SHA-256 of the bytes stored, so a retried upload or the same photo
in two reports is stored once."""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from PIL import ExifTags, Image, ImageOps
from pillow_heif import register_heif_opener

from services.errors import InvalidField, TooLarge

# HEIC (iPhones) is decoded by pillow-heif and stored as JPEG, which every browser shows.
register_heif_opener()

# The largest image decoded, in pixels, unless the caller says otherwise (the web doors pass the
# MAX_PHOTO_PIXELS setting): a few kilobytes of PNG can claim a size that takes gigabytes to
# decode.
DEFAULT_MAX_PIXELS = 40_000_000
JPEG_QUALITY = 85
WEBP_QUALITY = 85

# Sniffed from the bytes; the client's declared type is not trusted.
_SIGNATURES: tuple[tuple[str, str], ...] = (
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
    ("image/heic", "heic"),
)

# Sniffed type -> the one Pillow format allowed to decode it, and what it is stored as.
_DECODE_AS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/heic": "HEIF"}
_STORE_AS = {
    "image/jpeg": ("JPEG", _SIGNATURES[0]),
    "image/png": ("PNG", _SIGNATURES[1]),
    "image/webp": ("WEBP", _SIGNATURES[2]),
    "image/heic": ("JPEG", _SIGNATURES[0]),
}
# The pixel modes each written format takes as they are; others are converted.
_MODES = {
    "JPEG": {"L", "RGB"},
    "PNG": {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"},
    "WEBP": {"RGB", "RGBA"},
}

UNREADABLE = "Not a readable JPEG, PNG, WebP or HEIC image."


def sniff_image_type(head: bytes) -> tuple[str, str] | None:
    if head.startswith(b"\xff\xd8\xff"):
        return _SIGNATURES[0]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _SIGNATURES[1]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _SIGNATURES[2]
    if head[4:8] == b"ftyp" and head[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"heif"}:
        return _SIGNATURES[3]
    return None


@dataclass(frozen=True)
class UploadedPhoto:
    """A photo as stored: the re-encoded bytes, and where its EXIF said it was taken (WGS-84
    ``(lat, lon)``, read before the EXIF was dropped; None without a usable GPS position)."""

    data: bytes
    sha256: str
    content_type: str
    extension: str
    location: tuple[float, float] | None = None

    @property
    def filename(self) -> str:
        return f"{self.sha256}.{self.extension}"


def check_photo_count(count: int, max_count: int) -> None:
    if count > max_count:
        raise InvalidField("photos", f"At most {max_count} photos per report; got {count}.")


def check_photos(
    uploads: list[bytes],
    max_count: int,
    max_bytes: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[UploadedPhoto]:
    """The uploads as photos ready to store, each sniffed from its bytes, decoded and re-encoded;
    refuses too many, too large (in bytes or in pixels), empty, non-image or undecodable files,
    naming the one at fault (``photos.<index>``)."""
    check_photo_count(len(uploads), max_count)
    photos = []
    for index, data in enumerate(uploads):
        field = f"photos.{index}"
        if len(data) > max_bytes:
            raise TooLarge(field, f"Larger than {max_bytes} bytes.")
        if not data:
            raise InvalidField(field, "Empty file.")
        kind = sniff_image_type(data[:16])
        if kind is None:
            raise InvalidField(field, "Not a JPEG, PNG, WebP or HEIC image.")
        photos.append(clean_photo(data, kind[0], field, max_pixels))
    return photos


def clean_photo(data: bytes, content_type: str, field: str, max_pixels: int) -> UploadedPhoto:
    """``data`` (sniffed as ``content_type``) decoded and written anew, upright and without
    metadata: JPEG as JPEG, PNG as PNG, WebP as WebP, HEIC as JPEG."""
    write_as, (stored_type, extension) = _STORE_AS[content_type]
    with _refused_unless_decoded(field, max_pixels):
        opened = Image.open(BytesIO(data), formats=[_DECODE_AS[content_type]])
    with opened as image:
        with _refused_unless_decoded(field, max_pixels):
            width, height = image.size
            if width * height > max_pixels:
                raise TooLarge(
                    field, f"{width}×{height} pixels; at most {max_pixels} pixels are accepted."
                )
            location = _exif_location(image)
            image.load()
            _make_upright(image)
        cleaned = _encode(image, write_as)
    return UploadedPhoto(
        cleaned, hashlib.sha256(cleaned).hexdigest(), stored_type, extension, location
    )


@contextlib.contextmanager
def _refused_unless_decoded(field: str, max_pixels: int) -> Iterator[None]:
    """What Pillow raises while opening or decoding, as the refusal it means."""
    try:
        yield
    except TooLarge:
        raise
    except Image.DecompressionBombError:
        raise TooLarge(field, f"More than {max_pixels} pixels.") from None
    except Exception:
        # Whatever Pillow cannot decode (a PNG signature followed by HTML, a truncated file,
        # a broken chunk) is not a photo.
        raise InvalidField(field, UNREADABLE) from None


def _make_upright(image: Image.Image) -> None:
    """Turns the pixels as the EXIF orientation says and drops the file's metadata but a
    palette's transparent colour. In place: a copy of a decoded 12-megapixel photo is another
    48 MiB for each upload a web worker's threads clean at once."""
    with contextlib.suppress(Exception):
        # A damaged EXIF block loses the orientation, not the photo.
        ImageOps.exif_transpose(image, in_place=True)
    kept = {"transparency": image.info["transparency"]} if "transparency" in image.info else {}
    image.info = kept


def _encode(image: Image.Image, write_as: str) -> bytes:
    if image.mode not in _MODES[write_as]:
        has_alpha = "A" in image.mode or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha and write_as != "JPEG" else "RGB")
    options: dict[str, Any] = {}
    if write_as == "JPEG":
        options = {"quality": JPEG_QUALITY}
    elif write_as == "WEBP":
        options = {"quality": WEBP_QUALITY}
    out = BytesIO()
    image.save(out, write_as, **options)
    return out.getvalue()


def _exif_location(image: Image.Image) -> tuple[float, float] | None:
    """Where the EXIF GPS block says the photo was taken, in WGS-84 degrees, or None."""
    try:
        gps = image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:
        return None
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "NS")
    lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "EW")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:  # a camera without a fix
        return None
    return round(lat, 7), round(lon, 7)


def _degrees(value: Any, ref: Any, refs: str) -> float | None:
    """EXIF degrees, minutes and seconds (three rationals) with their hemisphere reference
    (``refs``: the positive one, then the negative one) as signed decimal degrees."""
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    hemisphere = ref.strip("\x00 ").upper() if isinstance(ref, str) else ""
    if hemisphere not in (refs[0], refs[1]):
        return None
    if not isinstance(value, Sequence) or len(value) != 3:
        return None
    try:
        parts = [float(part) for part in value]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(part) and part >= 0 for part in parts):
        return None
    degrees = parts[0] + parts[1] / 60 + parts[2] / 3600
    return -degrees if hemisphere == refs[1] else degrees


def photo_location(photos: Sequence[UploadedPhoto]) -> tuple[float, float] | None:
    """Where the first photo was taken, by its EXIF GPS; what a report without a location gets."""
    return photos[0].location if photos else None
