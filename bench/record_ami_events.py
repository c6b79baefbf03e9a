"""Record a realistic AMI event stream from the lab PBX into bench/data/ami-events.txt.

Places a handful of calls (answered, busy, no answer, congestion, rejected, unavailable,
queue to an agent, IVR with a DTMF digit) and saves every byte Asterisk sends after the login,
exactly as it arrives (CRLF framing). Run with the lab PBX up:
    .venv/bin/python bench/record_ami_events.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "data" / "ami-events.txt"
CALLS = [
    ("1001", "hold"),
    ("+8613800001002", "hold"),
    ("1003", "hold"),
    ("1004", "hold"),
    ("1005", "queue"),
    ("1006", "hold"),
    ("1007", "hold"),
    ("1103", "ivr"),
    ("1234", "hold"),
]
RECORD_S = 14.0


def action(**headers: str) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


async def main() -> None:
    secret = (REPO / "lab" / "ami-secret").read_text().strip()
    reader, writer = await asyncio.open_connection("127.0.0.1", 15038)
    writer.write(action(Action="Login", Username="outreach", Secret=secret, Events="on"))
    banner_and_login = await reader.readuntil(b"Message: Authentication accepted\r\n\r\n")
    if b"Success" not in banner_and_login:
        sys.exit("login failed")
    for index, (number, exten) in enumerate(CALLS):
        writer.write(
            action(
                Action="Originate",
                ActionID=f"rec-{index}",
                ChannelId=f"rec-{index}",
                OtherChannelId=f"rec-{index}-2",
                Channel=f"Local/{number}@customers",
                Context="lab-outbound",
                Exten=exten,
                Priority="1",
                Timeout="6000",
                CallerID='"王小明" <4000>',
                Variable=f"ATTEMPT_ID=rec-{index}",
                Async="true",
            )
        )
    await writer.drain()
    recorded = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECORD_S
    while (left := deadline - loop.time()) > 0:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            break
        if not chunk:
            break
        recorded += chunk
    writer.close()
    OUT.write_bytes(bytes(recorded))
    print(f"{recorded.count(b'Event: ')} events, {len(recorded)} bytes -> {OUT}")


asyncio.run(main())
