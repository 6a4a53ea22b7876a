"""`stepaudio plan`: the capacity planner's command line (register it with ``register``)."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from stepaudio.bench.audio_budget import DEFAULT_MAX_TOKENS, DEFAULT_PROMPT_TOKENS
from stepaudio.bench.hardware import GPUS, PRECISIONS
from stepaudio.bench.memory import OVERHEAD_GIB_PER_GPU
from stepaudio.bench.model_config import STEP_AUDIO_R1_1, PlanError
from stepaudio.bench.plan import plan

EXIT_REFUSED = 2  # same code click uses for bad usage: the plan cannot be made


def plan_command(
    model: Annotated[
        str,
        typer.Option(
            help=f"'{STEP_AUDIO_R1_1}' (built in) or a Hugging Face config.json (file or folder)."
        ),
    ] = STEP_AUDIO_R1_1,
    gpu: Annotated[
        str | None, typer.Option(help=f"GPU kind: {', '.join(GPUS)}. [default: L40S]")
    ] = None,
    gpu_memory_gib: Annotated[
        float | None,
        typer.Option(help="Memory of one GPU in GiB (instead of a known --gpu)."),
    ] = None,
    num_gpus: Annotated[int, typer.Option(help="GPUs = tensor-parallel size.")] = 4,
    dtype: Annotated[
        str, typer.Option(help=f"Weight precision: {', '.join(PRECISIONS)}.")
    ] = "bf16",
    kv_cache_dtype: Annotated[
        str, typer.Option(help="KV cache dtype: auto (= bf16), bf16, fp16, fp8.")
    ] = "auto",
    gpu_memory_utilization: Annotated[
        float, typer.Option(help="vLLM's --gpu-memory-utilization.")
    ] = 0.85,
    max_model_len: Annotated[
        int | None,
        typer.Option(help="vLLM's --max-model-len (default: the model's max_position_embeddings)."),
    ] = None,
    max_num_seqs: Annotated[int, typer.Option(help="vLLM's --max-num-seqs.")] = 4,
    max_tokens: Annotated[
        int, typer.Option(help="Output budget reserved per request (strict audio limit).")
    ] = DEFAULT_MAX_TOKENS,
    prompt_tokens: Annotated[
        int, typer.Option(help="Text prompt reserved per request (strict audio limit).")
    ] = DEFAULT_PROMPT_TOKENS,
    overhead_gib: Annotated[
        float,
        typer.Option(help="Per-GPU memory vLLM takes besides weights and KV cache (calibrated)."),
    ] = OVERHEAD_GIB_PER_GPU,
    output_format: Annotated[
        str, typer.Option("--format", help="text or json (json: only JSON on stdout).")
    ] = "text",
) -> None:
    """Weights, KV cache, concurrency and audio length a vLLM deployment of the model gets.

    Defaults describe the seed's deployment (4× L40S, bf16, utilization 0.85, 4 sequences).
    """
    if output_format not in ("text", "json"):
        _refuse(f"unknown --format '{output_format}': text or json")
    try:
        report = plan(
            model,
            gpu=gpu,
            gpu_memory_gib=gpu_memory_gib,
            num_gpus=num_gpus,
            dtype=dtype,
            kv_cache_dtype=kv_cache_dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            max_tokens=max_tokens,
            prompt_tokens=prompt_tokens,
            overhead_gib=overhead_gib,
        )
    except PlanError as exc:
        _refuse(exc.message)
    typer.echo(report.to_json() if output_format == "json" else report.render_text(), nl=False)
    if output_format == "json":
        typer.echo()


def _refuse(message: str) -> NoReturn:
    typer.echo(f"stepaudio plan: {message}", err=True)
    raise typer.Exit(EXIT_REFUSED)


def register(app: typer.Typer) -> None:
    """Add the command to the main CLI as `stepaudio plan`."""
    app.command("plan")(plan_command)
