"""Group commit: the writes that arrive while one is running are done together by the next.

`GroupCommit(write)` turns a batch writer (`write(items) -> results`, one transaction) into a
per-item call: `await group.submit(item)` returns that item's result once its batch is written.
No timer: the first item is written at once (after one turn of the loop, which gathers what
arrived in the same turn); under load, what arrives during a write waits for it to finish and
goes in the next batch, so the batches grow exactly when the store is the bottleneck.

- A batch that fails for an item's reason (`fails_alone(exc)`, e.g. a constraint) is written
  again one item at a time, so one bad item fails alone; any other failure (the store is
  unreachable) fails the whole batch at once, instead of once per item.
- The writing runs in its own task: a caller cancelled while waiting does not stop its item
  from being written (wrap the call in `asyncio.shield` or wait for it to keep the result).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from dialer.logs import get_logger

__all__ = ["GroupCommit"]

log = get_logger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 100,
        name: str = "group-commit",
        fails_alone: Callable[[Exception], bool] = lambda exc: True,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, not {max_batch!r}")
        self._write = write
        self.max_batch = max_batch
        self.name = name
        self.fails_alone = fails_alone
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Write `item` with whatever else is waiting; its result, or the write's exception."""
        return await asyncio.shield(self.enqueue(item))

    def enqueue(self, item: Item) -> asyncio.Future[Result]:
        """`submit` without waiting: the future of the item's result (cancelling it does not
        stop the write)."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name=self.name)
        return future

    async def _drain(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            await asyncio.sleep(0)  # what arrives in this turn of the loop joins the first batch
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                await self._write_batch(batch)
                batch = []
        except BaseException:  # cancelled with the loop: nobody waits forever
            for _, future in [*batch, *self._pending]:
                future.cancel()
            self._pending.clear()
            raise
        finally:
            self._writer = None

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1 or not self.fails_alone(exc):
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
            log.warning(
                "store.batch_write_failed", writer=self.name, size=len(batch), error=str(exc)
            )
            for one in batch:  # one bad item must not fail the others
                await self._write_batch([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


async def shielded(write: Awaitable[object]) -> None:
    """Save an outcome even when the caller is being cancelled: the provider already acted.
    The cancellation is passed on once the write is done. (`write` is a future of the outcome
    writer, or any awaitable.)"""
    task = asyncio.ensure_future(write)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise
