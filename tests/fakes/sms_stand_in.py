"""The demo on a stand-in of Aliyun or Tencent Cloud SMS (`make demo SMS=aliyun`).

    python -m tests.fakes.sms_stand_in aliyun|tencent --base config/example.yaml --port 18090

starts the stand-in (`tests.fakes.aliyun_sms_server` / `tencent_sms_server`, which check the
real SDK's signature), writes next to the base config `.demo-<provider>.yaml`, the base config
with that provider added as the primary one (pointing at the stand-in) and every stage given a
template there (`demo_config`), prints its path, and serves until SIGTERM/SIGINT, printing each
message it accepts. The keys are the stand-in's test keys, given to the daemon through the
environment variables `DEMO_SMS_KEY_ID` and `DEMO_SMS_SECRET` (`DEMO_ENV`).
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

from ruamel.yaml import YAML

from dialer.config.values import placeholders
from tests.fakes.aliyun_sms_server import FakeAliyunSms
from tests.fakes.cloud_sms_common import CloudSmsServer
from tests.fakes.tencent_sms_server import FakeTencentSms

KEY_ID, SECRET = "demo-key-id", "demo-key-secret"
SDK_APP_ID = "1400006666"
DEMO_ENV = {"DEMO_SMS_KEY_ID": KEY_ID, "DEMO_SMS_SECRET": SECRET}
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


def stand_in(provider: str, port: int) -> CloudSmsServer:
    if provider == "aliyun":
        return FakeAliyunSms(secrets={KEY_ID: SECRET}, port=port)
    return FakeTencentSms(secrets={KEY_ID: SECRET}, sdk_app_ids=frozenset({SDK_APP_ID}), port=port)


async def serve(provider: str, base_text: str, written: Path, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with stand_in(provider, port) as fake:
        text = demo_config(base_text, provider, fake.endpoint)
        await asyncio.to_thread(written.write_text, text, encoding="utf-8")
        print(written, flush=True)
        shown = 0
        while not stop.is_set():
            for sms in fake.accepted[shown:]:
                print(
                    f"{provider} stand-in: accepted {sms.our_id} template {sms.template_code} "
                    f"{sms.params}",
                    file=sys.stderr,
                    flush=True,
                )
            shown = len(fake.accepted)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("provider", choices=["aliyun", "tencent"])
    parser.add_argument("--base", type=Path, default=Path("config/example.yaml"))
    parser.add_argument("--port", type=int, default=18090)
    options = parser.parse_args(argv)
    base: Path = options.base
    written = base.with_name(f".demo-{options.provider}.yaml")
    asyncio.run(serve(options.provider, base.read_text(encoding="utf-8"), written, options.port))


if __name__ == "__main__":
    main()
