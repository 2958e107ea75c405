"""services.exports.ExportFile: a stored export read back as a seekable file, one piece at a
time, whatever the reads and seeks ask for."""

from __future__ import annotations

import io

import pytest

from services.exports import ChunkReader, ExportFile

DATA = bytes(range(256)) * 3


def pieces_of(data: bytes, lengths: list[int]) -> dict[int, bytes]:
    """``data`` cut into pieces of ``lengths``, keyed by where each starts."""
    pieces, start = {}, 0
    for length in lengths:
        pieces[start] = data[start : start + length]
        start += length
    assert start == len(data)
    return pieces


def reader(pieces: dict[int, bytes], asked: list[int] | None = None) -> ChunkReader:
    def read_chunk(offset: int) -> tuple[int, bytes] | None:
        if asked is not None:
            asked.append(offset)
        for start, data in pieces.items():
            if start <= offset < start + len(data):
                return start, data
        return None

    return read_chunk


def test_reads_the_whole_file_one_piece_at_a_time() -> None:
    asked: list[int] = []
    stored = ExportFile(reader(pieces_of(DATA, [300, 1, 299, 168]), asked), len(DATA))
    out = b""
    while block := stored.read(64):
        out += block
    assert out == DATA
    # each piece fetched once, in order
    assert asked == [0, 300, 301, 600]


def test_seeks_anywhere_and_reads_from_there() -> None:
    stored = ExportFile(reader(pieces_of(DATA, [500, 268])), len(DATA))
    assert stored.seekable() and stored.readable()
    assert stored.seek(490) == 490 and stored.read(20) == DATA[490:510]
    assert stored.tell() == 510
    assert stored.seek(-10, io.SEEK_END) == len(DATA) - 10 and stored.read() == DATA[-10:]
    assert stored.read(5) == b""
    stored.seek(100)
    assert stored.seek(5, io.SEEK_CUR) == 105 and stored.read(3) == DATA[105:108]
    with pytest.raises(ValueError):
        stored.seek(-1)


def test_a_piece_missing_mid_way_is_an_error_not_a_short_file() -> None:
    pieces = pieces_of(DATA, [400, 368])
    del pieces[400]
    stored = ExportFile(reader(pieces), len(DATA))
    assert stored.read(400) == DATA[:400]
    with pytest.raises(OSError, match="no byte 400"):
        stored.read(10)
