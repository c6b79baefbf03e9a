"""Campaign kinds: one module each, registered in `KINDS`.

A kind is its config model: the fields it adds or whose defaults differ, where its answered
calls go (`answer_route`) and whether it dials only while an agent is free (`free_agent_queue`).
The runner asks the model; it never tests which kind it has. To add a kind: a module here with
its model (`kind: Literal["name"]`), and one entry in `KINDS`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from dialer.config.kinds.outbound import OutboundCampaign
from dialer.config.kinds.refusal_callback import RefusalCallbackCampaign
from dialer.config.kinds.vip import VipCampaign

__all__ = ["KINDS", "Campaign", "OutboundCampaign", "RefusalCallbackCampaign", "VipCampaign"]

KINDS = {
    "refusal_callback": RefusalCallbackCampaign,
    "vip": VipCampaign,
    "outbound": OutboundCampaign,
}
"""Kind name (the `kind:` key of a campaign) -> its config model."""

Campaign = Annotated[
    RefusalCallbackCampaign | VipCampaign | OutboundCampaign, Field(discriminator="kind")
]
"""A campaign of any kind, chosen by its `kind:` key."""
