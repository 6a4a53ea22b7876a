"""The service's front door: who may come in, and how much they may send.

``GuardMiddleware`` sits outside every route (the API, the OpenAI face, the web page and
its files) and decides from the request line and headers alone, before a byte
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
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import anyio
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepaudio.api.auth import identify, presented_key, unauthorized
from stepaudio.api.errors import error_response
from stepaudio.api.sessions import PageSessions
from stepaudio.config import Settings
from stepaudio.errors import Forbidden, PayloadTooLarge, QueueFull, StepAudioError, TimedOut
from stepaudio.service import Admission, Ticket

PAGE_HEADER = "x-stepaudio-page"
"""Sent by the page's scripts with every call: a page of another site cannot set it
(it would need a CORS grant, which this service never gives), so a call that rides the
session cookie without it did not come from our page."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
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


def cross_site() -> Forbidden:
    return Forbidden(
        "This session belongs to the service's own page: calls with it must come from that "
        "page. Other clients send an API key (Authorization: Bearer KEY).",
        code="cross_site_request",
    )


def slow_body() -> TimedOut:
    return TimedOut("The request body arrived too slowly; send it again at a steadier pace.")


class GuardMiddleware:
    """See the module docstring. One per app; its counters are this app's own."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        admission: Admission,
        sessions: PageSessions | None = None,
    ):
        self.app = app
        self.settings = settings
        self.admission = admission
        self.sessions = sessions
        self.public = PUBLIC_PATHS | ({"/metrics"} if settings.metrics_public else set())

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
        if self._cross_site(scope, headers):
            await self._answer(scope, receive, send, cross_site())
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        limit = self._body_limit(scope, headers)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._answer(scope, receive, send, too_large(limit))
            return
        ticket = None
        if (scope["method"], scope["path"]) in WORK_ROUTES:
            try:
                # The request's one place in the queue: the route's lifecycle uses it.
                ticket = scope["state"]["ticket"] = self.admission.admit(who)
            except QueueFull as refusal:
                await self._answer(scope, receive, send, refusal)
                return
        try:
            await self._guarded(scope, receive, send, limit, ticket)
        finally:
            if ticket is not None:
                ticket.release()

    async def _identify(self, scope: Scope, headers: Headers) -> str | None:
        if scope["path"] in self.public:
            return "anonymous"
        cookies = cookie_parser(headers.get("cookie", ""))
        found = await identify(self.settings.api_keys, self.sessions, headers, cookies)
        if scope["type"] == "websocket" and "Cookie" in found.headers:
            # A page of another site can open a WebSocket with our cookie (no CORS on
            # WebSockets): a session cookie counts only from our own pages.
            # Hosts, not ports: a proxy may forward Host without the port the page used,
            # and cookies are the host's whatever the port.
            origin = headers.get("origin")
            host = urlsplit("//" + headers.get("host", "")).hostname
            if origin is not None and urlsplit(origin).hostname != host:
                return None
        return found.owner

    def _cross_site(self, scope: Scope, headers: Headers) -> bool:
        """A call that changes something, made with the page's session cookie, but not by
        our page: no page header, or an Origin of another host. (Keys in headers are not
        sent by browsers on their own, so only the cookie needs this.)"""
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            return False
        if scope["path"] in self.public or not self.settings.api_keys:
            return False
        if presented_key(headers) is not None:
            return False
        if headers.get(PAGE_HEADER) != "1":
            return True
        origin = headers.get("origin")
        host = urlsplit("//" + headers.get("host", "")).hostname
        return origin is not None and urlsplit(origin).hostname != host

    def _body_limit(self, scope: Scope, headers: Headers) -> int:
        if scope["path"] in self.public:
            return PUBLIC_BODY_LIMIT
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        upload_route = (scope["method"], scope["path"]) in UPLOAD_ROUTES
        if upload_route and media_type == "multipart/form-data":
            return self.settings.limits.max_upload_bytes + _MULTIPART_SLACK
        return self.settings.limits.max_json_bytes

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, limit: int, ticket: Ticket | None
    ) -> None:
        settings = self.settings
        body = _Body(
            receive,
            limit,
            settings.limits.body_idle_timeout_s,
            settings.limits.min_upload_kib_s * 1024,
            settings.limits.body_idle_timeout_s,
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
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if last and ticket is not None:
                # Freed before the last byte leaves: a client that sends its next request
                # as soon as it has this answer finds its place free.
                ticket.release()
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
        response = error_response(scope["path"], error)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
