"""Live transcription latency: ``/v1/realtime`` on the embedded default, sessions
streaming real recordings at real-time pace over loopback WebSockets.

For each turn: how long after speech began the first delta came, and how long after
``speech_stopped`` the completed text came; for each session: how far its completed
texts fell behind the audio (the worst turn). One session, then four at once; then a
session past ``live.max_sessions`` must be refused while the others go on. The obvious
alternative, measured in the same run: faster-whisper called directly on each turn's
audio once the turn is over (what a client without partials would wait for).

    .venv/bin/python -m bench.realtime_latency      # [SESSIONS=4] [CLIPS=4]
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.common import clips, machine, show
from stepaudio.testing.encode import realtime_pcm

STEP_S = 0.1


@dataclass
class Turn:
    start_ms: int
    end_ms: int | None = None
    stopped_at: float | None = None
    first_delta_at: float | None = None
    completed_at: float | None = None
    text: str = ""


@dataclass
class Session:
    turns: dict[str, Turn] = field(default_factory=dict)
    refused: str | None = None


def recording(n_clips: int) -> np.ndarray:
    from stepaudio.testing.longaudio import load_pcm

    pause = np.zeros(int(16000 * 1.2), np.int16)
    parts = [pause]
    for path in clips("en")[:n_clips]:
        parts += [load_pcm(path), pause]
    return np.concatenate(parts)


async def session(url: str, pcm: np.ndarray) -> Session:
    out = Session()
    data = realtime_pcm(np.concatenate([pcm, np.zeros(16000 * 2, np.int16)]))
    step = int(24000 * STEP_S) * 2
    async with connect(f"{url}/v1/realtime?intent=transcription", max_size=None) as ws:
        update = {
            "type": "transcription",
            "audio": {"input": {"transcription": {"language": "en"}}},
        }
        try:
            await ws.send(json.dumps({"type": "session.update", "session": update}))
        except ConnectionClosed:  # refused at once: its error event is still to be read
            event = json.loads(await ws.recv())
            out.refused = event["error"]["code"]
            return out
        started = time.monotonic()

        async def send() -> None:
            for i in range(0, len(data), step):
                chunk = base64.b64encode(data[i : i + step]).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
                await asyncio.sleep(max(0, started + (i + step) / 48000 - time.monotonic()))

        sender = asyncio.create_task(send())
        open_turns: set[str] = set()
        while not (sender.done() and not open_turns):
            try:
                event = json.loads(await asyncio.wait_for(ws.recv(), timeout=1.0))
            except TimeoutError:
                continue
            now = time.monotonic() - started
            kind = event["type"]
            if kind == "error":
                out.refused = event["error"]["code"]
                break
            item = event.get("item_id")
            if kind == "input_audio_buffer.speech_started":
                out.turns[item] = Turn(event["audio_start_ms"])
                open_turns.add(item)
            elif kind == "input_audio_buffer.speech_stopped":
                out.turns[item].end_ms = event["audio_end_ms"]
                out.turns[item].stopped_at = now
            elif kind.endswith("transcription.delta") and item in out.turns:
                out.turns[item].first_delta_at = out.turns[item].first_delta_at or now
            elif kind.endswith("transcription.completed") and item in out.turns:
                out.turns[item].completed_at = now
                out.turns[item].text = event["transcript"]
                open_turns.discard(item)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)  # a refused one's sends fail
    return out


def direct_times(pcm: np.ndarray, turns: list[Turn]) -> tuple[list[float], str]:
    """faster-whisper on each turn's audio, called directly (same model, same beam), and
    the turns' texts joined."""
    from stepaudio.config import Settings
    from stepaudio.engines.embedded import EmbeddedEngine

    whisper = EmbeddedEngine.from_settings(Settings(_env_file=None)).whisper
    times, texts = [], []
    for turn in sorted(turns, key=lambda t: t.start_ms):
        audio = pcm[turn.start_ms * 16 : (turn.end_ms or turn.start_ms) * 16]
        started = time.perf_counter()
        texts.append(whisper.transcribe(audio, language="en").text)
        times.append(time.perf_counter() - started)
    return times, " ".join(texts)


def pct(values: list[float], q: float) -> str:
    if not values:
        return "–"
    return f"{np.percentile(values, q):.2f}"


def reference(n_clips: int) -> str:
    return " ".join(p.with_suffix(".txt").read_text().strip() for p in clips("en")[:n_clips])


def wer_pct(text: str, ref: str) -> float:
    """Word error rate (%) of ``text`` against the clips' reference transcripts."""
    from tests.helpers import wer

    return 100 * wer([ref], [text])


def session_text(session: Session) -> str:
    """A session's completed turns joined."""
    return " ".join(t.text for t in sorted(session.turns.values(), key=lambda t: t.start_ms))


def summary(name: str, sessions: list[Session], ref: str) -> list[object]:
    turns = [t for s in sessions for t in s.turns.values() if t.completed_at is not None]
    # Speech began prefix_padding_ms (300) after audio_start_ms.
    first = [
        t.first_delta_at - (t.start_ms + 300) / 1000
        for t in turns
        if t.first_delta_at and t.stopped_at and t.first_delta_at < t.stopped_at
    ]
    done = [t.completed_at - t.stopped_at for t in turns if t.stopped_at is not None]
    behind = [t.completed_at - (t.end_ms or 0) / 1000 for t in turns]
    # Partials: text shown while the person was still speaking (before the stop).
    with_partials = sum(
        1 for t in turns if t.first_delta_at and t.stopped_at and t.first_delta_at < t.stopped_at
    )
    return [
        name,
        len(sessions),
        len(turns),
        f"{with_partials}/{len(turns)}",
        pct(first, 50),
        pct(first, 95),
        pct(done, 50),
        pct(done, 95),
        f"{max(behind):.2f}" if behind else "–",
        f"{max(wer_pct(session_text(s), ref) for s in sessions):.1f}",
    ]


async def scenarios(
    url: str, pcm: np.ndarray, n: int
) -> tuple[list[Session], list[Session], Session]:
    one = [await session(url, pcm)]
    many = list(await asyncio.gather(*(session(url, pcm) for _ in range(n))))
    # Past capacity: n sessions hold every place; one more must be refused at once.
    holders = [asyncio.create_task(session(url, pcm[: 16000 * 4])) for _ in range(n)]
    await asyncio.sleep(0.5)
    extra = await session(url, pcm[: 16000 * 2])
    await asyncio.gather(*holders)
    return one, many, extra


def main() -> None:
    from stepaudio.api import create_app
    from stepaudio.config import Settings
    from stepaudio.testing.server import serve_in_thread

    n = int(os.environ.get("SESSIONS", "4"))
    n_clips = int(os.environ.get("CLIPS", "4"))
    pcm, ref = recording(n_clips), reference(n_clips)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), live_max_sessions=n, _env_file=None)
        with serve_in_thread(create_app(settings), settings=settings) as http:
            url = http.replace("http://", "ws://")
            asyncio.run(session(url, pcm[: 16000 * 3]))  # loads the models
            one, many, extra = asyncio.run(scenarios(url, pcm, n))
    turns = [t for t in one[0].turns.values() if t.completed_at is not None]
    direct, direct_text = direct_times(pcm, turns)
    ours = [t.completed_at - t.stopped_at for t in turns if t.stopped_at is not None]
    rows = [
        summary("stepaudio /v1/realtime", one, ref),
        summary(f"{n} sessions at once", many, ref),
    ]
    rows.append(
        [
            "faster-whisper direct, per turn after it ends",
            1,
            len(direct),
            "0/" + str(len(direct)),
            "–",
            "–",
            pct(direct, 50),
            pct(direct, 95),
            "–",
            f"{wer_pct(direct_text, ref):.1f}",
        ]
    )
    show(
        console,
        f"Live transcription, {len(pcm) / 16000:.0f} s of English at real-time pace ({machine()})",
        [
            "",
            "sessions",
            "turns",
            "turns with partials",
            "first delta p50 s",
            "p95 s",
            "completed after stop p50 s",
            "p95 s",
            "worst lag s",
            "WER % (worst session)",
        ],
        rows,
    )
    ratio = statistics.median(ours) / statistics.median(direct) if direct and ours else float("nan")
    print(f"completed-after-stop median vs faster-whisper direct on the turn: {ratio:.2f}x")
    print(
        "one session, each turn (length s: completed after stop s): "
        + ", ".join(
            f"{(t.end_ms - t.start_ms) / 1000:.1f}: {t.completed_at - t.stopped_at:.2f}"
            for t in turns
            if t.stopped_at is not None and t.end_ms is not None and t.completed_at is not None
        )
    )
    print(f"session {n + 1} while {n} are open: refused with {extra.refused!r}")


if __name__ == "__main__":
    main()
