"""Text quality of the embedded text models, side by side: SmolLM2-135M, Qwen2.5-Coder
0.5B and 1.5B (and Whisper base's own translation into English, the old path).

Whisper base transcribes the clips once (as the service does: beam 5, language given);
then each text model, in a child process of its own (so its peak RSS is its own), runs
the service's code on those transcripts: translation (engines/translate.py, with its
loop guard) en→zh and zh→en, scored by chrF against the references in
tests/data/translations.json, and answers to the questions there (pipeline/reduce.py),
counted as hits when they hold the right words and not the wrong ones. Degenerate: a
request refused as a loop, cut or in the wrong script (after the steadier retry).

    .venv/bin/python -m bench.text_quality [--quick] [--transcripts FILE] [MODEL ...]

``--quick`` takes three clips each way and three questions (a third of the work: the
1.5B model's full run is ~10 CPU minutes). The transcripts are saved to
bench/out/text_quality_transcripts.json; ``--transcripts`` reuses such a file.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console

from bench.common import DATA, OUT, machine, run_measured, show

MODELS = ("smollm2", "qwen-0.5b", "qwen-1.5b")
REFERENCES = DATA / "translations.json"
QUICK = {
    "en/jfk.flac",
    "en/sense_and_sensibility_0880.wav",
    "en/librispeech-1995-1837-0001.wav",
    "zh/firered_BAC009S0764W0121.wav",
    "zh/aishell_BAC009S0764W0122.wav",
    "zh/wenet_nst_ID002.wav",
    "zh/aishell-BAC009S0724W0121.wav",
}
"""Clips of the quick run: 3 en→zh, 3 zh→en, and the questions on them (4)."""


def references(quick: bool) -> dict:
    refs = json.loads(REFERENCES.read_text())
    if quick:
        refs["en_zh"] = {c: t for c, t in refs["en_zh"].items() if c in QUICK}
        refs["zh_en"] = {c: t for c, t in refs["zh_en"].items() if c in QUICK}
        refs["questions"] = [q for q in refs["questions"] if q["clip"] in QUICK][:4]
    return refs


def chrf(hyps: list[str], refs: list[str], n: int = 6, beta: float = 2.0) -> float:
    """Corpus chrF (Popović 2015) in 0-100: character n-grams 1..6 without whitespace,
    precision and recall averaged over the orders, recall weighted by beta=2; lower-cased
    (sacrebleu is not installed; this is its definition, not its tokenisation options)."""
    matches = [0] * n
    hyp_total = [0] * n
    ref_total = [0] * n
    for hyp, ref in zip(hyps, refs, strict=True):
        h = re.sub(r"\s+", "", hyp.lower())
        r = re.sub(r"\s+", "", ref.lower())
        for k in range(1, n + 1):
            hg = Counter(h[i : i + k] for i in range(len(h) - k + 1))
            rg = Counter(r[i : i + k] for i in range(len(r) - k + 1))
            matches[k - 1] += sum((hg & rg).values())
            hyp_total[k - 1] += sum(hg.values())
            ref_total[k - 1] += sum(rg.values())
    orders = [k for k in range(n) if hyp_total[k] and ref_total[k]]
    if not orders:
        return 0.0
    p = sum(matches[k] / hyp_total[k] for k in orders) / len(orders)
    r = sum(matches[k] / ref_total[k] for k in orders) / len(orders)
    if p + r == 0:
        return 0.0
    return 100 * (1 + beta**2) * p * r / (beta**2 * p + r)


# -- parent: transcripts once, then one child per model --------------------------------


def _transcripts(refs: dict) -> dict:
    from stepaudio.config import Settings
    from stepaudio.engines.whisper import WhisperTranscriber
    from stepaudio.testing.longaudio import load_pcm

    settings = Settings()
    whisper = WhisperTranscriber(
        "base",
        settings.models_path,
        beam_size=5,
        chinese_compute_type=settings.whisper.chinese_compute_type,
    )
    out: dict = {"segments": {}, "whisper_en": {}}
    clips = {*refs["en_zh"], *refs["zh_en"], *(q["clip"] for q in refs["questions"])}
    for clip in sorted(clips):
        pcm = load_pcm(DATA / clip)
        lang = clip.split("/")[0]
        tr = whisper.transcribe(pcm, language=lang)
        out["segments"][clip] = [[s.start, s.end, s.text] for s in tr.segments]
        if clip in refs["zh_en"]:
            direct = whisper.transcribe(pcm, language=lang, task="translate")
            out["whisper_en"][clip] = direct.text
    return out


def main(
    models: list[str] | None = None, quick: bool = False, transcripts_file: Path | None = None
) -> None:
    console = Console()
    refs = references(quick)
    console.print(f"machine: {machine()}")
    if transcripts_file is not None:
        transcripts = json.loads(transcripts_file.read_text())
    else:
        started = time.perf_counter()
        transcripts = _transcripts(refs)
        took = time.perf_counter() - started
        console.print(f"transcripts (Whisper base, beam 5): {took:.0f} s")
        OUT.mkdir(parents=True, exist_ok=True)
        saved = OUT / "text_quality_transcripts.json"
        saved.write_text(json.dumps(transcripts, ensure_ascii=False))
    rows = []
    zh_en_refs = list(refs["zh_en"].values())
    whisper_chrf = chrf([transcripts["whisper_en"][c] for c in refs["zh_en"]], zh_en_refs)
    rows.append(["Whisper base task=translate", "–", f"{whisper_chrf:.1f}", "–", "–", "–", "–"])
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "transcripts.json"
        inputs.write_text(json.dumps(transcripts, ensure_ascii=False))
        for model in models or MODELS:
            result_path = Path(tmp) / f"{model}.json"
            cmd = [sys.executable, "-m", "bench.text_quality", "--child", model, str(inputs)]
            cmd += ["--quick"] if quick else []
            measured = run_measured(cmd, stdout_path=result_path)
            r = json.loads(result_path.read_text().strip().splitlines()[-1])
            rows.append(
                [
                    model,
                    f"{r['chrf_en_zh']:.1f}",
                    f"{r['chrf_zh_en']:.1f}",
                    f"{r['hits']}/{r['questions']}",
                    f"{r['degenerate']}/{r['requests']}",
                    f"{r['s_per_request']:.2f}",
                    f"{measured.peak_rss_mb:.0f}",
                ]
            )
            for line in r["samples"]:
                console.print(f"  {model}: {line}")
    show(
        console,
        "Text models on the test clips (transcripts by Whisper base)",
        [
            "text model",
            "chrF en→zh",
            "chrF zh→en",
            "QA hits",
            "degenerate",
            "s / request",
            "peak RSS MB",
        ],
        rows,
    )


# -- child: one model ------------------------------------------------------------------


async def _child(model: str, transcripts: dict, quick: bool) -> dict:
    from stepaudio.config import Settings, WhisperSettings
    from stepaudio.engines.base import Segment, TextJob, Usage
    from stepaudio.engines.degenerate import find_loop
    from stepaudio.engines.embedded import EmbeddedEngine
    from stepaudio.errors import ModelOutputError
    from stepaudio.params import ProcessParams
    from stepaudio.pipeline.merge import _clock
    from stepaudio.pipeline.reduce import answer_task, reduce_texts
    from stepaudio.text import join_texts

    refs = references(quick)
    settings = Settings()
    # The service's text-model settings (STEPAUDIO_LLM__THREADS …), this model.
    llm = settings.llm.model_copy(update={"model": model})
    engine = EmbeddedEngine(WhisperSettings(), llm, models_dir=settings.models_path)
    segments = {
        clip: [Segment(s, e, t) for s, e, t in segs]
        for clip, segs in transcripts["segments"].items()
    }
    seconds: list[float] = []
    degenerate = 0
    samples: list[str] = []

    async def translate(clip: str, target: str) -> str:
        nonlocal degenerate
        params = ProcessParams.from_user(mode="translate", target_lang=target)
        started = time.perf_counter()
        try:
            out = await engine.translator.translate(segments[clip], params, Usage())
            text = join_texts(s.text for s in out)
        except ModelOutputError:
            degenerate += 1
            text = ""
        seconds.append(time.perf_counter() - started)
        return text

    # Warm the model outside the timings (its load is not a request's cost).
    warm = ProcessParams.from_user(mode="summarize")
    await engine.complete(TextJob("You are terse.", "Say OK.", warm, max_tokens=2))
    en_zh = [await translate(c, "Chinese") for c in refs["en_zh"]]
    zh_en = [await translate(c, "English") for c in refs["zh_en"]]
    samples.append(f"jfk → zh: {en_zh[0]}")
    samples.append(f"{list(refs['zh_en'])[0]} → en: {zh_en[0]}")
    hits = 0
    for q in refs["questions"]:
        zh = q["clip"].startswith("zh/")
        params = ProcessParams.from_user(mode="understand", question=q["question"])
        timed = [f"[{_clock(s.start)}] {s.text}" for s in segments[q["clip"]]]
        started = time.perf_counter()
        try:
            out = await reduce_texts(engine, timed, answer_task(q["question"], zh), params)
            answer = out.text
            if out.truncated or find_loop(answer):
                degenerate += 1
                answer = ""
        except ModelOutputError:
            degenerate += 1
            answer = ""
        seconds.append(time.perf_counter() - started)
        low = answer.lower()
        if any(h in low for h in q["hits"]) and not any(w in low for w in q["wrong"]):
            hits += 1
        if q is refs["questions"][0]:
            samples.append(f"Q: {q['question']} A: {answer}")
    return {
        "chrf_en_zh": chrf(en_zh, list(refs["en_zh"].values())),
        "chrf_zh_en": chrf(zh_en, list(refs["zh_en"].values())),
        "hits": hits,
        "questions": len(refs["questions"]),
        "degenerate": degenerate,
        "requests": len(seconds),
        "s_per_request": sum(seconds) / len(seconds),
        "samples": samples,
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    quick = "--quick" in args
    args = [a for a in args if a != "--quick"]
    saved = None
    if "--transcripts" in args:
        at = args.index("--transcripts")
        saved = Path(args[at + 1])
        del args[at : at + 2]
    if args[:1] == ["--child"]:
        transcripts = json.loads(Path(args[2]).read_text())
        result = asyncio.run(_child(args[1], transcripts, quick))
        print(json.dumps(result, ensure_ascii=False))
    else:
        main(args or None, quick, saved)
