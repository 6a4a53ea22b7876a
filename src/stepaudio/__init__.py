"""stepaudio: transcripts, summaries, translations and answers about recordings of any length."""

__version__ = "0.1.0"
