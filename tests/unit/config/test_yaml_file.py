"""Hostile YAML: alias bombs, deep nesting, control characters, impossible dates, tags that
cannot make their value, and many errors at once. Each is refused as `PATH:LINE: key: message`
(one line each), in bounded time and memory, never with a traceback."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from pydantic import ValidationError

from dialer.config import ConfigError, ConfigIssue, Settings, parse_settings
from dialer.config.yaml_file import MAX_DEPTH, MAX_VALUES, Locator, read_yaml, to_plain

ENV = {"AMI_SECRET": "ami-s3cret", "API_TOKEN": "api-t0ken"}
REQUIRED = """\
ami:
  username: outreach
  secret: ${AMI_SECRET}
api:
  token: ${API_TOKEN}
"""  # the snippets below start at line 6


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, source="c.yaml", base_dir=Path("/srv/outreach"), environ=ENV)
    return [str(issue) for issue in caught.value.issues]


def alias_bomb(levels: int = 9) -> str:
    """About 500 bytes that stand for 9**levels values once the aliases are expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\ncampaigns: *a{levels - 1}\n"


# -- aliases ------------------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_at_the_line_of_the_alias_within_bounded_memory() -> None:
    text = REQUIRED + alias_bomb()
    assert len(text.encode()) < 1024

    tracemalloc.start()
    try:
        found = problems(text)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # a0..a4 expand to 67,000 values; a5 (line 11) is where the budget runs out
    assert found == [
        f"c.yaml:11: a5: expands to more than {MAX_VALUES} values (aliases used too often)"
    ]
    assert peak_bytes < 200 * 1024 * 1024


def test_a_few_aliases_are_expanded_as_before() -> None:
    text = REQUIRED + "base: &base [1, 2]\nx: [*base, *base]\n"

    tree = read_yaml(text, source="c.yaml")
    data, found = to_plain(tree, ENV, source="c.yaml")

    assert data["x"] == [[1, 2], [1, 2]]
    assert found == []


def test_an_anchor_defined_again_is_legal_and_its_alias_takes_the_latest() -> None:
    text = REQUIRED + "a: &x [1]\nb: &x [2]\nc: *x\n"

    data, _ = to_plain(read_yaml(text, source="c.yaml"), ENV)  # no warning (an error here)

    assert data["c"] == [2]


def test_an_alias_nested_past_the_depth_limit_is_refused_at_its_line() -> None:
    deep = "[" * (MAX_DEPTH - 5) + "x" + "]" * (MAX_DEPTH - 5)
    text = REQUIRED + f"a: &a {deep}\nb: [[[[[[[[[[*a]]]]]]]]]]\n"

    assert problems(text) == [f"c.yaml:7: b: nested deeper than {MAX_DEPTH} levels"]


# -- what the YAML reader itself refuses ---------------------------------------------------------


def test_deep_flow_nesting_is_refused_at_its_line_not_a_recursion_error() -> None:
    text = REQUIRED + "logging: " + "[" * 5000 + "]" * 5000 + "\n"

    assert problems(text) == [f"c.yaml:6: (yaml): nested deeper than {MAX_DEPTH} levels"]


@pytest.mark.parametrize(("character", "code"), [("\x00", "#x0000"), ("\x1b", "#x001b")])
def test_a_control_character_is_reported_on_one_located_line(character: str, code: str) -> None:
    text = REQUIRED + f"# a comment with {character}[31m in it\nlogging: {{level: INFO}}\n"

    assert problems(text) == [
        f"c.yaml:6: (yaml): unacceptable character {code}: special characters are not allowed"
    ]


def test_a_date_that_does_not_exist_is_reported_at_its_key() -> None:
    text = REQUIRED + "campaigns:\n  c:\n    kind: refusal_callback\n"
    text += "    channel: Local/{number}@c\n    holidays: [2025-10-01, 2025-02-30]\n"

    assert problems(text) == [
        "c.yaml:10: campaigns.c.holidays[1]: "
        "Input should be a valid date or datetime, day value is outside expected range"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!int abc", "cannot read 'abc' as int: invalid literal for int() with base 10: 'abc'"),
        ("!!float abc", "cannot read 'abc' as float: could not convert string to float: 'abc'"),
        ("!!bool maybe", "cannot read 'maybe' as bool: 'maybe'"),
        ("!!int 0b2", "cannot read '0b2' as int: invalid literal for int() with base 2: '2'"),
    ],
)
def test_a_value_its_tag_cannot_make_is_reported_at_its_line(value: str, message: str) -> None:
    text = REQUIRED + f"logging: {{level: {value}}}\n"

    assert problems(text) == [f"c.yaml:6: (yaml): {message}"]


def test_an_integer_too_long_to_read_is_reported_at_its_line() -> None:
    [found] = problems(REQUIRED + "default_region: " + "9" * 5000 + "\n")

    assert found.startswith("c.yaml:6: (yaml): cannot read '9999")
    assert "\n" not in found


# -- how issues are printed ------------------------------------------------------------------------


def test_an_issue_escapes_control_characters_so_that_it_stays_on_one_line() -> None:
    issue = ConfigIssue("c.yaml", 3, "campaigns.a\nb", "bad \u2028value\x1b[31m")

    assert str(issue) == "c.yaml:3: campaigns.a\\nb: bad \\u2028value\\x1b[31m"
    assert len(str(issue).splitlines()) == 1


def test_a_key_holding_a_line_break_is_printed_on_one_line() -> None:
    found = problems(REQUIRED + '"a\\nb": 1\n')

    assert found == ["c.yaml:6: a\\nb: unknown key"]


# -- many errors ----------------------------------------------------------------------------------

MANY = 40_000


@pytest.fixture(scope="module")
def many_unknown_keys() -> str:
    return REQUIRED + "".join(f"unknown_{index}: {index}\n" for index in range(MANY))


def test_forty_thousand_unknown_keys_are_each_reported_at_their_line(
    many_unknown_keys: str,
) -> None:
    # Locating them used to be quadratic (minutes); pytest's time-out bounds this test.
    found = problems(many_unknown_keys)

    assert len(found) == MANY
    assert found[0] == "c.yaml:6: unknown_0: unknown key"
    assert found[-1] == f"c.yaml:{MANY + 5}: unknown_{MANY - 1}: unknown key"


def test_locating_many_keys_indexes_each_mapping_once() -> None:
    text = REQUIRED + "".join(f"unknown_{index}: {index}\n" for index in range(5000))
    tree = read_yaml(text, source="c.yaml")
    data, _ = to_plain(tree, ENV)
    with pytest.raises(ValidationError) as caught:
        Settings.model_validate(data, context={"base_dir": Path("/srv")})
    locator = Locator(tree)

    lines = [locator.locate(tuple(error["loc"]))[1] for error in caught.value.errors()]

    assert lines == list(range(6, 5006))
    assert locator.indexed == 1  # the root mapping; not once per error
