"""AMI event handling rate: our adapter's path next to bare panoramisk, on the same stream.

The stream is bench/data/ami-events.txt (recorded from the lab PBX by record_ami_events.py:
Newchannel, Newstate, DialBegin/End, Hangup, VarSet, Newexten, queue and bridge events...),
repeated to about 200k events and fed in 64 KiB reads, as a busy PBX would send it.

- panoramisk: `AMIProtocol.data_received` on a Manager with one sync `'*'` callback, the way the
  panoramisk docs use it (its parse + dispatch; the callback only counts).
- ours: `dialer.pbx`'s protocol (streaming UTF-8 decode, parse) -> the client's event queue ->
  the delivery task -> the campaigns' `CallRouter` (matching each event to its call by
  ActionID/Linkedid/Uniqueid and folding it into the call's observation, with every call of the
  stream tracked as a call in flight) -> one handler that counts.

Prints events/s for each (median of interleaved rounds) and the ratio ours / panoramisk.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol

from dialer.calling.calls import Call, CallRouter
from dialer.pbx.client import AmiClient
from dialer.pbx.protocol import AmiProtocol
from dialer.pbx.wire import AmiEvent, AmiOptions, parse_message

STREAM = Path(__file__).resolve().parent / "data" / "ami-events.txt"
TARGET_EVENTS = 200_000
READ_SIZE = 65536
ROUNDS = 5


class NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str) -> None:
        return None


def count_events(stream: bytes) -> int:
    blocks = stream.decode().split("\r\n\r\n")
    return sum(1 for block in blocks if "Event" in parse_message(block.strip("\r\n")))


def load_stream() -> tuple[list[bytes], int]:
    one = STREAM.read_bytes()
    per_copy = count_events(one)
    copies = max(1, TARGET_EVENTS // per_copy)
    data = one * copies
    chunks = [data[i : i + READ_SIZE] for i in range(0, len(data), READ_SIZE)]
    return chunks, per_copy * copies


async def bare_panoramisk(chunks: list[bytes]) -> tuple[float, int]:
    manager = Manager()
    counted = 0

    def count(_: Manager, __: object) -> None:
        nonlocal counted
        counted += 1

    manager.register_event("*", count)
    protocol = AMIProtocol()
    protocol.connection_made(NullTransport())
    protocol.factory = manager
    protocol.encoding = "utf8"
    start = time.perf_counter()
    for chunk in chunks:
        protocol.data_received(chunk)
    return time.perf_counter() - start, counted


def call_router(stream: bytes) -> CallRouter:
    """The campaigns' event router, following every call the stream holds."""
    now = datetime.now(UTC)
    router = CallRouter(clock=time.monotonic, wall=lambda: now)
    ids = {line[len("Linkedid: ") :] for line in stream.decode().split("\r\n")}
    for attempt_id in sorted(i for i in ids if i.startswith("rec-")):
        router.track(Call(attempt_id, "bench", 0, "+8613800001001", now))
    return router


async def our_adapter(chunks: list[bytes], expected: int) -> tuple[float, int]:
    client = AmiClient(AmiOptions(host="127.0.0.1", port=0, username="bench", secret="-"))
    client.add_event_handler(call_router(b"".join(chunks[:2])).handle)
    counted = 0
    done = asyncio.Event()

    def count(_: AmiEvent) -> None:
        nonlocal counted
        counted += 1
        if counted == expected:
            done.set()

    client.add_event_handler(count)
    protocol = AmiProtocol()
    protocol.connection_made(NullTransport())
    protocol.on_event = client._events.put_nowait  # what a live connection wires up
    delivery = asyncio.create_task(client._deliver_events())
    start = time.perf_counter()
    for chunk in chunks:
        protocol.data_received(chunk)
        await asyncio.sleep(0)  # let delivery run between reads, as on a live socket
    async with asyncio.timeout(60):
        await done.wait()
    elapsed = time.perf_counter() - start
    delivery.cancel()
    return elapsed, counted


async def main() -> None:
    chunks, events = load_stream()
    followed = call_router(b"".join(chunks[:2])).calls
    print(f"calls followed by the router: {len(followed)} (their events are folded each round)")
    print(f"stream: {events} events, {sum(map(len, chunks)) / 1e6:.1f} MB in {len(chunks)} reads")
    bare_rates, our_rates = [], []
    for _ in range(ROUNDS):
        elapsed, counted = await bare_panoramisk(chunks)
        bare_rates.append(counted / elapsed)
        elapsed, counted = await our_adapter(chunks, expected=events)
        assert counted == events, (counted, events)
        our_rates.append(counted / elapsed)
    bare, ours = statistics.median(bare_rates), statistics.median(our_rates)
    print(f"panoramisk data_received + '*' callback: {bare:9,.0f} events/s (median of {ROUNDS})")
    print(
        f"dialer.pbx + campaign CallRouter:              {ours:9,.0f} events/s (median of {ROUNDS})"
    )
    print(f"ratio ours / panoramisk: {ours / bare:.2f}x  (target >= 0.8x)")


if __name__ == "__main__":
    asyncio.run(main())
