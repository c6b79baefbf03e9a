"""Reading the YAML config, and reporting its problems with the line they are on.

How a value in the file becomes a value:

- `read_yaml` loads round-trip nodes, which remember their lines (ruamel's `lc`, 0-based), and
  turns a syntax error or a duplicate key into a `ConfigError`;
- `to_plain` turns those nodes into plain dicts, lists and scalars for pydantic, expanding
  `${VAR}` and `${VAR:-default}` from the environment on the way;
- `issues_from_errors` maps each pydantic error back to the dotted key the user wrote and its
  line, dropping the parts of `loc` that are not keys (union tags);
- `problem` is how a model validator reports one or several problems at keys below it.

The base of every model (`Section`), secrets and paths are `dialer.config.base`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic_core import ErrorDetails, PydanticCustomError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "Expanded",
    "KeyPath",
    "dotted",
    "issues_from_errors",
    "locate",
    "problem",
    "read_yaml",
    "to_plain",
]

KeyPath = tuple[str | int, ...]
"""A path of keys and list indices from the root of the file (or of a model) to a value."""

_PROBLEM_ERROR = "config_problem"
_ENV_REFERENCE = re.compile(
    r"\$\$\{"  # an escaped "${", kept literally as "${"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
    r"|\$\{"  # any other "${" is malformed
)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file, at the line of the key it concerns."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        line = "?" if self.line is None else str(self.line)
        return f"{self.file}:{line}: {self.key}: {self.message}"


class ConfigError(Exception):
    """A config file that cannot be used, with every problem found in it."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


class Expanded(str):
    """A string that took (part of) its value from the environment (`${VAR}`)."""

    __slots__ = ()


def problem(*problems: tuple[KeyPath, str]) -> PydanticCustomError:
    """An error for a model validator to raise: each problem is (path below the model, message).

    Raise it from a validator; `issues_from_errors` reports each problem at its own key and line.
    """
    summary = "; ".join(f"{dotted(path) or '(here)'}: {message}" for path, message in problems)
    return PydanticCustomError(
        _PROBLEM_ERROR, "{summary}", {"summary": summary, "problems": problems}
    )


def read_yaml(text: str, *, source: str) -> Any:
    """The round-trip YAML tree of `text`, or a `ConfigError` naming the line of a syntax error."""
    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except DuplicateKeyError as exc:
        message = str(exc.problem).split(" with value ")[0].replace("found duplicate", "duplicate")
        if exc.context_mark is not None:
            message += f" (in the mapping that starts on line {exc.context_mark.line + 1})"
        raise ConfigError([_yaml_issue(source, exc.problem_mark, message)]) from None
    except MarkedYAMLError as exc:
        message = str(exc.problem or exc.context or "invalid YAML")
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        raise ConfigError([_yaml_issue(source, exc.problem_mark, message)]) from None
    except YAMLError as exc:
        raise ConfigError([ConfigIssue(source, None, "(yaml)", str(exc))]) from None


def _yaml_issue(source: str, mark: Any, message: str) -> ConfigIssue:
    line = None if mark is None else int(mark.line) + 1
    return ConfigIssue(source, line, "(yaml)", message)


def to_plain(
    node: Any, environ: Mapping[str, str], path: KeyPath = ()
) -> tuple[Any, list[tuple[KeyPath, str]]]:
    """Plain Python data from a round-trip tree, with `${VAR}` expanded in every string.

    Returns the data and the problems found while expanding (path, message). An unset variable
    is expanded to "" so that the rest of the file can still be checked.
    """
    problems: list[tuple[KeyPath, str]] = []
    return _plain(node, environ, path, problems), problems


def _plain(node: Any, environ: Mapping[str, str], path: KeyPath, problems: list[Any]) -> Any:
    if isinstance(node, dict):
        return {
            _plain_key(key): _plain(value, environ, (*path, _plain_key(key)), problems)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_plain(item, environ, (*path, index), problems) for index, item in enumerate(node)]
    if isinstance(node, str):
        return _expand(str(node), environ, path, problems)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime):
        return datetime.fromisoformat(node.isoformat())
    if isinstance(node, date):
        return date.fromordinal(node.toordinal())
    return node


def _plain_key(key: Any) -> str:
    return key if isinstance(key, str) else str(key)


def _expand(text: str, environ: Mapping[str, str], path: KeyPath, problems: list[Any]) -> str:
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group("name"), match.group("default")
        if name is None:
            problems.append((path, "malformed ${...}: write ${NAME} or ${NAME:-default}"))
            return ""
        value = environ.get(name)
        if default is not None and not value:  # like the shell: unset or empty takes the default
            return default
        if value is None:
            problems.append((path, f"environment variable {name} is not set"))
            return ""
        return value

    return Expanded(_ENV_REFERENCE.sub(replace, text))


def issues_from_errors(
    errors: Iterable[ErrorDetails], tree: Any, *, source: str
) -> list[ConfigIssue]:
    """One issue per pydantic error (one per problem for `problem` errors), at its YAML line."""
    issues: list[ConfigIssue] = []
    for error in errors:
        for loc, message in _explain(error):
            key, line = locate(tree, loc)
            issues.append(ConfigIssue(source, line, key, message))
    return issues


def _explain(error: ErrorDetails) -> list[tuple[KeyPath, str]]:
    loc: KeyPath = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == _PROBLEM_ERROR:
        return [((*loc, *path), message) for path, message in ctx["problems"]]
    if kind == "extra_forbidden":
        return [(loc, "unknown key")]
    if kind == "missing":
        return [(loc, "required key is missing")]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag_key = str(ctx.get("discriminator", "")).strip("'")
        if kind == "union_tag_not_found":
            return [((*loc, tag_key), "required key is missing")]
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        return [((*loc, tag_key), f"unknown {tag_key} {ctx.get('tag')!r}; one of: {expected}")]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return [(loc, "should be a mapping (key: value)")]
    if kind in ("list_type", "tuple_type"):
        return [(loc, "should be a list")]
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return [(loc, message)]


def locate(tree: Any, loc: KeyPath) -> tuple[str, int | None]:
    """The dotted key the user wrote for a pydantic `loc`, and its 1-based line.

    Parts of `loc` that are not keys in the tree (the tags of discriminated unions) are left
    out. A last part that is not in the tree is a missing key: it is named, and the line is that
    of the mapping lacking it (the line of the key holding that mapping).
    """
    node, line, written = tree, _first_line(tree), []
    for index, part in enumerate(loc):
        is_last = index == len(loc) - 1
        if part == "[key]":  # an invalid mapping key: its line is already the current one
            continue
        if isinstance(node, CommentedMap) and (key := _find_key(node, part)) is not _ABSENT:
            line = _key_line(node, key, line)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = _item_line(node, part, line)
            node = node[part]
        elif isinstance(node, CommentedMap) and not is_last:
            continue  # a union tag, not a key
        else:
            node = None
        written.append(part)
    return dotted(tuple(written)) or "(root)", line


_ABSENT = object()


def _find_key(node: CommentedMap, part: str | int) -> Any:
    for key in node:
        if key == part or _plain_key(key) == str(part):
            return key
    return _ABSENT


def _first_line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return None if lc is None or lc.line is None else int(lc.line) + 1


def _key_line(node: CommentedMap, key: Any, fallback: int | None) -> int | None:
    for mapping in (node, *getattr(node, "merge", ())):
        try:
            return int(mapping.lc.key(key)[0]) + 1
        except (AttributeError, KeyError, TypeError):
            continue
    return fallback


def _item_line(node: CommentedSeq, index: int, fallback: int | None) -> int | None:
    try:
        return int(node.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return fallback


def dotted(path: KeyPath) -> str:
    """`campaigns.refusal.holidays[2]` for ("campaigns", "refusal", "holidays", 2)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
