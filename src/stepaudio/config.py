"""Settings, read from the environment (prefix ``STEPAUDIO_``) or a ``.env`` file.

Related settings are grouped (``limits``, ``whisper``, ``llm``, ``backend``, ``cascade``,
``pipeline``, ``tasks``, ``webhooks``), each group
its own model, set with ``__`` (``STEPAUDIO_TASKS__LEASE_S=30``); the flat names used
before the groups (``STEPAUDIO_TASK_LEASE_S``) are still accepted. Parts of the program
take the group they need, not the whole ``Settings``. Secrets are ``SecretStr``: they never
show in a repr or a log.

The seed's ``VLLM_API_URL`` and ``MODEL_NAME`` are understood too, so a deployment
configured for the seed's service works unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from stepaudio.params import Mode


class BackendConfig(BaseModel):
    """One Step-Audio-R1.1 vLLM server."""

    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")

    url: str
    """Base URL (``http://host:9999``); a full ``…/v1/chat/completions`` URL is accepted.
    Userinfo (``http://user:pass@host``, percent-encoded) is sent as Basic auth and shown
    nowhere."""
    model: str = "Step-Audio-R1.1"
    """Served model name (vLLM's ``--served-model-name``)."""
    max_concurrency: int = Field(4, ge=1)
    """Requests sent at once, at most: the server's ``--max-num-seqs``."""
    api_key: SecretStr | None = None
    """Bearer token for the server, if it wants one."""


class _Group(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


class RetryPolicy(BaseModel):
    """How a failed call is tried again: ``attempts`` tries in all (1: never again), the
    second ``base_s`` after the first failed, each next wait doubled, none over ``cap_s``.

    One policy for every retry loop, each counting attempts (the first try included):
    the pool's backend calls, the pipeline's windows, the task store's task runs and the
    outbox's webhook calls. They nest: a window's attempt is one pool call, and a task's
    attempt runs its windows again (docs/retries.md gives the worst case)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(3, ge=1)
    base_s: float = Field(1.0, ge=0)
    cap_s: float = Field(60.0, ge=0)

    def again(self, attempt: int) -> bool:
        """Whether try number ``attempt`` (1-based), having failed, is followed by another."""
        return attempt < self.attempts

    def delay(self, attempt: int) -> float:
        """Seconds to wait after try number ``attempt`` (1-based) failed."""
        return min(self.base_s * 2 ** (attempt - 1), self.cap_s)


class LimitSettings(_Group):
    """What one request, body or connection may take."""

    max_upload_mb: float = Field(2048, gt=0)
    """Largest upload accepted, in MiB; larger ones get 413 before the body is read."""
    max_audio_seconds: float | None = Field(21600, gt=0)
    """Longest audio accepted, in seconds (413 beyond), counted as it is decoded, never
    taken from the file's header; a file that decodes to far more than its header claims
    (1.5 × + 30 s) is also refused. None: no limit."""
    max_pending_requests: int = Field(64, ge=1)
    """Synchronous requests uploading, waiting or running at once; more get 429 before
    their body is read."""
    max_pending_requests_per_key: int | None = Field(16, ge=1)
    """Synchronous requests one key may have uploading, waiting or running at once (429
    beyond), so one caller cannot take every slot. None (or no ``api_keys``): only the
    global limit."""
    max_json_mb: float = Field(64, gt=0)
    """Largest body accepted other than an upload (JSON in any spelling, e.g.
    ``/v1/chat/completions`` with inline audio), in MiB; counted as it arrives (413
    beyond)."""
    body_idle_timeout_s: float = Field(30, gt=0)
    """A request body that sends nothing for this long is cut with 408."""
    min_upload_kib_s: float = Field(8, ge=0)
    """Slowest average upload pace accepted once ``body_idle_timeout_s`` has passed, in
    KiB/s; a trickling body is cut with 408."""
    max_connections: int = Field(1000, ge=1)
    """Open connections the server takes at once; beyond, a new connection gets 503 at
    once."""
    header_timeout_s: float = Field(10, gt=0)
    """A connection must send its request line and headers within this many seconds (and
    an idle keep-alive connection is closed after it)."""

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_json_bytes(self) -> int:
        return int(self.max_json_mb * 1024 * 1024)


class BackendSettings(_Group):
    """How the Step-Audio-R1.1 vLLM servers (``backends``) are called."""

    max_model_len: int = Field(65536, ge=2048)
    """Context length assumed when a backend does not report its ``max_model_len``."""
    request_timeout_s: float = Field(120, gt=0)
    """Base timeout of one backend call; ``timeout_per_audio_s`` is added per audio second."""
    timeout_per_audio_s: float = Field(1.0, ge=0)
    """Extra timeout per second of audio in a backend call."""
    health_interval_s: float = Field(2.0, gt=0)
    """Seconds between health checks of each backend (``/health`` and ``/v1/models``)."""
    attempts: int = Field(3, ge=1)
    """Attempts per model call, each on another backend where there is one (connection
    errors, 5xx, cut streams; a hung backend is waited on twice at most)."""
    backoff_s: float = Field(0.2, ge=0)
    """Wait before a model call's second attempt; doubled before each next, at most 2 s."""
    no_thinking_modes: list[Mode] = []
    """Modes sent with the empty-reasoning prefill (no thinking), e.g. ``["asr"]``."""

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts, base_s=self.backoff_s, cap_s=2.0)


class CascadeSettings(_Group):
    """Any OpenAI-compatible transcription server plus chat server, in place of
    Step-Audio-R1.1."""

    transcription_url: str | None = None
    """Server with ``/v1/audio/transcriptions`` (vLLM Whisper, speaches)."""
    transcription_model: str = "whisper-1"
    """Model name sent to ``transcription_url``."""
    transcription_api_key: SecretStr | None = None
    """Bearer token for ``transcription_url``."""
    chat_url: str | None = None
    """Server with ``/v1/chat/completions`` for the cascade's text tasks."""
    chat_model: str = "default"
    """Model name sent to ``chat_url``."""
    chat_api_key: SecretStr | None = None
    """Bearer token for ``chat_url``."""
    chat_context: int = Field(8192, ge=512)
    """Context length (tokens) of the ``chat_url`` model."""
    concurrency: int = Field(4, ge=1)
    """Cascade calls in flight at once."""


class PipelineSettings(_Group):
    """How a request's audio is cut into windows and how windows share the engine."""

    sync_first: bool = True
    """Windows of synchronous requests (``/api/process``, ``/v1``) never wait behind those
    of background tasks, nor a one-window request's behind a long request's: each starts at
    once, beside the running windows, and the others' next windows wait for it. False:
    tasks and requests share the engine's slots alike (fewest in flight first: a short
    request waits for one running window)."""
    parallel_windows: int | None = Field(None, ge=1)
    """Windows of one request processed at once, at most. None: as many as the engines can
    take (the scheduler still shares slots fairly between requests)."""
    asr_window_s: float = Field(300, ge=10)
    """Length of a verbatim window on the embedded engine, in seconds."""
    window_attempts: int = Field(3, ge=1)
    """Attempts of a window failing with a retryable error, each one whole engine call (on
    the backends up to ``backend.attempts`` tries); only that window runs again."""
    window_backoff_s: float = Field(1.0, ge=0)
    """Wait before a window's second attempt; doubled before each next, at most 30 s."""

    @property
    def window_retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.window_attempts, base_s=self.window_backoff_s, cap_s=30)


class WhisperSettings(_Group):
    """The embedded speech recogniser (faster-whisper on the CPU)."""

    model: str = "base"
    """Whisper model: ``base`` (embedded, from PyPI), a CTranslate2 model directory, or a
    faster-whisper model name where the machine can download models."""
    compute_type: str = "int8"
    """CTranslate2 compute type for Whisper on the CPU."""
    chinese_compute_type: str = "float32"
    """Compute type for Mandarin audio (``language`` zh, or detected): int8 costs Whisper
    base 4.5 points of character error rate on Mandarin (25.5 -> 21.0 %) and nothing on
    English, for 1.6x the CPU time (docs/benchmarks.md). Empty: ``compute_type``; on a
    GPU, ``float16``."""
    threads: int = Field(2, ge=1)
    """CPU threads per Whisper worker."""
    workers: int = Field(1, ge=1)
    """Whisper calls that may run at once (each uses ``threads``)."""
    beam_size: int = Field(5, ge=1)
    """Beam size for Whisper decoding (faster-whisper's default)."""
    batch_size: int = Field(8, ge=0)
    """Speech chunks (VAD-cut, up to 30 s) of a window decoded at once through
    faster-whisper's batched pipeline; 0 or 1: its sequential decoding, chunk after chunk
    (docs/benchmarks.md compares them)."""


class LlmSettings(_Group):
    """The embedded text model (llama.cpp) for summaries and answers."""

    model: str = "qwen-1.5b"
    """Text model for summaries, answers and translations: ``qwen-0.5b`` or ``qwen-1.5b``
    (Qwen2.5-Coder-Instruct Q4_K_M, embedded from PyPI), ``smollm2`` (SmolLM2-135M, the
    smallest and weakest), or the path of your own GGUF file (a bigger model)."""
    context: int = Field(8192, ge=512)
    """Context length (tokens) of the embedded text model."""
    threads: int = Field(2, ge=1)
    """CPU threads of the embedded text model."""


class LiveSettings(_Group):
    """Live sessions: ``/v1/realtime`` (OpenAI's Realtime protocol) and Wyoming."""

    max_sessions: int = Field(8, ge=1)
    """Live sessions open at once; a new one beyond is refused with an ``error`` event
    (``session_limit_reached``) and close code 1013, the open ones unharmed."""
    max_sessions_per_key: int | None = Field(4, ge=1)
    """Live sessions one key may have open at once. None: only ``max_sessions``."""
    idle_timeout_s: float = Field(60, gt=0)
    """A session that sends nothing (not even audio) for this long is closed."""
    max_session_s: float = Field(4 * 3600, gt=0)
    """Longest a session may last; it is closed after its last turn is transcribed."""
    ping_interval_s: float = Field(20, gt=0)
    """WebSocket pings; a client that answers none for this long again (a half-open
    connection) is dropped and its session freed."""
    max_append_mb: float = Field(15, gt=0)
    """Largest ``input_audio_buffer.append`` event, in MiB (OpenAI's limit)."""
    max_lead_s: float = Field(10, ge=0)
    """Audio a client may send ahead of real time; beyond, its events are read no faster
    than real time (the socket pushes back), so nothing is buffered without bound."""
    partial_interval_s: float = Field(0.5, gt=0)
    """New audio in a turn between two partial transcriptions (the ``delta`` events
    while the person still speaks). Live texts are drafts (engines/whisper_draft.py: the
    turn and 3 s encoded, greedy; about 0.2–0.3 s of Whisper base on 2 cores) and one
    partial runs at a time in the whole service, so a busy service skips some rather than
    queueing them."""
    max_turn_s: float = Field(30, ge=5)
    """Longest turn: speech that goes on is cut into turns of this length."""
    wyoming_port: int | None = Field(None, ge=1, le=65535)
    """Serve Wyoming (Home Assistant's voice protocol; its usual port is 10300) on this
    port beside the HTTP service. None: off. Wyoming has no keys."""
    wyoming_host: str = "127.0.0.1"
    """Address the Wyoming server listens on: a trusted network only."""


class TaskSettings(_Group):
    """Durable tasks: workers, leases, retries, retention, quotas."""

    workers: int = Field(1, ge=0)
    """Task workers `stepaudio serve` runs in-process (0: API only, `stepaudio worker` runs
    them elsewhere against the same database)."""
    lease_s: float = Field(60, gt=0)
    """How long a worker's claim on a task lasts without a heartbeat; a task whose lease
    expired (its worker died) is claimed again."""
    heartbeat_s: float = Field(10, gt=0)
    """How often a worker renews its lease (and notices a cancellation); well under
    ``lease_s``."""
    max_attempts: int = Field(3, ge=1)
    """Attempts per task (failed runs and lost workers both count) before it fails for good."""
    retry_backoff_s: float = Field(5, ge=0)
    """Wait before a failed attempt is retried; doubled after each attempt, at most
    ``retry_cap_s``."""
    retry_cap_s: float = Field(600, ge=0)
    """Longest wait between two attempts of a task."""
    poll_s: float = Field(1.0, gt=0)
    """How often an idle worker looks for work."""
    retention_hours: float = Field(168, gt=0)
    """Finished (completed, failed, cancelled) tasks and their uploads are removed after this."""
    sweep_s: float = Field(600, gt=0)
    """How often workers remove expired tasks."""
    max_pending_per_key: int = Field(100, ge=1)
    """Pending or running tasks one key may have; more get 429 before the upload is read."""
    max_stored_mb_per_key: float = Field(8192, gt=0)
    """Upload bytes one key's pending or running tasks may keep in the task store, in MiB
    (429 beyond, nothing stored)."""
    db_busy_timeout_s: float = Field(30, gt=0)
    """How long a SQLite write waits for another writer before the request gets 503 with
    ``Retry-After``."""
    scratch_max_age_hours: float = Field(24, gt=0)
    """Files in ``data_dir/tmp`` and ``data_dir/uploads`` untouched this long are leftovers
    of a crash: removed when workers start and by each sweep."""

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.max_attempts, base_s=self.retry_backoff_s, cap_s=self.retry_cap_s
        )


class WebhookSettings(_Group):
    """Calls that tell a task's owner it finished."""

    attempts: int = Field(6, ge=1)
    """Tries of a task's webhook call, the first one included (``retries``, the number
    of tries after the first, is still accepted: ``attempts`` = ``retries`` + 1)."""
    timeout_s: float = Field(10, gt=0)
    """Overall deadline of one webhook delivery try: the address check, connecting,
    sending, and reading the answer's status and first few KB (a slower receiver fails
    the try)."""
    backoff_s: float = Field(2, ge=0)
    """Wait before the second try; doubled before each next, at most an hour (tries are
    scheduled in the database, no worker waits for them)."""
    concurrency: int = Field(16, ge=1)
    """Webhook calls one worker process makes at once (a hanging receiver holds one)."""
    allow_hosts: list[str] = []
    """Webhook hosts (as written in the URL, e.g. ``["hooks.internal", "10.0.0.5"]``)
    allowed even though they resolve to loopback, private, link-local or other
    non-public addresses; every other such webhook is refused."""
    secret: SecretStr | None = None
    """Master secret of webhook signatures (each key signs with its own secret derived
    from it, shown by ``GET /api/webhook/secret``). None: one is generated once and kept
    in the task database, so every gateway and worker sharing it signs alike."""

    @model_validator(mode="before")
    @classmethod
    def _retries(cls, values: Any) -> Any:
        # The name before the one retry policy, which counted retries, not attempts.
        if isinstance(values, dict) and "retries" in values:
            values = dict(values)
            values.setdefault("attempts", int(values.pop("retries")) + 1)
        return values

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts, base_s=self.backoff_s, cap_s=3600)


GROUPS: dict[str, type[_Group]] = {
    "limits": LimitSettings,
    "whisper": WhisperSettings,
    "llm": LlmSettings,
    "backend": BackendSettings,
    "cascade": CascadeSettings,
    "pipeline": PipelineSettings,
    "live": LiveSettings,
    "tasks": TaskSettings,
    "webhooks": WebhookSettings,
}
# Flat names from before the groups (``STEPAUDIO_TASK_LEASE_S``, ``task_lease_s=``,
# ``max_upload_mb=``) still work: each maps onto its group's field.
_FLAT_PREFIX = {
    "whisper": "whisper_",
    "llm": "llm_",
    "live": "live_",
    "tasks": "task_",
    "webhooks": "webhook_",
}
_SAME_NAME = ("limits", "pipeline", "cascade")  # flat names that are the field's own
_FLAT_EXCEPTIONS = {
    "max_pending_tasks_per_key": ("tasks", "max_pending_per_key"),
    "max_stored_mb_per_key": ("tasks", "max_stored_mb_per_key"),
    "task_db_busy_timeout_s": ("tasks", "db_busy_timeout_s"),
    "scratch_max_age_hours": ("tasks", "scratch_max_age_hours"),
    "webhook_retries": ("webhooks", "retries"),
    "backend_retries": ("backend", "attempts"),
    "cascade_concurrency": ("cascade", "concurrency"),
    **{
        name: ("backend", name)
        for name in BackendSettings.model_fields
        if name not in ("attempts", "backoff_s")
    },
}
FLAT_NAMES: dict[str, tuple[str, str]] = {
    **{
        _FLAT_PREFIX[group] + name: (group, name)
        for group, model in GROUPS.items()
        if group in _FLAT_PREFIX
        for name in model.model_fields
    },
    **{
        name: (group, name)
        for group in _SAME_NAME
        for name in GROUPS[group].model_fields
        if name != "concurrency"
    },
    **_FLAT_EXCEPTIONS,
}


def nest_flat_names(values: dict[str, Any]) -> dict[str, Any]:
    """``{"task_lease_s": 3}`` → ``{"tasks": {"lease_s": 3}}``."""
    out = dict(values)
    for flat, (group, name) in FLAT_NAMES.items():
        if flat in out:
            value = out.pop(flat)
            nested = out.get(group)
            if isinstance(nested, BaseModel):
                nested = nested.model_dump()
            nested = dict(nested or {})
            nested[name] = value  # only init keywords are left flat here: they win
            out[group] = nested
    return out


class FlatEnvironment(PydanticBaseSettingsSource):
    """The flat environment names (``STEPAUDIO_WHISPER_MODEL``), below the nested ones
    (``STEPAUDIO_WHISPER__MODEL``) in priority."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is done in __call__

    def __call__(self) -> dict[str, Any]:
        environ = {k.upper(): v for k, v in os.environ.items()}
        found: dict[str, Any] = {}
        for flat in FLAT_NAMES:
            raw = environ.get(f"STEPAUDIO_{flat.upper()}")
            if raw is not None:
                found[flat] = json.loads(raw) if raw.lstrip()[:1] in ("[", "{") else raw
        return nest_flat_names(found)


class Settings(BaseSettings):
    """Everything an operator can set. Every field is documented; see README's table."""

    model_config = SettingsConfigDict(
        env_prefix="STEPAUDIO_",
        env_file=".env",
        env_nested_delimiter="__",
        extra="ignore",
        use_attribute_docstrings=True,
        populate_by_name=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        flat = FlatEnvironment(settings_cls)
        return init_settings, env_settings, flat, dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, values: Any) -> Any:
        return nest_flat_names(values) if isinstance(values, dict) else values

    # -- service ----------------------------------------------------------------------
    host: str = "127.0.0.1"
    """Address `stepaudio serve` listens on."""
    port: int = 8000
    """Port `stepaudio serve` listens on."""
    data_dir: Path = Path.home() / ".local" / "share" / "stepaudio"
    """Where assembled models, uploads, the task database and temporary audio live."""
    models_dir: Path | None = None
    """Where the embedded models are assembled from their packages (about 1.3 GB). None:
    ``data_dir/models``. Services on one machine can share one."""
    api_keys: list[SecretStr] = []
    """Accepted API keys (``Authorization: Bearer KEY``, ``X-API-Key``, or the web page's
    login). Empty: no auth. With keys, every route but ``/health``, ``/ready`` and the
    login page needs one."""
    metrics_public: bool = False
    """Serve ``/metrics`` without a key (for a scraper on a private network) even when
    ``api_keys`` is set."""
    page_session_hours: float = Field(12, gt=0)
    """How long a login on the web page lasts. The cookie holds a random session id
    (kept, hashed, in the task database), never the key; logging out ends it at once."""

    # -- groups ----------------------------------------------------------------------
    limits: LimitSettings = LimitSettings()
    """Sizes, durations, queue shares and timeouts (``STEPAUDIO_LIMITS__MAX_UPLOAD_MB`` …)."""

    ui: bool = True
    """Serve the web page at ``/ui`` (false: only the API; ``/`` is then not found)."""

    # -- embedded engine (the CPU default) -----------------------------------------------
    whisper: WhisperSettings = WhisperSettings()
    """Whisper (``STEPAUDIO_WHISPER__MODEL`` …)."""
    llm: LlmSettings = LlmSettings()
    """The embedded text model (``STEPAUDIO_LLM__MODEL`` …)."""
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    """Where the embedded engine runs: ``cpu``, ``cuda`` (Whisper through CTranslate2's
    CUDA build, and the text model's layers on the GPU) or ``auto`` (CUDA when a GPU
    is visible)."""

    # -- Step-Audio-R1.1 backends -------------------------------------------------------
    backends: list[BackendConfig] = []
    """JSON list of ``{url, model, max_concurrency, api_key}``: the vLLM servers to use."""
    vllm_api_url: str | None = Field(
        None, validation_alias=AliasChoices("STEPAUDIO_VLLM_API_URL", "VLLM_API_URL")
    )
    """The seed's single backend (``VLLM_API_URL``), added to ``backends``."""
    model_name: str = Field(
        "Step-Audio-R1.1", validation_alias=AliasChoices("STEPAUDIO_MODEL_NAME", "MODEL_NAME")
    )
    """Model name for ``vllm_api_url`` (the seed's ``MODEL_NAME``)."""
    backend: BackendSettings = BackendSettings()
    """How the backends are called (``STEPAUDIO_BACKEND__REQUEST_TIMEOUT_S`` …)."""

    # -- cascade: any OpenAI-compatible transcription + chat servers ---------------------
    cascade: CascadeSettings = CascadeSettings()
    """The cascade (``STEPAUDIO_CASCADE__TRANSCRIPTION_URL`` …)."""

    engine: Literal["auto", "embedded", "stepaudio", "cascade"] = "auto"
    """The engine that answers: ``stepaudio`` (the ``backends``), ``cascade``
    (``cascade.transcription_url``) or ``embedded`` (the CPU default). ``auto``: the
    backends if any are set, else the cascade if its URL is set, else embedded."""

    # -- pipeline ---------------------------------------------------------------------
    pipeline: PipelineSettings = PipelineSettings()
    """Windows and scheduling (``STEPAUDIO_PIPELINE__ASR_WINDOW_S`` …)."""
    live: LiveSettings = LiveSettings()
    """Live sessions (``STEPAUDIO_LIVE__MAX_SESSIONS`` …)."""

    # -- tasks ------------------------------------------------------------------------
    database_url: str | None = None
    """SQLAlchemy URL of the task store. None: SQLite in ``data_dir``."""
    tasks: TaskSettings = TaskSettings()
    """Durable tasks (``STEPAUDIO_TASKS__LEASE_S`` …)."""
    webhooks: WebhookSettings = WebhookSettings()
    """Task webhooks (``STEPAUDIO_WEBHOOKS__SECRET`` …)."""

    def updated(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (flat names like ``request_timeout_s`` or groups),
        validated as any setting is (``model_copy`` would take a flat name silently)."""
        values = self.model_dump()
        for key, value in nest_flat_names(changes).items():
            if key in GROUPS and isinstance(value, dict):
                value = {**values[key], **value}
            values[key] = value
        return type(self)(_env_file=None, **values)

    def all_backends(self) -> list[BackendConfig]:
        """``backends`` plus the seed's ``VLLM_API_URL``/``MODEL_NAME``, if set."""
        extra = []
        if self.vllm_api_url:
            extra.append(BackendConfig(url=self.vllm_api_url, model=self.model_name))
        return [*self.backends, *extra]

    @property
    def models_path(self) -> Path:
        return self.models_dir or self.data_dir / "models"
