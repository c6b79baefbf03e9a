"""The demo on a stand-in of Aliyun or Tencent Cloud SMS (`make demo SMS=aliyun`).

    python -m tests.fakes.sms_stand_in aliyun|tencent --base config/example.yaml --port 18090

starts the stand-in (`tests.fakes.aliyun_sms_server` / `tencent_sms_server`, which check the
real SDK's signature), writes next to the base config `.demo-<provider>.yaml`, the base config
with that provider added as the primary one (pointing at the stand-in) and every stage given a
template there (`demo_config`), prints its path, and serves until SIGTERM/SIGINT, printing each
message it accepts and pushing its delivery report to the daemon (`--api`, the provider's
callback route with the demo's callback secret), as the provider would. The keys are the
stand-in's test keys, given to the daemon through the environment variables
`DEMO_SMS_KEY_ID`, `DEMO_SMS_SECRET` and `DEMO_SMS_HOOK` (`DEMO_ENV`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
from ruamel.yaml import YAML

from dialer.config.values import placeholders
from tests.fakes.aliyun_sms_server import FakeAliyunSms
from tests.fakes.cloud_sms_common import BEIJING, AcceptedSms, CloudSmsServer
from tests.fakes.tencent_sms_server import FakeTencentSms

KEY_ID, SECRET, HOOK = "demo-key-id", "demo-key-secret", "demo-callback-secret"
SDK_APP_ID = "1400006666"
DEMO_ENV = {"DEMO_SMS_KEY_ID": KEY_ID, "DEMO_SMS_SECRET": SECRET, "DEMO_SMS_HOOK": HOOK}
FIXED_TEXT = frozenset({"signature", "opt_out_hint"})  # approved template text, not variables


def template_code(provider: str, index: int) -> str:
    """The demo's template id of the index-th stage: Aliyun's SMS_..., Tencent's digits."""
    return f"SMS_{900000 + index}" if provider == "aliyun" else str(900000 + index)


def demo_config(base_text: str, provider: str, endpoint: str) -> str:
    """The base config with `provider` (aliyun or tencent) at `endpoint` as the primary, and
    each stage's template there: the stage's placeholders as its variables, in order."""
    yaml = YAML(typ="rt")
    config: Any = yaml.load(base_text)
    notifications = config["notifications"]
    credentials = (
        {"access_key_id": "${DEMO_SMS_KEY_ID}", "access_key_secret": "${DEMO_SMS_SECRET}"}
        if provider == "aliyun"
        else {
            "secret_id": "${DEMO_SMS_KEY_ID}",
            "secret_key": "${DEMO_SMS_SECRET}",
            "sdk_app_id": SDK_APP_ID,
        }
    )
    notifications["providers"][provider] = {
        "type": provider,
        **credentials,
        "sign_name": str(notifications.get("signature") or "【演示】").strip("【】"),
        "endpoint": endpoint,
        "protocol": "http",
        "callback_secret": "${DEMO_SMS_HOOK}",
    }
    notifications["primary"] = provider
    notifications.pop("fallback", None)
    for index, stage in enumerate(notifications.get("stages", {}).values()):
        names = [name for name in placeholders(stage["template"]) if name not in FIXED_TEXT]
        params = {name: "{" + name + "}" for name in dict.fromkeys(names)}
        stage["provider_templates"] = {
            provider: {"template_code": template_code(provider, index), "template_params": params}
        }
    out = io.StringIO()
    yaml.dump(config, out)
    return out.getvalue()


def report_path(provider: str) -> str:
    """Where the provider pushes delivery reports, under the daemon's API."""
    kind = "report" if provider == "aliyun" else "status"
    return f"/v1/sms/{provider}/{HOOK}/{kind}"


def delivery_report(provider: str, sms: AcceptedSms) -> list[dict[str, object]]:
    """The push the provider makes when `sms` was delivered (Aliyun SmsReport, Tencent status)."""
    at = sms.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    if provider == "aliyun":
        item: dict[str, object] = {
            "phone_number": sms.phone,
            "send_time": at,
            "report_time": at,
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
            "sms_size": "1",
            "biz_id": sms.provider_message_id,
            "out_id": sms.our_id,
        }
    else:
        item = {
            "user_receive_time": at,
            "nationcode": sms.phone[1:3],
            "mobile": sms.phone[3:],
            "report_status": "SUCCESS",
            "errmsg": "DELIVRD",
            "description": "用户短信送达成功",
            "sid": sms.provider_message_id,
        }
    return [item]


def stand_in(provider: str, port: int) -> CloudSmsServer:
    if provider == "aliyun":
        return FakeAliyunSms(secrets={KEY_ID: SECRET}, port=port)
    return FakeTencentSms(secrets={KEY_ID: SECRET}, sdk_app_ids=frozenset({SDK_APP_ID}), port=port)


async def serve(provider: str, base_text: str, written: Path, port: int, api: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with stand_in(provider, port) as fake:
        text = demo_config(base_text, provider, fake.endpoint)
        await asyncio.to_thread(written.write_text, text, encoding="utf-8")
        print(written, flush=True)
        shown = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while not stop.is_set():
                for sms in fake.accepted[shown:]:
                    print(
                        f"{provider} stand-in: accepted {sms.our_id} template "
                        f"{sms.template_code} {sms.params}",
                        file=sys.stderr,
                        flush=True,
                    )
                    await push(http, api + report_path(provider), delivery_report(provider, sms))
                shown = len(fake.accepted)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)


async def push(http: aiohttp.ClientSession, url: str, body: object) -> None:
    """One delivery report to the daemon; a failure is printed (the provider would retry)."""
    try:
        async with http.post(url, json=body) as answer:
            if answer.status != 200:
                print(f"stand-in: report answered {answer.status}", file=sys.stderr, flush=True)
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"stand-in: report not delivered: {exc!r}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("provider", choices=["aliyun", "tencent"])
    parser.add_argument("--base", type=Path, default=Path("config/example.yaml"))
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="the daemon's base URL")
    options = parser.parse_args(argv)
    base: Path = options.base
    written = base.with_name(f".demo-{options.provider}.yaml")
    text = base.read_text(encoding="utf-8")
    asyncio.run(serve(options.provider, text, written, options.port, options.api.rstrip("/")))


if __name__ == "__main__":
    main()
