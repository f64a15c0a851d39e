"""A throwaway monitoring stack for the ops tests: the shipped configs rewritten for a test (loopback
ports, 1 s intervals, webhooks to a local receiver), a real Alertmanager and Prometheus as processes,
and an aiohttp webhook that keeps every notification it is sent.

Nothing here waits without a bound: every wait polls with a deadline and says what it waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
EXPORTERS = ROOT / "exporters"
DOCS = ROOT / "docs"
POLL_S = 0.1
HTTP_TIMEOUT_S = 2.0


def wait_for(check: Callable[[], object], what: str, limit: float, *, detail: Callable[[], str] = str) -> Any:
    """Poll `check` until it returns something true (which is returned), for at most `limit` seconds.
    OSError and ValueError (a server not up yet, a half-written answer) count as "not yet"."""
    deadline = time.monotonic() + limit
    while True:
        try:
            got = check()
        except (OSError, ValueError):
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}\n{detail()}")
        time.sleep(POLL_S)


def http_json(url: str, data: object = None) -> Any:
    """GET (or POST `data` as JSON) and parse the answer."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
        text = resp.read()
    return json.loads(text) if text else None


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def free_port() -> int:
    """A loopback TCP port nobody holds right now (for processes started in the host's network)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the shipped configs, rewritten for a test --------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def alertmanager_config(dest: Path, webhook_url: str) -> Path:
    """alerts/alertmanager.yml with every receiver's webhook sent to `webhook_url`/<receiver name>,
    and group_wait and group_interval of 1 s (repeat intervals as shipped: no repeats in a test)."""
    config = load_yaml(ALERTS / "alertmanager.yml")

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}/{receiver['name']}"
    return write_yaml(dest, config)


def fleet_rules(dest: Path, for_: str) -> Path:
    """alerts/slamon.rules.yml with every `for:` of the slamon-fleet group set to `for_`, so that a
    test sees a page within seconds; slamon's own health (slamon-self) keeps its minutes."""
    rules = load_yaml(ALERTS / "slamon.rules.yml")
    for group in rules["groups"]:
        if group["name"] == "slamon-fleet":
            for rule in group["rules"]:
                rule["for"] = for_
    return write_yaml(dest, rules)


def prometheus_config(
    dest: Path, *, slamon: str, alertmanager: str, rule_files: list[Path], interval: str = "1s"
) -> Path:
    """exporters/prometheus.yml scraping `slamon` and evaluating every `interval`, alerting
    `alertmanager`, with these rule files."""
    config = load_yaml(EXPORTERS / "prometheus.yml")
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    [job] = config["scrape_configs"]
    job.update(scrape_interval=interval, scrape_timeout=interval)
    job["static_configs"] = [{"targets": [slamon]}]
    config["rule_files"] = [str(p) for p in rule_files]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    return write_yaml(dest, config)


def shipped_rule_files(dest: Path, for_: str) -> list[Path]:
    """The rule files exporters/prometheus.yml loads, the alerts' fleet `for:` shortened."""
    config = load_yaml(EXPORTERS / "prometheus.yml")
    out = []
    for name in config["rule_files"]:
        path = (EXPORTERS / name).resolve()
        out.append(fleet_rules(dest / path.name, for_) if path == ALERTS / "slamon.rules.yml" else path)
    return out


# --- processes ----------------------------------------------------------------------------------


def alertmanager_argv(binary: str, config: Path, data: Path, listen: str) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address={listen}",
        "--cluster.listen-address=",  # no gossip port: one instance, loopback only
        "--log.level=warn",
    ]


def prometheus_argv(binary: str, config: Path, data: Path, listen: str) -> list[str]:
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address={listen}",
        f"--web.external-url=http://{listen}/",
        "--log.level=warn",
    ]


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path.name}: nothing)"
    return f"--- {path.name}, last lines:\n" + "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process in this network namespace, its output in `log`; stopped (by its PID) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


# --- the webhook --------------------------------------------------------------------------------


class Webhook:
    """An aiohttp server, in a thread of its own, that keeps every notification POSTed to it with
    the path it came to (Alertmanager's receivers are told to post to /<receiver name>).

    It serves a socket the caller made, so that a test can make it inside a network namespace.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._received: list[tuple[str, dict[str, Any]]] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("the webhook did not start within 10 s")
        if self._failed is not None:
            raise AssertionError(f"the webhook did not start: {self._failed!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def received(self) -> list[tuple[str, dict[str, Any]]]:
        """(path, notification) for each POST so far, in order."""
        with self._lock:
            return list(self._received)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self._received.append((request.path, body))
        return web.Response(text="ok")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except OSError as exc:  # the socket cannot be served: __enter__ reports it
            self._failed = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{receiver}", self._hook)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, self._sock).start()
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


def alerts_of(notification: dict[str, Any]) -> list[tuple[str, str]]:
    """(alertname, the device or site it names) of each alert in a notification."""
    return [
        (a["labels"]["alertname"], a["labels"].get("device") or a["labels"].get("site", ""))
        for a in notification["alerts"]
    ]


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    answer = http_json(url)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])
