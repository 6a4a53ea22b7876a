"""The web page: static files (``static/``) served at ``/ui/``, and the login.

The page is a client of the public API like any other (``static/js/api.js``): no route
exists for it beyond its files and ``/login``. Its files are behind the keys like every
route (the guard sends a browser without a session to ``/login``).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from stepaudio.api.sessions import PageSessions
from stepaudio.config import Settings
from stepaudio.ui.login import login_router

UI_PATH = "/ui"
STATIC = Path(__file__).parent / "static"

HEADERS = {
    # Our own files only; the API and its WebSockets on this origin; recordings the
    # visitor picks or records are played from blob: addresses.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
}


class _Static(StaticFiles):
    """The page's files with its security headers, revalidated on every load (a new
    version of the service must not meet an old script)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                extra.append((b"cache-control", b"no-cache"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await super().__call__(scope, receive, with_headers)


def mount_ui(app: FastAPI, settings: Settings, sessions: PageSessions) -> FastAPI:
    """The page at ``/ui/``, its files at ``/ui/static/``, ``/`` leading there, and the
    login."""
    app.include_router(login_router(settings, sessions))

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse(f"{UI_PATH}/" + (f"?{query}" if query else ""))

    @app.get(UI_PATH, include_in_schema=False)
    async def no_slash(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse(f"{UI_PATH}/" + (f"?{query}" if query else ""))

    @app.get(f"{UI_PATH}/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={**HEADERS, "Cache-Control": "no-cache"})

    app.mount(f"{UI_PATH}/static", _Static(directory=STATIC), name="ui-static")
    return app
