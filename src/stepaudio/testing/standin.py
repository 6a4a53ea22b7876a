"""A faithful stand-in for a Step-Audio-R1.1 vLLM server, for tests and benchmarks.

A real HTTP server (Starlette under uvicorn, in a background thread on 127.0.0.1) that
checks every request against the Step-Audio wire protocol (``standin_requests.py``:
parts, WAV format, prefill flags, context length), queues beyond its ``max_num_seqs``, and
streams SSE as vLLM does (``standin_sse.py``). Its answers are real: the embedded Whisper
transcribes the parts it received, wrapped in a ``<think>…</think>`` block, so results
stay checkable. It can be told to fail.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
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

from stepaudio.testing.standin_cache import CachedTranscriber, shared_transcriber
from stepaudio.testing.standin_requests import Invalid, ParsedRequest, parse_request
from stepaudio.testing.standin_sse import (
    DONE,
    error_response,
    sse_event,
    tokenize,
    usage_event,
)
from stepaudio.text import join_texts

FailMode = Literal["500", "hang", "cut"] | None

_SENTENCE = re.compile(r"(?<=[.!?。！？])\s*")


def first_sentences(text: str, n: int = 2) -> str:
    parts = [p for p in _SENTENCE.split(text.strip()) if p]
    return " ".join(parts[:n]).strip() if parts else text.strip()


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


class _Cut(Exception):
    """Raised mid-stream to drop the connection (fail mode "cut")."""


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
            from stepaudio.config import Settings

            chosen = Settings() if data_dir is None else Settings(data_dir=Path(data_dir))
            transcriber = shared_transcriber(chosen.models_path)
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
            message = "Internal Server Error (told to fail)"
            return error_response(500, message, "InternalServerError")
        try:
            body = json.loads(await request.body())
            parsed = parse_request(
                body,
                model=self.model,
                max_model_len=self.max_model_len,
                strict=self.strict,
                violations=self.stats.violations,
            )
        except Invalid as exc:
            if exc.violation:
                self.stats.violations.append(exc.message)
            return error_response(exc.status, exc.message, "BadRequestError")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self.stats.violations.append(f"malformed request: {exc!r}")
            return error_response(400, f"malformed request: {exc}", "BadRequestError")
        if not parsed.stream:
            return await self._reply(parsed, failure)
        return StreamingResponse(self._generate(parsed, failure), media_type="text/event-stream")

    async def _reply(self, p: ParsedRequest, failure: FailMode) -> Response:
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

    # -- answering ------------------------------------------------------------------

    async def _generate(self, p: ParsedRequest, failure: FailMode) -> AsyncIterator[str]:
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
            yield sse_event(cid, created, self.model, {"role": "assistant", "content": ""}, None)
            for i, token in enumerate(tokens):
                if failure == "cut" and i >= len(tokens) // 2:
                    raise _Cut("stand-in told to cut the stream")
                yield sse_event(cid, created, self.model, {"content": token}, None)
            yield sse_event(cid, created, self.model, {}, finish)
            if p.include_usage:
                yield usage_event(cid, created, self.model, p.prompt_tokens, len(tokens))
            yield DONE
            finished = True
            stats.completed += 1
        finally:
            stats.in_flight -= 1
            if not finished and failure != "cut":
                stats.cancelled += 1
            stats.log.append(record)

    async def _answer(self, p: ParsedRequest) -> tuple[str, str]:
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


def _english(lang: str | None) -> bool:
    return lang is not None and lang.strip().lower() in ("english", "en")


def _material(text: str) -> str:
    """The quoted text of a text-task prompt (between the first blank lines)."""
    blocks = text.split("\n\n")
    return blocks[1].strip() if len(blocks) >= 3 else text.strip()
