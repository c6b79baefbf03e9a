"""Our one door to the Asterisk Manager Interface, over panoramisk 1.4.

panoramisk is untyped and has defects that matter to a dialer (see ../shared/notes/panoramisk.md):
it reports readiness before login, reconnects forever without backoff (also on a wrong secret),
never notices a silent server, re-sends queued actions with no time limit (an Originate can place
a call long after we gave up on it), writes CR/LF from values straight onto the wire, decodes each
TCP read on its own (a Chinese name split across reads is corrupted) and lets an exception in an
event callback kill the connection. This module keeps panoramisk's actions, messages and reply
matching, and replaces the rest:

- `AmiClient.run()` supervises the link: connect, log in, watch with Ping, and after a drop or a
  failed login reconnect with exponential backoff (a rejected secret waits much longer).
  `link.logged_in` is the readiness flag; `link.detail` says why it is not ready.
- Every action has a timeout, our own ActionID, and its headers checked before anything is sent.
  Actions are never queued while the link is down: they fail at once with `AmiNotConnected`, and
  the ones waiting for an answer when the link drops fail with `AmiDisconnected`.
- `originate()` always sends `Async: true` and returns once Asterisk has queued the call; the
  `OriginateResponse` and the call's other events reach the event handlers, matched by the
  caller's ActionID and ChannelId.
- Events are parsed by our own protocol (streaming UTF-8 decoder) into plain dicts and delivered
  in order by one task; a handler that raises is logged and the next event still arrives.

The plain parts (errors, options, header checks, parsing) live in `dialer.pbx.wire`; the
panoramisk subclasses in `dialer.pbx.protocol`; the campaigns' view of the PBX (`Pbx`) is
`dialer.pbx.adapter.AmiPbx`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from dialer.calling.ports import OriginateRequest
from dialer.clock import Sleep
from dialer.logs import get_logger
from dialer.pbx.protocol import AmiManager, AmiProtocol, Message, set_keepalive
from dialer.pbx.wire import (
    ActionHeaders,
    AmiActionFailed,
    AmiDisconnected,
    AmiError,
    AmiEvent,
    AmiLoginFailed,
    AmiNotConnected,
    AmiOptions,
    AmiTimeout,
    EventHandler,
    LinkListener,
    LinkState,
    check_headers,
    variable_headers,
)

__all__ = ["AmiClient"]

# Asterisk's answer to any action while it stops; a login refused so is retried as a lost link.
PBX_SHUTTING_DOWN = "Asterisk is shutting down"

log = get_logger(__name__)


class AmiClient:
    """A supervised, logged-in AMI session. Run `run()` in the app's TaskGroup."""

    def __init__(
        self,
        options: AmiOptions,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`sleep` waits out a reconnect backoff; tests pass one that records the delay."""
        self.options = options
        self._sleep = sleep
        self._link = LinkState()
        self._manager: AmiManager | None = None
        self._protocol: AmiProtocol | None = None
        self._link_lost = asyncio.Event()
        self._logged_in = asyncio.Event()
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._events: asyncio.Queue[AmiEvent] = asyncio.Queue()
        self._handlers: list[tuple[frozenset[str] | None, EventHandler]] = []
        self._link_listeners: list[LinkListener] = []
        self._action_ids = itertools.count(1)
        self._session = uuid.uuid4().hex[:8]
        self._background: set[asyncio.Task[None]] = set()

    # -- what the rest of the daemon uses ------------------------------------------------------

    @property
    def link(self) -> LinkState:
        return self._link

    def add_event_handler(
        self, handler: EventHandler, *, events: Collection[str] | None = None
    ) -> None:
        """Call `handler` for each event (or only those named in `events`), in arrival order."""
        self._handlers.append((frozenset(events) if events is not None else None, handler))

    def add_link_listener(self, listener: LinkListener) -> None:
        """Call `listener` with the new `LinkState` each time the link logs in or is lost."""
        self._link_listeners.append(listener)

    async def wait_logged_in(self, timeout_s: float | None = None) -> None:
        async with asyncio.timeout(timeout_s):
            await self._logged_in.wait()

    def new_action_id(self, kind: str = "action") -> str:
        return f"outreach-{kind}-{self._session}-{next(self._action_ids)}"

    async def send(
        self,
        action: ActionHeaders,
        *,
        timeout_s: float | None = None,
        as_list: bool | None = None,
    ) -> Message | list[Message]:
        """Send one action and return Asterisk's answer (a list for event-list actions).

        Raises `AmiNotConnected` when not logged in, `AmiActionFailed` on `Response: Error`,
        `AmiTimeout` or `AmiDisconnected` when the answer does not come.
        """
        check_headers(action)
        if not self._link.logged_in:
            raise AmiNotConnected(f"AMI not logged in ({self._link.detail})")
        return await self._send(action, timeout_s=timeout_s, as_list=as_list)

    async def originate(self, request: OriginateRequest) -> None:
        """Ask Asterisk to place the call; returns once it is queued (`Async: true`)."""
        action: dict[str, str | list[str]] = {
            "Action": "Originate",
            "ActionID": request.action_id,
            "ChannelId": request.channel_id,
            "OtherChannelId": request.other_channel_id,
            "Channel": request.channel,
            "Context": request.context,
            "Exten": request.exten,
            "Priority": str(request.priority),
            "Timeout": str(int(request.ring_timeout_s * 1000)),
            "Async": "true",
        }
        if request.caller_id:
            action["CallerID"] = request.caller_id
        if request.variables:
            action["Variable"] = variable_headers(request.variables)
        await self.send(action, as_list=False)
        log.info(
            "call.originate_sent",
            action_id=request.action_id,
            channel_id=request.channel_id,
            channel=request.channel,
        )

    async def run(self) -> None:
        """Keep the link up until cancelled: connect, log in, watch, reconnect with backoff."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._deliver_events(), name="ami-events")
            try:
                await self._supervise()
            finally:
                await self._shut_down()

    # -- the link ------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff_s = self.options.reconnect_initial_backoff_s
        while True:
            try:
                await self._connect_and_log_in()
            except AmiLoginFailed as exc:
                delay_s = self.options.login_failure_backoff_s
                self._set_link(
                    logged_in=False,
                    detail=f"login refused as {self.options.username!r}: {exc}; "
                    f"next try in {delay_s:g} s",
                    login_failures=self._link.login_failures + 1,
                )
                log.error(
                    "ami.login_failed",
                    address=self.options.address,
                    username=self.options.username,
                    reason=str(exc),
                    retry_in_s=delay_s,
                )
            except (OSError, AmiError, TimeoutError) as exc:
                delay_s = backoff_s
                backoff_s = min(backoff_s * 2, self.options.reconnect_max_backoff_s)
                reason = _describe(exc)
                self._set_link(
                    logged_in=False,
                    detail=f"cannot reach AMI at {self.options.address}: {reason}; "
                    f"next try in {delay_s:g} s",
                )
                log.warning(
                    "ami.connect_failed",
                    address=self.options.address,
                    reason=reason,
                    retry_in_s=delay_s,
                )
            else:
                backoff_s = self.options.reconnect_initial_backoff_s
                await self._watch_until_lost()
                delay_s = backoff_s
            await self._sleep(delay_s * random.uniform(0.8, 1.2))

    async def _connect_and_log_in(self) -> None:
        loop = asyncio.get_running_loop()
        self._link_lost.clear()
        manager = AmiManager(self._connection_lost)
        self._manager = manager
        self._set_link(logged_in=False, detail=f"connecting to {self.options.address}")
        async with asyncio.timeout(self.options.connect_timeout_s):
            transport, protocol = await loop.create_connection(
                AmiProtocol, self.options.host, self.options.port
            )
        protocol.on_event = self._events.put_nowait
        manager.attach(protocol)
        self._protocol = protocol
        set_keepalive(transport)
        try:
            answer = await self._send(
                {
                    "Action": "Login",
                    "Username": self.options.username,
                    "Secret": self.options.secret,
                    "Events": self.options.events,
                },
                timeout_s=self.options.action_timeout_s,
            )
        except AmiActionFailed as exc:
            transport.close()
            if PBX_SHUTTING_DOWN in exc.message:  # not our credentials: reconnect soon
                raise AmiDisconnected(exc.message) from None
            raise AmiLoginFailed(exc.message) from None
        except AmiError:
            transport.abort()
            raise
        assert isinstance(answer, Message)
        was_connected_before = self._link.connects > 0
        self._set_link(
            logged_in=True,
            detail=f"logged in to {self.options.address} as {self.options.username}",
            connects=self._link.connects + 1,
            reconnects=self._link.reconnects + (1 if was_connected_before else 0),
        )
        log.info(
            "ami.reconnected" if was_connected_before else "ami.logged_in",
            address=self.options.address,
            username=self.options.username,
        )
        await self._notify_link_listeners()

    async def _watch_until_lost(self) -> None:
        """Ping every interval; a missing Pong means a silent server: drop the link."""
        while True:
            try:
                async with asyncio.timeout(self.options.ping_interval_s):
                    await self._link_lost.wait()
                    return
            except TimeoutError:
                pass
            try:
                await self._send({"Action": "Ping"}, timeout_s=self.options.ping_timeout_s)
            except AmiTimeout:
                log.warning(
                    "ami.ping_timed_out",
                    address=self.options.address,
                    timeout_s=self.options.ping_timeout_s,
                )
                if self._protocol is not None:
                    self._protocol.transport.abort()
            except AmiError:
                pass  # the link went down meanwhile; the check below returns
            if self._link_lost.is_set():
                return

    def _connection_lost(self, manager: AmiManager, exc: BaseException | None) -> None:
        if manager is not self._manager:
            return  # a late notice from a connection we already replaced
        was_logged_in = self._link.logged_in
        self._link_lost.set()
        self._logged_in.clear()
        for action_id, waiting in list(self._waiting.items()):
            if not waiting.done():
                waiting.set_exception(
                    AmiDisconnected(f"AMI link lost before the answer to {action_id}")
                )
        if was_logged_in:
            self._set_link(logged_in=False, detail=f"link to {self.options.address} lost")
            log.warning("ami.connection_lost", address=self.options.address, reason=_describe(exc))
            task = asyncio.get_running_loop().create_task(self._notify_link_listeners())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _set_link(self, **changes: Any) -> None:
        if "logged_in" in changes and changes["logged_in"] != self._link.logged_in:
            changes["since_monotonic"] = time.monotonic()
        self._link = replace(self._link, **changes)
        if self._link.logged_in:
            self._logged_in.set()
        else:
            self._logged_in.clear()

    async def _notify_link_listeners(self) -> None:
        state = self._link
        for listener in self._link_listeners:
            try:
                result = listener(state)
                if result is not None:
                    await result
            except Exception:
                log.exception("ami.link_listener_failed", listener=_name_of(listener))

    async def _send(
        self, action: ActionHeaders, *, timeout_s: float | None, as_list: bool | None = None
    ) -> Message | list[Message]:
        check_headers(action)
        manager = self._manager
        if manager is None or self._link_lost.is_set():
            raise AmiNotConnected(f"AMI link to {self.options.address} is down")
        headers = dict(action)
        action_id = str(headers.setdefault("ActionID", self.new_action_id()))
        name = str(headers["Action"])
        if action_id in self._waiting:
            raise AmiError(f"ActionID {action_id} is already waiting for an answer")
        # An event-list action Asterisk refuses answers one `Response: Error` and no list, which
        # panoramisk's as_list=True waits for forever: let it tell a list from a single answer
        # (`EventList: start`), and hand the caller a list either way.
        future: asyncio.Future[Any] = manager.send_action(
            headers, as_list=None if as_list else as_list
        )
        self._waiting[action_id] = future
        try:
            async with asyncio.timeout(timeout_s or self.options.action_timeout_s):
                answer = await future
        except TimeoutError:
            raise AmiTimeout(
                f"no answer to {name} within {timeout_s or self.options.action_timeout_s:g} s"
            ) from None
        finally:
            del self._waiting[action_id]
            manager.responses.pop(action_id, None)
        first = answer[0] if isinstance(answer, list) else answer
        if first.response == "Error":
            raise AmiActionFailed(name, first.message or "no message")
        return [answer] if as_list and not isinstance(answer, list) else answer

    async def _deliver_events(self) -> None:
        while True:
            event = await self._events.get()
            name = event.get("Event", "")
            for wanted, handler in self._handlers:
                if wanted is not None and name not in wanted:
                    continue
                try:
                    result = handler(event)
                    if result is not None:
                        await result
                except Exception:
                    log.exception(
                        "ami.event_handler_failed", ami_event=name, handler=_name_of(handler)
                    )
            if name == "Shutdown":
                log.warning(
                    "ami.shutdown_received",
                    address=self.options.address,
                    restart=event.get("Restart", ""),
                )

    async def _shut_down(self) -> None:
        protocol = self._protocol
        if protocol is None or self._link_lost.is_set():
            return
        if self._link.logged_in:
            with contextlib.suppress(AmiError, TimeoutError):
                await self._send({"Action": "Logoff"}, timeout_s=1.0)
        self._set_link(logged_in=False, detail="stopped")
        protocol.transport.close()
        log.info("ami.closed", address=self.options.address)


def _describe(exc: BaseException | Message | None) -> str:
    if exc is None:
        return "connection closed"
    if isinstance(exc, Message):
        return f"Asterisk sent {exc.get('Event', 'a message')}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _name_of(function: object) -> str:
    return getattr(function, "__qualname__", repr(function))
