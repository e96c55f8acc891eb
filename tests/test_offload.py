"""web/offload.py: a large manifest goes to a worker thread until the same request on the same
movie objects proved cheap; a movie loaded again, expensive work, segments and many cues each
take the path they should."""

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


def _threads(runs: list[tuple[Any, bool, _Movie]], work_seconds: float = 0.0) -> list[bool]:
    """For each (media, manifest, movie) run of one request through one Offload: whether the work
    ran off the event loop's thread."""
    policy = Offload()

    def work() -> bool:
        deadline = time.thread_time() + work_seconds  # CPU time, which Offload measures
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
    reloaded = _Movie()  # what the metadata cache holds after an eviction or a change: a new object
    runs = [(LARGE, True, ONE), (LARGE, True, ONE), (LARGE, True, reloaded), (LARGE, True, reloaded)]
    assert _threads(runs) == [True, False, True, False]
