"""Reading slamon's YAML files: safe loading, and typed access that names the key on every error.

`load_yaml` gives what PyYAML's safe loader gives, plus the checks PyYAML leaves out: a duplicated
key in a mapping is an error, not a silent "last one wins" (in a contract that would quietly
change what gets paid), and so is nesting deeper than `MAX_DEPTH` (PyYAML would recurse until
Python gives up). `Source`'s methods turn YAML values into typed values or raise the file's own
InputError subclass with a jq-style key path (`devices[3].parent`) and a short message.
(Hand-written rather than pydantic: the messages must be exact and in file order, YAML has
already typed the values — dates, floats that must become exact Decimals — and the CSV inventory
needs the same rules with `line N, column C` locations.)

Three readers, fastest first, each trusted only where it gives PyYAML's answer:

1. rapidyaml (C++, `ryml`) parses, emits the tree as JSON and `json` builds it: a 100,000-device
   inventory in about half a second, where libyaml takes seconds. ryml reads YAML 1.2 and keeps
   every scalar as text, so its tree is walked once to give plain scalars PyYAML's (YAML 1.1)
   types: `yes`, `0012`, `2025-06-01`, `~`. It takes only documents it reads exactly as PyYAML
   does: no tabs, CR, or other line breaks PyYAML knows and YAML 1.2 does not; no anchors,
   aliases, tags, directives, block scalars or complex keys; a node count equal to ryml's (a
   duplicated key collapses in JSON, so the counts differ). Anything else is declined, never guessed.
   Only documents of 64 KiB or more (inventories, big exclusion lists) are offered to it.
2. libyaml through PyYAML (`CSafeLoader`) for the documents ryml declines, and the small ones.
3. PyYAML's pure-Python loader when either fails, so that the message of a broken file (and its
   line) does not depend on which parser is installed.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Collection, Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from os import PathLike
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml
from yaml.constructor import SafeConstructor

from slamon.errors import InputError
from slamon.units import format_duration, parse_decimal, parse_duration, quote, quote_short

E = TypeVar("E", bound=StrEnum)

MAX_DEPTH = 32
"""Lists and mappings inside each other, the document's own counting as 1. slamon's files need 4;
far deeper nesting is a generated or hostile file, and would exhaust Python's recursion."""
MAX_ID_LENGTH = 100
"""Characters in a device, site, contract or exclusion id: the store keeps ids in varchar(200)
columns on PostgreSQL, and an id is printed on every statement line."""
MAX_MONEY = Decimal(1_000_000_000)
"""The largest amount of money a file may give (a fee per channel-month, an overrun amount): far
above any real fee, and small enough that a month's sums over 100,000 devices keep every cent
within Decimal's 28 digits."""
MONEY_PLACES = 2
SHARE_PLACES = 6  # rates and shares (tiers, KPI targets, deductions, the cap): 0.999999 at finest
ID_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
ID_HINT = "use letters, digits, '.', '_', '-'"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_INT_TAG = "tag:yaml.org,2002:int"


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


def _checked_int(loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.ScalarNode) -> int:
    """Python reads at most 4,300 digits (ValueError beyond); make that a YAML error with a line."""
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"{quote_short(node.value)} is too long a number", node.start_mark
        ) from None


class _PureLoader(yaml.SafeLoader):
    """The pure-Python safe loader; its error messages are the ones we show."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if not isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            return super().compose_node(parent, index)
        if self.depth >= MAX_DEPTH:
            mark = event.start_mark
            assert isinstance(mark, yaml.error.Mark)  # the pure parser's own
            raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        _check_unique_keys(self, node)
        return super().construct_mapping(node, deep=deep)


_PureLoader.add_constructor(_TIMESTAMP_TAG, _checked_timestamp)
_PureLoader.add_constructor(_INT_TAG, _checked_int)


_FastLoader: type[yaml.SafeLoader | yaml.CSafeLoader] = _PureLoader
if yaml.__with_libyaml__:

    class _CLoader(yaml.CSafeLoader):
        """libyaml's parser with the same duplicate-key check (depth is checked on the result)."""

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
            _check_unique_keys(self, node)
            return super().construct_mapping(node, deep=deep)

    _CLoader.add_constructor(_TIMESTAMP_TAG, _checked_timestamp)
    _CLoader.add_constructor(_INT_TAG, _checked_int)
    _FastLoader = _CLoader


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic collector off while a big file's objects are built: they hold no cycles
    (plain dicts, lists, texts and frozen values), and its passes over a heap that grows by a
    million objects cost a quarter of the load. Memory is still freed as usual (reference counts)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_yaml(path: str | PathLike[str], error: type[InputError] = InputError) -> object:
    """The document in `path`, or `error` naming the file, the line and the problem.

    Read by rapidyaml (from RAPID_FROM bytes) when it reads the document exactly as PyYAML would,
    else by libyaml; a file that fails either is parsed again by the pure-Python loader so that
    its message does not depend on which parser took it.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise error(path, None, "file not found") from None
    except IsADirectoryError:
        raise error(path, None, "is a directory, not a file") from None
    except OSError as exc:
        raise error(path, None, f"cannot read: {(exc.strerror or str(exc)).lower()}") from None
    with gc_paused():
        try:
            if len(data) >= RAPID_FROM:
                return read_rapid(data)
        except Declined:
            pass
        try:
            value = yaml.load(data, Loader=_FastLoader)  # noqa: S506  # a SafeLoader subclass
        except (yaml.YAMLError, RecursionError):
            pass
        else:
            if not _deeper_than(value, MAX_DEPTH):
                return value
    try:
        return yaml.load(data, Loader=_PureLoader)  # noqa: S506  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        raise error(path, where, _one_line(exc.problem or str(exc))) from None
    except yaml.YAMLError as exc:
        raise error(path, None, _one_line(str(exc))) from None
    except RecursionError:  # pragma: no cover  (the composer stops at MAX_DEPTH first)
        raise error(path, None, f"nested more than {MAX_DEPTH} levels deep") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _deeper_than(value: object, limit: int) -> bool:
    """Whether lists and mappings nest more than `limit` deep (aliases may make a loop: deep too)."""
    if isinstance(value, dict):
        items: Collection[object] = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return False
    if limit <= 0:
        return True
    return any(isinstance(v, dict | list) and _deeper_than(v, limit - 1) for v in items)


# --- rapidyaml ----------------------------------------------------------------------------------


class Declined(Exception):
    """The document is left to PyYAML: rapidyaml might not read it exactly as PyYAML does.
    (A verdict, not an error.)"""


@functools.cache  # compiled when a first document is screened (~20 ms), not at import
def _line_grammar() -> re.Pattern[bytes]:
    """The lines ryml and PyYAML are known to read alike, written over their skeletons
    (`_SKELETON`: letters, digits, `_`, `.`, `/` and non-ASCII characters all become `x`, which
    moves no token boundary). One construct a line: `key: value`, `- value`, `- key: value`,
    `key:` or `-` opening a block below, blank and comment lines; a value is a plain scalar, a
    one-line quoted scalar (escapes `\\` and `\"` only) or a one-line flow collection nested at
    most three deep. No anchors, aliases, tags, block scalars, complex keys, multi-line scalars or
    flows: a line of any other shape declines the document."""
    start = rb"[x$()+;<=^~\\]"
    cont = rb"[x$()+;<=^~\\\-!&*%@`|>#]"  # no `?`: in a flow PyYAML ends a plain scalar there
    plain = rb"(?:%s|-(?=%s))(?:%s|:(?=%s|:)| +(?=%s))*" % (start, start, cont, cont, start)
    scalar = rb"(?:%s|\"(?:[^\"\\\n]|\\[\\\"])*\"|'(?:[^'\n]|'')*')" % plain
    value = scalar
    for _ in range(3):  # each item followed by a comma and another item, or by the closing bracket
        seq = rb"\[ *(?:%s *(?:, *(?!\])|(?=\])))*\]" % value
        mapping = rb"\{ *(?:%s: +%s *(?:, *(?!\})|(?=\})))*\}" % (scalar, value)
        value = rb"(?:%s|%s|%s)" % (scalar, seq, mapping)
    end = rb"(?: +(?:#.*)?)?"
    return re.compile(
        rb" *(?:(?:- +)?%s:(?: +%s)?%s|- +%s%s|-%s|(?:#.*)?)" % (scalar, value, end, value, end, end)
    )


_SKELETON = bytes(
    ord("x") if c >= 0x80 or (chr(c).isascii() and (chr(c).isalnum() or chr(c) in "_./")) else c
    for c in range(256)
)
_KNOWN_LINES: set[bytes] = set()  # skeleton lines that matched: a fleet's files have a few shapes
_PRINTABLE_ASCII = bytes(range(0x20, 0x7F)) + b"\n"
_NON_ASCII = bytes(range(0x80, 0x100))
# Beyond ASCII, what PyYAML refuses (C1 controls, surrogates, U+FFFE/F) or reads as a line break
# where YAML 1.2 does not (NEL, LS, PS), and the byte-order mark
_UNUSUAL_CHAR = re.compile("[^\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")

# Scalars worth a second look: those PyYAML's resolver may type when plain (they start with one of
# the resolvers' first characters, or are empty), and those PyYAML would not read as one plain
# scalar (ryml is laxer: a stray `}` is text to it, an error to PyYAML)
_RESOLVERS: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(resolvers) for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
assert None not in _RESOLVERS, "PyYAML has wildcard resolvers now: tag_of must follow"
assert not yaml.resolver.Resolver.yaml_path_resolvers, "PyYAML has path resolvers now: tag_of must follow"
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@` ")
_LOOK = frozenset(_RESOLVERS) | _INDICATORS  # first characters (and "" for the empty text)
_ODD = object()  # "not one plain scalar to PyYAML" in _Typing.plain_of
_WORDS_FIRST = frozenset("yYnNtTfFoO")  # the words PyYAML types have at most 5 letters
_DIGITS = frozenset("0123456789")  # a typed scalar starting with a digit has at most one `.`
_SPECIAL_FLOAT = re.compile(r"[-+]?\.")  # ryml's JSON writes `.NaN` as `.nan`, `inf` as `.inf`
_ZERO_DOT = re.compile(r"^([-+]?)0\.")  # a JSON `0.5` may have been `.5`
_DOT_ZERO = re.compile(r"(?<=\.)0(?=$|[eE])")  # a JSON `5.0` may have been `5.`
_CONSTRUCTOR = _PureLoader("")
_SCALARS = {
    tag: _PureLoader.yaml_constructors[tag]
    for tag in (
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:bool",
        _INT_TAG,
        "tag:yaml.org,2002:float",
        _TIMESTAMP_TAG,
    )
}
# smaller documents go straight to libyaml, quick at that size: a command that reads only small
# files (`probe --once` with the fleet from its cache) does not import rapidyaml (~8 ms)
RAPID_FROM = 64 * 1024
_RYML_NOISE = re.compile(rb"ERROR: \[|\(detected here\)|^line=[0-9]+ col=[0-9]+")
_RYML_LOCK = threading.Lock()


@functools.cache
def _ryml() -> Any:
    import ryml  # type: ignore[import-untyped]

    return ryml


def read_rapid(data: bytes) -> object:
    """The document as PyYAML's safe loader (with slamon's checks) would give it, read by rapidyaml;
    Declined when that cannot be guaranteed, which includes every document PyYAML would refuse."""
    _screen(data)
    ryml = _ryml()
    with _quiet_stderr():  # ryml prints each error on stderr before raising it
        try:
            tree = ryml.parse_in_arena(data)
            tree.reorder()  # node ids in document order, the order JSON lists them in
            root = tree.root_id()
            if tree.is_stream(root):  # a first line `---`
                if tree.num_children(root) != 1:
                    raise Declined
                root = tree.first_child(root)
            if not tree.type(root) & (ryml.MAP | ryml.SEQ | ryml.VAL):
                raise Declined  # an empty document: PyYAML's own answer is quick
            body = ryml.emit_json(tree, root)
        except (ryml.ExceptionParse, ryml.ExceptionVisit, ryml.ExceptionBasic):
            raise Declined from None
    typing = _Typing(tree)
    try:
        value = json.loads(body, parse_int=typing.number, parse_float=typing.number)
    except (ValueError, RecursionError):
        raise Declined from None
    if isinstance(value, dict | list):
        end = typing.walk(value, root, 1)
    else:
        if isinstance(value, str) and (not value or value[0] in _LOOK or " #" in value):
            value = typing.scalar(value, root)
        end = root + 1
    if end != tree.size():
        raise Declined  # a key given twice collapsed in the JSON; PyYAML reports it
    return value


def _screen(data: bytes) -> None:
    """Declined unless every character and every line is of a kind ryml reads as PyYAML does."""
    rest = data.translate(None, _PRINTABLE_ASCII)  # whole UTF-8 sequences stay whole
    if rest.translate(None, _NON_ASCII):
        raise Declined  # a tab, CR or other control character
    try:
        if _UNUSUAL_CHAR.search(rest.decode("utf-8")):
            raise Declined
    except UnicodeDecodeError:
        raise Declined from None
    body = data[4:] if data.startswith(b"---\n") else data
    if body.startswith((b"---", b"...")) or b"\n---" in body or b"\n..." in body:
        raise Declined  # document markers (only a first line `---` is read)
    skeleton = body.translate(_SKELETON).split(b"\n")
    lines = set(skeleton)
    grammar = _line_grammar().fullmatch
    if not all(map(grammar, lines - _KNOWN_LINES)):
        lines = _logical_lines(skeleton)  # flows over several lines
        if not all(map(grammar, lines - _KNOWN_LINES)):
            raise Declined
    if len(_KNOWN_LINES) > 10_000:
        _KNOWN_LINES.clear()
    _KNOWN_LINES.update(lines)


def _logical_lines(lines: list[bytes]) -> set[bytes]:
    """The skeleton lines with each flow that goes on over the next lines joined into one line.

    A line goes on to the next only where it ends in `,`, `[` or `{` outside any quoted scalar or
    comment (so nothing is cut but whitespace between tokens), and the next line is indented
    deeper than the flow's first; anything else stays as it is, to be refused."""
    logical: set[bytes] = set()
    start: bytes | None = None
    indent = 0
    for line in lines:
        if start is None:
            start, indent = line, len(line) - len(line.lstrip(b" "))
        else:
            if len(line) - len(line.lstrip(b" ")) <= indent or len(start) > 10_000:
                return {b"\0"}  # not a continuation: declined
            start += b" " + line.strip(b" ")
        if (
            start.rstrip(b" ").endswith((b",", b"[", b"{"))
            and _OPEN_FLOW.fullmatch(line)
            and not _line_grammar().fullmatch(start)
        ):
            continue
        logical.add(start)
        start = None
    if start is not None:
        logical.add(start)
    return logical


# A line cut between tokens: no comment, and each quote char part of a whole quoted scalar
_OPEN_FLOW = re.compile(rb"(?:[^\"'#]|\"(?:[^\"\\]|\\[\\\"])*\"|'(?:[^']|'')*')*")


class _Typing:
    """Gives ryml's text scalars the types PyYAML's resolver gives plain scalars (YAML 1.1), and
    declines what ryml may have read otherwise than PyYAML."""

    def __init__(self, tree: object) -> None:
        self.tree = tree
        ryml = _ryml()
        self.val, self.map_or_seq, self.val_plain, self.key_plain = (
            ryml.VAL,
            ryml.MAP | ryml.SEQ,
            ryml.VAL_PLAIN,
            ryml.KEY_PLAIN,
        )
        self.safe: dict[str, bool] = {}  # text -> whether it is the same text whatever its style
        self.values: dict[tuple[str, str], object] = {}  # (tag, text) -> its (immutable) value
        self.numbers: dict[str, object] = {}  # JSON number text -> its value
        self.plain_of: dict[str, object] = {}  # text -> PyYAML's value of it as a plain scalar, or _ODD

    def is_safe(self, text: str) -> bool:
        """Text however it was written: PyYAML leaves it text even plain, ryml wrote it as is."""
        if text and (
            (len(text) > 5 and text[0] in _WORDS_FIRST) or (text[0] in _DIGITS and text.count(".") > 1)
        ):
            safe = " #" not in text  # longer than yes/no/true/false/on/off/null; not a number or date
        else:
            safe = tag_of(text) == _STR_TAG and not _odd(text)
        self.safe[text] = safe
        return safe

    def plain(self, text: str) -> object:
        """What PyYAML makes of `text` as a plain scalar."""
        tag = tag_of(text)
        if tag == _STR_TAG:
            return text
        key = (tag, text)
        if key not in self.values:
            build = _SCALARS.get(tag)
            if build is None:
                raise Declined  # `<<`, `=`, ...: PyYAML's own handling (or error)
            try:
                self.values[key] = build(_CONSTRUCTOR, yaml.ScalarNode(tag, text))
            except (yaml.YAMLError, ValueError, OverflowError):
                raise Declined from None
        return self.values[key]

    def number(self, text: str) -> object:
        """A bare JSON number: a plain scalar, as ryml wrote it. ryml writes `.5` as `0.5` and `5.`
        as `5.0`, which PyYAML may type differently (`-.5` is text to it, `-0.5` a float): taken
        when every text it may have been gives the same value, declined otherwise."""
        if text in self.numbers:
            return self.numbers[text]
        value = self.plain(text)
        if "." in text:
            for source in _DOT_ZERO.sub("", text), _ZERO_DOT.sub(r"\1.", text):
                other = self.plain(source)
                if type(other) is not type(value) or other != value:
                    raise Declined
        self.numbers[text] = value
        return value

    def scalar(self, text: str, node: int) -> object:
        """PyYAML's value of tree node `node`, a scalar JSON gave as `text` (not `is_safe`)."""
        if text[:1] in "+-." and _SPECIAL_FLOAT.match(text):
            raise Declined  # ryml may have rewritten it (`inf` as `.inf`)
        kind: int = self.tree.type(node)  # type: ignore[attr-defined]
        if not kind & self.val or kind & self.map_or_seq:
            raise Declined  # not the node we counted to: never guess
        if not kind & self.val_plain:
            return text  # quoted: text as written
        value = self.plain_of.get(text, _ODD)
        if value is _ODD and text not in self.plain_of:
            value = self.plain_of[text] = _ODD if _odd(text) else self.plain(text)
        if value is _ODD:
            raise Declined  # PyYAML would not read this as one plain scalar
        return value

    def key(self, key: str, node: int) -> None:
        """A key (not `is_safe`) must be text to PyYAML too."""
        if _SPECIAL_FLOAT.match(key) or self.tree.type(node) & self.key_plain:  # type: ignore[attr-defined]
            raise Declined  # `1:`, `yes:`, `~:` are typed keys to PyYAML; `}:` is an error

    def walk(self, node: dict[str, object] | list[object], at: int, depth: int) -> int:
        """Types the scalars under `node`, JSON's value for tree node `at`; returns the id after it."""
        if depth > MAX_DEPTH:
            raise Declined
        at += 1
        safe, is_safe, scalar, look = self.safe, self.is_safe, self.scalar, _LOOK
        keyed = isinstance(node, dict)
        entries: Iterable[tuple[Any, object]] = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in entries:
            if keyed and (key[:1] in look or " #" in key):
                known = safe.get(key)
                if not (is_safe(key) if known is None else known):
                    self.key(key, at)
            if isinstance(value, str):
                if value[:1] in look or " #" in value:
                    known = safe.get(value)
                    if not (is_safe(value) if known is None else known):
                        node[key] = scalar(value, at)
                at += 1
            elif isinstance(value, dict | list):
                at = self.walk(value, at, depth + 1)
            else:
                at += 1
        return at


def tag_of(text: str) -> str:
    """The tag PyYAML's resolver gives a plain scalar `text` (BaseResolver.resolve, unrolled)."""
    for tag, regexp in _RESOLVERS.get(text[:1], ()):
        if regexp.match(text):
            return tag
    return _STR_TAG


def _odd(text: str) -> bool:
    """Not a plain scalar to PyYAML, or rewritten in ryml's JSON."""
    return not text or text[0] in _INDICATORS or " #" in text or bool(_SPECIAL_FLOAT.match(text))


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 into a temporary file while ryml runs; what others wrote meanwhile goes
    back out afterwards, ryml's own error lines do not. (With no temporary file or no stderr to
    save, ryml runs as it is.)"""
    with _RYML_LOCK:
        try:
            sys.stderr.flush()
            sink = tempfile.TemporaryFile()  # noqa: SIM115  (entered just below)
        except (OSError, ValueError):  # ValueError: sys.stderr closed
            yield
            return
        with sink:
            try:
                saved = os.dup(2)
            except OSError:
                yield
                return
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                lines = sink.read().splitlines(keepends=True)
                others = [line for line in lines if not _RYML_NOISE.search(line)]
                if others:
                    os.write(2, b"".join(others))


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
            self.fail(where, f"{quote_short(text)} is not a valid id ({ID_HINT})")
        if len(text) > MAX_ID_LENGTH:
            self.fail(where, f"{quote_short(text)} is {len(text)} characters long (at most {MAX_ID_LENGTH})")
        return text

    def boolean(self, where: str, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"{quote(value)} is not true or false")
        return value

    def integer(
        self, where: str, value: object, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"{quote(value)} is not a whole number")
        if minimum is not None and value < minimum:
            self.fail(where, f"{quote(value)} must be at least {minimum}")
        if maximum is not None and value > maximum:
            self.fail(where, f"{quote(value)} must be at most {maximum:,}")
        return value

    def decimal(self, where: str, value: object) -> Decimal:
        try:
            return parse_decimal(value)
        except ValueError as exc:
            self.fail(where, str(exc))

    def fraction(self, where: str, value: object, *, zero_ok: bool) -> Decimal:
        """A rate or share: `0 <= x <= 1`, or `0 < x <= 1` when zero would be meaningless; at most
        `SHARE_PLACES` decimal places."""
        number = self.decimal(where, value)
        if zero_ok and not 0 <= number <= 1:
            self.fail(where, f"{number} must be between 0 and 1")
        if not zero_ok and not 0 < number <= 1:
            self.fail(where, f"{number} must be more than 0 and at most 1")
        self.places(where, number, SHARE_PLACES)
        return number

    def money(self, where: str, value: object) -> Decimal:
        """An amount: `0 <= x <= MAX_MONEY`, in whole cents."""
        number = self.decimal(where, value)
        if number < 0:
            self.fail(where, f"{number} must not be negative")
        if number > MAX_MONEY:
            self.fail(where, f"{number} must be at most {MAX_MONEY:,}")
        self.places(where, number, MONEY_PLACES)
        return number

    def places(self, where: str, number: Decimal, places: int) -> None:
        exponent = number.normalize().as_tuple().exponent
        assert isinstance(exponent, int)  # finite: parse_decimal refuses the rest
        if exponent < -places:
            self.fail(where, f"{number} has more than {places} decimal places")

    def duration(
        self, where: str, value: object, *, zero_ok: bool = False, maximum: timedelta | None = None
    ) -> timedelta:
        try:
            td = parse_duration(value)
        except ValueError as exc:
            self.fail(where, str(exc))
        if not zero_ok and td <= timedelta(0):
            self.fail(where, f"{quote(value)} must be longer than 0s")
        if maximum is not None and td > maximum:
            self.fail(where, f"{quote(value)} must be at most {format_duration(maximum)}")
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
