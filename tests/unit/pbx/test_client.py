"""The AMI adapter's pure parts: header checks, message parsing, streaming UTF-8."""

from __future__ import annotations

import pytest

from dialer.calling.ports import (
    OriginateRequest,
    PbxError,
    PbxNotSent,
    PbxRefused,
    PbxUnconfirmed,
)
from dialer.pbx.adapter import translated
from dialer.pbx.protocol import AmiProtocol
from dialer.pbx.wire import (
    AmiActionFailed,
    AmiDisconnected,
    AmiError,
    AmiEvent,
    AmiNotConnected,
    AmiTimeout,
    UnsafeHeader,
    check_headers,
    parse_message,
    variable_headers,
)


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> None:
        return None


def protocol_collecting(events: list[AmiEvent]) -> AmiProtocol:
    protocol = AmiProtocol()
    protocol.connection_made(FakeTransport())
    protocol.on_event = events.append
    return protocol


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\0b", "x\r\n\r\nAction: Command"])
def test_check_headers_refuses_line_breaks_and_nul_in_values(bad: str) -> None:
    with pytest.raises(UnsafeHeader):
        check_headers({"Action": "Originate", "Variable": ["OK=1", bad]})


@pytest.mark.parametrize("bad_key", ["Act:ion", "A\r\nB", "", "X\0"])
def test_check_headers_refuses_bad_header_names(bad_key: str) -> None:
    with pytest.raises(UnsafeHeader):
        check_headers({"Action": "Ping", bad_key: "1"})


def test_check_headers_accepts_an_ordinary_originate() -> None:
    check_headers({"Action": "Originate", "Channel": "Local/+8613800001001@customers"})


def test_originate_variables_with_commas_are_refused() -> None:
    with pytest.raises(UnsafeHeader, match="comma"):
        variable_headers({"ORDER": "a,b"})
    assert variable_headers({"ATTEMPT_ID": "a-1", "NAME": "王"}) == ["ATTEMPT_ID=a-1", "NAME=王"]


def test_originate_request_derives_the_second_leg_id() -> None:
    request = OriginateRequest(
        action_id="a1", channel_id="a1", channel="Local/1@c", context="x", exten="s"
    )
    assert request.other_channel_id == "a1-2"


def test_parse_message_keeps_first_of_repeated_headers_and_splits_chan_variables() -> None:
    headers = parse_message(
        "Event: Hangup\r\nUniqueid: u1\r\nCause: 16\r\nCause: 17\r\n"
        "ChanVariable: ATTEMPT_ID=a-1\r\nbanner line without separator"
    )
    assert headers == {
        "Event": "Hangup",
        "Uniqueid": "u1",
        "Cause": "16",
        "ChanVariable(ATTEMPT_ID)": "a-1",
    }


def test_protocol_decodes_utf8_split_across_reads() -> None:
    events: list[AmiEvent] = []
    protocol = protocol_collecting(events)
    wire = "Event: VarSet\r\nVariable: CUSTOMER_NAME\r\nValue: 王小明\r\n\r\n".encode()
    for index in range(len(wire)):  # one byte per read: every character is split
        protocol.data_received(wire[index : index + 1])
    assert events == [{"Event": "VarSet", "Variable": "CUSTOMER_NAME", "Value": "王小明"}]


def test_protocol_hands_over_several_events_from_one_read_in_order() -> None:
    events: list[AmiEvent] = []
    protocol = protocol_collecting(events)
    protocol.data_received(
        b"Asterisk Call Manager/9.0.0\r\nEvent: Newchannel\r\nUniqueid: a\r\n\r\n"
        b"Event: Hangup\r\nUniqueid: a\r\n\r\nEvent: Partial\r\n"
    )
    assert [e["Event"] for e in events] == ["Newchannel", "Hangup"]
    protocol.data_received(b"Uniqueid: b\r\n\r\n")
    assert events[-1] == {"Event": "Partial", "Uniqueid": "b"}


def test_protocol_closes_the_link_when_asterisk_announces_shutdown() -> None:
    events: list[AmiEvent] = []
    protocol = protocol_collecting(events)
    protocol.data_received(b"Event: Shutdown\r\nShutdown: Cleanly\r\nRestart: True\r\n\r\n")
    assert events[0]["Event"] == "Shutdown"
    assert protocol.transport.closed


@pytest.mark.parametrize(
    ("raised", "port_error"),
    [
        (UnsafeHeader("CR in a header"), PbxNotSent),
        (AmiNotConnected("not logged in"), PbxNotSent),
        (AmiActionFailed("Originate", "Asterisk is shutting down"), PbxRefused),
        (AmiTimeout("no answer to Originate within 10 s"), PbxUnconfirmed),
        (AmiDisconnected("link lost"), PbxUnconfirmed),
        (AmiError("anything else"), PbxError),
    ],
)
def test_the_ami_errors_become_the_campaigns_pbx_errors(
    raised: Exception, port_error: type[Exception]
) -> None:
    with pytest.raises(port_error) as caught, translated():
        raise raised
    assert type(caught.value) is port_error
    assert caught.value.__cause__ is raised
    if isinstance(raised, AmiActionFailed):
        assert isinstance(caught.value, PbxRefused)
        assert caught.value.message == "Asterisk is shutting down"
