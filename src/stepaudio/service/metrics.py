"""The Prometheus metrics of one service (its own registry: no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as MetricCounter


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = MetricCounter(
            "stepaudio_requests",
            "Processing requests",
            ["face", "mode", "outcome"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "stepaudio_request_seconds",
            "Processing time per request",
            ["mode"],
            buckets=(1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )
        self.audio_seconds = MetricCounter(
            "stepaudio_audio_seconds",
            "Audio processed, in seconds, by the face it came through",
            ["face"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "stepaudio_in_flight", "Requests being processed", registry=self.registry
        )
