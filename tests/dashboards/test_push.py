"""`push` through grafana-client against a fake of the two Grafana endpoints it uses, on loopback (no
Grafana server runs on these machines): the folder is looked up by uid and created when missing,
each dashboard is posted to /api/dashboards/db with overwrite and the folder uid, the token goes as
a bearer token, and Grafana's refusals become one error that names the server, never the secret."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from slamon.dashboards import DashboardPushError, build_all, load_dir, push, push_command
from slamon.errors import SlamonError
from tests.dashboards import COMMITTED

TOKEN = "glsa_test_token_0123456789"


@dataclass
class FakeGrafana:
    """What Grafana 11/12 answers on the folder and dashboard endpoints, and what it was sent."""

    folders: dict[str, str] = field(default_factory=dict)  # uid -> title
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> the posted body
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, auth
    refuse: tuple[int, dict[str, Any]] | None = None  # status and body for every dashboard post

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.record])
        app.router.add_get("/api/folders/{uid}", self.get_folder)
        app.router.add_post("/api/folders", self.create_folder)
        app.router.add_post("/api/dashboards/db", self.post_dashboard)
        return app

    @web.middleware
    async def record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path, request.headers.get("Authorization")))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"message": "Unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def get_folder(self, request: web.Request) -> web.Response:
        uid = request.match_info["uid"]
        if uid not in self.folders:
            return web.json_response({"message": "folder not found", "status": "not-found"}, status=404)
        return web.json_response({"uid": uid, "title": self.folders[uid], "id": 7})

    async def create_folder(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["uid"] in self.folders:
            return web.json_response({"message": "a folder with the same uid already exists"}, status=409)
        self.folders[body["uid"]] = body["title"]
        return web.json_response({"uid": body["uid"], "title": body["title"], "id": 7})

    async def post_dashboard(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.refuse is not None:
            status, reply = self.refuse
            return web.json_response(reply, status=status)
        if body.get("folderUid") not in self.folders:
            return web.json_response({"message": "folder not found"}, status=400)
        uid = body["dashboard"]["uid"]
        if uid in self.dashboards and not body.get("overwrite"):
            return web.json_response({"message": "A dashboard with the same uid already exists"}, status=412)
        self.dashboards[uid] = body
        return web.json_response(
            {"id": len(self.dashboards), "uid": uid, "url": f"/d/{uid}/x", "status": "success", "version": 1}
        )


@pytest.fixture
async def grafana(aiohttp_server: Any) -> tuple[FakeGrafana, str]:
    fake = FakeGrafana()
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    return fake, f"http://127.0.0.1:{server.port}"


async def test_push_creates_the_folder_then_posts_each_dashboard_with_overwrite(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    dashboards = build_all()
    urls = await asyncio.to_thread(push, url, TOKEN, "slamon", dashboards, folder_title="SLA monitoring")
    assert urls == [f"/d/{d['uid']}/x" for d in dashboards.values()]
    assert fake.folders == {"slamon": "SLA monitoring"}
    assert [(m, p) for m, p, _ in fake.requests] == [
        ("GET", "/api/folders/slamon"),
        ("POST", "/api/folders"),
        *[("POST", "/api/dashboards/db")] * 3,
    ]
    assert {auth for _, _, auth in fake.requests} == {f"Bearer {TOKEN}"}
    assert list(fake.dashboards) == ["slamon-fleet-overview", "slamon-device", "slamon-contract-month"]
    for doc in dashboards.values():
        body = fake.dashboards[doc["uid"]]
        assert body == {
            "dashboard": {**doc, "id": None},
            "folderUid": "slamon",
            "overwrite": True,
            "message": "slamon dashboards push",
        }


async def test_a_second_push_finds_the_folder_and_overwrites(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    dashboards = build_all()
    await asyncio.to_thread(push, url, TOKEN, "slamon", dashboards)
    fake.requests.clear()
    await asyncio.to_thread(push, url, TOKEN, "slamon", dashboards)
    assert [(m, p) for m, p, _ in fake.requests] == [("GET", "/api/folders/slamon")] + [
        ("POST", "/api/dashboards/db")
    ] * 3
    assert fake.folders == {"slamon": "slamon"}


@pytest.mark.parametrize(
    ("token", "refuse", "message"),
    [
        ("wrong", None, "Unauthorized"),
        (
            TOKEN,
            (412, {"message": "version-mismatch", "status": "version-mismatch"}),
            "Client Error 412: version-mismatch",
        ),
        (TOKEN, (500, {"message": "database is locked"}), "Server Error 500: database is locked"),
    ],
)
async def test_a_refusal_is_one_error_naming_grafana_not_the_token(
    grafana: tuple[FakeGrafana, str], token: str, refuse: tuple[int, dict[str, Any]] | None, message: str
) -> None:
    fake, url = grafana
    fake.refuse = refuse
    with pytest.raises(DashboardPushError) as caught:
        await asyncio.to_thread(push, url, token, "slamon", build_all())
    assert str(caught.value) == f"Grafana at {url}: {message}"
    assert TOKEN not in str(caught.value)


async def test_no_grafana_there_is_an_error_too() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://admin:s3cret@127.0.0.1:{port}"
    with pytest.raises(DashboardPushError) as caught:
        await asyncio.to_thread(push, url, None, "slamon", build_all(), timeout=2)
    assert str(caught.value) == f"Grafana at http://127.0.0.1:{port}: [Errno 111] Connection refused"


async def test_the_command_takes_the_url_and_token_from_the_environment(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    env = {"GRAFANA_URL": url, "GRAFANA_TOKEN": TOKEN}
    urls = await asyncio.to_thread(push_command, None, "GRAFANA_TOKEN", environ=env)
    assert len(urls) == 3
    assert fake.folders == {"slamon": "slamon"}
    assert {auth for _, _, auth in fake.requests} == {f"Bearer {TOKEN}"}


async def test_the_command_pushes_the_committed_json_from_a_folder(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    env = {"SLAMON_GRAFANA_TOKEN": TOKEN}
    await asyncio.to_thread(
        push_command, url, "SLAMON_GRAFANA_TOKEN", "ops", "Operations", COMMITTED, environ=env
    )
    assert fake.folders == {"ops": "Operations"}
    assert {uid: body["dashboard"] for uid, body in fake.dashboards.items()} == {
        d["uid"]: {**d, "id": None} for d in load_dir(COMMITTED).values()
    }


@pytest.mark.parametrize(
    ("url", "env", "message"),
    [
        (None, {}, "no Grafana URL: give --url or set GRAFANA_URL"),
        (
            "grafana:3000",
            {"GRAFANA_TOKEN": TOKEN},
            "grafana:3000: not a Grafana URL (http[s]://host[:port][/path])",
        ),
        (
            "http://127.0.0.1:3000",
            {"GRAFANA_TOKEN": ""},
            (
                "GRAFANA_TOKEN is not set: set it to a Grafana service account token (role Editor), "
                "or give the user and password in the URL (http://user:password@host:3000)"
            ),
        ),
    ],
)
def test_the_command_says_what_is_missing(url: str | None, env: dict[str, str], message: str) -> None:
    with pytest.raises(SlamonError) as caught:
        push_command(url, "GRAFANA_TOKEN", environ=env)
    assert str(caught.value) == message
