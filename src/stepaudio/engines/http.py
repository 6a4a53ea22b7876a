"""Calling model servers over HTTP: every transport failure and every error status
becomes a class of our error tree here, in one table, so that a failure means the same
thing (and is retried the same way) whichever engine met it.

Used as ``with map_errors(url, timeout=limit):`` around the calls (a plain context
manager: it is the same for sync and async code, ``await`` inside it included), and
``raise_for_status(url, resp)`` on each answer whose body has been read::

    transport                                  → error                 retried?
    asyncio/anyio deadline (TimeoutError)      → BackendTimeout          yes
    httpx.TimeoutException (connect/read/…)    → BackendTimeout          yes
    httpx.ConnectError (refused, no route)     → BackendUnavailable      yes
    RemoteProtocolError, ReadError, WriteError → BackendError stream_cut yes
    malformed JSON in a reply                  → BackendError            yes
    any other httpx.HTTPError                  → BackendError            yes

    status
    400 "maximum context length …"             → ContextLengthExceeded   never (permanent)
    408 the server timed out reading           → BackendTimeout          yes
    429 the server is rate limiting            → BackendUnavailable      yes
    401, 403 our key for it is wrong           → BackendError http_4xx   never (permanent)
    other 4xx (404, 413, 422 …)                → BackendError http_4xx   never (permanent)
    502, 503, 504 the server is down/starting  → BackendUnavailable      yes
    other 5xx                                  → BackendError http_5xx   yes

"Retried?" is the class's own ``retryable`` / ``permanent`` (see ``stepaudio.errors``);
the pool, the pipeline and the task workers consult nothing else.

A configured URL may carry credentials (``http://user:pass@host``, for a proxy with Basic
auth in front of a server): ``split_credentials`` takes them out once, at the engine's
construction, so the URL every message, status and log line shows has none, and the
credentials travel only as each request's ``auth``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from stepaudio.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ContextLengthExceeded,
    StepAudioError,
)

CONTEXT_LENGTH_MESSAGE = "maximum context length"
"""What vLLM's 400 says when prompt + ``max_tokens`` is over ``max_model_len``."""
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


def base_url(url: str) -> str:
    """The server's root from a base URL or a full ``…/v1/chat/completions`` URL."""
    url = url.strip().rstrip("/")
    for suffix in ("/chat/completions", "/v1"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    return url.rstrip("/")


def split_credentials(url: str) -> tuple[str, httpx.BasicAuth | None]:
    """``url`` without its userinfo, and that userinfo (percent-decoded) as Basic auth.

    The engines keep only the first as their ``url``: it is what their errors, ``describe()``
    and outputs show, and a URL with a password in it would reach logs, statuses and error
    bodies. A user without a password is Basic auth with an empty password, as httpx sends
    a URL's own userinfo; no userinfo (or an empty one) is no auth."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    clean = urlunsplit(parts._replace(netloc=hostport))
    if not userinfo:
        return clean, None
    user, _, password = userinfo.partition(":")
    return clean, httpx.BasicAuth(unquote(user), unquote(password))


def public_url(url: str) -> str:
    """``url`` as it may be shown: without userinfo."""
    return split_credentials(url)[0]


def bearer(api_key: SecretStr | None) -> dict[str, str]:
    """The ``Authorization`` header for ``api_key`` (none without a key)."""
    return {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}


def _detail(resp: httpx.Response) -> str:
    """The error message of an OpenAI-, vLLM- or FastAPI-shaped error body, else its text."""
    try:
        detail = resp.json()
        message = (detail.get("error") or {}).get("message") or detail.get("message") or ""
        if not message and isinstance(detail.get("detail"), str):
            message = detail["detail"]
        return str(message)
    except (ValueError, AttributeError):
        return resp.text[:500]


def status_error(url: str, resp: httpx.Response) -> StepAudioError:
    """The error for an answer that is not 2xx. Its body must have been read."""
    status = resp.status_code
    message = _detail(resp)
    text = f"{url} answered {status}: {message}"
    if status == 400 and CONTEXT_LENGTH_MESSAGE in message:
        return ContextLengthExceeded(text, param="max_tokens")
    if status == 408:
        return BackendTimeout(text, code="http_408")
    if status == 429:
        return BackendUnavailable(text, code="http_429")
    if status in (401, 403):
        return BackendError(f"{text} (check the API key configured for it)", code=f"http_{status}")
    if status in _UNAVAILABLE_STATUSES:
        return BackendUnavailable(text)
    return BackendError(text, code=f"http_{status}")


def raise_for_status(url: str, resp: httpx.Response) -> None:
    """Raise ``status_error`` unless the answer is 2xx."""
    if not resp.is_success:
        raise status_error(url, resp)


@contextmanager
def map_errors(url: str, *, timeout: float | None = None) -> Iterator[None]:
    """Translate transport failures raised inside the block into our error tree.

    ``timeout`` is the deadline the caller set (for the message only): a ``TimeoutError``
    raised inside is that deadline passing. Our own errors pass through untouched."""
    try:
        yield
    except TimeoutError as exc:
        within = f"within {timeout:.0f} s" if timeout is not None else "in time"
        raise BackendTimeout(f"{url} did not answer {within}.") from exc
    except httpx.TimeoutException as exc:
        raise BackendTimeout(f"{url} timed out: {exc!r}") from exc
    except httpx.ConnectError as exc:
        raise BackendUnavailable(f"{url} is unreachable: {exc!r}") from exc
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise BackendError(f"{url} cut the stream: {exc!r}", code="stream_cut") from exc
    except json.JSONDecodeError as exc:
        raise BackendError(f"{url} sent malformed JSON: {exc}") from exc
    except httpx.HTTPError as exc:
        raise BackendError(f"{url}: {exc!r}") from exc
