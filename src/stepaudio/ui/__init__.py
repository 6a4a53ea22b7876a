"""The web page: our static files at ``/ui/``, a client of the public API, and the login."""

from stepaudio.ui.page import UI_PATH, mount_ui

__all__ = ["UI_PATH", "mount_ui"]
