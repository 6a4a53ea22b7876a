"""`stepaudio plan`'s text output: rich tables rendered to a string."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stepaudio.bench.plan import PlanReport


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def render_plan(r: PlanReport, width: int) -> str:
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    m = r.model

    summary = Table(title=f"{m['name']} on {r.num_gpus}× {r.gpu}", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    rows = [
        (
            "parameters",
            f"{m['params_total'] / 1e9:.2f} B "
            f"(decoder {m['params_decoder'] / 1e9:.2f} B, audio {m['params_audio'] / 1e9:.2f} B)",
        ),
        (
            "GPU memory",
            f"{r.gpu_memory_gib:.2f} GiB × {r.num_gpus}, utilization {r.gpu_memory_utilization:g}",
        ),
        ("weights", f"{r.weights_gib:.1f} GiB {r.dtype} → {r.weights_gib_per_gpu:.1f} GiB per GPU"),
        (
            "overhead",
            f"{r.overhead_gib_per_gpu:.1f} GiB per GPU (calibrated, see docs/capacity.md)",
        ),
        (
            "KV cache per token",
            f"{r.kv_cache_bytes_per_token / 1024:.0f} KiB {r.kv_cache_dtype} "
            f"({r.kv_cache_bytes_per_token_per_gpu / 1024:.0f} KiB per GPU)",
        ),
        ("KV cache", f"{r.kv_cache_gib_per_gpu:.2f} GiB per GPU = {r.kv_capacity_tokens:,} tokens"),
        ("max_concurrency", f"{r.max_concurrency:.2f}x for {r.max_model_len:,} tokens per request"),
        (
            "max_num_seqs",
            f"{r.max_num_seqs} "
            f"({'all' if r.kv_holds_max_num_seqs else 'NOT all'} held at full length)",
        ),
        (
            "audio per request",
            f"{_fmt(r.max_audio_minutes_per_request)} min strict "
            f"(315 tok/25 s + {r.prompt_tokens} prompt + {r.max_tokens} output); "
            f"{_fmt(r.max_audio_minutes_per_request_seed_formula)} min by the seed's formula",
        ),
    ]
    for key, value in rows:
        summary.add_row(key, value)
    console.print(summary)

    history = Table(
        title="max_model_len ↔ max_num_seqs (seed §4.2) on this hardware; audio minutes per request"
    )
    for col in (
        "max_model_len",
        "max_num_seqs",
        "concurrency",
        "fits all",
        "min (seed)",
        "min (strict)",
        "seed min",
    ):
        history.add_column(col, justify="right")
    for row in r.seed_table:
        history.add_row(
            f"{row.max_model_len:,}",
            str(row.max_num_seqs),
            f"{row.max_concurrency:.2f}x",
            "yes" if row.kv_holds_max_num_seqs else "no",
            _fmt(row.audio_minutes_seed_formula),
            _fmt(row.audio_minutes_strict),
            _fmt(row.seed_reported_minutes, ".0f"),
        )
    console.print(history)

    sets = Table(
        title=f"Smallest GPU set per precision (util 0.9, one {r.max_model_len:,}-token request)"
    )
    sets.add_column("dtype")
    sets.add_column("weights GiB", justify="right")
    gpu_names = list(r.smallest_gpu_sets[0].min_gpus) if r.smallest_gpu_sets else []
    for name in gpu_names:
        sets.add_column(name, justify="right")
    sets.add_column("smallest")
    for p in r.smallest_gpu_sets:
        best = f"{p.smallest.num_gpus}× {p.smallest.gpu}" if p.smallest else "none"
        cells = [f"{p.min_gpus[g]}×" if p.min_gpus[g] else "—" for g in gpu_names]
        sets.add_row(p.dtype, f"{p.weights_gib:.1f}", *cells, best)
    console.print(sets)
    return out.getvalue()
