"""The service's front door: who may come in, and how much they may send.

``GuardMiddleware`` sits outside every route (the API, the OpenAI face, the web page and
Gradio's own routes) and decides from the request line and headers alone, before a byte
of the body is taken in:

1. **Key**: with ``api_keys`` set, every path but the public ones needs a key (header or
   the page's login cookie): 401 JSON, or a redirect to ``/login`` for a browser asking
   for a page. The caller's identity goes to ``request.state.caller``.
2. **Admission**: requests that carry work (uploads to process) are counted from their
   first header on; past ``max_pending_requests`` (or the per-key share) they get 429
   before they upload anything.
3. **Size and pace**: a declared ``Content-Length`` over the limit is refused at once;
   otherwise bytes are counted as they arrive (chunked bodies too) and the request is
   cut at the limit with 413; a body that stalls or trickles is cut with 408. Not
   calling ``receive`` before refusing is also what honours ``Expect: 100-continue``:
   the server sends "100 Continue" only once the app asks for the body.

   The limit follows the route and the media type together (``body_limit``), never a
   spelling: the upload limit only for ``multipart/form-data`` (in any case) on a route
   that takes uploads; ``max_json_bytes`` for every other body of a key holder (JSON in
   any spelling, ``+json`` types, no Content-Type at all, which FastAPI parses as JSON);
   and ``PUBLIC_BODY_LIMIT`` for the public routes (``/login``), so a stranger cannot make
   the form parser spool a file to disk before the handler says no.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepaudio.api.auth import identify, unauthorized
from stepaudio.api.errors import error_body
from stepaudio.api.sessions import PageSessions
from stepaudio.config import Settings
from stepaudio.errors import PayloadTooLarge, QueueFull, StepAudioError, TimedOut

PUBLIC_PATHS = frozenset({"/health", "/ready", "/login", "/logout"})
PUBLIC_BODY_LIMIT = 16 << 10
"""Largest body a route without a key takes (the login form: a key and two short fields)."""
# Routes that take an uploaded file: the only ones whose multipart bodies may be of
# upload size.
UPLOAD_ROUTES = frozenset(
    {
        ("POST", "/api/process"),
        ("POST", "/api/task"),
        ("POST", "/api/audio/info"),
        ("POST", "/ui/gradio_api/upload"),
        ("POST", "/v1/audio/transcriptions"),
        ("POST", "/v1/audio/translations"),
    }
)
# Routes whose requests carry audio: admitted (counted) before their body, so a burst of
# uploads cannot fill the disk or the queue before anyone is refused.
WORK_ROUTES = UPLOAD_ROUTES | {("POST", "/v1/chat/completions")}
# Room for the multipart envelope and the form's other fields around the file.
_MULTIPART_SLACK = 1 << 20


class _Refused(Exception):
    """Raised from ``receive`` to stop the app reading; the guard answers instead."""

    def __init__(self, error: StepAudioError):
        self.error = error


@dataclass
class _Body:
    """One request's body as it arrives: counted, timed, cut at the limit."""

    receive: Receive
    limit: int
    idle_timeout_s: float
    min_rate: float
    grace_s: float
    received: int = 0
    started: float = 0.0
    complete: bool = False

    async def __call__(self) -> Message:
        if self.complete:
            # After the body, the app listens for a disconnect as long as it works: no
            # timeout applies to that wait.
            return await self.receive()
        if not self.started:
            self.started = time.monotonic()
        try:
            with anyio.fail_after(self.idle_timeout_s):
                message = await self.receive()
        except TimeoutError:
            raise _Refused(slow_body()) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.received > self.limit:
                raise _Refused(too_large(self.limit))
            elapsed = time.monotonic() - self.started
            if elapsed > self.grace_s and self.received < self.min_rate * elapsed:
                raise _Refused(slow_body())
        return message


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than this service's limit of {limit / 2**20:.0f} MiB."
    )


def slow_body() -> TimedOut:
    return TimedOut("The request body arrived too slowly; send it again at a steadier pace.")


class GuardMiddleware:
    """See the module docstring. One per app; its counters are this app's own."""

    def __init__(self, app: ASGIApp, settings: Settings, sessions: PageSessions | None = None):
        self.app = app
        self.settings = settings
        self.sessions = sessions
        self.public = PUBLIC_PATHS | ({"/metrics"} if settings.metrics_public else set())
        self.working = 0
        self.working_by_key: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        who = await self._identify(scope, headers)
        if who is None:
            await self._deny(scope, receive, send, headers)
            return
        scope.setdefault("state", {})["caller"] = who
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        limit = self._body_limit(scope, headers)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._answer(scope, receive, send, too_large(limit))
            return
        work = (scope["method"], scope["path"]) in WORK_ROUTES
        if work and (refusal := self._admit(who)) is not None:
            await self._answer(scope, receive, send, refusal)
            return
        try:
            await self._guarded(scope, receive, send, limit)
        finally:
            if work:
                self.working -= 1
                self.working_by_key[who] -= 1
                if not self.working_by_key[who]:
                    del self.working_by_key[who]

    async def _identify(self, scope: Scope, headers: Headers) -> str | None:
        if scope["path"] in self.public:
            return "anonymous"
        cookies = cookie_parser(headers.get("cookie", ""))
        found = await identify(self.settings.api_keys, self.sessions, headers, cookies)
        return found.owner

    def _body_limit(self, scope: Scope, headers: Headers) -> int:
        if scope["path"] in self.public:
            return PUBLIC_BODY_LIMIT
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        upload_route = (scope["method"], scope["path"]) in UPLOAD_ROUTES
        if upload_route and media_type == "multipart/form-data":
            return self.settings.max_upload_bytes + _MULTIPART_SLACK
        return self.settings.max_json_bytes

    def _admit(self, who: str) -> QueueFull | None:
        settings = self.settings
        if self.working >= settings.max_pending_requests:
            return QueueFull(
                f"{settings.max_pending_requests} requests are already queued or running; "
                "retry later."
            )
        # Without keys every caller is the same "anonymous": a share would be the whole.
        per_key = settings.max_pending_requests_per_key if settings.api_keys else None
        if per_key is not None and self.working_by_key[who] >= per_key:
            return QueueFull(
                f"This key already has {per_key} requests queued or running; retry later.",
                code="key_queue_full",
            )
        self.working += 1
        self.working_by_key[who] += 1
        return None

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        settings = self.settings
        body = _Body(
            receive,
            limit,
            settings.body_idle_timeout_s,
            settings.min_upload_kib_s * 1024,
            settings.body_idle_timeout_s,
        )
        refusal: list[StepAudioError] = []
        started = False

        async def guarded_receive() -> Message:
            try:
                return await body()
            except _Refused as exc:
                refusal.append(exc.error)
                raise

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refusal:
                return  # the app's answer to a cut body is replaced by ours
            started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if not refusal:
                raise
        if refusal and not started:
            await self._answer(scope, receive, send, refusal[0])

    async def _deny(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        path = scope["path"]
        wants_page = "text/html" in headers.get("accept", "")
        login_page = self.settings.ui and not path.startswith(("/api", "/v1"))
        if scope["method"] == "GET" and wants_page and login_page:
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + (f"?{query}" if query else "")
            response: Response = RedirectResponse(
                "/login?next=" + quote(target, safe=""), status_code=303
            )
            await response(scope, receive, send)
            return
        await self._answer(scope, receive, send, unauthorized())

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, error: StepAudioError
    ) -> None:
        """Our error as JSON; the connection closes, since the body was not read."""
        extra: dict[str, Any] = {"Connection": "close"}
        if error.status_code == 401:
            extra["WWW-Authenticate"] = "Bearer"
        if error.status_code == 429:
            extra["Retry-After"] = "5"
        response = JSONResponse(
            error_body(scope["path"], error.to_dict()),
            status_code=error.status_code,
            headers=extra,
        )
        await response(scope, receive, send)
