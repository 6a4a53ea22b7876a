"""A GGUF text model run in-process by llama.cpp (xllamacpp), for summaries and answers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from stepaudio.engines.base import Usage
from stepaudio.errors import ModelOutputError, StepAudioError


class LocalLLM:
    """Thread-safe lazy holder of one ``xllamacpp.Server`` (no HTTP: called directly)."""

    def __init__(
        self, model_path: Path, *, n_ctx: int = 8192, threads: int = 2, gpu_layers: int = 0
    ):
        self.model_path = model_path
        self.n_ctx = n_ctx
        self._threads = threads
        self._gpu_layers = gpu_layers
        """Layers on the GPU (-1: all) where llama.cpp was built with CUDA; 0 on the CPU."""
        self._server = None
        self._lock = threading.Lock()

    def _get(self):
        with self._lock:
            if self._server is None:
                import xllamacpp

                params = xllamacpp.CommonParams()
                params.model.path = str(self.model_path)
                params.n_ctx = self.n_ctx
                params.cpuparams.n_threads = self._threads
                params.cpuparams_batch.n_threads = self._threads
                params.n_parallel = 1
                params.n_gpu_layers = self._gpu_layers
                # llama.cpp logs every request at its default verbosity.
                params.verbosity = 0
                params.warmup = False
                self._server = xllamacpp.Server(params)
            return self._server

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
        top_p: float = 0.9,
        repeat_penalty: float = 1.0,
    ) -> tuple[str, bool, Usage]:
        """Blocking: run in a worker thread. Returns (text, truncated, usage)."""
        request: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "repeat_penalty": repeat_penalty,
        }
        try:
            reply = self._get().handle_chat_completions(request)
        except (RuntimeError, ValueError) as exc:
            raise StepAudioError(f"The text model failed: {exc}", code="llm_error") from exc
        if not isinstance(reply, dict) or "error" in reply or not reply.get("choices"):
            raise ModelOutputError(f"The text model returned no completion: {str(reply)[:300]}")
        choice = reply["choices"][0]
        usage = reply.get("usage", {})
        return (
            (choice.get("message", {}).get("content") or "").strip(),
            choice.get("finish_reason") == "length",
            Usage(
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
            ),
        )
