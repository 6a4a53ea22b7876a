"""Every error stepaudio raises on purpose, and the HTTP status each one maps to.

Libraries' and servers' exceptions (PyAV, faster-whisper, llama.cpp, httpx, SQLAlchemy)
are translated into these at the boundary where they are caught, so callers only ever
handle this tree::

    StepAudioError (500, internal_error)
    ├── BadRequest (400, invalid_request_error)                                 P
    │   ├── InvalidAudio          undecodable, empty or truncated audio         P
    │   └── InvalidParameter      a field with a wrong value (unknown mode, …)  P
    ├── Unauthorized (401)        missing or wrong API key                      P
    ├── Forbidden (403)           the page's session used from another site     P
    ├── NotFound (404)            unknown task, or another key's task           P
    ├── TimedOut (408)            the request body arrived too slowly
    ├── Conflict (409)            an Idempotency-Key reused for another request P
    ├── PayloadTooLarge (413)     upload or audio duration over the limit       P
    ├── QueueFull (429)           too much work waiting (sent with Retry-After)
    ├── ModelOutputError (502)    the model answered, but not usably
    │   ├── OutputTruncated       reasoning or answer cut by max_tokens         P
    │   └── DegenerateOutput      a repetition loop, or text not in the target
    │                             language, even after a steadier retry
    ├── BackendError (502)        a backend answered with an error              R
    │   │                         … with code http_4xx: it refused the request  P
    │   └── ContextLengthExceeded a request did not fit the backend's context   P
    ├── BackendUnavailable (503)  no healthy backend could take the work        R
    ├── StoreUnavailable (503)    the task database is busy or away             R
    │                             (sent with Retry-After)
    └── BackendTimeout (504)      a backend did not answer in time              R

R: ``retryable``, the same call may succeed if made again now, elsewhere (the pool and
the pipeline's window retries run it again). P: ``permanent``, the request itself is at
fault, so a later attempt of the whole task would fail the same way (the task workers
fail it at once). Neither: not worth repeating at once, but a task may be attempted
again later (an unusable model answer, an internal error). Both properties are the only
retry policy: nothing else keeps a list of classes. Backends' HTTP statuses and
transport failures become these classes in one table, ``stepaudio.engines.http``.

Each carries ``message``, ``param`` (the offending field, if any) and ``code`` (a short
machine-readable reason); ``to_dict()`` gives the ``{"message", "type", "param", "code"}``
object of the API's error body, and ``headers()`` what the wire needs beside it
(``Retry-After``, ``WWW-Authenticate``): ``stepaudio.api.errors`` renders both, for every
route and for the guard in front of them. The message is scrubbed of URL credentials
(``scrub_credentials``) as the error is made, so no log line, status or error body built
from it can show them.
"""

from __future__ import annotations

import re
from typing import Any

_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/?#'\"<>]*@")
"""A URL's scheme and the userinfo after it: up to the last ``@`` before the path (a
password may hold an unescaped ``@``), never across a space, a quote or a bracket."""


def scrub_credentials(text: str) -> str:
    """``text`` with the userinfo (``user:pass@``) taken out of every URL in it.

    The engines never put credentials in their messages (``engines/http.py`` strips them
    from the configured URLs), but messages also quote text from elsewhere: a backend's
    or proxy's error body, a library's exception. This is the net under those. It lives
    here, not in ``stepaudio.text``, because the two bottom modules may not import each
    other (pyproject's layer contract)."""
    return _URL_USERINFO.sub(r"\1", text)


class StepAudioError(Exception):
    status_code = 500
    type = "internal_error"
    default_code = "internal_error"
    retry_after: int | None = None
    """Seconds after which the same request may succeed (``Retry-After``)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        message = scrub_credentials(message)
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code

    @property
    def retryable(self) -> bool:
        """Whether the same call may succeed if made again now (elsewhere): the fault is
        a backend's, not the request's."""
        return False

    @property
    def permanent(self) -> bool:
        """Whether any later attempt would fail the same way: the request is at fault."""
        return False

    def headers(self) -> dict[str, str]:
        """The HTTP headers that go with this error's status."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}

    def to_dict(self) -> dict[str, Any]:
        """The API's error object. The message is scrubbed again: callers may have
        rewritten it in place since (``api.uploads.in_client_terms``)."""
        message = scrub_credentials(self.message)
        return {"message": message, "type": self.type, "param": self.param, "code": self.code}


class BadRequest(StepAudioError):
    status_code = 400
    type = "invalid_request_error"
    default_code = "bad_request"

    @property
    def permanent(self) -> bool:
        return True


class InvalidAudio(BadRequest):
    default_code = "invalid_audio"


class InvalidParameter(BadRequest):
    default_code = "invalid_parameter"


class Unauthorized(StepAudioError):
    status_code = 401
    type = "authentication_error"
    default_code = "invalid_api_key"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}

    @property
    def permanent(self) -> bool:
        return True


class Forbidden(StepAudioError):
    """A valid login used where it may not be: the page's session from another site."""

    status_code = 403
    type = "permission_error"
    default_code = "forbidden"

    @property
    def permanent(self) -> bool:
        return True


class NotFound(StepAudioError):
    status_code = 404
    type = "not_found_error"
    default_code = "not_found"

    @property
    def permanent(self) -> bool:
        return True


class TimedOut(StepAudioError):
    status_code = 408
    type = "invalid_request_error"
    default_code = "request_timeout"


class Conflict(StepAudioError):
    status_code = 409
    type = "invalid_request_error"
    default_code = "conflict"

    @property
    def permanent(self) -> bool:
        return True


class PayloadTooLarge(StepAudioError):
    status_code = 413
    type = "invalid_request_error"
    default_code = "payload_too_large"

    @property
    def permanent(self) -> bool:
        return True


class QueueFull(StepAudioError):
    status_code = 429
    type = "rate_limit_error"
    default_code = "queue_full"
    retry_after = 5


class ModelOutputError(StepAudioError):
    status_code = 502
    type = "model_error"
    default_code = "bad_model_output"


class OutputTruncated(ModelOutputError):
    default_code = "output_truncated"

    @property
    def permanent(self) -> bool:
        return True


class DegenerateOutput(ModelOutputError):
    """The model looped (or wrote another language than asked) on the request and on a
    retry with a higher repetition penalty and greedy decoding: no answer to give."""

    default_code = "degenerate_output"


class BackendError(StepAudioError):
    status_code = 502
    type = "backend_error"
    default_code = "backend_error"

    @property
    def retryable(self) -> bool:
        return not self.permanent

    @property
    def permanent(self) -> bool:
        # A 4xx says the request itself (or our key) is wrong: every server, now or later,
        # would refuse it too. engines/http.py gives transient 4xx (408, 429) other classes.
        return self.code.startswith("http_4")


class ContextLengthExceeded(BackendError):
    default_code = "context_length_exceeded"

    @property
    def permanent(self) -> bool:
        return True


class BackendUnavailable(StepAudioError):
    status_code = 503
    type = "backend_unavailable"
    default_code = "no_healthy_backend"

    @property
    def retryable(self) -> bool:
        return True


class StoreUnavailable(StepAudioError):
    """The task database answered "busy"/"locked" or could not be reached: the request
    was fine, and the same one may succeed in ``retry_after`` seconds."""

    status_code = 503
    type = "service_unavailable"
    default_code = "store_busy"
    retry_after = 1

    @property
    def retryable(self) -> bool:
        return True


class BackendTimeout(StepAudioError):
    status_code = 504
    type = "backend_timeout"
    default_code = "backend_timeout"

    @property
    def retryable(self) -> bool:
        return True
