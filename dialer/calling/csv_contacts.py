"""Reading a contacts CSV file as a stream, row by row, with the line each row starts on.

- **Encodings**: a byte-order mark decides (UTF-8, UTF-16 LE/BE); without one, the start of the
  file is tried as UTF-8, else it is read as GB18030 (a superset of GBK, what Chinese
  spreadsheets write). A record with bytes that do not decode in that encoding (a file that
  mixes two) is refused at its line, the encoding named.
- **The header** (line 1) names the columns; names are trimmed; it must name `phone`, and no
  column twice.
- **Each record** comes with the line it starts on (a quoted value may span lines: "lines 7-9").
  A record the CSV rules refuse (a value over 128 KiB, a quote opened and never closed, which
  would otherwise swallow the rest of the file) is reported at its first line and the reading
  goes on after it. A record with more values than columns is reported too.

Nothing is held but the record being read: a file of any size streams in bounded memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["CsvProblem", "CsvRecord", "FileError", "read_contacts_csv"]

SNIFF_BYTES = 1 << 20
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes surrogateescape could not decode
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class FileError(ValueError):
    """The file as a whole cannot be read (the message says where and why)."""


@dataclass(frozen=True)
class CsvRecord:
    line: int  # the line the record starts on
    values: dict[str, str]


@dataclass(frozen=True)
class CsvProblem:
    line: int
    reason: str


def _lines(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def sniff_encoding(head: bytes) -> str:
    """The encoding of a file starting with `head`."""
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _open(binary: BinaryIO) -> tuple[io.TextIOWrapper, str]:
    head = binary.read(SNIFF_BYTES)
    binary.seek(0)
    encoding = sniff_encoding(head)
    text = io.TextIOWrapper(binary, encoding=encoding, errors="surrogateescape", newline="")
    return text, encoding


def read_contacts_csv(path: Path) -> Iterator[CsvRecord | CsvProblem]:
    """Every record of the file (or the problem with it), in order; `FileError` when the file
    cannot be read at all (no such file, no `phone` column, undecodable)."""
    try:
        binary = path.open("rb")
    except OSError as exc:
        raise FileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with binary:
        text, encoding = _open(binary)
        yield from _records(text, path, encoding)


def _records(text: io.TextIOWrapper, path: Path, encoding: str) -> Iterator[CsvRecord | CsvProblem]:
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise FileError(f"{path}: line 1: the header cannot be read: {exc}") from None
    if header and any(_UNDECODED.search(name) for name in header):
        raise FileError(f"{path}: line 1: not {encoding} text; save the file as UTF-8")
    columns = _columns(header, path)
    while True:
        first = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield CsvProblem(first, _csv_reason(str(exc), first, reader.line_num))
            continue
        if not any(value.strip() for value in values):
            continue
        if any(_UNDECODED.search(value) for value in values):
            yield CsvProblem(first, f"not {encoding} text; save the file as UTF-8")
            continue
        if len(values) > len(columns):
            yield CsvProblem(first, f"{len(values)} values for {len(columns)} columns")
            continue
        padded = [*values, *[""] * (len(columns) - len(values))]
        record = {name: value.strip() for name, value in zip(columns, padded, strict=True)}
        yield CsvRecord(first, record)


def _columns(header: list[str] | None, path: Path) -> list[str]:
    if not header:
        raise FileError(f"{path}: line 1: the file is empty; it needs a header naming `phone`")
    columns = [name.strip().lstrip("\ufeff") for name in header]
    if "phone" not in columns:
        raise FileError(f"{path}: line 1: the header has no `phone` column")
    seen: dict[str, int] = {}
    for position, name in enumerate(columns, start=1):
        if name and name in seen:
            raise FileError(
                f"{path}: line 1: the header names {name!r} twice (columns {seen[name]} and "
                f"{position})"
            )
        seen[name] = position
    return columns


def _csv_reason(message: str, first: int, last: int) -> str:
    if message.startswith("field larger than field limit"):
        return f"a value longer than {csv.field_size_limit() // 1024} KiB"
    if message == "unexpected end of data":
        return (
            "a quote opened here is never closed: the rest of the file "
            f"({_lines(first, last)}) would be one value; nothing after it was read"
        )
    return f"not valid CSV ({_lines(first, last)}): {message}"
