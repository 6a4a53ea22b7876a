"""Benchmarks and capacity planning for Step-Audio-R1.1 deployments."""
