"""Time is integer ticks with a timescale. Floats appear only when printing a manifest.

rescale() rounds to the nearest tick with ties going up (floor(x + 1/2)), the convention of
ffmpeg's av_rescale_rnd(AV_ROUND_NEAR_INF) for non-negative values. Everything that must agree
between a manifest and a segment goes through this one rounding: rescale() for one value,
rescale_array() for a numpy column.
"""

import numpy as np

MPEG_TS_CLOCK = 90_000  # ISO/IEC 13818-1 2.4.3.7: PTS/DTS run at 90 kHz
# Output timestamps are presentation times plus this delay (ffmpeg's TS default, 1.4 s), so that the
# decode times of B-frames and AAC priming, which precede presentation time 0, stay positive.
PRESENTATION_DELAY_MS = 1400


def rescale(value: int, from_timescale: int, to_timescale: int) -> int:
    """Convert ticks between timescales, rounding to the nearest tick (ties up)."""
    if from_timescale == to_timescale:
        return value
    return (value * to_timescale * 2 + from_timescale) // (from_timescale * 2)


def rescale_array(values: np.ndarray, from_timescale: int, to_timescale: int) -> np.ndarray:
    """rescale() for an int64 array, without 64-bit overflow for timescales below 2^31.

    With values = q * from + r (0 <= r < from), the result is q * to + rescale(r): the first term is
    the size of the result itself, and the second stays below 2 * from * to < 2^63.
    """
    values = np.asarray(values, dtype=np.int64)
    if from_timescale == to_timescale:
        return values.copy()
    whole, rest = np.divmod(values, from_timescale)
    return whole * to_timescale + (rest * (to_timescale * 2) + from_timescale) // (from_timescale * 2)

