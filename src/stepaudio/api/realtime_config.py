"""A realtime transcription session's settings, as either of OpenAI's two session shapes
sets them (``session.update`` with ``audio.input.…``; the older
``transcription_session.update`` with ``input_audio_…``) and shows them back."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from stepaudio.api.errors import live_params
from stepaudio.api.realtime_audio import AudioIn
from stepaudio.errors import InvalidParameter
from stepaudio.live import VadConfig
from stepaudio.params import Mode


@dataclass
class SessionConfig:
    model_names: list[str]
    """Transcription model names taken (ours, and the names OpenAI's clients send)."""
    model: str = "gpt-4o-transcribe"
    language: str | None = None
    prompt: str = ""
    vad: VadConfig | None = field(default_factory=VadConfig)
    audio: AudioIn = field(default_factory=lambda: AudioIn("audio/pcm", 24000))
    include: list[str] = field(default_factory=list)
    older_shape: bool = False
    id: str = field(default_factory=lambda: "sess_" + secrets.token_hex(10))

    def update_current(self, session: dict[str, Any]) -> None:
        """``session.update``'s session (the current shape)."""
        self.older_shape = False
        kind = session.get("type", "transcription")
        if kind != "transcription":
            raise InvalidParameter(
                "Only transcription sessions are served here.", param="session.type"
            )
        inputs = object_param(
            object_param(session.get("audio", {}), "session.audio").get("input", {}),
            "session.audio.input",
        )
        if "format" in inputs:
            fmt = object_param(inputs["format"], "session.audio.input.format")
            name = fmt.get("type", "audio/pcm")
            self._format(name, fmt.get("rate", 24000 if name == "audio/pcm" else None))
        if "transcription" in inputs:
            self._transcription(inputs["transcription"], "session.audio.input.transcription")
        if "turn_detection" in inputs:
            self._vad(inputs["turn_detection"], "session.audio.input.turn_detection")
        if "include" in session:
            self.include = _include(session["include"])

    def update_older(self, session: dict[str, Any]) -> None:
        """``transcription_session.update``'s session (the older shape)."""
        self.older_shape = True
        if "input_audio_format" in session:
            self._format(session["input_audio_format"], None)
        if "input_audio_transcription" in session:
            self._transcription(
                session["input_audio_transcription"], "session.input_audio_transcription"
            )
        if "turn_detection" in session:
            self._vad(session["turn_detection"], "session.turn_detection")
        if "include" in session:
            self.include = _include(session["include"])

    def _format(self, name: object, rate: object) -> None:
        if not isinstance(name, str) or not (rate is None or isinstance(rate, int)):
            raise InvalidParameter("Unsupported audio format.", param="session.audio.input.format")
        if name != self.audio.name or (rate or self.audio.rate) != self.audio.rate:
            self.audio = AudioIn(name, rate)

    def _transcription(self, value: object, param: str) -> None:
        if value is None:
            return
        settings = object_param(value, param)
        model = settings.get("model", self.model)
        if model not in self.model_names:
            raise InvalidParameter(
                f"Unknown transcription model '{str(model)[:64]}'; this server takes: "
                f"{', '.join(self.model_names)}.",
                param=f"{param}.model",
            )
        language = settings.get("language")
        prompt = settings.get("prompt") or ""
        params = live_params(param, mode=Mode.ASR, language=language or None, prompt=prompt or None)
        self.model, self.language, self.prompt = model, params.language, params.prompt or ""

    def _vad(self, value: object, param: str) -> None:
        if value is None:
            vad = None
        else:
            fields = object_param(value, param)
            if fields.get("type", "server_vad") != "server_vad":
                raise InvalidParameter(
                    "Only server_vad turn detection (or null) is served here.",
                    param=f"{param}.type",
                )
            try:
                vad = VadConfig(
                    threshold=float(fields.get("threshold") or 0.5),
                    prefix_padding_ms=int(fields.get("prefix_padding_ms") or 300),
                    silence_duration_ms=int(fields.get("silence_duration_ms") or 500),
                )
            except (TypeError, ValueError):
                raise InvalidParameter("Bad turn_detection values.", param=param) from None
            if not (
                0 <= vad.threshold <= 1
                and 0 <= vad.prefix_padding_ms <= 5000
                and 100 <= vad.silence_duration_ms <= 10000
            ):
                raise InvalidParameter("turn_detection values out of range.", param=param)
        self.vad = vad

    def as_dict(self) -> dict[str, Any]:
        """The session as ``session.created``/``…updated`` carry it, in the client's shape."""
        vad = (
            {
                "type": "server_vad",
                "threshold": self.vad.threshold,
                "prefix_padding_ms": self.vad.prefix_padding_ms,
                "silence_duration_ms": self.vad.silence_duration_ms,
            }
            if self.vad
            else None
        )
        transcription = {"model": self.model, "language": self.language, "prompt": self.prompt}
        if self.older_shape:
            return {
                "id": self.id,
                "object": "realtime.transcription_session",
                "input_audio_format": self.audio.name,
                "input_audio_transcription": transcription,
                "turn_detection": vad,
                "input_audio_noise_reduction": None,
                "include": self.include,
            }
        fmt: dict[str, Any] = {"type": self.audio.name}
        if self.audio.name == "audio/pcm":
            fmt["rate"] = self.audio.rate
        return {
            "type": "transcription",
            "id": self.id,
            "object": "realtime.transcription_session",
            "audio": {
                "input": {
                    "format": fmt,
                    "transcription": transcription,
                    "turn_detection": vad,
                    "noise_reduction": None,
                }
            },
            "include": self.include,
        }


def _include(value: object) -> list[str]:
    """``include``: OpenAI's values are taken (``…logprobs`` gives nothing here: Whisper's
    token probabilities are not kept) and ours, ``item.input_audio_transcription.words``."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 8:
        raise InvalidParameter("'include' must be a list of strings.", param="session.include")
    return list(value)


def object_param(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameter(f"'{param}' must be an object.", param=param)
    return value
