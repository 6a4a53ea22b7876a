"""The whole page behind the service's keys, with a login form (findings 1 and 9).

Against a real server with ``api_keys`` set: a stranger's browser is sent to ``/login``,
an API client gets 401 JSON, a wrong key sets no cookie, another site cannot post the
form, and ``next`` never leads off the site.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from stepaudio.api.auth import KEY_COOKIE
from stepaudio.ui.login import safe_next
from tests.ui.conftest import KEY, Keyed

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def client(keyed: Keyed):
    with httpx.Client(base_url=keyed.url, timeout=30, follow_redirects=False) as c:
        yield c


def test_page_without_key_sends_a_browser_to_login(client: httpx.Client):
    r = client.get("/ui/?task=abc", headers=HTML)
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    assert target.path == "/login"
    assert parse_qs(target.query)["next"] == ["/ui/?task=abc"]
    # The root leads there too, and Gradio's own config and assets stay closed.
    assert client.get("/", headers=HTML).headers["location"].startswith("/login")
    for path in ("/ui/config", "/ui/gradio_api/info", "/ui/theme.css"):
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


def test_right_key_sets_a_strict_httponly_cookie_and_goes_on(client: httpx.Client):
    r = client.post("/login", data={"key": KEY, "next": "/ui/?task=abc"})
    assert r.status_code == 303
    assert r.headers["location"] == "/ui/?task=abc"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{KEY_COOKIE}={KEY};")
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain http on loopback
    # The cookie opens the page (and the API) as the key does.
    page = client.get("/ui/", headers=HTML, cookies={KEY_COOKIE: KEY})
    assert page.status_code == 200 and "gradio" in page.text.lower()
    tasks = client.get("/api/tasks", cookies={KEY_COOKIE: KEY})
    assert tasks.status_code == 200


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


def test_logout_clears_the_cookie(client: httpx.Client):
    r = client.get("/logout", cookies={KEY_COOKIE: KEY})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith(f"{KEY_COOKIE}=") and "max-age=0" in cookie


def test_without_keys_there_is_no_login(server: str):
    with httpx.Client(base_url=server, follow_redirects=False) as c:
        r = c.get("/login", params={"next": "/ui/"}, headers=HTML)
        assert r.status_code == 303 and r.headers["location"] == "/ui/"
        assert c.get("/ui/", headers=HTML).status_code == 200


def test_safe_next():
    assert safe_next("/ui/?task=1") == "/ui/?task=1"
    assert safe_next("/api/tasks") == "/api/tasks"
    for bad in (None, "", "ui", "//x", "/\\x", "/\tx", "http://x/", "/x\r\nSet-Cookie: a=b"):
        assert safe_next(bad) == "/ui/", bad
