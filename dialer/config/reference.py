"""The config reference, generated from the pydantic models so the docs and the code cannot drift.

`python -m dialer.config.reference > docs/config-reference.md` (`make docs`) writes it; a test
fails when the committed file differs from what the models say.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from datetime import date, time
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from dialer.config import Settings, TimeRange

HEADER = """\
# Configuration reference

Generated from the models in `dialer/config/` by `make docs`; do not edit by hand.
`config/example.yaml` is a commented, working example. Conventions:

- Unknown keys are errors. `dialer check-config PATH` lists every problem with its line.
- A secret field `X` takes `${ENV_VAR}` or `X_file: path`; never a value written in the file.
  Any string may use `${VAR}` or `${VAR:-default}`.
- Relative paths are relative to the config file's directory. Durations (`*_s`) are seconds.
"""


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def describe_type(tp: Any) -> str:
    """A short, reader-friendly name of a field's type."""
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in get_args(tp))
    if origin in (Union, types.UnionType):
        parts = list(dict.fromkeys(describe_type(a) for a in get_args(tp) if a is not type(None)))
        suffix = " or null" if type(None) in get_args(tp) else ""
        return " \\| ".join(parts) + suffix
    if origin in (tuple, list):
        return f"list of {describe_type(get_args(tp)[0])}"
    if origin is dict:
        key, value = get_args(tp)
        return f"map of {describe_type(key)} to {describe_type(value)}"
    if _is_model(tp):
        return "section"
    if tp is SecretStr:
        return "secret"
    if isinstance(tp, type) and issubclass(tp, Enum):
        return " \\| ".join(f"`{member.value}`" for member in tp)
    names = {str: "string", int: "integer", float: "number", bool: "boolean", date: "date"}
    names |= {time: "time (HH:MM)", Path: "path", TimeRange: "window (HH:MM-HH:MM)"}
    if tp in names:
        return names[tp]
    return getattr(tp, "__name__", str(tp))


def describe_default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if _models_in(field.annotation) and field.default_factory is not None:
        return "see below"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None or value is PydanticUndefined:
        return "none"
    if value == () or value == []:
        return "empty"
    if isinstance(value, BaseModel):
        return "`" + ", ".join(f"{k}: {v}" for k, v in value.model_dump().items()) + "`"
    if isinstance(value, dict):
        if not value:
            return "empty"
        return "`" + "; ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "`"
    return f"`{_plain(value)}`"


def _plain(value: Any) -> str:
    if isinstance(value, BaseModel):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.model_dump().items()) + "}"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_plain(item) for item in value) + "]"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _models_in(tp: Any) -> list[tuple[str, type[BaseModel]]]:
    """Models a field holds, with the key path suffix to reach them (`.<name>` for maps)."""
    tp = _unwrap(tp)
    origin = get_origin(tp)
    if _is_model(tp):
        return [("", tp)]
    if origin is dict:
        return [(".<name>" + suffix, model) for suffix, model in _models_in(get_args(tp)[1])]
    if origin in (Union, types.UnionType, tuple, list):
        return [pair for arg in get_args(tp) for pair in _models_in(arg)]
    return []


def _variant_label(model: type[BaseModel], variants: int) -> str:
    for tag_field in ("kind", "type"):
        field = model.model_fields.get(tag_field)
        if field is not None and get_origin(_unwrap(field.annotation)) is Literal:
            return f" ({tag_field}: {get_args(_unwrap(field.annotation))[0]})"
    if variants > 1:
        return " (the form with " + ", ".join(model.model_fields) + ")"
    return ""


def _sections(
    model: type[BaseModel], path: str, seen: set[tuple[str, str]], variants: int = 1
) -> Iterator[str]:
    if (path, model.__name__) in seen:
        return  # the same section reached through another variant (e.g. both campaign kinds)
    seen.add((path, model.__name__))
    title = f"`{path}`" if path else "Top level"
    lines = [f"## {title}{_variant_label(model, variants)}", ""]
    if model.__doc__ and path:
        lines += [" ".join(model.__doc__.split()), ""]
    lines += ["| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[str, type[BaseModel], int]] = []
    for name, field in model.model_fields.items():
        description = " ".join((field.description or "").split()).replace("|", "\\|")
        lines.append(
            f"| `{name}` | {describe_type(field.annotation)} | {describe_default(field)} "
            f"| {description} |"
        )
        held = _models_in(field.annotation)
        for suffix, inner in held:
            key = f"{path}.{name}{suffix}" if path else f"{name}{suffix}"
            nested.append((key, inner, len(held)))
    yield "\n".join(lines)
    for inner_path, inner, count in nested:
        yield from _sections(inner, inner_path, seen, count)


def render_reference() -> str:
    return HEADER + "\n" + "\n\n".join(_sections(Settings, "", set())) + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
