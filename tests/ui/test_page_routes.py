"""The page is files and a login; everything it does is the public API, and its session
cannot be ridden by another site. On a real server with keys, on a scripted engine."""

from __future__ import annotations

import time

import httpx
import pytest

from stepaudio.api import create_app
from stepaudio.config import Settings
from stepaudio.testing.scripted import ScriptedEngine
from tests.helpers import clip
from tests.ui.conftest import KEY, OTHER_KEY, Keyed

PAGE = {"X-StepAudio-Page": "1"}


@pytest.fixture
def session(scripted_keyed: Keyed) -> httpx.Client:
    """A client holding KEY's page session (the cookie the login sets)."""
    with httpx.Client(base_url=scripted_keyed.url, timeout=30) as c:
        r = c.post("/login", data={"key": KEY, "next": "/ui/"}, follow_redirects=False)
        assert r.status_code == 303
        yield c


def jfk() -> dict:
    return {"audio": ("jfk.flac", clip("en/jfk.flac").read_bytes(), "audio/flac")}


def test_every_page_route_only_serves_files():
    """No route under /ui takes anything from the client but a file's name."""
    app = create_app(Settings(_env_file=None), engine=ScriptedEngine())
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/ui"):
            methods = getattr(route, "methods", None)
            assert methods is None or methods <= {"GET", "HEAD"}, (path, methods)


def test_the_page_and_its_files_carry_a_strict_policy(session: httpx.Client):
    for path in ("/ui/", "/ui/static/js/main.js", "/ui/static/app.css"):
        r = session.get(path)
        assert r.status_code == 200, path
        policy = r.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "javascript" in session.get("/ui/static/js/main.js").headers["content-type"]


@pytest.mark.parametrize(
    "path",
    [
        "/ui/static/../page.py",
        "/ui/static/%2e%2e/page.py",
        "/ui/static/..%2fpage.py",
        "/ui/static/%2e%2e/%2e%2e/config.py",
        "/ui/static//etc/passwd",
        "/ui/static/js/../../page.py",
    ],
)
def test_no_file_outside_the_page_is_served(session: httpx.Client, path: str):
    r = session.get(path)
    assert r.status_code == 404 or "UI_PATH" not in r.text, (path, r.status_code)
    assert "def mount_ui" not in r.text and "root:" not in r.text


def test_posting_to_the_page_does_nothing(session: httpx.Client):
    for path in ("/ui/", "/ui/static/js/main.js"):
        r = session.post(path, headers=PAGE, files=jfk())
        assert r.status_code in (404, 405), (path, r.status_code)


def test_the_session_works_for_the_page_with_its_header(session: httpx.Client, scripted_keyed):
    r = session.post(
        "/api/process",
        data={"mode": "asr"},
        files=jfk(),
        headers={**PAGE, "Origin": scripted_keyed.url},
    )
    assert r.status_code == 200 and "heard" in r.json()["transcript"]


def test_the_session_without_the_page_header_is_refused(session: httpx.Client):
    """A form another site posts (it can make the browser send our cookie, not our
    header): 403, before the upload is read."""
    r = session.post("/api/process", data={"mode": "asr"}, files=jfk())
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "cross_site_request"
    for method, path in (("DELETE", "/api/task/x?purge=true"), ("POST", "/api/task")):
        assert session.request(method, path).status_code == 403


def test_the_session_from_another_origin_is_refused(session: httpx.Client):
    r = session.post(
        "/api/process",
        data={"mode": "asr"},
        files=jfk(),
        headers={**PAGE, "Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site_request"


def test_reading_needs_no_header_and_keys_need_none(session: httpx.Client, scripted_keyed):
    assert session.get("/api/tasks").status_code == 200
    with httpx.Client(base_url=scripted_keyed.url, timeout=30) as c:
        r = c.post(
            "/api/process",
            data={"mode": "asr"},
            files=jfk(),
            headers={"Authorization": f"Bearer {KEY}", "Origin": "https://elsewhere.example"},
        )
        assert r.status_code == 200


def result(session: httpx.Client) -> dict:
    r = session.post(
        "/api/process", data={"mode": "asr", "diarize": "true"}, files=jfk(), headers=PAGE
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_render_gives_every_download_format(session: httpx.Client):
    body = result(session)
    body["segments"][0]["speaker"] = "Alice"
    for fmt, marker in (("srt", "-->"), ("vtt", "WEBVTT"), ("txt", "heard"), ("md", "#")):
        r = session.post(f"/api/render?format={fmt}", json=body, headers=PAGE)
        assert r.status_code == 200 and marker in r.text, (fmt, r.text[:200])
    assert "Alice" in session.post("/api/render?format=srt", json=body, headers=PAGE).text
    assert session.post("/api/render?format=json", json=body, headers=PAGE).json() == body


@pytest.mark.parametrize(
    "query, body",
    [
        ("format=exe", None),
        ("format=srt", {"answer": "x"}),
        ("format=srt", "not an object"),
        ("format=srt", {"segments": [{"start": "soon"}]}),
    ],
)
def test_render_refuses_what_it_cannot_render(session: httpx.Client, query, body):
    good = result(session)
    r = session.post(f"/api/render?{query}", json=good if body is None else body, headers=PAGE)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"]


def task(client: httpx.Client, key: str) -> str:
    r = client.post("/api/task", data={"mode": "asr"}, files=jfk(), headers={"X-API-Key": key})
    assert r.status_code == 202, r.text
    return r.json()["task_id"]


def finished(client: httpx.Client, task_id: str) -> dict:
    for _ in range(200):
        view = client.get(f"/api/task/{task_id}", headers={"X-API-Key": KEY}).json()
        if view["status"] in ("completed", "failed", "cancelled"):
            return view
        time.sleep(0.1)
    raise AssertionError("the task never finished")


def test_a_finished_task_can_be_purged_by_its_owner_only(scripted_keyed: Keyed):
    with httpx.Client(base_url=scripted_keyed.url, timeout=30) as c:
        task_id = task(c, KEY)
        assert finished(c, task_id)["status"] == "completed"
        other = c.delete(f"/api/task/{task_id}?purge=true", headers={"X-API-Key": OTHER_KEY})
        assert other.status_code == 404
        mine = c.delete(f"/api/task/{task_id}?purge=true", headers={"X-API-Key": KEY})
        assert mine.status_code == 204
        assert c.get(f"/api/task/{task_id}", headers={"X-API-Key": KEY}).status_code == 404
        listed = c.get("/api/tasks", headers={"X-API-Key": KEY}).json()["tasks"]
        assert task_id not in [t["task_id"] for t in listed]


def test_status_says_which_controls_the_engine_honours(session: httpx.Client):
    features = session.get("/api/status").json()["features"]
    # The embedded engine does not reason: the page shows no reasoning switch.
    assert features == {"thinking": False, "logout": True}
