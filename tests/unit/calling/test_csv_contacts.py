"""Reading contacts CSV files as a stream: line numbers, encodings, and the files CSV rules
refuse (each reported at its line, the reading going on after it)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from dialer.calling.csv_contacts import CsvProblem, CsvRecord, FileError, read_contacts_csv


def read(tmp_path: Path, data: bytes) -> list[CsvRecord | CsvProblem]:
    path = tmp_path / "contacts.csv"
    path.write_bytes(data)
    return list(read_contacts_csv(path))


def test_records_come_with_the_line_they_start_on(tmp_path: Path) -> None:
    found = read(tmp_path, b'phone,name,order_id\n13800001001,A,o1\n\n13800001002,"B\nC",o2\n1380')
    assert found == [
        CsvRecord(2, {"phone": "13800001001", "name": "A", "order_id": "o1"}),
        CsvRecord(4, {"phone": "13800001002", "name": "B\nC", "order_id": "o2"}),
        CsvRecord(6, {"phone": "1380", "name": "", "order_id": ""}),
    ]


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        ("phone,name\n13800001001,王小明\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "phone,name\n13800001001,王小明\n".encode(), "utf-8 with a BOM"),
        ("phone,name\n13800001001,王小明\n".encode("gbk"), "gbk"),
        ("phone,name\n13800001001,王小明\n".encode("gb18030"), "gb18030"),
        ("phone,name\n13800001001,王小明\n".encode("utf-16"), "utf-16 with a BOM"),
        (codecs.BOM_UTF16_BE + "phone,name\n13800001001,王小明\n".encode("utf-16-be"), "utf-16-be"),
    ],
    ids=lambda value: value if isinstance(value, str) else "bytes",
)
def test_what_chinese_spreadsheets_write_is_read(
    tmp_path: Path, encoded: bytes, encoding: str
) -> None:
    assert read(tmp_path, encoded) == [CsvRecord(2, {"phone": "13800001001", "name": "王小明"})]


def test_a_value_over_128_kib_is_refused_at_its_line_and_the_rest_is_read(tmp_path: Path) -> None:
    data = b"phone,name\n13800001001," + b"x" * 200_000 + b"\n13800001002,B\n"
    found = read(tmp_path, data)
    assert found == [
        CsvProblem(2, "a value longer than 128 KiB"),
        CsvRecord(3, {"phone": "13800001002", "name": "B"}),
    ]


def test_a_quote_never_closed_is_reported_where_it_opens(tmp_path: Path) -> None:
    found = read(tmp_path, b'phone,name\n13800001001,A\n13800001002,"B\n13800001003,C\n')
    assert found[0] == CsvRecord(2, {"phone": "13800001001", "name": "A"})
    assert isinstance(found[1], CsvProblem)
    assert found[1].line == 3
    assert found[1].reason.startswith("a quote opened here is never closed")
    assert "lines 3-4" in found[1].reason
    assert len(found) == 2


def test_more_values_than_columns_is_refused_with_its_line(tmp_path: Path) -> None:
    assert read(tmp_path, b"phone,name\n13800001001,A,extra\n") == [
        CsvProblem(2, "3 values for 2 columns")
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"name\nA\n", "line 1: the header has no `phone` column"),
        (b"phone,name,phone\n1,2,3\n", "line 1: the header names 'phone' twice (columns 1 and 3)"),
        (b"", "line 1: the file is empty"),
    ],
)
def test_a_header_that_cannot_be_used_stops_the_import(
    tmp_path: Path, data: bytes, message: str
) -> None:
    with pytest.raises(FileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read(tmp_path, data)


def test_a_record_that_does_not_decode_is_refused_at_its_line(tmp_path: Path) -> None:
    rows = b"13800001001,A\n" * 100_000  # more than the part the encoding is sniffed in
    found = read(tmp_path, b"phone,name\n" + rows + b"13800001002,\xff\xfe\n13800001003,C\n")
    assert found[-2:] == [
        CsvProblem(100_002, "not utf-8 text; save the file as UTF-8"),
        CsvRecord(100_003, {"phone": "13800001003", "name": "C"}),
    ]
