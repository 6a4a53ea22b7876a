"""A faithful stand-in for a Step-Audio-R1.1 vLLM server, for tests and benchmarks.

A real HTTP server (Starlette under uvicorn, in a background thread on 127.0.0.1) that
checks every request against the rules of DESIGN §2 — parts of at most 25 s (refused
beyond 29.98 s, as vLLM fails), WAV 16 kHz mono 16-bit, the prefill flags, prompt +
``max_tokens`` within its ``max_model_len`` (vLLM's 400 "maximum context length"
otherwise) — queues beyond its ``max_num_seqs``, and streams SSE as vLLM does. Its
answers are real: the embedded Whisper transcribes the parts it received, wrapped in a
``<think>…</think>`` block, so results stay checkable. It can be told to fail.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import io
import json
import math
import re
import socket
import threading
import time
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from stepaudio.engines.whisper import WhisperTranscriber
from stepaudio.text import join_texts

FailMode = Literal["500", "hang", "cut"] | None

MAX_PART_S = 25.0
HARD_PART_S = 29.98
STOP_TOKEN_IDS = [151665]
PREFILLS = ("<think>\n", "<think>\n\n</think>\n")
_TOKEN = re.compile(r"\s*</think>\s*|<\|EOT\|>|\s*[^\s]{1,4}|\s+")
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")


def prompt_tokens(audio_seconds: list[float], texts: list[str], n_messages: int) -> int:
    """The stand-in's prompt length: 313 patches per 25 s + 2 markers per part, a token
    per 3 UTF-8 bytes of text, 4 tokens of chat template per message."""
    audio = sum(math.ceil(s * 313 / 25) + 2 for s in audio_seconds)
    text = sum(math.ceil(len(t.encode("utf-8")) / 3) for t in texts)
    return audio + text + 4 * n_messages


def tokenize(text: str) -> list[str]:
    """Pieces that join back to ``text``; the unit of ``max_tokens`` here."""
    return _TOKEN.findall(text)


def first_sentences(text: str, n: int = 2) -> str:
    parts = [p for p in _SENTENCE.split(text.strip()) if p]
    return " ".join(parts[:n]).strip() if parts else text.strip()


class CachedTranscriber:
    """Whisper behind a lock and a cache of finished transcripts, shared by stand-ins.

    Tests send the same clip many times at once; transcribing it once (the others wait
    for that result) keeps a 2-core machine from running eight identical Whispers."""

    def __init__(self, whisper: WhisperTranscriber):
        self.whisper = whisper
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[str, str | None]] = {}

    def transcribe(self, pcm: np.ndarray, task: str) -> tuple[str, str | None]:
        """Blocking: (text, language) of ``pcm``."""
        key = (hashlib.sha1(pcm.tobytes()).hexdigest(), task)
        with self._lock:
            if key not in self._cache:
                result = self.whisper.transcribe(pcm, task=task)
                self._cache[key] = (result.text, result.language)
            return self._cache[key]


@functools.cache
def shared_transcriber(data_dir: Path) -> CachedTranscriber:
    """One embedded Whisper per process for all stand-ins (loading it costs memory)."""
    return CachedTranscriber(WhisperTranscriber("base", data_dir))


@dataclass
class StandInStats:
    requests: int = 0
    """Chat requests received (valid or not)."""
    completed: int = 0
    cancelled: int = 0
    """Streams the client went away from before they ended."""
    in_flight: int = 0
    max_concurrency: int = 0
    """Most chat requests in flight at once (queued ones included)."""
    max_running: int = 0
    """Most requests generating at once (never above max_num_seqs)."""
    violations: list[str] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    """Per accepted request: part lengths, prompt tokens, max_tokens, finish reason."""


class _Invalid(Exception):
    def __init__(self, status: int, message: str, violation: bool = True):
        super().__init__(message)
        self.status = status
        self.message = message
        self.violation = violation


class _Cut(Exception):
    """Raised mid-stream to drop the connection (fail mode "cut")."""


@dataclass
class _Parsed:
    task: str
    pcm_parts: list[np.ndarray]
    part_seconds: list[float]
    user_text: str
    target_lang: str | None
    thinking: bool
    max_tokens: int
    prompt_tokens: int
    include_usage: bool
    stream: bool = True


class StandIn:
    """A Step-Audio vLLM server on loopback. Use as a context manager."""

    def __init__(
        self,
        *,
        model: str = "Step-Audio-R1.1",
        max_model_len: int = 65536,
        max_num_seqs: int = 4,
        latency: tuple[float, float] = (0.0, 0.0),
        reasoning_repeat: int = 2,
        transcriber: CachedTranscriber | None = None,
        data_dir: Path | None = None,
        leak_eot: bool = True,
        strict: bool = True,
    ):
        self.model = model
        self.max_model_len = max_model_len
        self.max_num_seqs = max_num_seqs
        self.latency = latency
        """(fixed seconds, seconds per audio second) slept before answering."""
        self.reasoning_repeat = reasoning_repeat
        self.leak_eot = leak_eot
        self.strict = strict
        """False: also a plain OpenAI chat server (no prefill rules, non-streamed replies),
        for engines that use any chat endpoint (the cascade)."""
        if transcriber is None:
            if data_dir is None:
                from stepaudio.config import Settings

                data_dir = Settings().data_dir
            transcriber = shared_transcriber(Path(data_dir))
        self.transcriber = transcriber
        self.stats = StandInStats()
        self.fail_mode: FailMode = None
        self.fail_times: int | None = None
        """How many requests fail before it heals; None: until fail_mode is cleared."""
        self._port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._gate: asyncio.Semaphore | None = None
        self._running = 0
        self.app = Starlette(
            routes=[
                Route("/health", self._health),
                Route("/v1/models", self._models),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ]
        )

    # -- lifecycle ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> StandIn:
        """Listen (again, on the same port once it has one)."""
        if self.running:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="critical",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._gate = None
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="standin"
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the stand-in did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused until ``start()``."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(5)
        self._thread = None

    def fail(self, mode: FailMode, times: int | None = None) -> None:
        self.fail_mode, self.fail_times = mode, times

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- endpoints ------------------------------------------------------------------

    async def _health(self, request: Request) -> Response:
        return PlainTextResponse("")

    async def _models(self, request: Request) -> Response:
        entry = {
            "id": self.model,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "vllm",
            "root": self.model,
            "parent": None,
            "max_model_len": self.max_model_len,
        }
        return JSONResponse({"object": "list", "data": [entry]})

    def _take_failure(self) -> FailMode:
        mode = self.fail_mode
        if mode is not None and self.fail_times is not None:
            self.fail_times -= 1
            if self.fail_times <= 0:
                self.fail_mode, self.fail_times = None, None
        return mode

    async def _chat(self, request: Request) -> Response:
        self.stats.requests += 1
        failure = self._take_failure()
        if failure == "500":
            return _error(500, "Internal Server Error (told to fail)", "InternalServerError")
        try:
            body = json.loads(await request.body())
            parsed = self._parse(body)
        except _Invalid as exc:
            if exc.violation:
                self.stats.violations.append(exc.message)
            return _error(exc.status, exc.message, "BadRequestError")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self.stats.violations.append(f"malformed request: {exc!r}")
            return _error(400, f"malformed request: {exc}", "BadRequestError")
        if not parsed.stream:
            return await self._reply(parsed, failure)
        return StreamingResponse(self._generate(parsed, failure), media_type="text/event-stream")

    async def _reply(self, p: _Parsed, failure: FailMode) -> Response:
        """A non-streamed chat.completion (lenient mode only)."""
        chunks = [c async for c in self._generate(p, failure)]
        text, finish, usage = "", None, None
        for c in chunks:
            data = c.removeprefix("data: ").strip()
            if data == "[DONE]":
                continue
            chunk = json.loads(data)
            usage = chunk.get("usage") or usage
            for choice in chunk["choices"]:
                text += choice["delta"].get("content", "")
                finish = choice["finish_reason"] or finish
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
            "usage": usage,
        }
        return JSONResponse(body)

    # -- validation -----------------------------------------------------------------

    def _parse(self, body: dict[str, Any]) -> _Parsed:
        if body.get("model") != self.model:
            raise _Invalid(404, f"The model `{body.get('model')}` does not exist.")
        rules = {
            "stream": True,
            "continue_final_message": True,
            "add_generation_prompt": False,
            "skip_special_tokens": False,
            "stop_token_ids": STOP_TOKEN_IDS,
        }
        messages = body["messages"]
        last = messages[-1]
        prefilled = last.get("role") == "assistant" and last.get("content") in PREFILLS
        if self.strict:
            for key, want in rules.items():
                if body.get(key) != want:
                    raise _Invalid(400, f"{key} must be {want!r}, got {body.get(key)!r}")
            if not prefilled:
                raise _Invalid(400, f"last message must be the assistant prefill, got {last!r}")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise _Invalid(400, f"max_tokens must be a positive integer, got {max_tokens!r}")
        texts: list[str] = []
        pcm_parts: list[np.ndarray] = []
        seconds: list[float] = []
        user_text = ""
        for message in messages:
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
                if message.get("role") == "user":
                    user_text += content
                continue
            for part in content:
                if part.get("type") == "text":
                    texts.append(part["text"])
                    user_text += part["text"]
                elif part.get("type") == "input_audio":
                    pcm = _check_wav(part["input_audio"])
                    pcm_parts.append(pcm)
                    seconds.append(pcm.size / 16000)
                else:
                    raise _Invalid(400, f"unexpected content part {part.get('type')!r}")
        for s in seconds:
            if s > HARD_PART_S:
                raise _Invalid(400, f"audio part of {s:.2f} s exceeds the encoder's 29.98 s")
            if s > MAX_PART_S + 0.01:
                self.stats.violations.append(f"audio part of {s:.2f} s is over 25 s")
        prompt = prompt_tokens(seconds, texts, len(messages))
        if prompt + max_tokens > self.max_model_len:
            raise _Invalid(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. "
                f"However, you requested {prompt + max_tokens} tokens ({prompt} in the "
                f"messages, {max_tokens} in the completion). Please reduce the length of "
                "the messages or completion.",
            )
        return _Parsed(
            task=_task(user_text, bool(pcm_parts)),
            pcm_parts=pcm_parts,
            part_seconds=seconds,
            user_text=user_text,
            target_lang=_target_lang(user_text),
            thinking=prefilled and last["content"] == PREFILLS[0],
            stream=bool(body.get("stream")),
            max_tokens=max_tokens,
            prompt_tokens=prompt,
            include_usage=not body.get("stream")
            or bool((body.get("stream_options") or {}).get("include_usage")),
        )

    # -- answering ------------------------------------------------------------------

    async def _generate(self, p: _Parsed, failure: FailMode) -> AsyncIterator[str]:
        stats = self.stats
        stats.in_flight += 1
        stats.max_concurrency = max(stats.max_concurrency, stats.in_flight)
        finished = False
        record: dict[str, Any] = {
            "task": p.task,
            "parts": [round(s, 3) for s in p.part_seconds],
            "prompt_tokens": p.prompt_tokens,
            "max_tokens": p.max_tokens,
            "thinking": p.thinking,
        }
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.max_num_seqs)
        try:
            async with self._gate:
                self._running += 1
                stats.max_running = max(stats.max_running, self._running)
                try:
                    if failure == "hang":
                        await asyncio.sleep(3600)
                    fixed, per_s = self.latency
                    delay = fixed + per_s * sum(p.part_seconds)
                    if delay:
                        await asyncio.sleep(delay)
                    reasoning, answer = await self._answer(p)
                finally:
                    self._running -= 1
            text = f"{reasoning}\n</think>\n{answer}" if p.thinking else answer
            if self.leak_eot and self.strict:
                text += "<|EOT|>"
            tokens = tokenize(text)
            finish = "stop"
            if len(tokens) > p.max_tokens:
                tokens, finish = tokens[: p.max_tokens], "length"
            record.update(finish_reason=finish, completion_tokens=len(tokens))
            cid = f"chatcmpl-{uuid.uuid4().hex}"
            created = int(time.time())
            yield _event(cid, created, self.model, {"role": "assistant", "content": ""}, None)
            for i, token in enumerate(tokens):
                if failure == "cut" and i >= len(tokens) // 2:
                    raise _Cut("stand-in told to cut the stream")
                yield _event(cid, created, self.model, {"content": token}, None)
            yield _event(cid, created, self.model, {}, finish)
            if p.include_usage:
                usage = {
                    "prompt_tokens": p.prompt_tokens,
                    "completion_tokens": len(tokens),
                    "total_tokens": p.prompt_tokens + len(tokens),
                }
                chunk = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": self.model,
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"
            finished = True
            stats.completed += 1
        finally:
            stats.in_flight -= 1
            if not finished and failure != "cut":
                stats.cancelled += 1
            stats.log.append(record)

    async def _answer(self, p: _Parsed) -> tuple[str, str]:
        if not p.pcm_parts:
            material = _material(p.user_text)
            answer = material if p.task == "translate" else first_sentences(material)
            reasoning = f"The user wants a {p.task} of a text of {len(material)} characters."
            return self._pad(reasoning), answer
        whisper_task = (
            "translate" if p.task == "translate" and _english(p.target_lang) else ("transcribe")
        )
        texts, language = [], None
        for pcm in p.pcm_parts:
            text, lang = await self._transcribe(pcm, whisper_task)
            texts.append(text)
            language = language or lang
        transcript = join_texts(texts)
        if p.task in ("summarize", "understand"):
            answer = first_sentences(transcript)
        else:
            answer = transcript
        reasoning = (
            f"The user wants a {p.task}. I received {len(p.pcm_parts)} audio part(s), "
            f"{sum(p.part_seconds):.1f} s in all. The speech is in {language or 'unknown'}."
        )
        return self._pad(reasoning), answer

    def _pad(self, reasoning: str) -> str:
        extra = " Let me listen once more and check every word." * self.reasoning_repeat
        return reasoning + extra

    async def _transcribe(self, pcm: np.ndarray, task: str) -> tuple[str, str | None]:
        return await anyio.to_thread.run_sync(self.transcriber.transcribe, pcm, task)


def _event(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> str:
    chunk = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"


def _error(status: int, message: str, kind: str) -> JSONResponse:
    # vLLM's error body.
    body = {"object": "error", "message": message, "type": kind, "param": None, "code": status}
    return JSONResponse(body, status_code=status)


def _check_wav(audio: dict[str, Any]) -> np.ndarray:
    if audio.get("format") != "wav":
        raise _Invalid(400, f"input_audio format must be 'wav', got {audio.get('format')!r}")
    data = audio.get("data", "")
    if data.startswith("data:"):
        raise _Invalid(400, "input_audio data must be raw base64, not a data URI")
    try:
        raw = base64.b64decode(data, validate=True)
        with wave.open(io.BytesIO(raw)) as w:
            shape = (w.getnchannels(), w.getsampwidth(), w.getframerate())
            frames = w.readframes(w.getnframes())
    except (binascii.Error, wave.Error, EOFError) as exc:
        raise _Invalid(400, f"input_audio is not a WAV file: {exc}") from exc
    if shape != (1, 2, 16000):
        raise _Invalid(400, f"WAV must be mono 16-bit 16 kHz, got (ch, width, rate)={shape}")
    return np.frombuffer(frames, dtype="<i2")


def _task(text: str, has_audio: bool) -> str:
    low = text.lower()
    if "translat" in low or "翻译" in text:
        return "translate"
    if has_audio and ("transcri" in low or "转写" in text or "记录" in text):
        return "asr"
    if "summar" in low or "总结" in text or "摘要" in text:
        return "summarize"
    return "understand" if has_audio else "answer"


def _target_lang(text: str) -> str | None:
    match = re.search(r"(?:translate it to|into) ([^.\n]+)", text, re.IGNORECASE)
    return match.group(1).strip() if match else None


def _english(lang: str | None) -> bool:
    return bool(lang) and lang.strip().lower() in ("english", "en")


def _material(text: str) -> str:
    """The quoted text of a text-task prompt (between the first blank lines)."""
    blocks = text.split("\n\n")
    return blocks[1].strip() if len(blocks) >= 3 else text.strip()
