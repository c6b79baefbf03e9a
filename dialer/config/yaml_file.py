"""Reading the YAML config, and reporting its problems with the line they are on.

How a value in the file becomes a value:

- `read_yaml` loads round-trip nodes, which remember their lines (ruamel's `lc`, 0-based), and
  turns a syntax error, a duplicate key, a control character, nesting deeper than `MAX_DEPTH`
  or a value its tag cannot make (`!!int abc`) into a `ConfigError` at its line; a date that
  does not exist (`2025-02-30`) stays text, for its field to report;
- `to_plain` turns those nodes into plain dicts, lists and scalars for pydantic, expanding
  `${VAR}` and `${VAR:-default}` from the environment on the way. An alias is expanded where it
  is used, so a small file of nested aliases can stand for billions of values: past
  `MAX_VALUES` values (or `MAX_DEPTH` levels) it stops with an error at the alias's line;
- `issues_from_errors` maps each pydantic error back to the dotted key the user wrote and its
  line (`dialer.config.locator`), dropping the parts of `loc` that are not keys (union tags);
- `problem` is how a model validator reports one or several problems at keys below it.

Every issue prints on one line: control characters in a key or a message are escaped.

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
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import ConstructorError, DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from dialer.config.locator import KeyPath, Locator, dotted, locate, plain_key

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "Expanded",
    "KeyPath",
    "Locator",
    "dotted",
    "issues_from_errors",
    "locate",
    "problem",
    "read_yaml",
    "to_plain",
]

MAX_DEPTH = 50
"""Mappings and lists nested deeper than this are refused (the file's own need is about 6)."""
MAX_VALUES = 100_000
"""A file standing for more values than this, aliases expanded, is refused (an alias bomb)."""

_PROBLEM_ERROR = "config_problem"
# What `str.splitlines` breaks a line at, and the other control characters: escaped in issues.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
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
        return f"{self.file}:{line}: {one_line(self.key)}: {one_line(self.message)}"


def one_line(text: str) -> str:
    """`text` with its control characters (line breaks among them) written as escapes."""
    return _CONTROL.sub(lambda match: repr(match.group(0))[1:-1], text)


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


class _Constructor(RoundTripConstructor):
    """ruamel's round-trip constructor, reporting at its line what a node's tag cannot make."""

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except YAMLError:
            raise
        except Exception as exc:  # ValueError for `!!int abc`, KeyError for `!!bool maybe`...
            what = str(node.tag).rpartition(":")[2] or "value"
            value = node.value if isinstance(node.value, str) else "this"
            message = f"cannot read {value!r} as {what}: {exc}"
            raise ConstructorError(None, None, message, node.start_mark) from None

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        try:
            return super().construct_yaml_timestamp(node, values)
        except ValueError:  # 2025-02-30: kept as text, so that its field says what is wrong
            return str(node.value)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)


class _Composer(Composer):
    """ruamel's composer, quiet about an anchor defined again: YAML allows it (an alias takes
    the latest), and its warning would print lines that name no place in the file."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader=loader)
        self.warn_double_anchors = False


def read_yaml(text: str, *, source: str) -> Any:
    """The round-trip YAML tree of `text`, or a `ConfigError` naming the line of a syntax error."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.Composer = _Composer
    yaml.max_depth = MAX_DEPTH
    try:
        return yaml.load(text)
    except DuplicateKeyError as exc:
        message = str(exc.problem).split(" with value ")[0].replace("found duplicate", "duplicate")
        if exc.context_mark is not None:
            message += f" (in the mapping that starts on line {exc.context_mark.line + 1})"
        raise ConfigError([_yaml_issue(source, exc.problem_mark, message)]) from None
    except MaxDepthExceededError as exc:
        message = f"nested deeper than {MAX_DEPTH} levels"
        raise ConfigError([_yaml_issue(source, exc.problem_mark, message)]) from None
    except MarkedYAMLError as exc:
        message = str(exc.problem or exc.context or "invalid YAML")
        if exc.context and exc.problem:
            message = f"{exc.problem} ({exc.context})"
        raise ConfigError([_yaml_issue(source, exc.problem_mark, message)]) from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else 1
        character = f"#x{exc.character:04x}" if isinstance(exc.character, int) else "?"
        message = f"unacceptable character {character}: {exc.reason}"
        raise ConfigError([ConfigIssue(source, line, "(yaml)", message)]) from None
    except YAMLError as exc:
        raise ConfigError([ConfigIssue(source, 1, "(yaml)", str(exc))]) from None
    except RecursionError:  # a ruamel without `max_depth`
        message = f"nested deeper than {MAX_DEPTH} levels"
        raise ConfigError([ConfigIssue(source, 1, "(yaml)", message)]) from None


def _yaml_issue(source: str, mark: Any, message: str) -> ConfigIssue:
    line = 1 if mark is None else int(mark.line) + 1
    return ConfigIssue(source, line, "(yaml)", message)


def to_plain(
    node: Any, environ: Mapping[str, str], path: KeyPath = (), *, source: str = "(config)"
) -> tuple[Any, list[tuple[KeyPath, str]]]:
    """Plain Python data from a round-trip tree, with `${VAR}` expanded in every string.

    Returns the data and the problems found while expanding (path, message). An unset variable
    is expanded to "" so that the rest of the file can still be checked. A tree that stands for
    more than `MAX_VALUES` values or `MAX_DEPTH` levels raises `ConfigError` at the line of the
    alias whose expansion went past it (`source` names the file).
    """
    flattener = _Flattener(environ)
    try:
        return flattener.plain(node, path, None), flattener.problems
    except _TooLarge as exc:
        # At the key holding the alias: a list item made by an alias has its anchor's line.
        where = exc.path
        while where and isinstance(where[-1], int):
            where = where[:-1]
        key, line = locate(node, where)
        raise ConfigError([ConfigIssue(source, line, key, exc.message)]) from None


class _TooLarge(Exception):
    def __init__(self, path: KeyPath, message: str) -> None:
        self.path, self.message = path, message


class _Flattener:
    """Counts the values it makes: an alias makes its whole node again, each time it is used."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[tuple[KeyPath, str]] = []
        self.values = 0
        self.seen: set[int] = set()  # the containers made once: meeting one again is an alias

    def plain(self, node: Any, path: KeyPath, alias: KeyPath | None) -> Any:
        self.values += 1
        if isinstance(node, dict | list):
            if alias is None and id(node) in self.seen:
                alias = path  # the outermost alias being expanded: where a problem is reported
            self.seen.add(id(node))
            if self.values > MAX_VALUES:
                message = f"expands to more than {MAX_VALUES} values (aliases used too often)"
                raise _TooLarge(path if alias is None else alias, message)
            if len(path) >= MAX_DEPTH:
                raise _TooLarge(path, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            return {
                plain_key(key): self.plain(value, (*path, plain_key(key)), alias)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [self.plain(item, (*path, index), alias) for index, item in enumerate(node)]
        if isinstance(node, str):
            return _expand(str(node), self.environ, path, self.problems)
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
    locator = Locator(tree)
    issues: list[ConfigIssue] = []
    for error in errors:
        for loc, message in _explain(error):
            key, line = locator.locate(loc)
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
