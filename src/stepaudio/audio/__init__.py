"""Audio in: probe metadata, decode to 16 kHz mono int16, cut at quiet points, encode WAV parts."""

from stepaudio.audio.decode import SAMPLE_RATE, DecodedAudio, decode_to_file
from stepaudio.audio.limits import DurationCap
from stepaudio.audio.measure import inspect
from stepaudio.audio.probe import AudioInfo, probe
from stepaudio.audio.wav import encode_wav

__all__ = [
    "SAMPLE_RATE",
    "AudioInfo",
    "DecodedAudio",
    "DurationCap",
    "decode_to_file",
    "encode_wav",
    "inspect",
    "probe",
]
