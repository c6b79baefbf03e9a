"""Log lines: JSON, dotted event names, foreign loggers routed, phone numbers masked."""

from __future__ import annotations

import io
import json
import logging

from dialer.logs import get_logger, mask_phone, mask_phone_numbers


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_mask_phone_keeps_prefix_and_last_four_digits() -> None:
    assert mask_phone("+8613812345678") == "+86138****5678"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("12345") == "****"


def test_mask_phone_numbers_masks_numbers_inside_text_and_leaves_ids() -> None:
    text = "Originate Local/+8613812345678@customers uniqueid 1795732530.14 cause 16"
    assert mask_phone_numbers(text) == (
        "Originate Local/+86138****5678@customers uniqueid 1795732530.14 cause 16"
    )


def test_our_log_lines_are_json_with_the_event_name_and_masked_numbers(
    log_output: io.StringIO,
) -> None:
    get_logger("dialer.test").info("call.originate_sent", phone="13812345678", attempt_id="a-1")
    [line] = lines(log_output)
    assert line["event"] == "call.originate_sent"
    assert line["phone"] == "138****5678"
    assert line["attempt_id"] == "a-1"
    assert line["level"] == "info"
    assert "timestamp" in line


def test_standard_library_records_go_through_the_same_chain(log_output: io.StringIO) -> None:
    logging.getLogger("panoramisk.manager").warning("Not able to reach +8613812345678")
    [line] = lines(log_output)
    assert line["event"] == "panoramisk.manager.log"
    assert line["message"] == "Not able to reach +86138****5678"
    assert line["level"] == "warning"


def test_chatty_libraries_are_held_at_warning(log_output: io.StringIO) -> None:
    logging.getLogger("panoramisk.ami_protocol").info("Action: Originate Channel: 13812345678")
    assert lines(log_output) == []


def test_chinese_text_is_written_as_is(log_output: io.StringIO) -> None:
    get_logger("dialer.test").info("sms.queued", customer_name="王小明")
    assert lines(log_output)[0]["customer_name"] == "王小明"


def test_lines_below_the_level_are_not_written(log_output: io.StringIO) -> None:
    logger = get_logger("dialer.test")
    logger.debug("sms.debug_detail", phone="13812345678")
    logger.info("sms.sent", order_id="A1")
    assert [line["event"] for line in lines(log_output)] == ["sms.sent"]
