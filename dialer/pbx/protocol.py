"""panoramisk's protocol and manager, narrowed to what `dialer.pbx.client.AmiClient` needs.

- `AmiProtocol`: panoramisk's protocol with a streaming UTF-8 decoder (a Chinese name split
  across TCP reads survives), every event handed to us as a plain dict instead of dispatched;
  replies to our actions still go through panoramisk's own matching.
- `AmiManager`: panoramisk's Manager with its own reconnect loop, pinger and resend queue
  switched off (`AmiClient` connects, logs in and reconnects); it only holds the protocol and
  turns action dicts into panoramisk `Action`s with futures.
"""

from __future__ import annotations

import asyncio
import codecs
import socket
from collections.abc import Callable
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from dialer.pbx.wire import AmiEvent, parse_message

__all__ = ["AmiManager", "AmiProtocol", "Message", "set_keepalive"]


class AmiProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's protocol with a streaming UTF-8 decoder; events handed to us, not dispatched.

    Replies to our actions (and events carrying the ActionID of an action still waiting, such as
    the items of an event list) go through panoramisk's own matching; every other event goes to
    `on_event` as a plain dict.
    """

    on_event: Callable[[AmiEvent], None]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending_text = ""

    def data_received(self, data: bytes) -> None:
        text = self._pending_text + self._decoder.decode(data)
        blocks = text.split("\r\n\r\n")
        self._pending_text = blocks.pop()
        responses = self.responses
        for block in blocks:
            headers = parse_message(block.strip("\r\n"))
            if not headers:
                continue
            action_id = headers.get("ActionID")
            if "Event" in headers and (action_id is None or action_id not in responses):
                self.on_event(headers)
                if headers["Event"] == "Shutdown":  # Asterisk is stopping or restarting
                    self.transport.close()
            elif "Event" in headers or "Response" in headers:
                self.handle_message(Message(headers))


class AmiManager(Manager):  # type: ignore[misc]  # panoramisk is untyped
    """panoramisk's Manager with its own reconnect loop, pinger and resend queue switched off.

    `AmiClient` connects, logs in and reconnects; this object only holds the protocol and turns
    action dicts into panoramisk `Action`s with futures.
    """

    def __init__(
        self, on_connection_lost: Callable[[AmiManager, BaseException | None], None]
    ) -> None:
        super().__init__(ping_delay=0, reconnect_timeout=0, forgetable_actions=())
        self._on_connection_lost = on_connection_lost

    def attach(self, protocol: AmiProtocol) -> None:
        protocol.factory = self
        protocol.log = self.log
        protocol.config = self.config
        protocol.encoding = self.encoding = "utf-8"
        self.protocol = protocol
        self.responses = protocol.responses

    def connection_lost(self, exc: BaseException | None) -> None:
        self.awaiting_actions.clear()  # never re-send an action after a reconnect (S4b)
        self._on_connection_lost(self, exc)

    def dispatch(self, event: Any) -> list[str]:  # pragma: no cover - our protocol never calls it
        return []


def set_keepalive(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
