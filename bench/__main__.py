"""Run every benchmark in order: ``python -m bench`` (``make bench``)."""

from __future__ import annotations

import importlib

# Each module has a ``main()`` that prints its own tables.
MODULES = [
    "bench.decode",
    "bench.asr_speed",
    "bench.latency_under_load",
    "bench.long_audio",
    "bench.text_quality",
    "bench.diarization",
    "bench.speaker_id",
    "bench.realtime_latency",
]


def main() -> None:
    for name in MODULES:
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(name).main()


if __name__ == "__main__":
    main()
