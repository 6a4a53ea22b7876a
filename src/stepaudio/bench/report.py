"""BENCHMARK.md, PNG plots and the raw JSON from one `stepaudio bench` run.

Everything is rendered from the raw result dict (what ``results.json`` holds), so a
report can be rebuilt from a saved run. The duration table keeps the seed's columns
(音频时长 | 文件大小 | 处理耗时 | 输出长度 | 状态) with RTF and characters per audio minute
beside them; the GPU table keeps its GPU memory layout (GPU | 已用显存 | 总显存 | 利用率).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepaudio.bench.inputs import duration_label

SEED_COLUMNS = [
    "音频时长 Duration",
    "文件大小 File size",
    "处理耗时 Processing time",
    "输出长度 Output length",
    "状态 Status",
    "RTF",
    "字符/分钟 Chars per audio min",
]
GPU_COLUMNS = [
    "GPU",
    "已用显存 Memory used (steady)",
    "峰值 Peak",
    "总显存 Total",
    "利用率 Used %",
    "计算利用率 Compute util (mean / peak)",
]
CONCURRENCY_COLUMNS = [
    "模式 Mode",
    "音频时长 Duration",
    "并发 Concurrency",
    "成功 OK",
    "平均耗时 Mean latency",
    "最大耗时 Max latency",
    "RTF (mean)",
    "吞吐 Audio min per min",
    "峰值内存 Peak RSS",
]
PLOTS = {
    "time_vs_duration.png": "Processing time vs audio duration",
    "chars_per_min_vs_duration.png": "Output characters per audio minute vs duration",
    "latency_vs_concurrency.png": "Latency vs concurrency",
    "memory_over_time.png": "Service RSS and GPU memory over the run",
}


@dataclass
class ReportFiles:
    markdown: Path
    json: Path
    plots: list[Path] = field(default_factory=list)


def _mb(n: float | None) -> str:
    return "–" if n is None else f"{n / 1e6:.1f} MB"


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def _table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _status(reqs: list[dict]) -> str:
    ok = sum(r["ok"] for r in reqs)
    if ok == len(reqs):
        return "✅ 成功 success"
    return f"❌ 失败 failed ({len(reqs) - ok}/{len(reqs)})"


def _rounds(requests: list[dict]) -> dict[tuple[str, float, int], list[dict]]:
    """Requests grouped by (mode, duration, concurrency), in the order they ran."""
    out: dict[tuple[str, float, int], list[dict]] = defaultdict(list)
    for r in requests:
        out[(r["mode"], r["duration_s"], r["concurrency"])].append(r)
    return out


def _base_level(result: dict) -> int:
    return min(result["config"]["concurrency"])


def duration_rows(result: dict, mode: str) -> list[list[str]]:
    """The seed's table for one mode, at the lowest concurrency level (means if > 1)."""
    rounds = _rounds(result["requests"])
    level = _base_level(result)
    rows = []
    for inp in result["inputs"]:
        reqs = rounds.get((mode, inp["duration_s"], level), [])
        if not reqs:
            continue
        good = [r for r in reqs if r["ok"]] or reqs
        mean = statistics.fmean
        rows.append(
            [
                duration_label(inp["duration_s"]),
                _mb(inp["size_bytes"]),
                f"{mean(r['elapsed_s'] for r in reqs):.2f} s",
                f"{round(mean(r['output_chars'] for r in good)):,} chars",
                _status(reqs),
                f"{mean(r['rtf'] for r in reqs):.3f}",
                f"{mean(r['chars_per_min'] for r in good):,.0f}",
            ]
        )
    return rows


def concurrency_rows(result: dict) -> list[list[str]]:
    rows = []
    for (mode, duration, level), reqs in _rounds(result["requests"]).items():
        span = max(r["started_s"] + r["elapsed_s"] for r in reqs) - min(
            r["started_s"] for r in reqs
        )
        audio_min = sum(r["duration_s"] for r in reqs if r["ok"]) / 60
        rss = [r["peak_rss"] for r in reqs if r.get("peak_rss")]
        rows.append(
            [
                mode,
                duration_label(duration),
                str(level),
                f"{sum(r['ok'] for r in reqs)}/{len(reqs)}",
                f"{statistics.fmean(r['elapsed_s'] for r in reqs):.2f} s",
                f"{max(r['elapsed_s'] for r in reqs):.2f} s",
                f"{statistics.fmean(r['rtf'] for r in reqs):.3f}",
                f"{audio_min / (span / 60):.1f}" if span > 0 else "–",
                _mb(max(rss)) if rss else "–",
            ]
        )
    return rows


def gpu_rows(result: dict) -> list[list[str]]:
    """Per GPU: steady state (median over the rounds), peak, total, utilisation."""
    per_gpu: dict[int, list[dict]] = defaultdict(list)
    for s in result["samples"]:
        if s["phase"] or not any(x["phase"] for x in result["samples"]):
            for g in s["gpus"]:
                per_gpu[g["index"]].append(g)
    rows = []
    for index in sorted(per_gpu):
        gs = per_gpu[index]
        used = statistics.median(g["memory_used"] for g in gs)
        total = gs[0]["memory_total"]
        util = [g["utilization"] for g in gs]
        rows.append(
            [
                f"GPU {index} ({gs[0]['name']})",
                _gb(used),
                _gb(max(g["memory_used"] for g in gs)),
                _gb(total),
                f"{100 * used / total:.1f}%",
                f"{statistics.fmean(util):.0f}% / {max(util)}%",
            ]
        )
    return rows


def _rss_summary(result: dict) -> str:
    rss = [s["rss"] for s in result["samples"] if s["rss"] is not None]
    source = result["sampling"]["rss"]
    if not rss:
        return f"Service RSS: {source}."
    return (
        f"Service RSS ({source}): peak {_mb(max(rss))}, median {_mb(statistics.median(rss))}, "
        f"at start {_mb(rss[0])}; {len(result['samples'])} samples every "
        f"{result['sampling']['interval_s']:g} s."
    )


def render_markdown(result: dict, plots: list[Path]) -> str:
    cfg = result["config"]
    service = result.get("service") or {}
    engine = service.get("engine") or {}
    m = result["machine"]
    target = (
        f"in-process service (engine `{engine.get('engine') or engine.get('name') or '?'}`)"
        if result["target"] == "in-process"
        else f"service at {result['target']}"
    )
    lines = [
        "# stepaudio bench",
        "",
        f"- Date: {result['started_at']} – {result['finished_at']} (UTC)",
        f"- Target: {target}; model `{service.get('model', '?')}`",
        f"- Machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}, "
        f"{m['platform']}",
        f"- Source audio: `{Path(result['source']['path']).name}`, cut or looped to each "
        "duration and sent as mp3 to `POST /api/process`",
        f"- Modes: {', '.join(cfg['modes'])}; concurrency levels: "
        f"{', '.join(map(str, cfg['concurrency']))}"
        + (f"; segment duration {cfg['segment_duration']:g} s" if cfg["segment_duration"] else ""),
        f"- GPUs: {result['sampling']['gpu']}",
        "- Processing time is the client's wall time (upload to answer); output length is "
        "the characters of `answer`; RTF = processing time / audio duration.",
        "",
    ]
    level = _base_level(result)
    for mode in cfg["modes"]:
        lines += [
            f"## 测试结果 Results by duration — mode `{mode}` (concurrency {level})",
            "",
            _table(SEED_COLUMNS, duration_rows(result, mode)),
            "",
        ]
    lines += [
        "## 并发 Latency vs concurrency",
        "",
        _table(CONCURRENCY_COLUMNS, concurrency_rows(result)),
        "",
        "## 显存使用 GPU memory",
        "",
    ]
    gpus = gpu_rows(result)
    lines += [_table(GPU_COLUMNS, gpus) if gpus else f"Not sampled: {result['sampling']['gpu']}."]
    lines += ["", "## 内存 Service memory", "", _rss_summary(result), ""]
    failures = [r for r in result["requests"] if not r["ok"]]
    if failures:
        lines += ["## 失败 Failures", ""]
        lines += [
            f"- {r['mode']} {duration_label(r['duration_s'])} ×{r['concurrency']} "
            f"#{r['index']}: HTTP {r['status_code']}: {r['error']}"
            for r in failures
        ]
        lines.append("")
    lines += ["## 图表 Plots", ""]
    lines += [f"![{PLOTS[p.name]}]({p.name})" for p in plots]
    lines += ["", "Raw data: [results.json](results.json).", ""]
    return "\n".join(lines)


# -- plots -------------------------------------------------------------------------------


def _figure():
    # The object API needs no pyplot state and no display: safe in servers and threads.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), dpi=110)
    return fig, fig.add_subplot()


def _by_duration(result: dict, mode: str, key: str, ok_only: bool) -> tuple[list, list]:
    level = _base_level(result)
    xs, ys = [], []
    for (m, duration, lvl), reqs in sorted(_rounds(result["requests"]).items()):
        chosen = [r for r in reqs if r["ok"] or not ok_only]
        if m == mode and lvl == level and chosen:
            xs.append(duration / 60)
            ys.append(statistics.fmean(r[key] for r in chosen))
    return xs, ys


def render_plots(result: dict, out_dir: Path) -> list[Path]:
    modes = result["config"]["modes"]
    written = []
    for name, key, ylabel, ok_only in (
        ("time_vs_duration.png", "elapsed_s", "processing time (s)", False),
        ("chars_per_min_vs_duration.png", "chars_per_min", "output chars per audio minute", True),
    ):
        fig, ax = _figure()
        for mode in modes:
            xs, ys = _by_duration(result, mode, key, ok_only)
            ax.plot(xs, ys, marker="o", label=mode)
        ax.set(xlabel="audio duration (min)", ylabel=ylabel, title=PLOTS[name])
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / name)
        written.append(out_dir / name)

    fig, ax = _figure()
    series: dict[tuple[str, float], list[tuple[int, float]]] = defaultdict(list)
    for (mode, duration, level), reqs in _rounds(result["requests"]).items():
        series[(mode, duration)].append((level, statistics.fmean(r["elapsed_s"] for r in reqs)))
    for (mode, duration), points in sorted(series.items()):
        points.sort()
        ax.plot(*zip(*points, strict=True), marker="o", label=f"{mode} {duration_label(duration)}")
    ax.set(
        xlabel="concurrent requests",
        ylabel="mean latency (s)",
        title=PLOTS["latency_vs_concurrency.png"],
    )
    ax.set_xticks(sorted(set(result["config"]["concurrency"])))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out_dir / "latency_vs_concurrency.png")
    written.append(out_dir / "latency_vs_concurrency.png")

    samples = result["samples"]
    if any(s["rss"] is not None or s["gpus"] for s in samples):
        fig, ax = _figure()
        ts = [s["t"] for s in samples]
        if any(s["rss"] is not None for s in samples):
            ax.plot(ts, [(s["rss"] or 0) / 1e6 for s in samples], label="service RSS")
        for index in sorted({g["index"] for s in samples for g in s["gpus"]}):
            gpu = [next((g for g in s["gpus"] if g["index"] == index), None) for s in samples]
            ax.plot(ts, [g["memory_used"] / 1e6 if g else 0 for g in gpu], label=f"GPU {index}")
        ax.set(xlabel="time since start (s)", ylabel="MB", title=PLOTS["memory_over_time.png"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out_dir / "memory_over_time.png")
        written.append(out_dir / "memory_over_time.png")
    return written


def write_report(result: dict[str, Any], out_dir: Path) -> ReportFiles:
    """Write BENCHMARK.md, the PNG plots and results.json into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / "results.json"
    raw.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    plots = render_plots(result, out_dir)
    md = out_dir / "BENCHMARK.md"
    md.write_text(render_markdown(result, plots), encoding="utf-8")
    return ReportFiles(md, raw, plots)
