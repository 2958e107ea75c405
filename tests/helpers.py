"""Small things several test modules need."""

from __future__ import annotations

import struct
import zlib
from typing import Any

from models.seed import demo_city


def sample_point(office_code: str | None = None) -> dict[str, Any]:
    """A point well inside a demo community (the first one unless named)."""
    points = demo_city()["sample_points"]
    if office_code is None:
        return points[0]
    return next(p for p in points if p["office"] == office_code)


def tiny_png(seed: int = 0) -> bytes:
    """A valid 1x1 PNG; ``seed`` changes the pixel so photos can differ."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixel = zlib.compress(bytes([0, seed % 256, 0, 0]))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixel) + chunk(b"IEND", b"")
    )
