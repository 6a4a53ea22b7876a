"""How much audio we agree to read from one file: enforced on what is decoded, never on
what a header claims.

A container's duration is metadata anyone can write: a 20-minute FLAC whose STREAMINFO says
5 s, or an MP3 whose Xing frame count says 5 s, probes as 5 s and used to pass any limit
while the decoder went on to the real end. So every reader of samples (the decoder, the
packet counter behind ``/api/audio/info`` and task submission) counts what it really got
and stops as soon as either bound is crossed:

- the service's ``max_audio_seconds``: 413 ``audio_too_long``;
- 1.5 × the header's duration + 30 s: 413 ``audio_longer_than_header``. Under a limit
  the work is already bounded, but this stops a liar after a few seconds of work instead
  of hours, and it bounds the work where an operator set no limit at all. 413 rather than
  400 because the refusal is about size (the file holds more than we agreed to read), as
  the issue asks; the message says why. The slack is generous so honest files whose
  duration is a bitrate estimate (ADTS AAC, AMR, CBR MP3 without a Xing frame, which
  ffmpeg also falls back to for concatenated MP3s) are not refused: those estimates are
  within a few percent for real files.
"""

from __future__ import annotations

from dataclasses import dataclass

from stepaudio.errors import PayloadTooLarge

HEADER_FACTOR = 1.5
"""How much longer than its header a file may decode before we stop."""
HEADER_SLACK_S = 30.0
"""Plus this, so short clips with rough estimates have room."""


@dataclass(frozen=True)
class DurationCap:
    """The bounds for one file: the service's limit and what its header claimed."""

    limit_s: float | None
    """The service's ``max_audio_seconds`` (None: no limit)."""
    header_s: float | None = None
    """The duration the container's metadata claims (None: not known or not trusted)."""

    @property
    def header_ceiling_s(self) -> float | None:
        if self.header_s is None:
            return None
        return self.header_s * HEADER_FACTOR + HEADER_SLACK_S

    def check_header(self) -> None:
        """Refuse at once a file whose header alone is over the limit (no decode needed)."""
        if self.limit_s is not None and self.header_s is not None and self.header_s > self.limit_s:
            raise _too_long(self.header_s, self.limit_s, exact=True)

    def check(self, seconds: float) -> None:
        """Called as audio is counted: raise once ``seconds`` passes either bound."""
        if self.limit_s is not None and seconds > self.limit_s:
            raise _too_long(seconds, self.limit_s, exact=False)
        ceiling = self.header_ceiling_s
        if ceiling is not None and self.header_s is not None and seconds > ceiling:
            raise PayloadTooLarge(
                f"The file holds more audio than its header says: the header claims "
                f"{self.header_s:.1f} s, and more than {ceiling:.1f} s was found "
                "(decoding stopped there). Re-encode or remux the file.",
                param="audio",
                code="audio_longer_than_header",
            )


def _too_long(seconds: float, limit: float, *, exact: bool) -> PayloadTooLarge:
    lasts = f"lasts {seconds:.1f} s" if exact else f"lasts more than {limit:g} s"
    return PayloadTooLarge(
        f"The audio {lasts}; this service accepts at most {limit:g} s.",
        param="audio",
        code="audio_too_long",
    )
