"""Reading slamon's YAML files: safe loading, and typed access that names the key on every error.

`load_yaml` is PyYAML's safe loader (libyaml when present) plus the check PyYAML leaves out:
a duplicated key in a mapping is an error, not a silent "last one wins" — in a contract that
would quietly change what gets paid. `Source`'s methods turn YAML values into typed values or
raise the file's own InputError subclass with a jq-style key path (`devices[3].parent`) and a
short message. (Hand-written rather than pydantic: the messages must be exact and in file order,
YAML has already typed the values — dates, floats that must become exact Decimals — and the CSV
inventory needs the same rules with `line N, column C` locations.)
"""

from __future__ import annotations

import re
from collections.abc import Collection, Container
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from os import PathLike
from pathlib import Path
from typing import NoReturn, TypeVar

import yaml
from yaml.constructor import SafeConstructor

from slamon.errors import InputError
from slamon.units import parse_decimal, parse_duration, quote

E = TypeVar("E", bound=StrEnum)

ID_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
ID_HINT = "use letters, digits, '.', '_', '-'"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


def _check_unique_keys(loader: SafeConstructor, node: yaml.MappingNode) -> None:
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        # text keys (nearly all of them) compare by their text; others by their constructed value
        key = key_node.value if key_node.tag == _STR_TAG else loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: let PyYAML report it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {quote(key)} (first on line {first})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line + 1


def _checked_timestamp(loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.ScalarNode) -> date | datetime:
    """PyYAML raises a bare ValueError for `2025-13-45`; make it a YAML error that has a line."""
    try:
        return loader.construct_yaml_timestamp(node)
    except (ValueError, OverflowError):
        raise yaml.constructor.ConstructorError(
            None, None, f"{quote(node.value)} is not a valid date or time", node.start_mark
        ) from None


class _PureLoader(yaml.SafeLoader):
    """The pure-Python safe loader; its error messages are the ones we show."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        _check_unique_keys(self, node)
        return super().construct_mapping(node, deep=deep)


_PureLoader.add_constructor("tag:yaml.org,2002:timestamp", _checked_timestamp)


_FastLoader: type[yaml.SafeLoader | yaml.CSafeLoader] = _PureLoader
if yaml.__with_libyaml__:

    class _CLoader(yaml.CSafeLoader):
        """libyaml's parser with the same duplicate-key check."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
            _check_unique_keys(self, node)
            return super().construct_mapping(node, deep=deep)

    _CLoader.add_constructor("tag:yaml.org,2002:timestamp", _checked_timestamp)
    _FastLoader = _CLoader


def load_yaml(path: str | PathLike[str], error: type[InputError] = InputError) -> object:
    """The document in `path`, or `error` naming the file, the line and the problem.

    Parsed by libyaml for speed (inventories run to tens of thousands of devices); a file that
    fails is parsed again by the pure-Python loader so that its message does not depend on
    whether libyaml is installed.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise error(path, None, "file not found") from None
    except IsADirectoryError:
        raise error(path, None, "is a directory, not a file") from None
    except OSError as exc:
        raise error(path, None, f"cannot read: {(exc.strerror or str(exc)).lower()}") from None
    try:
        return yaml.load(data, Loader=_FastLoader)  # noqa: S506  # a SafeLoader subclass
    except yaml.YAMLError:
        pass
    try:
        return yaml.load(data, Loader=_PureLoader)  # noqa: S506  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        raise error(path, where, _one_line(exc.problem or str(exc))) from None
    except yaml.YAMLError as exc:
        raise error(path, None, _one_line(str(exc))) from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- typed access -------------------------------------------------------------------------------


def key_path(where: str, key: str | int) -> str:
    """`sla` + `cap` -> `sla.cap`; `devices` + 3 -> `devices[3]`; the top level is ``""``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def describe(value: object) -> str:
    """What a value is, for "expected a mapping, got …"."""
    if value is None:
        return "nothing"
    return quote(value)


@dataclass(frozen=True, slots=True)
class Source:
    """One file being read, and the InputError subclass its problems raise."""

    file: str | PathLike[str]
    error: type[InputError]

    def fail(self, where: str | None, problem: str) -> NoReturn:
        raise self.error(self.file, where or None, problem)

    def mapping(
        self,
        where: str,
        value: object,
        allowed: Collection[str],
        required: Collection[str] = (),
        unknown: str = "unknown key",
    ) -> dict[str, object]:
        """The keys given (nulls left out, as if not given), after rejecting unknown and missing keys."""
        if not isinstance(value, dict):
            if not where and value is None:
                self.fail(None, "the file is empty")
            self.fail(where, f"expected a mapping, got {describe(value)}")
        given: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.fail(where, f"key {quote(key)} is not text (put it in quotes)")
            if key not in allowed:
                self.fail(key_path(where, key), unknown)
            if item is not None:
                given[key] = item
        for key in required:
            if key not in value:
                self.fail(key_path(where, key), "missing (required)")
            if key not in given:
                self.fail(key_path(where, key), "empty (required)")
        return given

    def sequence(self, where: str, value: object) -> list[object]:
        if not isinstance(value, list):
            self.fail(where, f"expected a list, got {describe(value)}")
        return value

    def text(self, where: str, value: object) -> str:
        """Non-empty text. Numbers, dates and booleans are refused: YAML has already changed them
        (`0012` is 10, `no` is false), so the quoted form is the only safe one."""
        if not isinstance(value, str):
            if isinstance(value, list | dict) or value is None:
                self.fail(where, f"expected text, got {describe(value)}")
            self.fail(where, f"expected text, got {quote(value)} (put it in quotes)")
        if not value.strip():
            self.fail(where, "empty (required)")
        return value

    def ident(self, where: str, value: object) -> str:
        text = self.text(where, value)
        if not ID_PATTERN.fullmatch(text):
            self.fail(where, f"{quote(text)} is not a valid id ({ID_HINT})")
        return text

    def boolean(self, where: str, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"{quote(value)} is not true or false")
        return value

    def integer(self, where: str, value: object, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"{quote(value)} is not a whole number")
        if minimum is not None and value < minimum:
            self.fail(where, f"{value} must be at least {minimum}")
        return value

    def decimal(self, where: str, value: object) -> Decimal:
        try:
            return parse_decimal(value)
        except ValueError as exc:
            self.fail(where, str(exc))

    def fraction(self, where: str, value: object, *, zero_ok: bool) -> Decimal:
        """A rate or share: `0 <= x <= 1`, or `0 < x <= 1` when zero would be meaningless."""
        number = self.decimal(where, value)
        if zero_ok and not 0 <= number <= 1:
            self.fail(where, f"{number} must be between 0 and 1")
        if not zero_ok and not 0 < number <= 1:
            self.fail(where, f"{number} must be more than 0 and at most 1")
        return number

    def money(self, where: str, value: object) -> Decimal:
        number = self.decimal(where, value)
        if number < 0:
            self.fail(where, f"{number} must not be negative")
        return number

    def duration(self, where: str, value: object, *, zero_ok: bool = False) -> timedelta:
        try:
            td = parse_duration(value)
        except ValueError as exc:
            self.fail(where, str(exc))
        if not zero_ok and td <= timedelta(0):
            self.fail(where, f"{quote(value)} must be longer than 0s")
        return td

    def choice(self, where: str, value: object, enum: type[E], noun: str) -> E:
        """A member of a closed set by its spec word, with the allowed words in the message."""
        if isinstance(value, str):
            try:
                return enum(value)
            except ValueError:
                pass
        allowed = ", ".join(member.value for member in enum)
        self.fail(where, f"{quote(value)} is not {noun} (use {allowed})")

    def calendar_date(self, where: str, value: object) -> date:
        """A calendar date: YAML's unquoted `2025-06-01`, or the same text quoted."""
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and _DATE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(where, f"{quote(value)} is not a date (use YYYY-MM-DD, e.g. 2025-06-01)")

    def instant(self, where: str, value: object) -> datetime:
        """An aware instant, in UTC; a naive one is refused, never guessed."""
        parsed = value
        if isinstance(value, str) and len(value) > 10 and _DATE.fullmatch(value[:10]):
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                parsed = value
        if not isinstance(parsed, datetime):
            self.fail(where, f"{quote(value)} is not an instant (use e.g. 2025-07-03T01:00:00+08:00)")
        return self.utc(where, value, parsed)

    def utc(self, where: str, value: object, instant: datetime) -> datetime:
        """`instant` in UTC; `value` is what the file said, for the message."""
        if instant.utcoffset() is None:
            self.fail(where, f"{quote(value)} has no UTC offset (add one, e.g. +08:00)")
        try:
            return instant.astimezone(UTC)
        except OverflowError:
            self.fail(where, f"{quote(value)} is out of range")

    def known_ids(self, where: str, value: object, noun: str, known: Container[str]) -> frozenset[str]:
        """A list of ids that must all name something in `known`."""
        ids: list[str] = []
        for i, item in enumerate(self.sequence(where, value)):
            ident = self.ident(key_path(where, i), item)
            if ident not in known:
                self.fail(key_path(where, i), f"unknown {noun} {quote(ident)}")
            ids.append(ident)
        return frozenset(ids)
