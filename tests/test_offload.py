"""web/offload.py: a large manifest goes to a worker thread until the same request on the same
movie objects proved cheap, or on new ones when it ran on new ones before; a movie loaded again,
expensive work, segments and many cues each take the path they should."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any, cast

from vodorigin.media.model import MediaSet, Movie
from vodorigin.web import offload
from vodorigin.web.offload import Offload


@dataclass
class _Media:  # what Offload reads of a MediaSet
    sample_count: int
    cue_count: int = 0


class _Movie:  # weakly referable, as Movie is
    pass


ONE = _Movie()


def _threads(runs: list[tuple[Any, bool, _Movie]], work_seconds: float | list[float] = 0.0) -> list[bool]:
    """For each (media, manifest, movie) run of one request through one Offload: whether the work
    ran off the event loop's thread. work_seconds: the CPU each run takes (one figure for all)."""
    policy = Offload()
    costs = iter(work_seconds if isinstance(work_seconds, list) else [work_seconds] * len(runs))

    def work() -> bool:
        deadline = time.thread_time() + next(costs)  # CPU time, which Offload measures
        while time.thread_time() < deadline:
            pass
        return threading.get_ident() != loop_thread

    async def scenario() -> list[bool]:
        return [await policy.run(work, "request", cast(MediaSet, media), cast(list[Movie], [movie]), manifest)
                for media, manifest, movie in runs]

    loop_thread = threading.get_ident()
    return asyncio.run(scenario())


LARGE = _Media(offload.OFFLOAD_SAMPLES + 1)


def test_a_large_manifest_runs_in_a_thread_once_then_inline_while_it_is_cheap() -> None:
    assert _threads([(LARGE, True, ONE)] * 3) == [True, False, False]


def test_an_expensive_large_manifest_stays_in_a_thread() -> None:
    runs = [(LARGE, True, ONE)] * 3
    assert _threads(runs, work_seconds=offload.INLINE_SECONDS * 3) == [True, True, True]


def test_small_sets_and_segments_run_inline_and_many_cues_in_a_thread() -> None:
    small = _Media(offload.OFFLOAD_SAMPLES)
    cues = _Media(10, cue_count=offload.OFFLOAD_CUES + 1)
    runs = [(small, True, ONE), (LARGE, False, ONE), (cues, False, ONE), (cues, True, ONE)]
    assert _threads(runs) == [False, False, True, True]


def test_a_movie_loaded_again_goes_to_a_thread_again() -> None:
    """Derived once and kept with the movie, a manifest is cheap from its second run on: a movie
    loaded again does not have those derivations, so it goes to a thread, as the first did."""
    reloaded = _Movie()  # what the metadata cache holds after an eviction or a change: a new object
    runs = [(LARGE, True, ONE)] * 3 + [(LARGE, True, reloaded)] * 2
    first = offload.INLINE_SECONDS * 3
    assert _threads(runs, [first, 0.0, 0.0, 0.0, 0.0]) == [True, True, False, True, False]


def test_with_a_new_movie_each_time_a_cheap_manifest_runs_inline() -> None:
    """The metadata cache off: every request parses its movie again. A manifest that was cheap on
    a movie new to it stays inline; one that was not, or became expensive, goes to a thread."""
    movies = [_Movie() for _ in range(6)]
    cheap = [(LARGE, True, movie) for movie in movies[:3]]
    assert _threads(cheap) == [True, False, False]
    assert _threads(cheap, work_seconds=offload.INLINE_SECONDS * 3) == [True, True, True]
    costs = [0.0, offload.INLINE_SECONDS * 3, 0.0, 0.0]
    assert _threads([(LARGE, True, movie) for movie in movies[2:]], costs) == [True, False, True, False]
