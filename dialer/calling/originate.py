"""What an Originate carries for one attempt, as pure functions.

ActionID = ChannelId = the attempt id (so every event of the call can be matched, also after a
reconnect); the campaign's channel with the number filled in; where the answered call goes
(the kind's `answer_route`); the caller id; and the channel variables the dialplan reads:
`ATTEMPT_ID`, `CAMPAIGN`, `ORDER_ID` (a contact from an order) and `AGENT_QUEUE`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from dialer.calling.ports import OriginateRequest
from dialer.config import Campaign

__all__ = ["channel_for", "originate_request", "originate_variables", "safe_variable_value"]

_UNSAFE_VALUE = re.compile(r"[,\r\n\0]")


def channel_for(template: str, number: str) -> str:
    """The channel to dial: the campaign's template with {number} filled in."""
    return template.replace("{number}", number)


def safe_variable_value(value: object) -> str:
    """A channel variable value Asterisk keeps whole: commas and line breaks become spaces."""
    return _UNSAFE_VALUE.sub(" ", str(value)).strip()


def originate_variables(
    *, attempt_id: str, campaign: str, context: Mapping[str, object] | None
) -> dict[str, str]:
    """ATTEMPT_ID and CAMPAIGN always; ORDER_ID when the contact came from an order."""
    variables = {"ATTEMPT_ID": attempt_id, "CAMPAIGN": campaign}
    order_id = (context or {}).get("order_id")
    if order_id not in (None, ""):
        variables["ORDER_ID"] = safe_variable_value(order_id)
    return variables


def originate_request(
    campaign_name: str,
    campaign: Campaign,
    attempt_id: str,
    *,
    phone: str,
    contact_context: Mapping[str, object] | None,
) -> OriginateRequest:
    """The Originate for one attempt: ActionID = ChannelId = attempt id, the campaign's channel,
    destination and caller id, and the variables the dialplan reads."""
    route = campaign.answer_route()
    variables = originate_variables(
        attempt_id=attempt_id, campaign=campaign_name, context=contact_context
    )
    agent_queue = route.queue or campaign.agent_queue
    if agent_queue:
        variables["AGENT_QUEUE"] = agent_queue
    variables.update(campaign.dialplan_variables())
    return OriginateRequest(
        action_id=attempt_id,
        channel_id=attempt_id,
        channel=channel_for(campaign.channel, phone),
        context=route.context,
        exten=route.exten,
        priority=route.priority,
        caller_id=campaign.caller_id,
        ring_timeout_s=campaign.ring_timeout_s,
        variables=variables,
    )
