"""What the benchmark scripts share: timing a whole process, the machine, medians, PostgreSQL."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
TIME = "/usr/bin/time"


def slamon_command() -> list[str]:
    """The slamon console script of the interpreter running the benchmark (the venv's)."""
    script = Path(sys.executable).parent / "slamon"
    if script.is_file():
        return [str(script)]
    found = shutil.which("slamon")
    return [found] if found else [sys.executable, "-m", "slamon.cli"]


def python_with(source: Path | None, code: str) -> list[str]:
    """`python -c code` with slamon imported from a copy of the package (e.g. `git archive HEAD
    slamon | tar -x -C DIR`) instead of the installed one, so one commit can be measured while the
    work tree changes; the installed one when source is None. (PYTHONPATH alone does not do it:
    the editable install's finder comes first.)"""
    prelude = ""
    if source is not None:
        prelude = (
            f"import sys; sys.path.insert(0, {str(source.resolve())!r}); "
            "sys.meta_path[:] = [f for f in sys.meta_path "
            "if not getattr(f, '__module__', '').startswith('__editable__')]; "
        )
    return [sys.executable, "-c", prelude + code]


def slamon_from(source: Path | None) -> list[str]:
    """The slamon command of python_with: the installed console script when source is None."""
    if source is None:
        return slamon_command()
    return python_with(source, "import sys; from slamon.cli import main; sys.exit(main())")


@dataclass(slots=True)
class Measure:
    """One run of a whole process under /usr/bin/time -v."""

    wall_s: float
    user_s: float
    sys_s: float
    rss_mb: float  # peak resident set size of the process (MiB)
    returncode: int
    stdout: str = field(repr=False, default="")
    stderr: str = field(repr=False, default="")
    server_cpu_s: float | None = None  # PostgreSQL's own processes, when measured

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_timed(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout_to: Path | None = None,
    postgres: bool = False,
    timeout: float = 3600,
) -> Measure:
    """Run cmd under `/usr/bin/time -v`, wall time by the clock here; raise if it fails."""
    if not Path(TIME).is_file():
        raise SystemExit(f"{TIME} is missing: apt-get install -y --no-install-recommends time")
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as report:
        report_path = Path(report.name)
    try:
        out_file = stdout_to.open("wb") if stdout_to is not None else None
        pg_before = postgres_cpu_s() if postgres else None
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                [TIME, "-v", "-o", str(report_path), *cmd],
                cwd=cwd,
                env=None if env is None else {**os.environ, **env},
                stdout=out_file if out_file is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=timeout,
                check=False,
            )
        finally:
            if out_file is not None:
                out_file.close()
        wall = time.perf_counter() - started
        server = None
        if pg_before is not None:
            time.sleep(0.2)  # let the backend exit and be reaped, so its CPU shows in the postmaster
            server = postgres_cpu_s() - pg_before
        fields = _time_fields(report_path.read_text(encoding="utf-8", errors="replace"))
    finally:
        report_path.unlink(missing_ok=True)
    m = Measure(
        wall_s=wall,
        user_s=float(fields.get("User time (seconds)", "nan")),
        sys_s=float(fields.get("System time (seconds)", "nan")),
        rss_mb=int(fields.get("Maximum resident set size (kbytes)", "0")) / 1024,
        returncode=proc.returncode,
        stdout=(proc.stdout or b"").decode("utf-8", "replace") if out_file is None else "",
        stderr=proc.stderr.decode("utf-8", "replace"),
        server_cpu_s=server,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{m.stderr[-3000:]}")
    return m


def _time_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().rpartition(": ")
        if sep:
            fields[key] = value
    return fields


def postgres_cpu_s() -> float:
    """CPU seconds used so far by the local PostgreSQL server: every live postgres process, plus
    the children the postmaster has already reaped (its cutime/cstime)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm_end = text.rfind(")")
        if text[text.find("(") + 1 : comm_end] != "postgres":
            continue
        rest = text[comm_end + 2 :].split()
        # fields 14-17 of stat (utime stime cutime cstime) are rest[11:15]
        total += sum(int(v) for v in rest[11:15])
    return total / tick


# --- figures ------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """`median (min-max)` of the runs."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def timing(runs: int, col: Callable[[str], list[float]]) -> dict[str, Any]:
    """Wall, CPU and peak RSS of every run, and their medians: what every report starts from."""
    return {
        "runs": runs,
        "wall_s": col("wall_s"),
        "cpu_s": col("cpu_s"),
        "rss_mb": col("rss_mb"),
        "median_wall_s": median(col("wall_s")),
        "median_cpu_s": median(col("cpu_s")),
        "median_rss_mb": median(col("rss_mb")),
    }


def summary(measures: Sequence[Measure]) -> dict[str, Any]:
    def col(name: str) -> list[float]:
        return [float(getattr(m, name)) for m in measures]

    out = timing(len(measures), col)
    servers = [m.server_cpu_s for m in measures if m.server_cpu_s is not None]
    if servers:
        out["server_cpu_s"] = servers
        out["median_server_cpu_s"] = median(servers)
    return out


# --- the machine --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    info: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite_library": sqlite3.sqlite_version,
        "sqlite3_cli": _version(["sqlite3", "--version"]),
        "slamon_commit": _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "slamon_tree_clean": _version(
            ["git", "--no-optional-locks", "-C", str(ROOT), "status", "--porcelain", "--", "slamon"]
        )
        == "",
        "loadavg_start": _loadavg(),
    }
    try:
        import slamon

        info["slamon_version"] = slamon.__version__
        info["slamon_path"] = str(Path(slamon.__file__).resolve().parent)
    except ImportError:  # pragma: no cover
        pass
    return info


def _version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().split(" ")[0] if cmd[0] == "sqlite3" else out.stdout.strip()


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def describe(info: Mapping[str, Any]) -> str:
    here = info.get("slamon_path") in (None, str(ROOT / "slamon"))
    if here:
        dirty = "" if info["slamon_tree_clean"] else " + uncommitted changes in slamon/"
        source = f"@ {info['slamon_commit']}{dirty}"
    else:
        source = f"from {info['slamon_path']} (not this work tree)"
    return (
        f"{info['date']}: {info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB, "
        f"Linux {info['kernel']}, Python {info['python']}, SQLite {info['sqlite_library']} "
        f"(sqlite3 CLI {info['sqlite3_cli']}), slamon {info.get('slamon_version')} {source}; "
        f"load average {info['loadavg_start']} at start, {info.get('loadavg_end', '?')} at end"
    )


def save(path: Path, doc: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=_default) + "\n", encoding="utf-8")


def _default(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)  # type: ignore[call-overload]
    return str(value)


def finish(info: dict[str, Any]) -> None:
    info["loadavg_end"] = _loadavg()


ROWS_PER_S = re.compile(r"\(([0-9,]+) rows/s\)")


def sqlite_files(db: Path) -> list[Path]:
    return [
        db,
        db.with_name(db.name + "-wal"),
        db.with_name(db.name + "-shm"),
        db.with_name(db.name + "-journal"),
    ]


def remove_sqlite(db: Path) -> None:
    for f in sqlite_files(db):
        f.unlink(missing_ok=True)


# --- PostgreSQL ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Postgres:
    host: str = "127.0.0.1"
    port: int = 5432
    database: str = "test"

    def url(self, schema: str) -> str:
        return (
            f"postgresql+psycopg://{self.host}:{self.port}/{self.database}?options=-csearch_path%3D{schema}"
        )

    def psql(self, schema: str | None = None) -> tuple[list[str], dict[str, str]]:
        cmd = [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-d",
            self.database,
        ]
        env = {"PGOPTIONS": f"-csearch_path={schema}"} if schema else {}
        return cmd, env

    def run(self, sql: str, schema: str | None = None) -> str:
        cmd, env = self.psql(schema)
        out = subprocess.run(
            [*cmd, "-At", "-c", sql],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"psql: {sql}: {out.stderr.strip()}")
        return out.stdout.strip()

    def fresh_schema(self, schema: str) -> None:
        self.run(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")

    def drop_schema(self, schema: str) -> None:
        self.run(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    def version(self) -> str:
        return self.run("SHOW server_version")


def port_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound (in the network namespace the caller is in)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
