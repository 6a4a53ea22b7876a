"""The capacity planner against the seed's numbers and vLLM's one logged observation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stepaudio.bench.audio_budget import seed_audio_minutes, strict_audio_minutes
from stepaudio.bench.memory import (
    OVERHEAD_GIB_PER_GPU,
    calibrate_overhead_gib,
    kv_bytes_per_token,
    weights_bytes,
)
from stepaudio.bench.model_config import (
    GIB,
    ContextDoesNotFit,
    PlanError,
    WeightsDoNotFit,
    load_model,
)
from stepaudio.bench.plan import plan
from stepaudio.bench.plan_cli import register

SEED_DEPLOYMENT = {
    "gpu": "L40S",
    "num_gpus": 4,
    "dtype": "bf16",
    "max_model_len": 65536,
    "gpu_memory_utilization": 0.85,
}
SEED_CLI = [
    "plan",
    "--gpu",
    "L40S",
    "--num-gpus",
    "4",
    "--dtype",
    "bf16",
    "--max-model-len",
    "65536",
    "--gpu-memory-utilization",
    "0.85",
    "--format",
    "json",
]

# Qwen2.5-7B-Instruct's config.json (the fields that matter), a model we can check
# against its published size: 7.62 B parameters.
QWEN25_7B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "max_position_embeddings": 32768,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:  # a callback keeps "plan" a named subcommand, as in stepaudio's CLI
        pass

    return app


def run(app: typer.Typer, args: list[str]):
    return CliRunner().invoke(app, args)


# --- the seed deployment --------------------------------------------------------------


def test_seed_deployment_concurrency_matches_vllm_log() -> None:
    report = plan(**SEED_DEPLOYMENT)
    assert report.max_concurrency == pytest.approx(4.76, rel=0.10)
    assert report.kv_holds_max_num_seqs  # four 85-minute requests ran side by side
    assert report.weights_gib_per_gpu == pytest.approx(report.weights_gib / 4, abs=0.01)


def test_cli_json_for_seed_deployment(cli: typer.Typer) -> None:
    result = run(cli, SEED_CLI)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)  # stdout holds only JSON
    assert data["max_concurrency"] == pytest.approx(4.76, rel=0.10)
    assert data["kv_cache_bytes_per_token"] == 256 * 1024
    assert data["max_audio_minutes_per_request_seed_formula"] == pytest.approx(85.4, abs=0.05)
    assert (
        data["max_audio_minutes_per_request"] < data["max_audio_minutes_per_request_seed_formula"]
    )
    assert {row["max_model_len"] for row in data["seed_table"]} == {
        8192,
        16384,
        32768,
        49152,
        65536,
    }
    assert {s["dtype"] for s in data["smallest_gpu_sets"]} >= {"bf16", "int8", "int4"}


def test_overhead_constant_is_the_calibrated_value() -> None:
    assert calibrate_overhead_gib() == pytest.approx(OVERHEAD_GIB_PER_GPU, abs=0.05)
    # Sanity of what it stands for: positive, well below a GPU's memory.
    assert 1 < OVERHEAD_GIB_PER_GPU < 8


def test_kv_cache_per_token() -> None:
    model = load_model()
    assert kv_bytes_per_token(model, 2) == 2 * 64 * 8 * 128 * 2 == 256 * 1024
    bf16 = plan(**SEED_DEPLOYMENT)
    fp8 = plan(**SEED_DEPLOYMENT, kv_cache_dtype="fp8")
    assert bf16.kv_cache_bytes_per_token_per_gpu == 64 * 1024  # 2 of 8 KV heads per GPU
    assert fp8.kv_cache_bytes_per_token == bf16.kv_cache_bytes_per_token // 2
    assert fp8.max_concurrency == pytest.approx(2 * bf16.max_concurrency, rel=0.01)


# --- the seed's formulas and estimates ------------------------------------------------


@pytest.mark.parametrize(("max_model_len", "minutes"), [(49152, 63.5), (65536, 85.4)])
def test_seed_audio_formula(max_model_len: int, minutes: float) -> None:
    assert round(seed_audio_minutes(max_model_len), 1) == minutes
    report = plan(**{**SEED_DEPLOYMENT, "max_model_len": max_model_len})
    assert report.max_audio_minutes_per_request_seed_formula == minutes


def test_strict_audio_limit_reserves_output_and_counts_parts() -> None:
    # 65,536 - 200 prompt - 2,048 output = 63,288 tokens = 200 whole parts of 315.
    assert strict_audio_minutes(65536) == pytest.approx(200 * 25 / 60)
    assert strict_audio_minutes(49152) == pytest.approx(148 * 25 / 60)
    report = plan(**SEED_DEPLOYMENT)
    assert report.max_audio_minutes_per_request == pytest.approx(83.3, abs=0.05)
    # A request that long really fits: ceil(s/25)·315 + prompt + output ≤ max_model_len.
    seconds = strict_audio_minutes(65536) * 60
    assert math.ceil(seconds / 25) * 315 + 200 + 2048 <= 65536
    assert (math.ceil(seconds / 25) + 1) * 315 + 200 + 2048 > 65536
    # More output budget, less audio.
    assert strict_audio_minutes(65536, max_tokens=8192) < strict_audio_minutes(65536)


@pytest.mark.parametrize(("dtype", "seed_gb"), [("bf16", 63), ("int8", 32), ("int4", 16)])
def test_weights_per_precision_match_seed(dtype: str, seed_gb: int) -> None:
    gib = weights_bytes(load_model(), dtype) / GIB
    assert abs(gib - seed_gb) <= 1.0, gib
    report = plan(**SEED_DEPLOYMENT)
    assert report.weights_by_dtype[dtype]["total_gib"] == pytest.approx(gib, abs=0.05)


def test_model_size_is_33b() -> None:
    model = load_model()
    assert model.params_total / 1e9 == pytest.approx(33.5, abs=0.3)  # "33B"
    assert model.params_audio / 1e9 == pytest.approx(0.64, abs=0.05)  # seed: ~1.28 GB bf16


def test_seed_history_table() -> None:
    report = plan(**SEED_DEPLOYMENT)
    rows = {row.max_model_len: row for row in report.seed_table}
    assert [(r.max_model_len, r.max_num_seqs) for r in report.seed_table] == [
        (8192, 32),
        (16384, 16),
        (32768, 8),
        (49152, 4),
        (65536, 4),
    ]
    # Every configuration the seed ran as "stable" fits the KV cache.
    assert all(r.kv_holds_max_num_seqs for r in report.seed_table)
    assert rows[49152].audio_minutes_seed_formula == 63.5
    assert rows[65536].max_concurrency == report.max_concurrency
    for row in report.seed_table:
        assert row.audio_minutes_strict < row.audio_minutes_seed_formula
        assert row.max_concurrency == pytest.approx(
            report.kv_capacity_tokens / row.max_model_len, abs=0.01
        )


def test_smallest_gpu_sets() -> None:
    report = plan(**SEED_DEPLOYMENT)
    sets = {s.dtype: s for s in report.smallest_gpu_sets}
    assert sets["bf16"].min_gpus["L40S"] == 4  # seed §6.1: "BF16 … 4× L40S"
    assert sets["bf16"].min_gpus["RTX4090"] == 8
    for dtype in ("bf16", "int8", "int4"):
        assert sets[dtype].smallest is not None
    # Fewer bits never need more memory.
    assert (
        sets["int4"].smallest.total_memory_gib
        <= sets["int8"].smallest.total_memory_gib
        <= sets["bf16"].smallest.total_memory_gib
    )
    for gpu, n in sets["int8"].min_gpus.items():
        assert n is None or n <= (sets["bf16"].min_gpus[gpu] or 8)


def test_text_rendering() -> None:
    text = plan(**SEED_DEPLOYMENT).render_text()
    assert "4.76x" in text
    assert "85.4" in text and "83.3" in text
    assert "Smallest GPU set" in text


# --- any config.json ------------------------------------------------------------------


def test_custom_config(tmp_path: Path, cli: typer.Typer) -> None:
    path = tmp_path / "qwen2.5-7b" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(QWEN25_7B))
    model = load_model(path.parent)
    assert model.name == "qwen2.5-7b"
    assert model.params_total / 1e9 == pytest.approx(7.62, abs=0.02)
    report = plan(path, gpu="RTX4090", num_gpus=1, max_model_len=32768, gpu_memory_utilization=0.9)
    assert report.kv_cache_bytes_per_token == 2 * 28 * 4 * 128 * 2
    assert report.weights_gib == pytest.approx(7.62e9 * 2 / GIB, rel=0.01)
    assert report.max_concurrency >= 1
    assert report.max_audio_minutes_per_request is None  # no audio encoder

    result = run(
        cli,
        [
            "plan",
            "--model",
            str(path),
            "--gpu",
            "RTX4090",
            "--num-gpus",
            "1",
            "--max-model-len",
            "32768",
            "--gpu-memory-utilization",
            "0.9",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["max_concurrency"] == report.max_concurrency


def test_nested_text_config_and_default_max_model_len(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "wrapper", "llm_config": QWEN25_7B}))
    report = plan(path, gpu="H100", num_gpus=1)
    assert report.max_model_len == 32768  # vLLM's default: max_position_embeddings
    assert report.model["num_layers"] == 28


def test_custom_gpu_memory() -> None:
    report = plan(gpu=None, gpu_memory_gib=44.99, num_gpus=4, max_model_len=65536)
    assert report.max_concurrency == pytest.approx(4.76, rel=0.01)


# --- refusals -------------------------------------------------------------------------


def test_bf16_on_one_rtx4090_is_refused(cli: typer.Typer) -> None:
    with pytest.raises(WeightsDoNotFit) as info:
        plan(gpu="RTX4090", num_gpus=1, dtype="bf16", gpu_memory_utilization=0.9)
    assert "do not fit" in info.value.message
    result = run(
        cli, ["plan", "--gpu", "RTX4090", "--num-gpus", "1", "--dtype", "bf16", "--format", "json"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "do not fit" in result.stderr and "62.4 GiB" in result.stderr


def test_context_that_does_not_fit_is_refused() -> None:
    # int8 weights fit one L40S, but not beside a 65,536-token KV cache.
    with pytest.raises(ContextDoesNotFit, match="Largest max_model_len"):
        plan(gpu="L40S", num_gpus=1, dtype="int8", max_model_len=65536, gpu_memory_utilization=0.9)
    with pytest.raises(ContextDoesNotFit, match="max_position_embeddings"):
        plan(max_model_len=131072)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "V100"], "unknown GPU"),
        (["--model", "/nonexistent/config.json"], "config.json"),
        (["--dtype", "int3"], "unknown dtype"),
        (["--num-gpus", "3"], "does not divide"),
        (["--gpu-memory-utilization", "1.5"], "gpu-memory-utilization"),
        (["--format", "yaml"], "--format"),
    ],
)
def test_cli_errors(cli: typer.Typer, args: list[str], message: str) -> None:
    result = run(cli, ["plan", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_bad_config_contents(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(PlanError, match="cannot read"):
        load_model(path)
    path.write_text(json.dumps({"hidden_size": 1024}))
    with pytest.raises(PlanError, match="num_hidden_layers"):
        load_model(path)
