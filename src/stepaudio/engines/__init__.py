"""Engines turn one window of audio (or one text prompt) into model output."""
