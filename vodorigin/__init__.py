"""vodorigin: a just-in-time VOD packaging origin (MP4 in; HLS, DASH, HDS, MSS and progressive out)."""

__version__ = "0.1.0"
