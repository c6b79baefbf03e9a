"""A primary provider and a fallback one, tried only when the failure is the provider's.

The fallback is tried when the primary raises:
- `PermanentError(reason="provider")`: auth, configuration, a sender the account cannot use;
- `TransientError`: an outage that outlived the primary's retries. Give `FallbackNotifier`
  notifiers that already retry (`RetryingNotifier`), so "transient" means "after retries".
  With `fallback_on_ambiguous=False`, an ambiguous one (the primary may have sent it) is not
  passed on, so the customer does not get the message twice.
  Never a `TransientError(scope="message")`: a per-number flow control protects the recipient
  from too many messages, and another provider would only go around it; the message waits.

Never when the failure is about the recipient: `PermanentError(reason="number")` or
`"opted_out"` is raised as it is, and so is any error that is not a `NotifyError`.

The `SendResult.provider` of the answer says which provider sent it. When both fail, the error
raised is the one that says most about what to do next, chained (`from`) to the other:
the fallback's number/opt-out verdict first, then a `TransientError` (the fallback's, else the
primary's: a later try may pass), else the fallback's permanent error.
"""

from __future__ import annotations

from notifiers.base import Notifier, OutboundSms, SendResult
from notifiers.errors import NotifyError, PermanentError, TransientError

__all__ = ["FallbackNotifier", "should_fall_back"]


def should_fall_back(error: NotifyError, *, fallback_on_ambiguous: bool = True) -> bool:
    """Whether a failure of the primary may be handed to the fallback provider."""
    if isinstance(error, PermanentError):
        return error.reason == "provider"
    if isinstance(error, TransientError):
        if error.scope == "message":
            return False
        return fallback_on_ambiguous or not error.ambiguous
    return False


class FallbackNotifier:
    """Sends through `primary`, and through `fallback` when the primary's failure allows it.
    `close()` closes both."""

    def __init__(
        self,
        primary: Notifier,
        fallback: Notifier,
        *,
        fallback_on_ambiguous: bool = True,
        name: str | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.fallback_on_ambiguous = fallback_on_ambiguous
        self.name = name or f"{primary.name}+{fallback.name}"

    async def send(self, message: OutboundSms) -> SendResult:
        try:
            return await self.primary.send(message)
        except NotifyError as primary_error:
            if not should_fall_back(
                primary_error, fallback_on_ambiguous=self.fallback_on_ambiguous
            ):
                raise
            first = primary_error
        try:
            return await self.fallback.send(message)
        except NotifyError as fallback_error:
            chosen, other = _choose(first, fallback_error)
            raise chosen from other

    async def close(self) -> None:
        try:
            await self.primary.close()
        finally:
            await self.fallback.close()


def _choose(primary: NotifyError, fallback: NotifyError) -> tuple[NotifyError, NotifyError]:
    """(the error to raise, the other one) when both providers failed."""
    if isinstance(fallback, PermanentError) and fallback.about_number:
        return fallback, primary
    if isinstance(fallback, TransientError):
        return fallback, primary
    if isinstance(primary, TransientError):
        return primary, fallback
    return fallback, primary
