"""Random requests to every public route of the daemon's API (built as `Daemon.run` builds it,
on SQLite, the outbox provider, no PBX): random methods, paths, query strings, headers,
content types and bodies (JSON shaped like an order event or a contact list and mutated,
arbitrary JSON, deep nesting, huge numbers, forms, raw bytes), some Twilio callbacks validly
signed so that their handlers run. Whatever comes, the answer is never a 5xx (but `/readyz`'s
503: no PBX here), an error on /v1 is a JSON body (but aiohttp's plain 400 for what HTTP
cannot parse), nothing is logged as an ERROR or with a traceback, and `/healthz` still answers
after each request.

The normal run tries the current Hypothesis profile's number of examples (100, a few seconds);
`make fuzz` runs the `fuzz` profile (`HYPOTHESIS_PROFILE=fuzz`: many more)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from tests.fakes.twilio_server import DEFAULT_AUTH_TOKEN
from tests.integration.daemon_app import PUBLIC_URL, DaemonApp, daemon_app
from tests.integration.sms_support import MOBILE, TOKEN, event

ROUTES = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/static/status.css"),
    ("GET", "/static/status.js"),
    ("POST", "/v1/events"),
    ("POST", "/v1/reload"),
    ("GET", "/v1/campaigns"),
    ("GET", "/v1/campaigns/{name}"),
    ("POST", "/v1/campaigns/{name}/contacts"),
    ("POST", "/v1/campaigns/{name}/pause"),
    ("POST", "/v1/campaigns/{name}/resume"),
    ("GET", "/v1/sms/funnel"),
    ("GET", "/v1/sms/dead"),
    ("POST", "/v1/sms/dead/{id}/replay"),
    ("POST", "/v1/sms/twilio/status"),
    ("POST", "/v1/sms/twilio/inbound"),
]
TWILIO_ROUTES = {"/v1/sms/twilio/status", "/v1/sms/twilio/inbound"}

# Text an HTTP client can put in a header (no control character but tab), from all of Unicode.
header_text = st.text(st.characters(exclude_categories=("Cs", "Cc")) | st.just("\t"), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def event_bodies(draw: st.DrawFn) -> Any:
    """An order event with some fields replaced by anything, or removed."""
    body: dict[str, Any] = event(draw(st.text(min_size=1, max_size=8)), phone=MOBILE)
    for key in draw(st.lists(st.sampled_from([*body, "data", "extra"]), max_size=3)):
        if draw(st.booleans()):
            body[key] = draw(json_values)
        else:
            body.pop(key, None)
    return body


@st.composite
def contact_bodies(draw: st.DrawFn) -> Any:
    rows = draw(
        st.lists(
            st.fixed_dictionaries(
                {"phone": st.sampled_from([MOBILE, "13800001001", "+12025550123"]) | json_values},
                optional={
                    "name": json_values,
                    "priority": json_values,
                    "timezone": json_values,
                    "context": json_values,
                },
            ),
            max_size=4,
        )
    )
    return {"contacts": rows} if draw(st.booleans()) else rows


raw_json_texts = st.sampled_from(
    [
        "[" * 3000 + "]" * 3000,
        '{"a": ' * 40 + "1" + "}" * 40,
        "9" * 5000,
        "NaN",
        "[Infinity, -Infinity, 1e999]",
        '{"event_id": "a", "event_id": "b"}',
        '"\\ud800"',
        '{"\\u0000": "\\udfff"}',
        "",
        "{",
    ]
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["event", "contacts", "json", "raw_json", "form", "bytes"]))
    if kind == "event":
        return json.dumps(draw(event_bodies())).encode()
    if kind == "contacts":
        return json.dumps(draw(contact_bodies())).encode()
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "raw_json":
        return draw(raw_json_texts).encode()
    if kind == "form":
        return urlencode(draw(st.dictionaries(st.text(max_size=10), st.text(max_size=20)))).encode()
    return draw(st.binary(max_size=200))


content_types = (
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "application/json; charset=foo",
            "application/json; charset=utf-16",
            "application/json; charset=rot13",
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=latin-1",
            "multipart/form-data; boundary=xyz",
            "multipart/form-data",
            "text/plain",
            "application/octet-stream",
        ]
    )
    | header_text
)

extra_headers = st.dictionaries(
    st.sampled_from(
        [
            "Cookie",
            "X-Twilio-Signature",
            "X-Outreach-Page",
            "X-Forwarded-Proto",
            "Accept",
            "Content-Encoding",
            "If-None-Match",
            "Range",
            "Origin",
        ]
    ),
    header_text | st.sampled_from(["gzip", "deflate", "br", "1", "https", "outreach_session=x"]),
    max_size=3,
)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    method, template = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 9)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
    name = draw(st.sampled_from(["refusal-callback", "vip-care"]) | st.text(max_size=12))
    message_id = draw(st.sampled_from(["1", "99", "١٢", "9" * 25, "-3"]) | st.text(max_size=8))
    path = template.format(name=quote(name, safe=""), id=quote(message_id, safe=""))
    query = draw(
        st.dictionaries(
            st.sampled_from(["limit", "message_id", "x"]),
            st.sampled_from(["5", "0", "²", "9" * 25, ""]) | st.text(max_size=8),
            max_size=2,
        )
    )
    headers: dict[str, str] = draw(extra_headers)
    headers["Content-Type"] = draw(content_types)
    auth = draw(st.sampled_from(["right", "right", "right", "wrong", "none"]))
    if auth == "right":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif auth == "wrong":
        headers["Authorization"] = draw(header_text)
    body = draw(bodies())
    if template in TWILIO_ROUTES and draw(st.booleans()):  # signed: its handler runs
        form = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "MessageSid": st.text(max_size=10),
                    "MessageStatus": st.sampled_from(["sent", "delivered", "x"]),
                    "From": st.sampled_from([MOBILE, "nope"]) | st.text(max_size=15),
                    "Body": st.sampled_from(["STOP", "START", "退订"]) | st.text(max_size=15),
                    "ErrorCode": st.text(max_size=6),
                },
            )
        )
        body = urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        url = PUBLIC_URL + path + ("?" + urlencode(query) if query else "")
        validator = RequestValidator(DEFAULT_AUTH_TOKEN)
        headers["X-Twilio-Signature"] = validator.compute_signature(url, form)
        headers.pop("Content-Encoding", None)
    return {"method": method, "path": path, "query": query, "headers": headers, "body": body}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[DaemonApp]:
    async with daemon_app(tmp_path) as app:
        yield app


def log_problems(log_output: io.StringIO) -> list[str]:
    """Log lines that are errors or carry a traceback."""
    found = []
    for raw in log_output.getvalue().split("\n")[:-1]:  # JSON may hold a raw U+2028
        line = json.loads(raw)
        if line["level"] in ("error", "critical") or "exception" in line or "Traceback" in raw:
            found.append(raw)
    return found


@settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(request=requests())
async def test_no_request_gets_a_5xx_or_logs_an_error(
    api: DaemonApp, log_output: io.StringIO, request: dict[str, Any]
) -> None:
    response = await api.client.request(
        request["method"],
        request["path"],
        params=request["query"],
        headers=request["headers"],
        data=request["body"],
        allow_redirects=False,
    )
    text = await response.read()
    is_readiness = request["path"] == "/readyz" and response.status == 503
    assert response.status < 500 or is_readiness, (response.status, text[:300])
    # A request HTTP itself cannot parse (a body its Content-Encoding does not decode) is
    # answered by aiohttp's protocol before any route, as plain text; every other error is JSON.
    unparsed = response.status == 400 and response.content_type == "text/plain"
    if request["path"].startswith("/v1/") and response.status >= 400 and not unparsed:
        assert {"error", "errors"} & set(json.loads(text)), text[:300]  # reload: errors
    assert log_problems(log_output) == []
    health = await api.client.get("/healthz")
    assert health.status == 200
