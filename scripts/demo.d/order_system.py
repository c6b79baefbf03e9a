"""The demo's stand-in of the order system (started by 05-order-system, not a step itself):
receives the daemon's webhooks on 127.0.0.1:8099/hooks/outreach, checks each signature
(HMAC-SHA256 of "timestamp.body" with the secret in lab/webhook-secret) and its timestamp,
answers 200 and appends the webhook, with its headers, to var/demo-webhooks.jsonl. It exits
when the daemon's /healthz stops answering (the demo ended)."""

import asyncio
import hashlib
import hmac
import json
import sys
import time
import urllib.request
from pathlib import Path

from aiohttp import web

REPO = Path(__file__).resolve().parents[2]
SECRET = (REPO / "lab" / "webhook-secret").read_text().strip().encode()
LOG = REPO / "var" / "demo-webhooks.jsonl"


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    timestamp = request.headers.get("X-Outreach-Timestamp", "")
    expected = (
        "v1=" + hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) < 300
    if (
        not hmac.compare_digest(expected, request.headers.get("X-Outreach-Signature", ""))
        or not fresh
    ):
        return web.Response(status=401, text="bad signature or stale timestamp")
    line = {
        "idempotency_key": request.headers.get("Idempotency-Key"),
        "event": request.headers.get("X-Outreach-Event"),
        "signature_ok": True,
        "body": json.loads(body),
    }
    with LOG.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return web.json_response({"ok": True})


def daemon_alive(api: str) -> bool:
    try:
        with urllib.request.urlopen(api + "/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


async def main(api: str) -> None:
    LOG.parent.mkdir(exist_ok=True)
    app = web.Application()
    app.router.add_post("/hooks/outreach", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 8099).start()
    print("ready", flush=True)
    misses = 0
    while misses < 3:
        await asyncio.sleep(5)
        misses = 0 if await asyncio.to_thread(daemon_alive, api) else misses + 1
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
