"""load_yaml: rapidyaml where it reads a document exactly as PyYAML does, PyYAML everywhere else.

The property behind every test here: `read_rapid` either declines a document or gives what
PyYAML's pure loader (with slamon's checks) gives, value for value and type for type. Documents
come from the test data, from a grammar of the YAML people write in slamon's files, and from
random damage to both.
"""

from __future__ import annotations

import math
import os
import random
import re
import time
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slamon.errors import InputError
from slamon.loaders import yamlio
from slamon.loaders.yamlio import MAX_DEPTH, Declined, load_yaml, read_rapid
from tests.conftest import TESTDATA

ROOT = Path(__file__).resolve().parents[2]
YAML_FILES = sorted([*TESTDATA.rglob("*.yaml"), *(ROOT / "examples").rglob("*.yaml")], key=lambda p: str(p))


def same(a: object, b: object) -> bool:
    """Equal and of the same types all the way down (1 is not True, a date is not a datetime)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return (
            list(a) == list(b)
            and all(same(x, y) for x, y in zip(a, b, strict=True))
            and all(same(a[k], b[k]) for k in a)
        )
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # type: ignore[arg-type]
    if isinstance(a, datetime):
        assert isinstance(b, datetime)
        return a == b and a.utcoffset() == b.utcoffset()
    return a == b


def pyyaml(data: bytes) -> tuple[bool, object]:
    """What the pure-Python loader gives: (True, value) or (False, its error)."""
    try:
        return True, yaml.load(data, Loader=yamlio._PureLoader)
    except (yaml.YAMLError, RecursionError) as exc:
        return False, exc


def agrees(data: bytes) -> bool:
    """read_rapid declines `data`, or gives PyYAML's value."""
    try:
        fast = read_rapid(data)
    except Declined:
        return True
    ok, expected = pyyaml(data)
    assert ok, f"rapidyaml took a document PyYAML refuses ({expected}): {data!r}"
    assert same(fast, expected), f"{data!r}: rapidyaml {fast!r}, PyYAML {expected!r}"
    return True


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_reads_as_pyyaml_reads_it(path: Path) -> None:
    assert agrees(path.read_bytes())


@pytest.mark.parametrize(
    "path",
    [
        TESTDATA / "inventory" / "good.yaml",
        TESTDATA / "contracts" / "good" / "YJ-2025.yaml",
        TESTDATA / "exclusions" / "good.yaml",
        TESTDATA / "config" / "base.yaml",
        ROOT / "examples" / "july-2025" / "inventory.yaml",
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_files_slamon_ships_are_read_by_rapidyaml(path: Path) -> None:
    """Dates, quoted dates, IPv6 addresses, comments, flows, CJK text: all rapidyaml's to read."""
    ok, expected = pyyaml(path.read_bytes())
    assert ok
    assert same(read_rapid(path.read_bytes()), expected)


def test_a_large_generated_inventory_is_read_by_rapidyaml() -> None:
    lines = ["sites:"]
    lines += [f"  - {{id: S{i:04d}, name: 路口{i:04d}, district: 右江区, area: urban}}" for i in range(50)]
    lines.append("devices:")
    for i in range(2000):
        lines.append(
            f"  - {{id: C{i:05d}, kind: camera, address: 10.{i >> 8}.{i & 255}.1, site: S{i % 50:04d}, "
            f"contract: YJ-2025, parent: SW{i % 50:04d}, channels: 1, in_service: 2025-07-01}}"
        )
    data = ("\n".join(lines) + "\n").encode()
    value = read_rapid(data)
    assert same(value, pyyaml(data)[1])
    assert value["devices"][7]["in_service"] == date(2025, 7, 1)  # type: ignore[index]


# --- a grammar of the YAML slamon's files hold, and damage to it ------------------------------

PLAIN = [
    "a", "id", "YJ-C0001", "1", "01", "0012", "007", "1.5", "1.", ".5", "-.5", "+.5", "5.", "-5.",
    "1e3", "1.0e+3", ".5e3", "1_000", "0x1F", "0o7", "0b11", "12:30", "190:20:30.15", "-1", "+1",
    "yes", "No", "on", "OFF", "y", "true", "True", "FALSE", "null", "Null", "~", "inf", ".inf",
    "-.Inf", ".NaN", "nan", "2025-06-01", "2025-6-1", "2025-06-01T08:00:00+08:00",
    "2025-06-01 08:00:00", "2025-06-01t08:00:00Z", "2025-13-45", "<<", "=", "rtsp://h:554/x",
    "a b", "a  b", "a:b", "a#b", "x-", "路口", "é", "127.0.0.1", "2001:db8::1", "::1", "a::",
    "a:-b", "a!b", "a&b", "a?b", "a|b", "a>b", "a@b", "a%b", "(x)", "$x", "~x", "<x", "-x", "--x",
    "a - b", "1:2:3", "a/b", "a\\b", "90d", "0.30", "92.29",
]  # fmt: skip
QUOTED = [
    '"a"', '"1"', "'yes'", "''", '""', "'a''b'", '"a\\"b"', '"a\\\\b"', '"2025-06-01"', "'~'",
    '"a: b"', "'# x'", '"[x]"', "'{y}'", '"路"', "'.NaN'", '" x "', "'a,b'", '"\\n"', '"\\t"',
    "'<<'", '"1e3"', "'-.5'",
]  # fmt: skip


@st.composite
def scalars(draw: st.DrawFn) -> str:
    return draw(st.sampled_from(PLAIN)) if draw(st.booleans()) else draw(st.sampled_from(QUOTED))


@st.composite
def flows(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 5 if depth < 3 else 0))
    if kind <= 3:
        return draw(scalars())
    space = draw(st.sampled_from(["", " ", "  "]))
    items = draw(st.lists(flows(depth + 1), max_size=3))
    if kind == 4:
        return "[" + space + f"{space},{space}".join(items) + space + "]"
    keys = draw(st.lists(scalars(), min_size=len(items), max_size=len(items)))
    return "{" + space + ", ".join(f"{k}: {v}" for k, v in zip(keys, items, strict=True)) + space + "}"


@st.composite
def broken(draw: st.DrawFn, line: str, indent: int) -> list[str]:
    """`line` with its flow (if any) broken over lines after some commas and brackets, as people
    write long flow mappings; the next lines usually indented deeper, sometimes not."""
    parts = re.split(r"(?<=[,\[{])", line)
    if len(parts) < 2 or not draw(st.booleans()):
        return [line]
    out = [parts[0]]
    for part in parts[1:]:
        if draw(st.booleans()):
            out.append(
                " " * draw(st.sampled_from([indent + 1, indent + 3, indent + 3, indent])) + part.lstrip()
            )
        else:
            out[-1] += part
    return out


@st.composite
def blocks(draw: st.DrawFn, indent: int = 0, depth: int = 0) -> list[str]:
    lines: list[str] = []
    sequence = draw(st.booleans())
    for _ in range(draw(st.integers(1, 3))):
        comment = draw(st.sampled_from(["", "", " # c", "  #x", " "]))
        pad = " " * indent
        if depth >= 3 or draw(st.booleans()):
            head = "- " if sequence else f"{draw(scalars())}: "
            if sequence and draw(st.booleans()):
                head = f"- {draw(scalars())}: "
            lines += draw(broken(pad + head + draw(flows()) + comment, indent))
        else:
            lines.append(pad + ("-" if sequence else f"{draw(scalars())}:") + comment)
            lines += draw(blocks(indent + draw(st.sampled_from([1, 2, 2, 4])), depth + 1))
    return lines


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    lines = draw(blocks(draw(st.sampled_from([0, 0, 1, 2]))))
    for _ in range(draw(st.integers(0, 2))):  # damage: indentation, repeated and moved lines
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.integers(0, 3))
        if op == 0:
            lines[i] = " " * draw(st.integers(0, 4)) + lines[i].lstrip(" ")
        elif op == 1:
            lines.insert(i, lines[draw(st.integers(0, len(lines) - 1))])
        elif op == 2:
            lines[i] += draw(st.sampled_from([" ", ":", ",", " x", "}", "]"]))
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
    head = draw(st.sampled_from(["", "", "---\n"]))
    return (head + "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_documents_of_the_grammar_read_as_pyyaml_reads_them(data: bytes) -> None:
    assert agrees(data)


DAMAGE = [*" :-,[]{}'\"#\n\\.~?!&*|>@%`\t\r", "路", "  ", "\n  ", "\n- ", ": ", "- ", "\x85", "\ufeff"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(YAML_FILES), st.randoms(use_true_random=False), st.integers(1, 4))
def test_damaged_files_read_as_pyyaml_reads_them(path: Path, rnd: random.Random, times: int) -> None:
    """Typos of the kinds people make (a quote, a colon, a brace, a tab): refused or read alike."""
    text = list(path.read_text(encoding="utf-8")[:3000])
    for _ in range(times):
        i = rnd.randrange(len(text) + 1)
        op = rnd.random()
        if op < 0.4:
            text.insert(i, rnd.choice(DAMAGE))
        elif op < 0.7 and text:
            del text[min(i, len(text) - 1)]
        elif text:
            text[min(i, len(text) - 1)] = rnd.choice(DAMAGE)
    assert agrees("".join(text).encode())


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"a: &x 1\nb: *x\n", "an anchor and an alias"),
        (b"a: !!str 1\n", "a tag"),
        (b"a: |\n  x\n", "a block scalar"),
        (b"? a\n: b\n", "a complex key"),
        (b"a:\tb\n", "a tab"),
        (b"a: b\r\nc: d\r\n", "CR line ends"),
        (b"a: \xc2\x85\n", "NEL, a line break to PyYAML"),
        (b"\xef\xbb\xbfa: 1\n", "a byte-order mark"),
        (b"a: 1\n---\nb: 2\n", "two documents"),
        (b"a: 1\n...\n", "a document end"),
        (b"a: 1\na: 2\n", "a key given twice"),
        (b"a: 'x\n  y'\n", "a quoted scalar over two lines"),
        (b"a: [x\n  y]\n", "a flow cut inside a scalar"),
        (b"a: [x,\ny]\n", "a flow going on at no deeper indent"),
        (b"- {a: 1,\n\n   b: 2}\n", "a blank line inside a flow"),
        (b"1: x\n", "a key PyYAML reads as a number"),
        (b"a: -.5\n", "a number ryml's JSON rewrites"),
        (b"a: inf\n", "a word ryml's JSON rewrites"),
        (b"a: }\n", "a stray brace, text to ryml"),
        (b"a: b: c\n", "a syntax error"),
        (b"a: " + b"[" * 40 + b"]" * 40 + b"\n", "nesting beyond MAX_DEPTH"),
        (b"a: <<\n", "the merge key as a value"),
        (b"", "an empty file"),
        (b"\xff: 1\n", "bytes that are not UTF-8"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_rapidyaml_declines(data: bytes, why: str) -> None:
    with pytest.raises(Declined):
        read_rapid(data)


def test_is_safe_shortcuts_agree_with_the_resolver() -> None:
    """The shortcuts of _Typing.is_safe (long words, dotted numbers) never skip a typed scalar."""
    typing = yamlio._Typing(None)
    rnd = random.Random(7)
    alphabet = "yYnNtTfFoOeEaAlLsSuU0123456789.:-+_ #"
    for _ in range(20_000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 12)))
        expected = yamlio.tag_of(text) == "tag:yaml.org,2002:str" and not yamlio._odd(text)
        assert typing.is_safe(text) == expected, text
    for text in ("false", "FALSE", "1.2.3", "10.0.0.1", "2025-06-01", "1.5", "YJ-C0001", "Yes"):
        assert yamlio._Typing(None).is_safe(text) == (
            yamlio.tag_of(text) == "tag:yaml.org,2002:str" and not yamlio._odd(text)
        )


# --- what load_yaml shows -----------------------------------------------------------------------


def test_rapidyaml_says_nothing_on_stderr(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """ryml prints its own errors on stderr before raising them: slamon's message is the only one."""
    path = tmp_path / "broken.yaml"
    path.write_text("sites: []\ndevices: [a, b\n  c: d: e\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_yaml(path)
    assert str(caught.value).startswith(f"{path}: line ")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH])
def test_nesting_up_to_the_bound_is_read(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n", encoding="utf-8")
    value = load_yaml(path)
    for _ in range(depth - 1):
        assert isinstance(value, dict | list)
        value = value["a"] if isinstance(value, dict) else value[0]
    assert value == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: " + "[" * 32 + "]" * 32 + "\n", "line 1, column 35"),
        ("a: " + "{b: " * 1000 + "1" + "}" * 1000 + "\n", "line 1, column 128"),
        ("".join(" " * i + "a:\n" for i in range(40)) + " " * 40 + "x\n", "line 33, column 33"),
        ("- " * 100_000 + "x\n", "line 1, column 65"),
        ("[" * 100_000 + "]" * 100_000, "line 1, column 33"),
    ],
    ids=["flow", "flow mappings", "block mappings", "block sequences", "100,000 deep"],
)
def test_deeper_nesting_is_refused_with_its_line(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.process_time()
    with pytest.raises(
        InputError, match=f"^{re.escape(f'{path}: {where}: nested more than 32 levels deep')}$"
    ):
        load_yaml(path)
    assert time.process_time() - started < 10


def test_a_number_of_more_digits_than_python_reads(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("n: " + "7" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(
        InputError, match=re.escape(f"{path}: line 1, column 4: '{'7' * 40}'… is too long a number")
    ):
        load_yaml(path)


def test_what_others_write_on_stderr_meanwhile_comes_out(capfd: pytest.CaptureFixture[str]) -> None:
    """While ryml runs, descriptor 2 goes to a file: other threads' lines are written out after,
    ryml's own error lines are not."""
    with yamlio._quiet_stderr():
        os.write(2, b"a log line from another thread\n")
        os.write(2, b"line=1 col=7 (6B): ERROR: [parse] two colons on same line\n")
        os.write(2, b"/project/cpp/src/c4/yml/parse_engine.def.hpp:4335: (detected here)\n")
    assert capfd.readouterr().err == "a log line from another thread\n"
