"""Helpers of the Aliyun / Tencent integration tests: the daemon's settings pointing at the
local stand-ins, and the provider stack and dispatcher built as the daemon builds them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from dialer.config import Settings, parse_settings
from dialer.messaging.dispatcher import Dispatcher
from dialer.messaging.providers import build_provider_stack
from dialer.messaging.service import dispatcher_for
from dialer.store import OutboxStore, Store
from tests.fakes.clock import FakeClock, RecordingSleep
from tests.integration.sms_support import Now

ALIYUN_KEY_ID, ALIYUN_SECRET = "LTAI-test-key", "aliyun-test-secret"
TENCENT_ID, TENCENT_KEY = "AKIDtest", "tencent-test-key"
SDK_APP_ID = "1400006666"
ALIYUN_HOOK, TENCENT_HOOK = "aliyun-hook-8f2c", "tencent-hook-77ab"
TOKEN = "sms-test-token"
ENV = {
    "AMI_SECRET": "x",
    "API_TOKEN": TOKEN,
    "ALIYUN_KEY_ID": ALIYUN_KEY_ID,
    "ALIYUN_SECRET": ALIYUN_SECRET,
    "TENCENT_ID": TENCENT_ID,
    "TENCENT_KEY": TENCENT_KEY,
    "ALIYUN_HOOK": ALIYUN_HOOK,
    "TENCENT_HOOK": TENCENT_HOOK,
}
SHIPPED_ALIYUN = "SMS_100001"
SHIPPED_TENCENT = "100001"

STAGES = """\
  stages:
    shipped:
      template: "{signature}订单{order_id}已由{courier}发出，运单号{tracking_number}。"
      provider_templates:
        aliyun:
          template_code: SMS_100001
          template_params: {order: "{order_id}", courier: "{courier}", no: "{tracking_number}"}
        tencent:
          template_code: "100001"
          template_params: {order: "{order_id}", courier: "{courier}", no: "{tracking_number}"}
    delivered:
      template: "{signature}订单{order_id}已签收。"
      provider_templates:
        aliyun: {template_code: SMS_100002, template_params: {order: "{order_id}"}}
        tencent: {template_code: "100002", template_params: {order: "{order_id}"}}
    refused:
      template: "{signature}订单{order_id}已拒收，客服稍后致电。"
      urgent: true
      provider_templates:
        aliyun: {template_code: SMS_100003, template_params: {order: "{order_id}"}}
        tencent: {template_code: "100003", template_params: {order: "{order_id}"}}
"""


def mainland_settings(
    directory: Path,
    *,
    store_url: str,
    aliyun_endpoint: str = "127.0.0.1:9",
    tencent_endpoint: str = "127.0.0.1:9",
    primary: str = "aliyun",
    fallback: str | None = None,
    in_process_attempts: int = 3,
    timeout_s: float = 0.3,
    limits: str = "",
    allow_from: str = "[]",
    stages: str = STAGES,
    pool_size: int = 4,
    concurrency: int = 4,
) -> Settings:
    text = f"""\
ami: {{host: 127.0.0.1, port: 15038, username: outreach, secret: "${{AMI_SECRET}}"}}
store: {{url: "{store_url}"}}
api: {{host: 127.0.0.1, port: 8080, token: "${{API_TOKEN}}"}}
notifications:
  providers:
    aliyun:
      type: aliyun
      access_key_id: "${{ALIYUN_KEY_ID}}"
      access_key_secret: "${{ALIYUN_SECRET}}"
      sign_name: 好物优选
      endpoint: "{aliyun_endpoint}"
      protocol: http
      connect_timeout_s: 2
      timeout_s: {timeout_s}
      messages_per_second: 100000
      pool_size: {pool_size}
      callback_secret: "${{ALIYUN_HOOK}}"
      callback_allow_from: {allow_from}
    tencent:
      type: tencent
      secret_id: "${{TENCENT_ID}}"
      secret_key: "${{TENCENT_KEY}}"
      sdk_app_id: "{SDK_APP_ID}"
      sign_name: 好物优选
      endpoint: "{tencent_endpoint}"
      protocol: http
      timeout_s: {timeout_s}
      messages_per_second: 100000
      pool_size: {pool_size}
      callback_secret: "${{TENCENT_HOOK}}"
  primary: {primary}
  {f"fallback: {fallback}" if fallback else ""}
  retry: {{in_process_attempts: {in_process_attempts}, backoff_initial_s: 30}}
  dispatcher: {{concurrency: {concurrency}, poll_interval_s: 0.05}}
  quiet_hours: null
  signature: 【好物优选】
  {limits}
{stages}"""
    return parse_settings(text, source="test.yaml", base_dir=directory, environ=ENV)


def real_now() -> Now:
    """A hand-moved clock starting at the real time: Tencent's stand-in checks the SDK's
    signature time against its own clock, and both stand-ins file messages by Beijing day."""
    return Now(datetime.now(UTC).replace(microsecond=0))


@contextlib.asynccontextmanager
async def dispatcher(
    settings: Settings, store: Store, now: Now, *, owner: str | None = None
) -> AsyncIterator[Dispatcher]:
    """A dispatcher on a fresh provider stack (a new process's: no memory of earlier sends),
    its in-process backoffs recorded instead of slept."""
    clock = FakeClock()  # the backoffs and the account's pauses run on it, in no real time
    stack = await build_provider_stack(
        settings.notifications, sleep=RecordingSleep(clock), clock=clock
    )
    try:
        yield dispatcher_for(
            settings,
            OutboxStore(store, owner=owner),
            stack.notifier,
            now=now,
            lookups=stack.lookups,
        )
    finally:
        await stack.notifier.close()
