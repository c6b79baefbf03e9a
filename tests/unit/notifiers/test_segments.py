"""SMS segment counting: GSM-7 (160 / 153 septets) against UCS-2 (70 / 67 code units)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifiers import segments
from notifiers.base import _GSM7_BASIC, _GSM7_EXTENSION

GSM_BASIC = "".join(sorted(_GSM7_BASIC))
GSM_EXTENSION = "".join(sorted(_GSM7_EXTENSION))


@pytest.mark.parametrize(
    ("length", "parts"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_text_takes_160_septets_alone_then_153_per_part(length: int, parts: int) -> None:
    assert segments("a" * length) == ("GSM-7", parts)


def test_an_empty_text_still_costs_one_segment() -> None:
    assert segments("") == ("GSM-7", 1)


def test_gsm7_covers_the_accented_and_greek_letters_of_its_alphabet() -> None:
    assert segments("Ça coûte 5€? ΔΦΓ @£$¥ èéùìò ÄÖÑÜ äöñü").encoding == "UCS-2"  # û is not GSM
    assert segments("Ça va? ΔΦΓ @£$¥ èéùìò ÄÖÑÜ äöñüà §¿¡").encoding == "GSM-7"


@pytest.mark.parametrize("char", list("^{}\\[]~|€\f"))
def test_extension_characters_count_two_septets(char: str) -> None:
    assert segments(char * 80) == ("GSM-7", 1)  # 160 septets
    assert segments(char * 80 + "a") == ("GSM-7", 2)  # 161


def test_an_escape_pair_is_not_split_across_parts() -> None:
    # 152 plain septets then a 2-septet char: it would straddle the 153-septet boundary,
    # so it moves to part 2; 152 + 2 + 152 = 306 septets would fit in 2 parts otherwise.
    text = "a" * 152 + "€" + "a" * 152
    assert segments(text) == ("GSM-7", 3)


@pytest.mark.parametrize(
    ("length", "parts"), [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_chinese_text_is_ucs2_with_70_units_alone_then_67_per_part(length: int, parts: int) -> None:
    assert segments("订" * length) == ("UCS-2", parts)


def test_the_signature_brackets_force_ucs2_for_latin_text() -> None:
    assert segments("Hello") == ("GSM-7", 1)
    assert segments("【Shop】Hello") == ("UCS-2", 1)
    assert segments("【Shop】" + "a" * 64) == ("UCS-2", 1)  # 70 units
    assert segments("【Shop】" + "a" * 65) == ("UCS-2", 2)  # 71 units, not 71 septets


def test_a_typical_chinese_notification() -> None:
    text = "【优品购】您的订单123456已发货，顺丰单号SF1234567890，请保持电话畅通。回复TD退订"
    assert segments(text) == ("UCS-2", 1)


def test_emoji_take_two_ucs2_units_and_are_not_split() -> None:
    assert segments("😀" * 35) == ("UCS-2", 1)  # 70 units
    assert segments("😀" * 36) == ("UCS-2", 2)
    # 66 units, then a surrogate pair that would straddle the 67-unit boundary
    assert segments("订" * 66 + "😀" + "订" * 66) == ("UCS-2", 3)


@given(st.text(alphabet=GSM_BASIC, max_size=1000))
def test_plain_gsm7_parts_follow_the_formula(text: str) -> None:
    expected = 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert segments(text) == ("GSM-7", expected)


@given(st.text(alphabet=GSM_BASIC + GSM_EXTENSION, max_size=600))
def test_gsm7_parts_hold_every_septet_and_waste_at_most_one_per_part(text: str) -> None:
    septets = sum(2 if char in _GSM7_EXTENSION else 1 for char in text)
    encoding, parts = segments(text)
    assert encoding == "GSM-7"
    if septets <= 160:
        assert parts == 1
    else:
        assert math.ceil(septets / 153) <= parts <= math.ceil(septets / 152)


@given(st.text(min_size=1, max_size=300).filter(lambda t: any(c not in GSM_BASIC for c in t)))
def test_any_character_outside_gsm7_makes_the_whole_text_ucs2(text: str) -> None:
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in text):
        return
    units = len(text.encode("utf-16-le")) // 2
    encoding, parts = segments(text)
    assert encoding == "UCS-2"
    assert parts >= (1 if units <= 70 else math.ceil(units / 67))
