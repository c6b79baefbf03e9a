"""`POST /v1/events` with a JSON array: a batch of order events, each answered on its own.

Order systems push events in batches. A body that is an array of 1 to `MAX_EVENTS_PER_REQUEST`
items is taken as that many events, each validated and made idempotent exactly as if it had
been posted alone (`SmsService.accept_events`); a bad event never refuses its neighbours.

The answer is 200 (the request was processed; each event's outcome is in its result):

    {"results": [{"index": 0, "status": 202, ...}, ...],
     "accepted": 1, "duplicates": 0, "rejected": 0}

one result per item, in order, holding its `index`, its `status` and the body the single-event
route would answer for it: 202 queued, 200 the same event again (its first answer), 409 an
event_id reused with another body, 422 invalid (`error` and `fields`, as for one body), 500
its own write failed. `accepted` counts the 202s, `duplicates` the 200s, `rejected` the rest.

Not 207 Multi-Status: that is WebDAV's, with an XML body; clients of a JSON API read the
per-item `status` instead. An empty array is 400, more than `MAX_EVENTS_PER_REQUEST` items 413,
both naming the problem, nothing stored; a body over `api.max_body_bytes` is 413 as ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from dialer.http.server import error_response, invalid_body
from dialer.messaging.intake import EventResult
from dialer.messaging.service import SmsService

__all__ = ["MAX_EVENTS_PER_REQUEST", "answer_batch", "batch_answer", "batch_size_problem"]

MAX_EVENTS_PER_REQUEST = 500
ACCEPTED, DUPLICATE = 202, 200


def batch_size_problem(count: int) -> tuple[int, str] | None:
    """(status, message) refusing a batch of `count` events, or None when the size is fine."""
    if count < 1:
        return 400, "events: at least 1 per request, got 0"
    if count > MAX_EVENTS_PER_REQUEST:
        return 413, f"events: at most {MAX_EVENTS_PER_REQUEST} per request, got {count}"
    return None


def batch_answer(results: Sequence[EventResult]) -> dict[str, Any]:
    """The body answering a batch: each result with its index and status, and the counts."""
    items = []
    for index, result in enumerate(results):
        body = invalid_body(result.invalid) if result.invalid is not None else result.answer
        items.append({"index": index, "status": result.status, **body})
    statuses = [result.status for result in results]
    accepted, duplicates = statuses.count(ACCEPTED), statuses.count(DUPLICATE)
    return {
        "results": items,
        "accepted": accepted,
        "duplicates": duplicates,
        "rejected": len(statuses) - accepted - duplicates,
    }


async def answer_batch(service: SmsService, bodies: list[Any]) -> web.Response:
    """The answer to `POST /v1/events` whose body is the array `bodies`."""
    problem = batch_size_problem(len(bodies))
    if problem is not None:
        status, message = problem
        return error_response(
            status, message, max_events=MAX_EVENTS_PER_REQUEST, events=len(bodies)
        )
    results = await service.accept_events(bodies)
    return web.json_response(batch_answer(results))
