"""The campaigns' PBX (`dialer.calling.ports.Pbx`) on an `AmiClient`.

The AMI's errors are translated into the port's here, and only here::

    UnsafeHeader, AmiNotConnected   -> PbxNotSent      (nothing was written to the AMI)
    AmiActionFailed                 -> PbxRefused      (Asterisk answered Response: Error)
    AmiTimeout, AmiDisconnected     -> PbxUnconfirmed  (sent; the answer never came)
    any other AmiError              -> PbxError
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from dialer.calling.ports import (
    LiveChannel,
    OriginateRequest,
    PbxError,
    PbxNotSent,
    PbxRefused,
    PbxUnconfirmed,
)
from dialer.pbx.client import AmiClient
from dialer.pbx.wire import (
    AmiActionFailed,
    AmiDisconnected,
    AmiError,
    AmiNotConnected,
    AmiTimeout,
    UnsafeHeader,
)

__all__ = ["AmiPbx", "translated"]

CHANNEL_STATE_UP = "6"


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise the port's error for an AMI error (the table in the module docstring)."""
    try:
        yield
    except (UnsafeHeader, AmiNotConnected) as exc:
        raise PbxNotSent(str(exc)) from exc
    except AmiActionFailed as exc:
        raise PbxRefused(exc.message) from exc
    except (AmiTimeout, AmiDisconnected) as exc:
        raise PbxUnconfirmed(str(exc)) from exc
    except AmiError as exc:
        raise PbxError(str(exc)) from exc


class AmiPbx:
    """The PBX as the campaigns see it: calls, queue members, channels up."""

    def __init__(self, client: AmiClient) -> None:
        self.client = client

    @property
    def logged_in(self) -> bool:
        return self.client.link.logged_in

    async def wait_logged_in(self) -> None:
        await self.client.wait_logged_in()

    async def originate(self, request: OriginateRequest) -> None:
        with translated():
            await self.client.originate(request)

    async def queue_status(self, queue: str) -> list[Mapping[str, str]]:
        with translated():
            answer = await self.client.send({"Action": "QueueStatus", "Queue": queue}, as_list=True)
        return [dict(item) for item in _items(answer)]

    async def live_channels(self) -> list[LiveChannel]:
        with translated():
            answer = await self.client.send({"Action": "CoreShowChannels"}, as_list=True)
        return [
            LiveChannel(
                uniqueid=item.get("Uniqueid", ""),
                linkedid=item.get("Linkedid", ""),
                up=item.get("ChannelState") == CHANNEL_STATE_UP,
            )
            for item in _items(answer)
            if item.get("Event") == "CoreShowChannel"
        ]

    async def db_get(self, family: str, key: str) -> str | None:
        try:
            with translated():
                answer = await self.client.send(
                    {"Action": "DBGet", "Family": family, "Key": key}, as_list=True
                )
        except PbxRefused as exc:
            if "not found" in exc.message.lower():
                return None
            raise
        for item in _items(answer):
            if item.get("Event") == "DBGetResponse" and item.get("Key") == key:
                return str(item.get("Val", ""))
        return None


def _items(answer: Any) -> list[Any]:
    return list(answer) if isinstance(answer, list) else [answer]
