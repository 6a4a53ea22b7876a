"""The web page's login: a key typed once, a session in an HttpOnly cookie.

``GET /login`` shows a plain form (no scripts, no outside assets); ``POST /login`` checks
the key as the API does (``owner_of``) and, if it is one of ``api_keys``, starts a
session (``api/sessions.py``: a random id, stored hashed server-side, expiring after
``page_session_hours``) and sets it as the ``stepaudio_session`` cookie (HttpOnly: the
page's scripts never see it; SameSite=Strict: another site's pages cannot make the
browser send it; Secure over https) and goes on to ``next``. The key itself is never
stored in the browser: a stolen cookie is worth one session, which logging out revokes.

``POST /logout`` revokes the session and clears the cookie; ``GET /logout`` only shows a
button that posts it (a link or an image on another site must not log anyone out). With
no keys configured there is nothing to log in to: all of them lead straight to the page.

A cross-site POST to ``/login`` (another site logging the visitor in under the
attacker's key, whose tasks the attacker could then read) or to ``/logout`` is refused by
its ``Origin`` / ``Sec-Fetch-Site``, which browsers set on every form post.
"""

from __future__ import annotations

from html import escape
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stepaudio.api.auth import owner_of
from stepaudio.api.sessions import SESSION_COOKIE, PageSessions
from stepaudio.config import Settings
from stepaudio.ui.i18n import LANGUAGES, pick_language, t

HOME = "/ui/"
# The form is ours and self-contained: nothing else may run, load, frame it or be posted to.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    # Not "no-referrer": Chromium then sends "Origin: null" with the form's own post.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

STYLE = """
body { font: 16px/1.5 system-ui, "Segoe UI", "Noto Sans CJK SC", sans-serif;
       margin: 0; min-height: 100vh; display: grid; place-items: center; background: #f6f7fb; }
main { background: #fff; padding: 2em; border-radius: .75em; width: min(24em, 90vw);
       box-shadow: 0 1px 4px rgba(0,0,0,.12); }
h1 { font-size: 1.3em; margin-top: 0; }
label { display: block; font-weight: 600; margin-bottom: .25em; }
input[type=password] { width: 100%; box-sizing: border-box; padding: .5em; font: inherit; }
button { margin-top: 1em; padding: .5em 1.5em; font: inherit; cursor: pointer; }
[role=alert] { color: #b91c1c; }
nav { margin-top: 1em; font-size: .9em; }
"""


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the page: never another site.

    ``//host`` and ``/\\host`` are read by browsers as another host; a scheme or a host
    in the value (or control characters, which browsers strip) is refused too."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME
    return target


def _same_site(request: Request) -> bool:
    """Whether a form post came from this site (browsers say so in these headers)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        # Set by the browser itself (a page's scripts cannot), so it decides alone.
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # No Origin: not a browser's cross-site form post (they always send one); "null"
        # comes from sandboxed or privacy-sensitive contexts: refuse those.
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


def _document(lang: str, title: str, body: str) -> str:
    """One self-contained page (no scripts, no outside assets) titled ``title``."""
    return f"""<!doctype html>
<html lang="{"zh-CN" if lang == "zh" else "en"}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{STYLE}</style>
<link rel="icon" href="data:,"></head>
<body><main>
<h1>{escape(title)}</h1>
{body}
</main></body></html>"""


def login_page(lang: str, next_path: str, message: str = "") -> str:
    """The form, in ``lang``, with an optional error ``message`` announced to readers."""
    other = "zh" if lang == "en" else "en"
    alert = f'<p role="alert" id="login-error">{escape(message)}</p>' if message else ""
    described = ' aria-describedby="login-error" aria-invalid="true"' if message else ""
    switch = f"/login?lang={other}&next={escape(next_path, quote=True)}"
    return _document(
        lang,
        t(lang, "login_title"),
        f"""<p>{escape(t(lang, "login_intro"))}</p>
{alert}
<form method="post" action="/login">
<input type="hidden" name="next" value="{escape(next_path, quote=True)}">
<input type="hidden" name="lang" value="{lang}">
<label for="key">{escape(t(lang, "login_key"))}</label>
<input id="key" name="key" type="password" required autofocus
 autocomplete="current-password"{described}>
<button type="submit">{escape(t(lang, "login_submit"))}</button>
</form>
<nav><a href="{switch}" lang="{other}">{escape(LANGUAGES[other])}</a></nav>""",
    )


def logout_page(lang: str, message: str = "") -> str:
    """A button that posts the logout (a GET changes nothing)."""
    alert = f'<p role="alert">{escape(message)}</p>' if message else ""
    return _document(
        lang,
        t(lang, "logout"),
        f"""{alert}
<form method="post" action="/logout">
<input type="hidden" name="lang" value="{lang}">
<button type="submit" id="logout-submit">{escape(t(lang, "logout"))}</button>
</form>
<nav><a href="{HOME}">{escape(t(lang, "logout_back"))}</a></nav>""",
    )


def _page(lang: str, next_path: str, message: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(login_page(lang, next_path, message), status, headers=PAGE_HEADERS)


def login_router(settings: Settings, sessions: PageSessions) -> APIRouter:
    """``/login`` and ``/logout`` for the keys in ``settings``, sessions in ``sessions``."""
    router = APIRouter(include_in_schema=False)

    def language(request: Request, asked: str | None) -> str:
        return pick_language(request.headers.get("accept-language"), asked)

    @router.get("/login", response_model=None)
    async def show(request: Request, next: str | None = None, lang: str | None = None) -> Response:
        target = safe_next(next)
        if not settings.api_keys:
            return RedirectResponse(target, status_code=303)
        return _page(language(request, lang), target)

    @router.post("/login", response_model=None)
    async def log_in(
        request: Request,
        key: Annotated[str, Form(max_length=4096)] = "",
        next: Annotated[str, Form(max_length=4096)] = HOME,
        lang: Annotated[str | None, Form(max_length=8)] = None,
    ) -> Response:
        target = safe_next(next)
        chosen = language(request, lang)
        if not settings.api_keys:
            return RedirectResponse(target, status_code=303)
        if not _same_site(request):
            return _page(chosen, target, t(chosen, "login_cross_site"), 403)
        owner = owner_of(settings.api_keys, key.strip())
        if owner is None:
            return _page(chosen, target, t(chosen, "login_wrong"), 401)
        session_id = await sessions.create(owner)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=int(sessions.ttl_s),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @router.get("/logout", response_model=None)
    async def confirm_logout(request: Request, lang: str | None = None) -> Response:
        if not settings.api_keys:
            return RedirectResponse(HOME, status_code=303)
        html = logout_page(language(request, lang))
        return HTMLResponse(html, headers=PAGE_HEADERS)

    @router.post("/logout", response_model=None)
    async def log_out(
        request: Request, lang: Annotated[str | None, Form(max_length=8)] = None
    ) -> Response:
        chosen = language(request, lang)
        if not settings.api_keys:
            return RedirectResponse(HOME, status_code=303)
        if not _same_site(request):
            html = logout_page(chosen, t(chosen, "login_cross_site"))
            return HTMLResponse(html, 403, headers=PAGE_HEADERS)
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            await sessions.revoke(session_id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(
            SESSION_COOKIE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    return router
