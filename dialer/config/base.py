"""The base of every config model, secrets and paths.

- `Section`: unknown keys are errors, values are frozen, and a secret `X` is taken from
  `${VAR}` or read from `X_file` (never written in the file itself);
- `ConfigPath`: a path relative to the config file's directory;
- `Invalid` / `report_invalid`: how a `before` validator marks a value so that its own field
  reports the problem (at its own line).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    ValidationInfo,
    model_validator,
)

from dialer.config.yaml_file import Expanded

__all__ = [
    "ConfigPath",
    "Invalid",
    "OptionalSecret",
    "Secret",
    "SecretFile",
    "Section",
    "context_of",
    "report_invalid",
    "resolve_path",
]


def context_of(info: ValidationInfo) -> dict[str, Any]:
    """The validation context `parse_settings` passes (base_dir, secrets_from_env_only)."""
    return info.context if isinstance(info.context, dict) else {}


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """`value` made absolute against the config file's directory (else the working directory)."""
    base_dir = Path(context_of(info).get("base_dir") or Path.cwd())
    return (base_dir / value.expanduser()).resolve()


@dataclass(frozen=True)
class Invalid:
    """Put in place of a value by a `before` validator, so that the field reports `message`."""

    message: str


class Section(BaseModel):
    """A section of the file: unknown keys are errors, and values are frozen.

    A secret field `X` (a `Secret`) named in `secret_fields` may be given as `X_file` instead,
    a `SecretFile`; both report what `_take_secret` found wrong with them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    secret_fields: ClassVar[dict[str, bool]] = {}  # field name -> required

    @model_validator(mode="before")
    @classmethod
    def _before_validation(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        data = cls._prepare(dict(data), info)
        for name, required in cls.secret_fields.items():
            _take_secret(data, name, required, info)
        return data

    @classmethod
    def _prepare(cls, data: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Rewrite the raw mapping before validation (for defaults that depend on other keys)."""
        return data


def report_invalid(value: Any) -> Any:
    """Raise what an `Invalid` stand-in says; every other value passes."""
    if isinstance(value, Invalid):
        raise ValueError(value.message)
    return value


Secret = Annotated[SecretStr, BeforeValidator(report_invalid)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(report_invalid)]
SecretFile = Annotated[Path | None, BeforeValidator(report_invalid)]


def _take_secret(data: dict[str, Any], name: str, required: bool, info: ValidationInfo) -> None:
    """Check secret `name`, reading it from `<name>_file` if given so; mark what is wrong."""
    file_key = f"{name}_file"
    value, file = data.get(name), data.get(file_key)
    if value is not None and file is not None:
        data[file_key] = Invalid(f"give either {name} or {file_key}, not both")
        return
    if value is None and file is None:
        if required:
            data[name] = Invalid(f"required: give {name} (as ${{VAR}}) or {file_key}")
        return
    where = name
    if isinstance(file, (str, Path)):
        where, path = file_key, resolve_path(Path(file), info)
        data[file_key] = path
        try:
            value = path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            data[file_key] = Invalid(f"cannot read secret file {path}: {reason}")
            data[name] = ""  # a stand-in, so that only the file is reported
            return
    elif not isinstance(value, Expanded) and context_of(info).get("secrets_from_env_only"):
        data[name] = Invalid(f"secrets must not be written in the file: use ${{VAR}} or {file_key}")
        return
    if not isinstance(value, str):
        return  # a wrong type: the field reports it
    if not value and not required:
        data[name] = None  # ${VAR:-} or an empty file: no secret
    elif not value or "\r" in value or "\n" in value:
        data[where] = Invalid(f"the secret in {where} must be one non-empty line")
    else:
        data[name] = value


ConfigPath = Annotated[Path, AfterValidator(resolve_path)]
