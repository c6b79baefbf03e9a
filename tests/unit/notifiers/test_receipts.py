"""Receipts and replies pushed by Aliyun and Tencent, read from their documented examples; and
which delivery failures are worth a retry, per provider, row by row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from notifiers import (
    ALIYUN_DELIVERY_FAILURES,
    TENCENT_DELIVERY_FAILURES,
    TWILIO_DELIVERY_FAILURES,
    DeliveryReceipt,
    InboundReply,
    aliyun_delivery_failure_is_transient,
    parse_aliyun_replies,
    parse_aliyun_reports,
    parse_tencent_reply,
    parse_tencent_statuses,
    tencent_delivery_failure_is_transient,
    twilio_delivery_failure_is_transient,
)

BEIJING = timezone(timedelta(hours=8))

# The documented examples (help.aliyun.com/document_detail/101867.html, knowledge_detail/60127,
# cloud.tencent.com/document/api/382/5807 and /5809), with the masked digits of their phone
# numbers ("1381111****", "13xxxxxxxxx") filled in.
ALIYUN_REPORT = [
    {
        "phone_number": "13811110000",
        "send_time": "2017-01-01 00:00:00",
        "report_time": "2017-01-01 00:00:00",
        "success": True,
        "err_code": "DELIVERED",
        "err_msg": "用户接收成功",
        "sms_size": "1",
        "biz_id": "12345",
        "out_id": "67890",
    }
]
ALIYUN_UP = [
    {
        "phone_number": "13811110000",
        "send_time": "2017-09-01 00:00:00",
        "content": "内容",
        "sign_name": "签名",
        "dest_code": "1234",
        "sequence_id": 1234567890,
    }
]
TENCENT_STATUS = [
    {
        "user_receive_time": "2015-10-17 08:03:04",
        "nationcode": "86",
        "mobile": "13800000000",
        "report_status": "SUCCESS",
        "errmsg": "DELIVRD",
        "description": "用户短信送达成功",
        "sid": "xxxxxxx",
    }
]
TENCENT_REPLY = {
    "extend": "扩展码",
    "mobile": "13800000000",
    "nationcode": "86",
    "sign": "短信签名",
    "text": "用户回复的内容",
    "time": 1457336869,
}


def test_an_aliyun_report_becomes_a_delivered_receipt_for_our_message() -> None:
    assert parse_aliyun_reports(ALIYUN_REPORT) == [
        DeliveryReceipt(
            provider="aliyun",
            provider_message_id="12345",
            message_id="67890",
            phone="+8613811110000",
            status="delivered",
            error_code=None,
            error_message=None,
            at=datetime(2017, 1, 1, 0, 0, tzinfo=BEIJING),
        )
    ]


def test_an_aliyun_carrier_failure_is_undelivered_with_its_code() -> None:
    failed = [{**ALIYUN_REPORT[0], "success": False, "err_code": "MK:0001", "err_msg": "空号"}]
    (receipt,) = parse_aliyun_reports(failed)
    assert (receipt.status, receipt.error_code, receipt.error_message) == (
        "undelivered",
        "MK:0001",
        "空号",
    )


def test_an_aliyun_platform_refusal_is_failed() -> None:
    refused = [{**ALIYUN_REPORT[0], "success": False, "err_code": "isv.SMS_CONTENT_ILLEGAL"}]
    assert parse_aliyun_reports(refused)[0].status == "failed"


def test_a_push_of_several_aliyun_reports_gives_them_all_in_order() -> None:
    second = {**ALIYUN_REPORT[0], "biz_id": "12346", "out_id": "", "phone_number": "0085261234567"}
    receipts = parse_aliyun_reports([ALIYUN_REPORT[0], second])
    assert [(r.provider_message_id, r.message_id, r.phone) for r in receipts] == [
        ("12345", "67890", "+8613811110000"),
        ("12346", None, "+85261234567"),
    ]


def test_an_aliyun_reply_keeps_its_sequence_for_de_duplication() -> None:
    assert parse_aliyun_replies(ALIYUN_UP) == [
        InboundReply(
            provider="aliyun",
            provider_id="+8613811110000/1234567890",
            phone="+8613811110000",
            text="内容",
            at=datetime(2017, 9, 1, 0, 0, tzinfo=BEIJING),
            sign_name="签名",
        )
    ]


def test_a_tencent_status_becomes_a_delivered_receipt() -> None:
    (receipt,) = parse_tencent_statuses(TENCENT_STATUS)
    assert receipt == DeliveryReceipt(
        provider="tencent",
        provider_message_id="xxxxxxx",
        message_id=None,
        phone="+8613800000000",
        status="delivered",
        error_code=None,
        error_message=None,
        at=datetime(2015, 10, 17, 8, 3, 4, tzinfo=BEIJING),
    )


def test_a_tencent_failure_keeps_its_code_and_the_ext_is_our_message_id() -> None:
    failed = {**TENCENT_STATUS[0], "report_status": "FAIL", "errmsg": "002", "ext": "msg-42"}
    (receipt,) = parse_tencent_statuses([failed])
    assert (receipt.status, receipt.error_code, receipt.message_id) == (
        "undelivered",
        "002",
        "msg-42",
    )


def test_a_tencent_reply_is_read() -> None:
    reply = parse_tencent_reply(TENCENT_REPLY)
    assert (reply.phone, reply.text, reply.sign_name) == (
        "+8613800000000",
        "用户回复的内容",
        "短信签名",
    )
    assert reply.at == datetime.fromtimestamp(1457336869, UTC)
    assert reply.provider_id == parse_tencent_reply(dict(TENCENT_REPLY)).provider_id


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({}, "JSON array"),
        ([], "empty"),
        (["x"], "JSON object"),
        ([{**ALIYUN_REPORT[0], "success": "true"}], "success"),
        ([{k: v for k, v in ALIYUN_REPORT[0].items() if k != "biz_id"}], "biz_id"),
        ([{**ALIYUN_REPORT[0], "phone_number": "abc"}], "phone"),
        ([{**ALIYUN_REPORT[0], "report_time": "2017/01/01"}], "report_time"),
    ],
)
def test_a_malformed_aliyun_report_is_refused_with_the_reason(body: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_aliyun_reports(body)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ([{**ALIYUN_UP[0], "sequence_id": None}], "sequence_id"),
        ([{**ALIYUN_UP[0], "send_time": ""}], "send_time"),
    ],
)
def test_a_malformed_aliyun_reply_is_refused(body: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_aliyun_replies(body)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ([{**TENCENT_STATUS[0], "report_status": "OK"}], "report_status"),
        ([{**TENCENT_STATUS[0], "mobile": "13x"}], "digits"),
        ([{k: v for k, v in TENCENT_STATUS[0].items() if k != "sid"}], "sid"),
        (TENCENT_STATUS[0], "JSON array"),
    ],
)
def test_a_malformed_tencent_status_is_refused(body: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_tencent_statuses(body)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [({**TENCENT_REPLY, "time": "1457336869"}, "time"), ([TENCENT_REPLY], "JSON object")],
)
def test_a_malformed_tencent_reply_is_refused(body: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_tencent_reply(body)


# --------------------------------------------------------------------------- delivery failures

CARRIER = {
    "EXPIRED": True,
    "MK:0010": True,
    "MK:0023": True,
    "IB:0008": True,
    "DB:9007": True,
    "UNDELIV": False,
    "REJECTD": False,
    "MK:0001": False,
    "MK:0005": False,
    "MK:0013": False,
    "MK:0115": False,
    "DB:0101": False,
    "DB:0102": False,
    "DBBLACK": False,
    "MBBLACK": False,
}
ALIYUN = {
    **CARRIER,
    "isp.SYSTEM_ERROR": True,
    "isv.MOBILE_NUMBER_ILLEGAL": False,
    "isv.BLACK_KEY_CONTROL_LIMIT": False,
    "isv.SMS_CONTENT_ILLEGAL": False,
}
TENCENT = {**CARRIER, "002": True, "-106": False}
TWILIO = {
    30001: True,
    30002: False,
    30003: True,
    30004: False,
    30005: False,
    30006: False,
    30007: False,
    30008: True,
    30009: True,
    30010: False,
}


def test_the_delivery_tables_hold_exactly_the_expected_codes() -> None:
    assert dict(ALIYUN_DELIVERY_FAILURES) == ALIYUN
    assert dict(TENCENT_DELIVERY_FAILURES) == TENCENT
    assert TWILIO_DELIVERY_FAILURES == TWILIO


@pytest.mark.parametrize(("code", "transient"), sorted(ALIYUN.items()))
def test_aliyun_delivery_failure(code: str, transient: bool) -> None:
    assert aliyun_delivery_failure_is_transient(code) is transient


@pytest.mark.parametrize(("code", "transient"), sorted(TENCENT.items()))
def test_tencent_delivery_failure(code: str, transient: bool) -> None:
    assert tencent_delivery_failure_is_transient(code) is transient


@pytest.mark.parametrize(("code", "transient"), sorted(TWILIO.items()))
def test_twilio_delivery_failure(code: int, transient: bool) -> None:
    assert twilio_delivery_failure_is_transient(code) is transient
    assert twilio_delivery_failure_is_transient(str(code)) is transient


@pytest.mark.parametrize(
    "check",
    [
        aliyun_delivery_failure_is_transient,
        tencent_delivery_failure_is_transient,
        twilio_delivery_failure_is_transient,
    ],
)
def test_an_unknown_delivery_failure_is_dead(check: object) -> None:
    assert callable(check)
    assert check("NOPE:9999") is False
