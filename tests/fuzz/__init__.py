"""A fuzzing harness for hostile input: mutate.py (structure-aware MP4 mutations), subtitles.py
(subtitle samples in MP4 and sidecar WebVTT/SRT/TTML documents), amplify.py (small files claiming
huge media), inprocess.py (the server's request pipeline without HTTP), exercise.py (every
protocol's requests on one input), outcomes.py (what counts as a finding), run.py (the loop and
the crashers), guided.py (optional atheris mode). tests/test_fuzz.py replays crashers/ and runs a
bounded campaign."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SUBTITLE_SUFFIXES = (".vtt", ".srt", ".ttml")
