"""Where a key is in the YAML file: the dotted key the user wrote for a path, and its line.

`Locator` walks a round-trip tree (ruamel's `CommentedMap`/`CommentedSeq`, whose `lc` holds
0-based lines) along a pydantic `loc`. Each mapping's keys are indexed once, the first time a
path goes through it, so locating 40,000 errors in one file takes linear time (it was
quadratic: a scan of the mapping per error).
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

__all__ = ["KeyPath", "Locator", "dotted", "locate", "plain_key"]

KeyPath = tuple[str | int, ...]
"""A path of keys and list indices from the root of the file (or of a model) to a value."""


def plain_key(key: Any) -> str:
    return key if isinstance(key, str) else str(key)


def locate(tree: Any, loc: KeyPath) -> tuple[str, int | None]:
    """The dotted key the user wrote for a pydantic `loc`, and its 1-based line (see `Locator`)."""
    return Locator(tree).locate(loc)


class Locator:
    """Finds the keys of pydantic `loc`s in one tree; each mapping's keys are indexed once."""

    def __init__(self, tree: Any) -> None:
        self.tree = tree
        self.indexed = 0  # how many mappings were indexed (each at most once)
        self._keys: dict[int, dict[str, Any]] = {}

    def locate(self, loc: KeyPath) -> tuple[str, int | None]:
        """The dotted key the user wrote for `loc`, and its 1-based line.

        Parts of `loc` that are not keys in the tree (the tags of discriminated unions) are left
        out. A last part that is not in the tree is a missing key: it is named, and the line is
        that of the mapping lacking it (the line of the key holding that mapping).
        """
        node, line, written = self.tree, _first_line(self.tree), []
        for index, part in enumerate(loc):
            is_last = index == len(loc) - 1
            if part == "[key]":  # an invalid mapping key: its line is already the current one
                continue
            if (
                isinstance(node, CommentedMap)
                and (key := self._find_key(node, part)) is not _ABSENT
            ):
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

    def _find_key(self, node: CommentedMap, part: str | int) -> Any:
        keys = self._keys.get(id(node))
        if keys is None:
            self.indexed += 1
            keys = {}
            for key in node:
                keys.setdefault(plain_key(key), key)
            self._keys[id(node)] = keys
        return keys.get(str(part), _ABSENT)


_ABSENT = object()


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
