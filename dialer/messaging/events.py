"""The body of `POST /v1/events`: an order event, validated (pydantic) with located errors.

- `stage`: one of the built-in stages or a configured one; `phone`: a string holding a valid
  number (parsed with the config's default region, the reason given when not); `occurred_at`: a
  string (ISO 8601) with a time zone, never a number (pydantic would read 0 as 1970); unknown
  keys refused. The validation context (`Event.context_for`) carries the stages and the
  region, so a reloaded config applies to the next event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

import pydantic
from pydantic import AwareDatetime, BeforeValidator, ConfigDict, Field, ValidationInfo

from dialer.messaging.templates import DataValue
from dialer.phones import InvalidNumber, PhoneNumber, parse

__all__ = ["BUILT_IN_STAGES", "Customer", "Event", "validation_context"]

BUILT_IN_STAGES = (
    "order_confirmed",
    "shipped",
    "out_for_delivery",
    "delivered",
    "refused",
    "return_accepted",
    "exchange_accepted",
    "refund_issued",
)
Text = Annotated[str, Field(min_length=1, max_length=200)]


def _known_stage(value: Any, info: ValidationInfo) -> Any:
    stages: frozenset[str] = (info.context or {}).get("stages", frozenset(BUILT_IN_STAGES))
    if isinstance(value, str) and value not in stages:
        raise ValueError(f"unknown stage {value!r}; known: {', '.join(sorted(stages))}")
    return value


def _phone(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str):
        raise ValueError("phone must be a string")
    region: str = (info.context or {}).get("default_region", "CN")
    try:
        return parse(value, region)
    except InvalidNumber as exc:
        raise ValueError(str(exc)) from None


def _a_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a string: an ISO 8601 time with its zone")
    return value


class Customer(pydantic.BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(max_length=200)] = ""
    vip: bool = False


class Event(pydantic.BaseModel):
    """The body of POST /v1/events."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    event_id: Text
    order_id: Text
    stage: Annotated[str, BeforeValidator(_known_stage)]
    phone: Annotated[PhoneNumber, BeforeValidator(_phone)]
    customer: Customer = Customer()
    occurred_at: Annotated[AwareDatetime, BeforeValidator(_a_string)]
    data: dict[Annotated[str, Field(max_length=100)], DataValue] = Field(default_factory=dict)

    def stored_form(self) -> dict[str, Any]:
        """The payload kept with the event (and compared when the event_id comes again)."""
        return {**self.model_dump(mode="json", exclude={"phone"}), "phone": self.phone.e164}


def validation_context(stages: Iterable[str], default_region: str) -> dict[str, Any]:
    """What `Event.model_validate(body, context=...)` needs: the known stages, the region."""
    return {"stages": frozenset((*BUILT_IN_STAGES, *stages)), "default_region": default_region}
