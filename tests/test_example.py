"""The July 2025 example district (examples/july-2025): the figures the README and docs/sla.md quote,
and every figure against the independent reference implementation."""

from __future__ import annotations

import gzip
import runpy
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from slamon.billing.statement import compute
from slamon.history import import_history
from slamon.issuing import gather
from slamon.loaders.config import load_config
from slamon.loaders.fleet import load_fleet
from slamon.store import Store
from tests.billing.test_against_reference import assert_matches_reference
from tests.reference.sla_reference import compute_statement

pytestmark = pytest.mark.slow  # the July example month: a 1.5-million-row import

EXAMPLE = Path(__file__).parent.parent / "examples" / "july-2025"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("july-2025")
    for name in ("slamon.yaml", "inventory.yaml", "exclusions.yaml", "contracts"):
        src = EXAMPLE / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    argv = sys.argv
    sys.argv = ["generate.py", str(root / "probes.csv.gz")]
    try:
        runpy.run_path(str(EXAMPLE / "generate.py"), run_name="__main__")
    finally:
        sys.argv = argv
    return root


def test_the_example_month(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(example / "slamon.yaml")
    fleet = load_fleet(config)
    store = Store(config.database)
    try:
        report = import_history(example / "probes.csv.gz", store, fleet, datetime(2025, 8, 2, tzinfo=UTC))
        assert report.rows == 1_476_400
        with store.begin() as tx:
            st = compute(gather(tx, "YJ-2025", "2025-07"))
    finally:
        store.close()
    doc = st.document(status="draft", revision=1, replaces=None)
    assert (doc["fee_total"], doc["deduction_total"], doc["payable"]) == ("1896.41", "568.92", "1327.49")
    assert [(line["rule"], line.get("device"), line["amount"]) for line in doc["deductions"]] == [
        ("availability_tier", "YJ-C0007", "9.23"),
        ("availability_tier", "YJ-C0017", "9.23"),
        ("repair_overrun", "YJ-C0003", "100.00"),
        ("repair_overrun", "YJ-C0007", "500.00"),
        ("repair_overrun", "YJ-C0017", "100.00"),
        ("cap", None, "-149.54"),
    ]

    sla_doc = (EXAMPLE.parent.parent / "docs" / "sla.md").read_text(encoding="utf-8")
    assert doc["hash"] in sla_doc, "docs/sla.md quotes the example's hash: update it with the statement"

    plain = example / "probes.csv"
    plain.write_bytes(gzip.decompress((example / "probes.csv.gz").read_bytes()))
    ref = compute_statement(
        example / "inventory.yaml",
        [example / "contracts" / "yj-2025.yaml"],
        example / "exclusions.yaml",
        [plain],
        "YJ-2025",
        "2025-07",
    )
    assert_matches_reference(st, doc, ref, "july-2025 example")


def test_the_example_month_as_the_files_a_bureau_gets(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What scripts/example-statement writes: the PDF's text carries the JSON's totals on page 1 and
    the buyer from the contract file; its Chinese font is embedded; the CSV and XLSX have the
    Chinese headings."""
    import json
    import shutil
    import subprocess

    from openpyxl import load_workbook

    from slamon.cli import main

    if not (shutil.which("pdftotext") and shutil.which("pdffonts")):
        pytest.skip("poppler-utils is not installed (apt-get install poppler-utils)")
    config = str(example / "slamon.yaml")
    assert main(["-c", config, "import", str(example / "probes.csv.gz")]) == 0
    out = example / "out"
    for suffix in ("json", "csv", "xlsx", "pdf"):
        month = ["--contract", "YJ-2025", "--month", "2025-07"]
        assert main(["-c", config, "statement", *month, "-o", str(out / f"july.{suffix}")]) == 0
    capsys.readouterr()
    doc = json.loads((out / "july.json").read_text(encoding="utf-8"))
    page1 = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(out / "july.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (doc["fee_total"], doc["deduction_total"], doc["payable"]) == ("1896.41", "568.92", "1327.49")
    for text in (
        "¥1896.41",
        "¥568.92",
        "¥1327.49",
        "人民币壹仟叁佰贰拾柒元肆角玖分",
        "某某市公安局右江分局",
        "盖章",
    ):
        assert text in page1, text
    fonts = subprocess.run(
        ["pdffonts", str(out / "july.pdf")], capture_output=True, text=True, check=True
    ).stdout
    assert "WenQuanYi" in fonts
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:])
    assert (out / "july.csv").read_text(encoding="utf-8").startswith("\ufeff栏目,合同编号,")
    assert load_workbook(out / "july.xlsx")["设备 Devices"]["A1"].value == "设备编号"
