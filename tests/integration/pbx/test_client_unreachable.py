"""The AMI adapter when nothing listens: it waits with growing backoff and says why."""

from __future__ import annotations

from dialer.pbx.client import AmiClient
from tests.support import RecordingSleep, free_port, lab_ami_options, running


async def test_an_unreachable_pbx_is_retried_with_growing_backoff() -> None:
    sleep = RecordingSleep()
    client = AmiClient(
        lab_ami_options(
            port=free_port(), reconnect_initial_backoff_s=1.0, reconnect_max_backoff_s=4.0
        ),
        sleep=sleep,
    )
    async with running(client):
        for count in range(1, 5):
            await sleep.wait_for_count(count)
            sleep.release.set()
        detail = client.link.detail
    first, second, third, fourth = sleep.delays_s[:4]
    assert 0.8 <= first <= 1.2
    assert 1.6 <= second <= 2.4
    assert 3.2 <= third <= 4.8
    assert 3.2 <= fourth <= 4.8  # capped at reconnect_max_backoff_s
    assert "cannot reach AMI at 127.0.0.1:" in detail
    assert "Connect call failed" in detail or "refused" in detail
    assert not client.link.logged_in
