"""The registry entries of Aliyun and Tencent: each config `type` makes its notifier from its
settings, and reads its delivery reports' codes with its own table."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialer.config import parse_settings
from dialer.messaging.lookups import SentLookup
from dialer.messaging.providers import PROVIDERS, build_provider_stack, make_provider
from notifiers import AliyunSmsNotifier, TencentSmsNotifier
from tests.integration.mainland_support import ENV, mainland_settings


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return mainland_settings(tmp_path, store_url="sqlite+aiosqlite:///x.db")


async def test_type_aliyun_makes_the_aliyun_notifier_from_its_settings(settings) -> None:  # type: ignore[no-untyped-def]
    notifier = make_provider("aliyun", settings.notifications.providers["aliyun"])
    try:
        assert isinstance(notifier, AliyunSmsNotifier)
        assert (notifier.name, notifier.sign_name, notifier.max_param_chars) == (
            "aliyun",
            "好物优选",
            35,
        )
        assert notifier.max_workers == 4
    finally:
        await notifier.close()


async def test_type_tencent_makes_the_tencent_notifier_from_its_settings(settings) -> None:  # type: ignore[no-untyped-def]
    notifier = make_provider("tencent", settings.notifications.providers["tencent"])
    try:
        assert isinstance(notifier, TencentSmsNotifier)
        assert (notifier.sdk_app_id, notifier.sign_name) == ("1400006666", "好物优选")
    finally:
        await notifier.close()


@pytest.mark.parametrize(
    ("kind", "code", "transient"),
    [
        ("aliyun", "MK:0023", True),
        ("aliyun", "isv.MOBILE_NUMBER_ILLEGAL", False),
        ("tencent", "002", True),
        ("tencent", "-106", False),
    ],
)
def test_each_type_reads_its_delivery_codes_with_its_own_table(
    kind: str, code: str, transient: bool
) -> None:
    assert PROVIDERS[kind].delivery_failure_is_transient(code) is transient


async def test_the_stack_lists_primary_and_fallback_as_lookups(tmp_path: Path) -> None:
    settings = mainland_settings(
        tmp_path, store_url="sqlite+aiosqlite:///x.db", primary="tencent", fallback="aliyun"
    )
    stack = await build_provider_stack(settings.notifications)
    try:
        assert [lookup.name for lookup in stack.lookups] == ["tencent", "aliyun"]
        assert all(isinstance(lookup, SentLookup) for lookup in stack.lookups)
        assert stack.notifier.name == "tencent+aliyun"
    finally:
        await stack.notifier.close()


async def test_a_provider_without_lookup_lists_none(tmp_path: Path) -> None:
    text = """\
ami: {username: outreach, secret: "${AMI_SECRET}"}
api: {token: "${API_TOKEN}"}
"""
    settings = parse_settings(text, source="c.yaml", base_dir=tmp_path, environ=ENV)
    stack = await build_provider_stack(settings.notifications)
    try:
        assert stack.lookups == ()
    finally:
        await stack.notifier.close()
