"""The web page (Gradio) served at ``/ui`` beside the HTTP API."""

from stepaudio.ui.app import UI_PATH, build_ui, mount_ui

__all__ = ["UI_PATH", "build_ui", "mount_ui"]
