"""The AMI adapter against the lab PBX: a real Asterisk 22 (lab/pbx)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Callable

import pytest

from dialer.calling.ports import OriginateRequest
from dialer.pbx.adapter import AmiPbx
from dialer.pbx.client import AmiClient
from dialer.pbx.wire import AmiActionFailed, AmiEvent, AmiNotConnected, LinkState, UnsafeHeader
from tests.support import EventRecorder, RecordingSleep, lab_ami_options, lab_pbx, running

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("lab_pbx_running")]


def call_to(number: str, *, exten: str = "hold", **variables: str) -> OriginateRequest:
    attempt_id = f"test-{uuid.uuid4().hex[:12]}"
    return OriginateRequest(
        action_id=attempt_id,
        channel_id=attempt_id,
        channel=f"Local/{number}@customers",
        context="lab-outbound",
        exten=exten,
        ring_timeout_s=8,
        caller_id='"Outreach" <4000>',
        variables={"ATTEMPT_ID": attempt_id, **variables},
    )


def is_originate_response(request: OriginateRequest) -> Callable[[AmiEvent], bool]:
    return lambda e: (
        e.get("Event") == "OriginateResponse" and e.get("ActionID") == request.action_id
    )


def is_hangup_of(request: OriginateRequest) -> Callable[[AmiEvent], bool]:
    return lambda e: e.get("Event") == "Hangup" and e.get("Uniqueid") == request.channel_id


async def test_client_logs_in_to_the_lab_pbx() -> None:
    client = AmiClient(lab_ami_options())
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        assert client.link.logged_in
        assert "logged in to 127.0.0.1:15038 as outreach" in client.link.detail
        pong = await client.send({"Action": "Ping"})
        assert not isinstance(pong, list)
        assert pong.ping == "Pong"


async def test_originate_to_an_answering_customer_is_followed_to_its_hangup() -> None:
    client = AmiClient(lab_ami_options())
    recorder = EventRecorder()
    client.add_event_handler(recorder)
    request = call_to("1001")
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        await client.originate(request)
        answered = await recorder.wait_for(is_originate_response(request))
        hangup = await recorder.wait_for(is_hangup_of(request))
    assert answered["Response"] == "Success"
    assert answered["Reason"] == "4"
    assert answered["Uniqueid"] == request.channel_id
    assert hangup["Cause"] == "16"
    dial_ends = [e for e in recorder.of_call(request.channel_id) if e.get("Event") == "DialEnd"]
    assert [e["DialStatus"] for e in dial_ends] == ["ANSWER"]


async def test_a_busy_customer_is_reported_by_originate_response_reason_5() -> None:
    client = AmiClient(lab_ami_options())
    recorder = EventRecorder()
    client.add_event_handler(recorder)
    request = call_to("+8613800001002")
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        await client.originate(request)
        response = await recorder.wait_for(is_originate_response(request))
    assert (response["Response"], response["Reason"]) == ("Failure", "5")


async def test_chinese_text_in_events_survives_intact() -> None:
    client = AmiClient(lab_ami_options())
    recorder = EventRecorder()
    client.add_event_handler(recorder, events={"VarSet"})
    request = call_to("1001", CUSTOMER_NAME="王小明")
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        await client.originate(request)
        varset = await recorder.wait_for(lambda e: e.get("Variable") == "CUSTOMER_NAME")
    assert varset["Value"] == "王小明"


async def test_a_raising_event_handler_does_not_stop_other_events() -> None:
    client = AmiClient(lab_ami_options())
    raised: list[str] = []

    def broken_handler(event: AmiEvent) -> None:
        raised.append(event.get("Event", ""))
        raise RuntimeError("handler bug")

    recorder = EventRecorder()
    client.add_event_handler(broken_handler)
    client.add_event_handler(recorder)
    request = call_to("1001")
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        await client.originate(request)
        await recorder.wait_for(is_hangup_of(request))
        assert client.link.logged_in, "the link must survive a handler exception"
    assert len(raised) >= 5


async def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    client = AmiClient(lab_ami_options())
    evil = call_to("1001", NOTE="x\r\n\r\nAction: Command\r\nCommand: core stop now")
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        with pytest.raises(UnsafeHeader):
            await client.originate(evil)
        # The link is still up and Asterisk still answers: nothing was written.
        assert not isinstance(pong := await client.send({"Action": "Ping"}), list)
        assert pong.ping == "Pong"


async def test_an_action_asterisk_rejects_raises_action_failed() -> None:
    client = AmiClient(lab_ami_options())
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        with pytest.raises(AmiActionFailed, match="Getvar failed"):
            await client.send({"Action": "Getvar", "Channel": "Local/none-0000;1", "Variable": "X"})


async def test_a_list_action_asterisk_refuses_answers_at_once_not_after_the_time_out() -> None:
    # DBGet of a key AstDB does not hold is one `Response: Error` and no list: the record of a
    # call that was never answered, looked up by every recovery after a crash.
    client = AmiClient(lab_ami_options(action_timeout_s=30))
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        pbx = AmiPbx(client)
        async with asyncio.timeout(10):  # a guard only: the bug waited out the 30 s time-out
            assert await pbx.db_get("outreach_19700101", uuid.uuid4().hex) is None
            with pytest.raises(AmiActionFailed, match="DBGet failed"):
                await client.send({"Action": "DBGet", "Family": "f", "Key": "k"}, as_list=True)
            channels = await client.send({"Action": "CoreShowChannels"}, as_list=True)
        assert isinstance(channels, list)
        assert channels[-1].event == "CoreShowChannelsComplete"


async def test_client_survives_an_asterisk_restart_and_calls_after_it() -> None:
    client = AmiClient(lab_ami_options())
    recorder = EventRecorder()
    client.add_event_handler(recorder)
    states: list[bool] = []
    logged_in_again = asyncio.Event()

    def on_link_change(state: LinkState) -> None:
        states.append(state.logged_in)
        if state.logged_in and False in states:
            logged_in_again.set()

    client.add_link_listener(on_link_change)
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        await asyncio.to_thread(lab_pbx, "restart-asterisk")
        await recorder.wait_for(lambda e: e.get("Event") == "Shutdown")
        async with asyncio.timeout(20):
            await logged_in_again.wait()
        request = call_to("1001")
        await client.originate(request)
        response = await recorder.wait_for(is_originate_response(request))
    assert response["Reason"] == "4"
    assert states[:3] == [True, False, True]
    assert client.link.reconnects == 1


async def test_a_silent_server_is_noticed_by_the_ping_watchdog() -> None:
    client = AmiClient(lab_ami_options(ping_interval_s=0.5, ping_timeout_s=0.5))
    lost = asyncio.Event()
    client.add_link_listener(lambda state: None if state.logged_in else lost.set())
    pid = int(lab_pbx("pid").stdout.strip())
    async with running(client):
        await client.wait_logged_in(timeout_s=10)
        os.kill(pid, signal.SIGSTOP)
        try:
            async with asyncio.timeout(10):
                await lost.wait()
        finally:
            os.kill(pid, signal.SIGCONT)
        await client.wait_logged_in(timeout_s=20)
    assert client.link.reconnects >= 1


async def test_a_wrong_secret_is_reported_and_retried_only_after_the_long_backoff() -> None:
    sleep = RecordingSleep()
    client = AmiClient(
        lab_ami_options(secret="not-the-secret", login_failure_backoff_s=60.0), sleep=sleep
    )
    async with running(client):
        delays = await sleep.wait_for_count(1)
        assert client.link.login_failures == 1
        assert not client.link.logged_in
        assert "login refused as 'outreach'" in client.link.detail
        assert "Authentication failed" in client.link.detail
        with pytest.raises(AmiNotConnected):
            await client.send({"Action": "Ping"})
    assert delays[0] >= 48.0  # 60 s with at most 20% jitter: not a tight loop
