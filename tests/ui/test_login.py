"""The whole page behind the service's keys, with a login form (findings 1 and 9).

Against a real server with ``api_keys`` set: a stranger's browser is sent to ``/login``,
an API client gets 401 JSON, a wrong key sets no cookie, another site cannot post the
form, and ``next`` never leads off the site. The subject is the page's door, not the
model: the server runs on a scripted engine (``scripted_keyed``, ``scripted_server``).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from stepaudio.api import sessions
from stepaudio.api.sessions import SESSION_COOKIE
from stepaudio.testing.scripted import ScriptedEngine
from stepaudio.ui.login import safe_next
from tests.ui.conftest import KEY, Keyed

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def client(scripted_keyed: Keyed):
    with httpx.Client(base_url=scripted_keyed.url, timeout=30, follow_redirects=False) as c:
        yield c


def test_page_without_key_sends_a_browser_to_login(client: httpx.Client):
    r = client.get("/ui/?task=abc", headers=HTML)
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    assert target.path == "/login"
    assert parse_qs(target.query)["next"] == ["/ui/?task=abc"]
    # The root leads there too, and the page's files stay closed.
    assert client.get("/", headers=HTML).headers["location"].startswith("/login")
    for path in ("/ui/static/js/main.js", "/ui/static/app.css", "/ui/static/favicon.svg"):
        assert client.get(path).status_code == 401, path


def test_page_without_key_is_401_json_for_an_api_client(client: httpx.Client):
    r = client.get("/ui/", headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"


def test_login_form_is_plain_and_self_contained(client: httpx.Client):
    r = client.get("/login", params={"next": "/ui/?task=abc"}, headers=HTML)
    assert r.status_code == 200
    page = r.text
    assert '<form method="post" action="/login">' in page
    assert '<label for="key">' in page and 'id="key"' in page
    assert 'value="/ui/?task=abc"' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    zh = client.get("/login", headers={**HTML, "Accept-Language": "zh-CN"})
    assert "登录" in zh.text and 'lang="zh-CN"' in zh.text


def test_wrong_key_is_401_with_the_form_and_no_cookie(client: httpx.Client):
    r = client.post("/login", data={"key": "not-a-key", "next": "/ui/"}, headers=HTML)
    assert r.status_code == 401
    assert 'role="alert"' in r.text and "not valid" in r.text
    assert "set-cookie" not in r.headers
    assert '<form method="post" action="/login">' in r.text


def session_of(response: httpx.Response) -> str:
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    return cookie.split(";", 1)[0].split("=", 1)[1]


def test_right_key_sets_a_strict_httponly_session_cookie_and_goes_on(client: httpx.Client):
    r = client.post("/login", data={"key": KEY, "next": "/ui/?task=abc"})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/?task=abc"
    session = session_of(r)
    assert KEY not in r.headers["set-cookie"], "the cookie must never hold the key"
    assert len(session) >= 40  # 256 random bits
    flags = {part.strip().lower() for part in r.headers["set-cookie"].split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain http on loopback
    assert any(f.startswith("max-age=") and int(f[8:]) > 0 for f in flags)  # it expires
    # The session opens the page (and the API) as the key does.
    page = client.get("/ui/", headers=HTML, cookies={SESSION_COOKIE: session})
    assert page.status_code == 200 and "static/js/main.js" in page.text
    tasks = client.get("/api/tasks", cookies={SESSION_COOKIE: session})
    assert tasks.status_code == 200
    # Two logins are two sessions.
    assert session_of(client.post("/login", data={"key": KEY})) != session


@pytest.mark.parametrize(
    "cookie",
    [
        {"stepaudio_key": KEY},  # the old cookie held the key itself: no longer a way in
        {SESSION_COOKIE: KEY},
        {SESSION_COOKIE: "x" * 43},
        {SESSION_COOKIE: "x" * 5000},
    ],
)
def test_a_forged_or_raw_key_cookie_opens_nothing(client: httpx.Client, cookie: dict):
    assert client.get("/api/tasks", cookies=cookie).status_code == 401


def test_cookie_is_secure_when_the_request_came_over_https(client: httpx.Client):
    # uvicorn trusts X-Forwarded-Proto from loopback (the proxy in front, in a deployment).
    r = client.post("/login", data={"key": KEY}, headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 303
    assert "secure" in {p.strip().lower() for p in r.headers["set-cookie"].split(";")}


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", ""],
)
def test_next_never_leaves_the_site(client: httpx.Client, target: str):
    r = client.post("/login", data={"key": KEY, "next": target})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/"


def test_another_site_cannot_post_the_login_form(client: httpx.Client):
    """Login CSRF: evil.example's page posting its own key would log the visitor in as
    the attacker (whose task list then holds the visitor's recordings)."""
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Origin": "null"},
    ):
        r = client.post("/login", data={"key": KEY, "next": "/ui/"}, headers=headers)
        assert r.status_code == 403, headers
        assert "set-cookie" not in r.headers
    same = client.post(
        "/login",
        data={"key": KEY},
        headers={"Origin": str(client.base_url).rstrip("/"), "Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 303


def test_logout_revokes_the_session_and_clears_the_cookie(client: httpx.Client):
    session = session_of(client.post("/login", data={"key": KEY}))
    cookies = {SESSION_COOKIE: session}
    assert client.get("/api/tasks", cookies=cookies).status_code == 200
    # A GET (a link or an image on any site) changes nothing: it shows a button.
    shown = client.get("/logout", cookies=cookies, headers=HTML)
    assert shown.status_code == 200 and '<form method="post" action="/logout">' in shown.text
    assert "set-cookie" not in shown.headers
    assert client.get("/api/tasks", cookies=cookies).status_code == 200
    r = client.post("/logout", cookies=cookies)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "max-age=0" in cookie
    # Revoked on the server: a copy of the cookie kept elsewhere opens nothing any more.
    assert client.get("/api/tasks", cookies=cookies).status_code == 401
    assert client.get("/ui/", cookies=cookies, headers=HTML).status_code == 303


def test_another_site_cannot_post_the_logout(client: httpx.Client):
    session = session_of(client.post("/login", data={"key": KEY}))
    cookies = {SESSION_COOKIE: session}
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Origin": "null"},
    ):
        r = client.post("/logout", cookies=cookies, headers=headers)
        assert r.status_code == 403, headers
        assert "set-cookie" not in r.headers
    assert client.get("/api/tasks", cookies=cookies).status_code == 200


def test_a_session_expires(scripted_keyed: Keyed, monkeypatch: pytest.MonkeyPatch):
    """A session row past its time opens nothing (checked on the database row)."""
    from datetime import timedelta

    from sqlalchemy import create_engine, update

    from stepaudio.tasks.models import PageSession, utcnow

    # The server runs in this process: its in-process cache of live answers (CACHE_S,
    # 5 s) is shortened, so that the test waits for it to lapse in a second.
    monkeypatch.setattr(sessions, "CACHE_S", 0.5)
    keyed = scripted_keyed
    with httpx.Client(base_url=keyed.url, timeout=30, follow_redirects=False) as c:
        session = session_of(c.post("/login", data={"key": KEY}))
        assert c.get("/api/tasks", cookies={SESSION_COOKIE: session}).status_code == 200
        engine = create_engine(f"sqlite:///{keyed.data_dir / 'tasks.db'}")
        with engine.begin() as conn:
            conn.execute(update(PageSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        engine.dispose()
        time.sleep(sessions.CACHE_S + 0.5)  # a live answer is remembered this long in-process
        assert c.get("/api/tasks", cookies={SESSION_COOKIE: session}).status_code == 401


def test_without_keys_there_is_no_login(scripted_server: tuple[str, ScriptedEngine]):
    with httpx.Client(base_url=scripted_server[0], follow_redirects=False) as c:
        r = c.get("/login", params={"next": "/ui/"}, headers=HTML)
        assert r.status_code == 303 and r.headers["location"] == "/ui/"
        assert c.get("/ui/", headers=HTML).status_code == 200


def test_safe_next():
    assert safe_next("/ui/?task=1") == "/ui/?task=1"
    assert safe_next("/api/tasks") == "/api/tasks"
    for bad in (None, "", "ui", "//x", "/\\x", "/\tx", "http://x/", "/x\r\nSet-Cookie: a=b"):
        assert safe_next(bad) == "/ui/", bad
