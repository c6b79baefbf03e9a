"""A fake provider: records every message it is asked to send and plays back a script.

    primary = ScriptedNotifier("primary", [TransientError("down"), PermanentError("auth")])

Each send takes the next scripted item: an exception is raised, a `SendResult` is returned.
When the script is exhausted it succeeds with `SendResult(name, "<name>-<n>", "sent")`.
`send_duration_s` advances a `FakeClock` on every send (a slow provider, in no real time).
"""

from __future__ import annotations

from collections.abc import Iterable

from notifiers import OutboundSms, SendResult
from tests.fakes.clock import FakeClock


class ScriptedNotifier:
    def __init__(
        self,
        name: str = "fake",
        script: Iterable[SendResult | BaseException] = (),
        *,
        clock: FakeClock | None = None,
        send_duration_s: float = 0.0,
    ) -> None:
        self.name = name
        self.script = list(script)
        self.clock = clock
        self.send_duration_s = send_duration_s
        self.sent: list[OutboundSms] = []
        self.closed = 0

    @property
    def attempts(self) -> int:
        return len(self.sent)

    async def send(self, message: OutboundSms) -> SendResult:
        self.sent.append(message)
        if self.clock is not None:
            self.clock.advance(self.send_duration_s)
        if self.script:
            item = self.script.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item
        return SendResult(self.name, f"{self.name}-{len(self.sent)}", "sent")

    async def close(self) -> None:
        self.closed += 1
