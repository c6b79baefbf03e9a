"""The campaign runner on a real store (SQLite and PostgreSQL) with a fake PBX and a fake clock:
outcomes, retries, dispositions, windows, pause, DNC, recovery. No sleeping: burst mode."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from dialer.calling.options import RunnerOptions
from dialer.calling.ports import NewContact
from dialer.calling.service import CampaignService
from dialer.store import CampaignStore, Store
from dialer.store.opt_outs import opt_out
from tests.fakes.campaign_pbx import NOW, FakeClock, FakePbx, Script, never, no_wait, settings_with

WEEK = "{mon: [09:00-21:00], tue: [09:00-21:00], wed: [09:00-21:00], thu: [09:00-21:00]}"
REFUSAL = f"""
refusal:
  kind: refusal_callback
  channel: Local/{{number}}@customers
  max_concurrent_calls: 10
  max_calls_per_second: 100
  calling_windows: {WEEK}
  retry:
    busy: {{delay_s: 600, max_attempts: 2}}
    no_answer: {{delay_s: 1800, max_attempts: 1}}
    unknown: {{delay_s: 300, max_attempts: 2}}
  max_total_attempts: 3
"""


def number(suffix: str, i: int = 0) -> str:
    return f"+86138{i:04d}{suffix}"


async def service_for(
    store: Store,
    clock: FakeClock,
    pbx: FakePbx,
    yaml: str = REFUSAL,
    *,
    timer: object = never,
    tmp_path: Path | None = None,
) -> CampaignService:
    service = CampaignService(
        settings_with(yaml, base_dir=tmp_path),
        CampaignStore(store),
        CampaignStore(store),
        pbx,
        now=clock,
        sleep=no_wait,
        timer=timer,  # type: ignore[arg-type]
        options=RunnerOptions(worker_id="test-worker", default_region="CN"),
    )
    pbx.handler = service.handle_event
    await service.open()
    await service.start()
    return service


async def add(service: CampaignService, *phones: str, name: str = "refusal") -> None:
    runner = service.runners[name]
    await service.repository.add_contacts(
        runner.campaign_id, [NewContact(phone, context={"order_id": "A1"}) for phone in phones], NOW
    )


async def states(
    service: CampaignService, name: str = "refusal"
) -> dict[str, tuple[str, int, str | None]]:
    return await service.repository.contact_states(service.runners[name].campaign_id)


async def outcomes(service: CampaignService, name: str = "refusal") -> dict[str, list[str | None]]:
    rows = await service.repository.attempt_rows(service.runners[name].campaign_id)
    found: dict[str, list[str | None]] = {}
    for row in rows:
        found.setdefault(row["phone"], []).append(row["outcome"])
    return found


async def test_each_lab_behaviour_gets_its_outcome(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx)
    suffixes = ["1001", "1002", "1003", "1004", "1006", "1007", "1234"]
    await add(service, *(number(s) for s in suffixes))
    await service.run_until_idle()
    found = await outcomes(service)
    assert {phone[-4:]: values for phone, values in found.items()} == {
        "1001": ["answered"],
        "1002": ["busy"],
        "1003": ["no_answer"],
        "1004": ["congestion"],
        "1006": ["rejected"],
        "1007": ["unavailable"],
        "1234": ["unavailable"],
    }


async def test_the_originate_carries_attempt_campaign_and_order(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx)
    await add(service, number("1001"))
    await service.run_until_idle()
    (request,) = pbx.originated
    assert request.action_id == request.channel_id == request.variables["ATTEMPT_ID"]
    assert request.variables["CAMPAIGN"] == "refusal"
    assert request.variables["ORDER_ID"] == "A1"
    assert request.channel == f"Local/{number('1001')}@customers"
    assert (request.context, request.exten) == ("outreach-refusal-ivr", "s")


async def test_the_attempt_row_exists_before_the_originate_is_sent(store: Store) -> None:
    clock = FakeClock(NOW)
    seen: list[list[str | None]] = []
    pbx = FakePbx()
    service = await service_for(store, clock, pbx)
    campaign_id = service.runners["refusal"].campaign_id
    original = pbx.originate

    async def originate_after_looking(request: object) -> None:
        rows = await service.repository.attempt_rows(campaign_id)
        seen.append([row["outcome"] for row in rows])
        await original(request)  # type: ignore[arg-type]

    pbx.originate = originate_after_looking  # type: ignore[method-assign]
    await add(service, number("1001"))
    await service.run_until_idle()
    assert seen == [[None]]


async def test_an_ivr_digit_becomes_the_disposition_and_finishes_the_contact(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx)
    await add(service, number("1103"))
    await service.run_until_idle()
    assert await states(service) == {number("1103"): ("done", 1, "price")}
    rows = await service.repository.attempt_rows(service.runners["refusal"].campaign_id)
    assert (rows[0]["outcome"], rows[0]["disposition"]) == ("answered", "price")


async def test_busy_is_retried_after_its_delay_until_its_max_attempts(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx)
    await add(service, number("1002"))
    await service.run_until_idle()
    assert await states(service) == {number("1002"): ("pending", 1, None)}
    clock.advance(599)
    await service.run_until_idle()
    assert len(pbx.originated) == 1  # not due yet
    clock.advance(1)
    await service.run_until_idle()
    assert await states(service) == {number("1002"): ("failed", 2, None)}
    clock.advance(10_000)
    await service.run_until_idle()
    assert len(pbx.originated) == 2  # a finished contact is never dialled again


async def test_an_outcome_without_a_rule_fails_the_contact_at_once(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx)
    await add(service, number("1004"))
    await service.run_until_idle()
    assert await states(service) == {number("1004"): ("failed", 1, None)}


async def test_the_total_cap_ends_retries_across_outcomes(store: Store) -> None:
    yaml = REFUSAL.replace("max_total_attempts: 3", "max_total_attempts: 2")
    clock = FakeClock(NOW)
    script_calls = iter(["1002", "1003", "1002"])

    def busy_then_no_answer(request: object) -> list[dict[str, str]]:
        from tests.fakes.campaign_pbx import lab_script

        suffix = next(script_calls)
        req = request.__class__(**{**request.__dict__, "channel": f"Local/{suffix}@x"})  # type: ignore[attr-defined]
        return lab_script(req)

    pbx = FakePbx(script=busy_then_no_answer)
    service = await service_for(store, clock, pbx, yaml)
    await add(service, number("1002"))
    await service.run_until_idle()
    clock.advance(600)
    await service.run_until_idle()  # no_answer: its rule allows 1, the total cap 2 -> failed
    assert await states(service) == {number("1002"): ("failed", 2, None)}


async def test_a_closed_window_defers_the_contact_to_the_next_opening(store: Store) -> None:
    night = NOW.replace(hour=14)  # 22:00 in Shanghai, Wednesday
    clock, pbx = FakeClock(night), FakePbx()
    service = await service_for(store, clock, pbx)
    await add(service, number("1001"))
    await service.run_until_idle()
    assert pbx.originated == []
    due = await service.repository.next_due_at(service.runners["refusal"].campaign_id)
    assert due is not None
    assert due.isoformat() == "2026-11-26T01:00:00+00:00"


async def test_a_window_that_ends_while_contacts_are_due_holds_the_rest(store: Store) -> None:
    yaml = REFUSAL.replace("max_concurrent_calls: 10", "max_concurrent_calls: 1")
    clock, pbx = FakeClock(NOW.replace(hour=12, minute=59)), FakePbx(hold=True)  # 20:59 CST
    service = await service_for(store, clock, pbx, yaml)
    await add(service, number("1001", 1), number("1001", 2), number("1001", 3))
    runner = service.runners["refusal"]
    import asyncio

    burst = asyncio.create_task(runner.run_until_idle())
    await pbx.sent.wait()
    clock.advance(120)  # 21:01: the window closed while the first call was up
    await pbx.release()
    await burst
    assert len(pbx.originated) == 1
    found = await states(service)
    assert sorted(state for state, _, _ in found.values()) == ["done", "pending", "pending"]


async def test_a_contact_in_its_own_zone_is_called_in_its_own_window(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()  # 10:00 Shanghai = 21:00 the day before in New York
    service = await service_for(store, clock, pbx)
    runner = service.runners["refusal"]
    await service.repository.add_contacts(
        runner.campaign_id, [NewContact(number("1001"), timezone="America/New_York")], NOW
    )
    await service.run_until_idle()
    assert pbx.originated == []


async def test_a_paused_campaign_places_no_call_until_resumed(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx)
    runner = service.runners["refusal"]
    await runner.set_paused(True)
    await add(service, number("1001"))
    await service.run_until_idle()
    assert pbx.originated == []
    assert (await service.status("refusal"))["state"] == "paused"
    await runner.set_paused(False)
    await service.run_until_idle()
    assert len(pbx.originated) == 1


async def test_pause_survives_a_restart(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx)
    await service.runners["refusal"].set_paused(True)
    again = await service_for(store, clock, FakePbx())
    assert again.runners["refusal"].paused


async def test_dnc_and_opted_out_numbers_are_refused_at_dialling_time(
    store: Store, tmp_path: Path
) -> None:
    (tmp_path / "dnc.txt").write_text("# do not call\n138 0000 1002\n")
    yaml = REFUSAL + "  dnc_file: dnc.txt\n"
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx, yaml, tmp_path=tmp_path)
    await add(service, number("1001"), number("1002"), number("1004"))
    async with store.engine.begin() as conn:  # opted out after it was added
        await opt_out(conn, number("1004"), source="sms", now=NOW, scope="call")
    await service.run_until_idle()
    assert [r.channel for r in pbx.originated] == [f"Local/{number('1001')}@customers"]
    found = await states(service)
    assert found[number("1002")] == ("cancelled", 0, "do_not_call")
    assert found[number("1004")] == ("cancelled", 0, "opted_out")


async def test_a_country_not_allowed_is_refused_at_dialling_time(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx)
    runner = service.runners["refusal"]
    await service.repository.add_contacts(runner.campaign_id, [NewContact("+12025550123")], NOW)
    await service.run_until_idle()
    assert pbx.originated == []
    assert await states(service) == {"+12025550123": ("cancelled", 0, "country_not_allowed")}


async def test_a_missing_originate_response_settles_unknown_and_retries(store: Store) -> None:
    clock = FakeClock(NOW)
    silent: Script = lambda request: []  # noqa: E731
    pbx = FakePbx(script=silent)
    service = await service_for(store, clock, pbx, timer=no_wait)
    await add(service, number("1001"))
    await service.run_until_idle()
    assert await outcomes(service) == {number("1001"): ["unknown"]}
    assert await states(service) == {number("1001"): ("pending", 1, None)}


async def test_two_workers_never_lease_the_same_contact(store: Store) -> None:
    campaigns = CampaignStore(store)
    campaign_id = await campaigns.ensure_campaign("refusal", "refusal_callback")
    await campaigns.add_contacts(
        campaign_id, [NewContact(number("1001", i)) for i in range(5)], NOW
    )
    taken = []
    for owner in ("a", "b", "a", "b", "a", "b"):
        contact = await campaigns.claim_next(campaign_id, owner=owner, now=NOW, lease_s=60)
        taken.append(contact.phone if contact else None)
    assert taken[-1] is None
    assert len(set(taken[:5])) == 5


async def test_higher_priority_contacts_are_leased_first(store: Store) -> None:
    campaigns = CampaignStore(store)
    campaign_id = await campaigns.ensure_campaign("refusal", "refusal_callback")
    await campaigns.add_contacts(
        campaign_id,
        [NewContact(number("1001", 1), priority=1), NewContact(number("1001", 2), priority=5)],
        NOW,
    )
    first = await campaigns.claim_next(campaign_id, owner="a", now=NOW, lease_s=60)
    assert first is not None
    assert first.phone == number("1001", 2)


async def test_after_a_crash_a_call_the_pbx_forgot_is_unknown_and_retried(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx(hold=True)
    first = await service_for(store, clock, pbx)
    await add(first, number("1001"))
    import asyncio

    burst = asyncio.create_task(first.run_until_idle())
    await pbx.sent.wait()
    burst.cancel()  # the daemon dies with the call up
    with pytest.raises(asyncio.CancelledError):
        await burst
    second = await service_for(store, clock, FakePbx())  # the PBX has no such channel now
    assert await outcomes(second) == {number("1001"): ["unknown"]}
    assert await states(second) == {number("1001"): ("pending", 1, None)}


@pytest.mark.parametrize(
    ("recorded", "outcome", "state"),
    [
        ("answered epoch=1 agent= digit=2", "answered", ("done", 1, "not_at_home")),
        ("answered epoch=1 agent= digit=", "answered", ("done", 1, None)),
    ],
    ids=["with-digit", "no-digit"],
)
async def test_after_a_crash_a_call_that_ended_meanwhile_is_settled_from_the_pbx_record(
    store: Store, recorded: str, outcome: str, state: tuple[str, int, str | None]
) -> None:
    clock, pbx = FakeClock(NOW), FakePbx(hold=True)
    first = await service_for(store, clock, pbx)
    await add(first, number("1001"))
    import asyncio

    burst = asyncio.create_task(first.run_until_idle())
    await pbx.sent.wait()
    burst.cancel()  # the daemon dies with the call up; the call ends while it is down
    with pytest.raises(asyncio.CancelledError):
        await burst
    attempt_id = pbx.originated[0].channel_id
    restarted = FakePbx(records={(f"outreach_{NOW:%Y%m%d}", attempt_id): recorded})
    second = await service_for(store, clock, restarted)
    await second.run_until_idle()
    assert await outcomes(second) == {number("1001"): [outcome]}
    assert await states(second) == {number("1001"): state}
    assert restarted.originated == []  # not dialled again


async def test_after_a_crash_a_vip_call_no_agent_took_is_abandoned_from_the_pbx_record(
    store: Store,
) -> None:
    clock, pbx = FakeClock(NOW), FakePbx(hold=True)
    vip = f"""
vip:
  kind: vip
  channel: Local/{{number}}@customers
  agent_queue: agents
  destination: {{queue: agents}}
  calling_windows: {WEEK}
"""
    pbx.queue_members = [{"Event": "QueueMember", "Queue": "agents", "StateInterface": "A",
                          "Status": "1", "Paused": "0"}]  # fmt: skip
    first = await service_for(store, clock, pbx, vip)
    await add(first, number("1001"), name="vip")
    import asyncio

    burst = asyncio.create_task(first.run_until_idle())
    await pbx.sent.wait()
    burst.cancel()
    with pytest.raises(asyncio.CancelledError):
        await burst
    attempt_id = pbx.originated[0].channel_id
    restarted = FakePbx(
        records={(f"outreach_{NOW:%Y%m%d}", attempt_id): "answered epoch=1 agent= digit="},
        queue_members=pbx.queue_members,
    )
    second = await service_for(store, clock, restarted, vip)
    assert await outcomes(second, "vip") == {number("1001"): ["abandoned"]}


async def test_after_a_crash_a_call_still_up_is_followed_to_its_end(store: Store) -> None:
    clock, pbx = FakeClock(NOW), FakePbx(hold=True)
    first = await service_for(store, clock, pbx)
    await add(first, number("1005"))
    import asyncio

    burst = asyncio.create_task(first.run_until_idle())
    await pbx.sent.wait()
    burst.cancel()
    with pytest.raises(asyncio.CancelledError):
        await burst
    attempt_id = pbx.originated[0].channel_id
    restarted = FakePbx(
        live=[
            {"Uniqueid": attempt_id, "Linkedid": attempt_id, "ChannelState": "6"},
            {"Uniqueid": f"{attempt_id}-2", "Linkedid": attempt_id, "ChannelState": "6"},
        ]
    )
    second = await service_for(store, clock, restarted)
    assert len(second.runners["refusal"].calls) == 1
    for uniqueid, cause in ((f"{attempt_id}-2", "16"), (attempt_id, "16")):
        await second.handle_event(
            {"Event": "Hangup", "Uniqueid": uniqueid, "Linkedid": attempt_id, "Cause": cause}
        )
    await second.run_until_idle()
    assert await outcomes(second) == {number("1005"): ["answered"]}
    assert restarted.originated == []  # followed, not dialled again


async def test_a_contact_left_dialling_without_an_attempt_is_pending_again(store: Store) -> None:
    campaigns = CampaignStore(store)
    campaign_id = await campaigns.ensure_campaign("refusal", "refusal_callback")
    await campaigns.add_contacts(campaign_id, [NewContact(number("1001"))], NOW)
    await campaigns.claim_next(campaign_id, owner="test-worker", now=NOW, lease_s=60)
    clock, pbx = FakeClock(NOW), FakePbx()
    service = await service_for(store, clock, pbx)
    await service.run_until_idle()
    assert await outcomes(service) == {number("1001"): ["answered"]}


async def test_an_originate_the_pbx_refuses_is_no_attempt_and_the_campaign_backs_off(
    store: Store, log_output: io.StringIO
) -> None:
    clock, pbx = FakeClock(NOW), FakePbx(refusals=["Asterisk is shutting down"] * 3)
    service = await service_for(store, clock, pbx)
    runner = service.runners["refusal"]
    await add(service, number("1001"))
    waits = []
    for _ in range(3):
        await service.run_until_idle()
        states_now = await states(service)
        assert states_now == {number("1001"): ("pending", 0, None)}
        assert runner.refusals.until is not None
        waits.append(runner.refusals.delay_s)
        await service.run_until_idle()  # still refusing: nothing is tried before the wait ends
        clock.advance(runner.refusals.delay_s)
    await service.run_until_idle()
    refused = [json.loads(line) for line in log_output.getvalue().splitlines()]
    refused = [line for line in refused if line["event"] == "call.originate_refused"]
    assert waits == [1.0, 2.0, 4.0]
    assert await states(service) == {number("1001"): ("done", 1, None)}
    assert await outcomes(service) == {number("1001"): ["answered"]}
    assert [line["reason"] for line in refused] == ["Asterisk is shutting down"] * 3
    assert runner.refusals.until is None
