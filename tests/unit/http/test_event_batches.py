"""The pure parts of a batch of events: its size limits, and the answer made of its results."""

from __future__ import annotations

import pydantic
import pytest

from dialer.http.event_batches import MAX_EVENTS_PER_REQUEST, batch_answer, batch_size_problem
from dialer.http.server import invalid_body
from dialer.messaging.intake import EventResult


class Point(pydantic.BaseModel):
    x: int


def invalid() -> pydantic.ValidationError:
    with pytest.raises(pydantic.ValidationError) as refused:
        Point.model_validate({"x": "left"})
    return refused.value


@pytest.mark.parametrize("count", [1, 2, MAX_EVENTS_PER_REQUEST])
def test_a_batch_of_1_to_the_limit_is_fine(count: int) -> None:
    assert batch_size_problem(count) is None


def test_an_empty_batch_is_400_naming_the_problem() -> None:
    assert batch_size_problem(0) == (400, "events: at least 1 per request, got 0")


def test_a_batch_over_the_limit_is_413_naming_the_limit_and_the_count() -> None:
    assert batch_size_problem(MAX_EVENTS_PER_REQUEST + 1) == (
        413,
        f"events: at most {MAX_EVENTS_PER_REQUEST} per request, got {MAX_EVENTS_PER_REQUEST + 1}",
    )


def test_the_answer_lists_each_result_with_its_index_and_status_in_order() -> None:
    results = [
        EventResult(202, {"event_id": "e1", "message": None}),
        EventResult(200, {"event_id": "e0", "message": None}),
        EventResult(202, {"event_id": "e2", "message": None}),
    ]
    answer = batch_answer(results)
    assert answer["results"] == [
        {"index": 0, "status": 202, "event_id": "e1", "message": None},
        {"index": 1, "status": 200, "event_id": "e0", "message": None},
        {"index": 2, "status": 202, "event_id": "e2", "message": None},
    ]
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (2, 1, 0)


def test_an_invalid_result_is_worded_as_the_single_route_words_it() -> None:
    error = invalid()
    answer = batch_answer([EventResult(422, {}, invalid=error)])
    assert answer["results"] == [{"index": 0, "status": 422, **invalid_body(error)}]
    assert answer["results"][0]["fields"][0]["field"] == "x"


def test_conflicts_invalid_events_and_failed_writes_count_as_rejected() -> None:
    results = [
        EventResult(409, {"error": "reused", "event_id": "e1"}),
        EventResult(422, {}, invalid=invalid()),
        EventResult(500, {"error": "not stored", "event_id": "e3"}),
        EventResult(202, {"event_id": "e4"}),
    ]
    answer = batch_answer(results)
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (1, 0, 3)
    assert [item["status"] for item in answer["results"]] == [409, 422, 500, 202]
