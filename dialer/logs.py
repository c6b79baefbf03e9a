"""Logging: structlog JSON lines (or a readable console on a terminal), phone numbers masked.

One processor chain serves both our own `structlog` loggers and the standard-library loggers of
panoramisk, aiohttp and twilio, so monitoring reads one format. Our events are dotted
`component.noun_verb` names (`ami.logged_in`, `call.originate_sent`); a standard-library record
becomes `<logger>.log` with its text under `message`.

Phone numbers never reach the output whole: every string value (and a foreign record's text) goes
through `mask_phone_numbers`, which turns `+8613812345678` into `+86138****5678`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["auto", "json", "console"]

# A number with a leading plus (E.164), or a bare run of 11-15 digits (a Chinese mobile is 11),
# not part of a longer run of digits or of a word. Shorter bare runs (ids, ports, causes) are left.
_PHONE_IN_TEXT = re.compile(r"(?<![\w+])(\+\d{7,15}|\d{11,15})(?![\w])")
# Keys whose values are numbers by meaning: any run of 5+ digits in them is masked.
_PHONE_KEYS = frozenset({"phone", "number", "to", "from", "from_number", "callerid", "exten"})
_DIGITS_IN_PHONE_VALUE = re.compile(r"\+?\d{5,}")

# Third-party loggers and the level they are kept at: panoramisk logs whole actions (numbers
# included) at INFO and every message at DEBUG, which also costs 2-3x in parsing speed.
_QUIET_LOGGERS = {
    "panoramisk": logging.WARNING,
    "twilio": logging.WARNING,
    "aiohttp.access": logging.WARNING,
    "asyncio": logging.WARNING,
    "alembic": logging.WARNING,
}


def mask_phone(number: str) -> str:
    """`+8613812345678` -> `+86138****5678`: the prefix and the last four digits."""
    if len(number) <= 6:
        return "****"
    keep_head = max(0, min(6, len(number) - 8))
    return f"{number[:keep_head]}****{number[-4:]}"


def shown_safely(text: str) -> str:
    """`text` fit to echo on one line: control characters escaped (`\\r`, `\\x1b`...)."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def mask_phone_numbers(text: str) -> str:
    """Mask every phone number found in free text (log messages, channel names)."""
    return _PHONE_IN_TEXT.sub(lambda match: mask_phone(match.group(0)), text)


def _mask_value(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key.lower() in _PHONE_KEYS:
            return _DIGITS_IN_PHONE_VALUE.sub(lambda match: mask_phone(match.group(0)), value)
        return mask_phone_numbers(value)
    if isinstance(value, Mapping):
        return {k: _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_value(key, item) for item in value]
    return value


def mask_phone_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask phone numbers in every value of the event."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _mask_value(key, value)
    return event_dict


def _foreign_record_as_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A standard-library record: `event` becomes `<logger>.log`, its text goes to `message`."""
    record = event_dict.get("_record")
    if record is not None:
        event_dict["message"] = event_dict.pop("event", "")
        event_dict["event"] = f"{record.name}.log"
        event_dict["logger"] = record.name
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderer(fmt: LogFormat, stream: TextIO) -> Processor:
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    if use_console:
        return structlog.dev.ConsoleRenderer(colors=stream.isatty())
    return structlog.processors.JSONRenderer(ensure_ascii=False)


def configure_logging(
    level: str = "INFO", fmt: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Route structlog and the standard library through one chain, writing to `stream`.

    Call once at process start (the CLI does). Logging is process-wide by nature; this is the
    one place that configures it.
    """
    out = stream if stream is not None else sys.stdout
    numeric_level = logging.getLevelName(level.upper())
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), _foreign_record_as_event],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_phone_processor,
            _renderer(fmt, out),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    for name, quiet_level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet_level, numeric_level))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # drop a filtered line before any other work
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for one of our modules; pass `__name__`."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def bind_context(**values: Any) -> None:
    """Bind keys (campaign, contact_id, order_id...) to every log line of the current task."""
    structlog.contextvars.bind_contextvars(**values)


def unbind_context(*keys: str) -> None:
    structlog.contextvars.unbind_contextvars(*keys)
