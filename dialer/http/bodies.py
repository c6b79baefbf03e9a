"""What a request carries, read defensively: its body (JSON or a form) and the ids in its path.

A bad request is answered 4xx with a JSON body naming what is wrong, never 500:

- `read_body`: the raw body, within `api.body_timeout_s` (else 408); 400 for a body that
  cannot be decoded (a bad `Content-Encoding`, broken chunks); a client that goes away
  mid-body is logged as one warning line (`http.client_disconnected`);
- `read_json`: 415 for a charset Python does not know; 400 for bytes that are not text in
  it, for what is not JSON, NaN or Infinity, a number of more than `MAX_NUMBER_DIGITS` digits
  or out of a float's range, and nesting too deep to parse; 422 (`fields`, like a validation
  error) for a key given twice, nesting deeper than `MAX_JSON_DEPTH`, and text that cannot be
  stored (a lone surrogate such as `\\ud800`, or NUL, which PostgreSQL refuses);
- `read_form`: an `application/x-www-form-urlencoded` body (what browsers and Twilio send)
  as a dict (the last of a repeated key); 415 for multipart, 400 for bytes that are not
  UTF-8 (or its charset); any other content type reads as an empty form;
- `parse_id`: a row id from a path or query string: ASCII digits that fit a BIGINT, else None.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from dialer.logs import get_logger

__all__ = [
    "BODY_TIMEOUT_KEY",
    "MAX_JSON_DEPTH",
    "MAX_NUMBER_DIGITS",
    "parse_id",
    "read_body",
    "read_form",
    "read_json",
]

log = get_logger(__name__)

MAX_JSON_DEPTH = 32
"""Objects and arrays nested deeper than this are refused (a contact's context, say)."""
MAX_NUMBER_DIGITS = 100
"""A JSON integer longer than this is refused before Python converts it."""
MAX_FORM_FIELDS = 1000
DEFAULT_BODY_TIMEOUT_S = 30.0
BODY_TIMEOUT_KEY = web.AppKey("body_timeout_s", float)
"""The app's `api.body_timeout_s` (`dialer.http.server.make_web_app` sets it)."""

_ID = re.compile(r"[0-9]{1,18}")  # ASCII only: str.isdigit() also takes "²" and "١"
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def parse_id(raw: str) -> int | None:
    """`raw` as a row id (ASCII digits, at most 18 of them), else None."""
    return int(raw) if _ID.fullmatch(raw) else None


def _refuse(status: type[web.HTTPException], error: str, **details: Any) -> NoReturn:
    raise status(
        text=json.dumps({"error": error, **details}),
        content_type="application/json",
    )


def _refuse_fields(field: str, message: str) -> NoReturn:
    _refuse(
        web.HTTPUnprocessableEntity,
        "invalid request body",
        fields=[{"field": field, "message": message}],
    )


async def read_body(request: web.Request) -> bytes:
    """The whole body, read within the app's body time-out."""
    timeout_s = request.app.get(BODY_TIMEOUT_KEY, DEFAULT_BODY_TIMEOUT_S)
    try:
        async with asyncio.timeout(timeout_s):
            return await request.read()
    except TimeoutError:
        log.warning("http.body_timed_out", path=request.path, remote=request.remote)
        timed_out = web.HTTPRequestTimeout(
            text=json.dumps({"error": f"the body did not arrive within {timeout_s:g} s"}),
            content_type="application/json",
        )
        timed_out.force_close()  # what is left of the body would be read as the next request
        raise timed_out from None
    except ConnectionError:
        log.warning("http.client_disconnected", path=request.path, remote=request.remote)
        _refuse(web.HTTPBadRequest, "the client went away before the body ended")
    except (web.RequestPayloadError, HttpProcessingError) as exc:  # Content-Encoding, chunks
        cause = exc.__cause__ or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        _refuse(web.HTTPBadRequest, f"the body cannot be read: {reason}", field="(body)")


def _text(request: web.Request, raw: bytes, what: str) -> str:
    charset = request.charset or "utf-8"
    try:
        return raw.decode(charset)
    except LookupError:
        _refuse(
            web.HTTPUnsupportedMediaType,
            f"unsupported charset {charset!r} in Content-Type",
            field="Content-Type",
        )
    except UnicodeDecodeError as exc:
        _refuse(web.HTTPBadRequest, f"body is not valid {what}: {exc}", field="(body)")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key)
        found[key] = value
    return found


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number of more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or a 4xx (see the module's docstring)."""
    text = _text(request, await read_body(request), "JSON")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
        )
    except _DuplicateKey as exc:
        _refuse_fields(exc.key, "this key is given more than once")
    except RecursionError:
        _refuse(web.HTTPBadRequest, "body is not usable JSON: nested too deeply", field="(body)")
    except ValueError as exc:  # json.JSONDecodeError, or one of the hooks
        _refuse(web.HTTPBadRequest, f"body is not valid JSON: {exc}", field="(body)")
    problem = _unusable(value)
    if problem is not None:
        path, message = problem
        _refuse_fields(".".join(str(part) for part in path) or "(body)", message)
    return value


JsonPath = tuple[str | int, ...]


def _unusable(value: Any) -> tuple[JsonPath, str] | None:
    """The first place in a parsed body nested too deep or holding text that cannot be stored."""
    todo: list[tuple[Any, JsonPath]] = [(value, ())]
    while todo:
        item, path = todo.pop()
        if len(path) > MAX_JSON_DEPTH:
            return path, f"nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(item, str) and (found := _UNSTORABLE.search(item)):
            return path, _unstorable(found.group(0))
        if isinstance(item, dict):
            for key, inner in item.items():
                if found := _UNSTORABLE.search(key):
                    shown = key.encode("utf-8", "backslashreplace").decode("utf-8")
                    return (*path, shown), _unstorable(found.group(0))
                todo.append((inner, (*path, key)))
        elif isinstance(item, list):
            todo.extend((inner, (*path, index)) for index, inner in enumerate(item))
    return None


def _unstorable(character: str) -> str:
    escaped = f"\\u{ord(character):04x}"
    if character == "\x00":
        return f"holds NUL ({escaped}), which cannot be stored"
    return f"holds a lone surrogate ({escaped}): not valid Unicode"


async def read_form(request: web.Request) -> dict[str, str]:
    """An urlencoded form (see the module's docstring); the last value of a repeated key."""
    content_type = request.content_type
    if content_type == "multipart/form-data":
        _refuse(
            web.HTTPUnsupportedMediaType,
            "send the form as application/x-www-form-urlencoded",
            field="Content-Type",
        )
    if content_type not in ("", "application/x-www-form-urlencoded"):
        return {}
    raw = await read_body(request)
    if not raw:
        return {}
    text = _text(request, raw.rstrip(), "form data")
    try:
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding=request.charset or "utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError as exc:
        _refuse(web.HTTPBadRequest, f"form data is not valid text: {exc}", field="(body)")
    except ValueError as exc:  # more than MAX_FORM_FIELDS fields
        _refuse(web.HTTPBadRequest, f"form data is not usable: {exc}", field="(body)")
    return dict(pairs)
