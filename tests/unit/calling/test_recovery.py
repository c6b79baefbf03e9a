"""Reading the PBX's own record of an answered call (the dialplan's outreach-record)."""

from __future__ import annotations

import pytest

from dialer.calling.recovery import PbxRecord, parse_record


@pytest.mark.parametrize(
    ("value", "record"),
    [
        (
            "answered epoch=1796561107 agent=Local/2001@agents/n digit=",
            PbxRecord("Local/2001@agents/n", None),
        ),
        ("answered epoch=1796561100 agent= digit=2", PbxRecord(None, "2")),
        ("answered agent= digit=", PbxRecord(None, None)),
        ("  answered epoch= agent= digit=#\n", PbxRecord(None, "#")),
    ],
)
def test_the_record_says_who_took_the_call_and_what_was_pressed(
    value: str, record: PbxRecord
) -> None:
    assert parse_record(value) == record


@pytest.mark.parametrize("value", ["", "answered", "ANSWERED agent= digit=", "something else"])
def test_a_value_the_dialplan_did_not_write_is_no_record(value: str) -> None:
    assert parse_record(value) is None
