"""One admission counter for the whole service.

A request that carries work takes a ``Ticket`` once, from the first place that sees it:
the guard takes it for an upload from its first header (so a full service refuses before
a byte is uploaded), and the lifecycle takes one for work that did not come through the
guard that way (the page's processing, live sessions). The same count answers
``max_pending_requests`` and the per-key share everywhere, and a refusal is the same
``QueueFull`` (429 with ``Retry-After``) whichever way the request came in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from stepaudio.errors import QueueFull


@dataclass
class Ticket:
    """One admitted request's place; ``release`` gives it back (once, however often called)."""

    admission: Admission
    owner: str | None
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission._release(self.owner)


class Admission:
    def __init__(self, limit: int, per_key: int | None = None):
        self.limit = limit
        """``max_pending_requests``: requests queued or running at once."""
        self.per_key = per_key
        """``max_pending_requests_per_key`` when keys are set (without keys every caller
        is the same anonymous one, whose share would be the whole)."""
        self.count = 0
        self.by_owner: Counter[str] = Counter()

    def admit(self, owner: str | None = None) -> Ticket:
        """A place for ``owner``'s request, or ``QueueFull``."""
        if self.count >= self.limit:
            raise QueueFull(f"{self.limit} requests are already queued or running; retry later.")
        if owner is not None and self.per_key is not None:
            if self.by_owner[owner] >= self.per_key:
                raise QueueFull(
                    f"This key already has {self.per_key} requests queued or running; retry later.",
                    code="key_queue_full",
                )
            self.by_owner[owner] += 1
        self.count += 1
        return Ticket(self, owner if self.per_key is not None else None)

    def _release(self, owner: str | None) -> None:
        self.count -= 1
        if owner is not None:
            self.by_owner[owner] -= 1
            if not self.by_owner[owner]:
                del self.by_owner[owner]
