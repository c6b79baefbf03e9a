"""The do-not-call list: a file of numbers, one a line, checked at the moment of dialling.

Lines are normalised to E.164 like contacts (default region from the config); blank lines and
`#` comments are skipped, and a line that is not a number is logged once and ignored. The file
is read again when it changes (checked by modification time at most every `recheck_s`), so ops
can add a number without restarting the daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dialer.logs import get_logger
from dialer.phones import InvalidNumber, normalize

log = get_logger(__name__)

__all__ = ["DncList", "read_dnc_file"]


def read_dnc_file(path: Path, default_region: str) -> frozenset[str]:
    numbers: set[str] = set()
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            numbers.add(normalize(text, default_region))
        except InvalidNumber as exc:
            log.warning("dnc.line_ignored", path=str(path), line=line_number, reason=str(exc))
    return frozenset(numbers)


class DncList:
    """`contains(e164)`; backed by a file (re-read when it changes) or a fixed set."""

    def __init__(
        self,
        path: Path | None,
        default_region: str = "CN",
        *,
        numbers: frozenset[str] = frozenset(),
        recheck_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._region = default_region
        self._numbers = numbers
        self._mtime_ns: int | None = None
        self._checked_at = -float("inf")
        self._recheck_s = recheck_s
        self._clock = clock
        if path is not None:
            self._reload()

    @classmethod
    def empty(cls) -> DncList:
        return cls(None)

    def contains(self, phone: str) -> bool:
        if self.path is not None and self._clock() - self._checked_at >= self._recheck_s:
            self._reload()
        return phone in self._numbers

    def _reload(self) -> None:
        assert self.path is not None
        self._checked_at = self._clock()
        try:
            mtime_ns = self.path.stat().st_mtime_ns
        except OSError as exc:
            log.error("dnc.unreadable", path=str(self.path), reason=str(exc))
            return  # keep the list read last; the error says the file needs fixing
        if mtime_ns != self._mtime_ns:
            self._numbers = read_dnc_file(self.path, self._region)
            self._mtime_ns = mtime_ns
            log.info("dnc.loaded", path=str(self.path), numbers=len(self._numbers))
