"""Answers a user can check: every time shown in an ``understand`` answer, against the
transcript it came from.

Questions on the shared clips go to ``POST /api/process`` (mode ``understand``) on a real
server with the embedded default (Whisper base + the default text model). Each answer is
then read as a user would check it, independently of ``pipeline/citations.py``:

- a time mark ``[m:ss]`` must stand before a quote, the quote must be in the transcript
  (its letters, in order, ≥ 80 % within the cited segments), and the mark must be the
  start of the segment that holds it: otherwise the time is **invented**;
- a quote without a time must be one the transcript does not hold, and the result must
  say so in a ``citation_unmatched`` warning;
- each of ``citations`` must be segments of the result, with their own times and words.

Aim (issue 25): 0 invented times, 0 quotes shown with a time that the transcript lacks.

    .venv/bin/python -m bench.grounded_answers
"""

from __future__ import annotations

import difflib
import re
import time
import unicodedata

import httpx
from rich.console import Console

from bench.common import DATA, machine, show

QUESTIONS = {
    "en/jfk.flac": ["Who is speaking, and what does he ask?", "Quote the key sentence."],
    "en/sense_and_sensibility_0870.wav": ["What happens here?", "Quote what is said."],
    "en/sonnet_1.mp3": ["What is this poem about? Quote a line."],
    "zh/firered_TEST_MEETING_T0000000001_S00000.wav": ["他们在讨论什么？", "请引用原话。"],
    "zh/aishell_BAC009S0764W0122.wav": ["说了什么？"],
}
MARK = re.compile(r"\[(\d{1,2}):(\d{2})(?::(\d{2}))?\]")
QUOTE = re.compile(r"(\[\d{1,2}:\d{2}(?::\d{2})?\]\s*)?[“\"「『]([^”\"」』\n]{2,600})[”\"」』]")


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum())


def _holds(text: str, quote: str) -> bool:
    wanted, have = _plain(quote), _plain(text)
    if not wanted:
        return False
    blocks = difflib.SequenceMatcher(None, wanted, have, autojunk=False).get_matching_blocks()
    return sum(b.size for b in blocks) / len(wanted) >= 0.8


def _seconds(mark: re.Match[str]) -> int:
    a, b, c = (int(g) if g else None for g in mark.groups())
    return a * 3600 + b * 60 + c if c is not None else a * 60 + b  # type: ignore[operator]


def check(result: dict) -> dict[str, int]:
    """Counts for one answer, read as a user checks it."""
    answer, segments = result["answer"], result["segments"]
    counts = dict(quotes=0, timed=0, untimed=0, invented=0, unwarned=0, bad_citations=0)
    quoted_marks = set()
    for match in QUOTE.finditer(answer):
        counts["quotes"] += 1
        mark, quote = match.group(1), match.group(2)
        if mark is None:
            counts["untimed"] += 1
            held = any(_holds(s["text"], quote) for s in segments)
            warned = any(
                w.startswith("citation_unmatched") and _plain(quote[:40]) in _plain(w)
                for w in result["warnings"]
            )
            counts["unwarned"] += int(held or not warned)
            continue
        quoted_marks.add(match.start(1))
        counts["timed"] += 1
        at = _seconds(MARK.match(mark.strip()))  # type: ignore[arg-type]
        starting = [i for i, s in enumerate(segments) if int(s["start"]) == at]
        # The quote in the segment that starts at the mark, or in it and the next two.
        ok = any(
            _holds(" ".join(s["text"] for s in segments[i : i + n]), quote)
            for i in starting
            for n in (1, 2, 3)
        )
        counts["invented"] += int(not ok)
    # A time that stands before no quote is invented too.
    counts["invented"] += sum(1 for m in MARK.finditer(answer) if m.start() not in quoted_marks)
    spans = {(s["start"], s["end"]) for s in segments}
    starts, ends = {a for a, _ in spans}, {b for _, b in spans}
    for c in result["citations"]:
        inside = [s["text"] for s in segments if c["start"] <= s["start"] and s["end"] <= c["end"]]
        good = c["start"] in starts and c["end"] in ends and " ".join(inside) == c["text"]
        counts["bad_citations"] += int(not good)
    return counts


def main() -> dict:
    from stepaudio.api import create_app
    from stepaudio.config import Settings
    from stepaudio.engines.embedded import EmbeddedEngine
    from stepaudio.testing.server import serve_in_thread

    console = Console()
    settings = Settings(_env_file=None, backends=[], vllm_api_url=None)
    rows, totals = (
        [],
        dict.fromkeys(["quotes", "timed", "untimed", "invented", "unwarned", "bad_citations"], 0),
    )
    started = time.perf_counter()
    engine = EmbeddedEngine.from_settings(settings)
    with (
        serve_in_thread(create_app(settings, engine=engine)) as url,
        httpx.Client(base_url=url, timeout=900) as client,
    ):
        for name, questions in QUESTIONS.items():
            for question in questions:
                with open(DATA / name, "rb") as f:
                    r = client.post(
                        "/api/process",
                        files={"audio": f},
                        data={"mode": "understand", "question": question},
                    )
                r.raise_for_status()
                result = r.json()
                counts = check(result)
                for k, v in counts.items():
                    totals[k] += v
                rows.append([name.split("/")[-1][:28], question, *counts.values()])
                console.print(f"[dim]{name} · {question}\n{result['answer']}\n")
    cols = ["clip", "question", "quotes", "timed", "untimed", "invented", "unwarned", "bad cit."]
    rows.append(["all", f"{len(rows)} answers", *totals.values()])
    show(console, "understand: times and quotes checked against the transcript", cols, rows)
    met = totals["invented"] == 0 and totals["unwarned"] == 0 and totals["bad_citations"] == 0
    console.print(
        f"machine: {machine()}; {time.perf_counter() - started:.0f} s. Invented times "
        f"{totals['invented']}, unwarned quotes {totals['unwarned']} (aim 0) → "
        f"{'[green]met' if met else '[red]missed'}"
    )
    return totals


if __name__ == "__main__":
    main()
