"""Which packaging runs in a worker thread, off the event loop (web/app.py).

The first manifest of a large media set walks its samples: the timeline, each track's cuts,
I-frames and segment sizes are derived (13-60 ms for a 2-hour title) and kept with the cached
movie (media/model.memoized). Later manifests of the same movie take a fraction of a millisecond,
less than the trip to a worker thread and back (README: Performance). So a manifest of more than
OFFLOAD_SAMPLES samples goes to a thread until the same request, on the same movie objects, was
seen to take under INLINE_SECONDS of CPU; a movie loaded again (evicted, or its file changed) is a
new object, whose derivations are not there yet: it goes to a thread again, unless the request
was last measured on movies new to it too, taking under INLINE_SECONDS (a long title's index
derives its timeline in well under a millisecond; with the metadata cache off every movie is new).
Runs in a thread and inline runs on new movies are measured; inline runs on the same movies are
not (nothing new to learn).
Subtitle cues are formatted, not derived, so many cues always go to a thread.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Hashable
from typing import TypeVar

from vodorigin.media.model import MediaSet, Movie

T = TypeVar("T")
OFFLOAD_SAMPLES = 100_000  # manifests of media sets with more samples: off the event loop (README: limits)
OFFLOAD_CUES = 2_000  # or with more subtitle cues (about 25 µs each where 100,000 samples take 12 ms)
INLINE_SECONDS = 0.002  # CPU time under which a large manifest seen before is packaged inline
REQUESTS_KEPT = 4096  # requests whose last packaging time is remembered


class Offload:
    """Runs packaging inline or in a worker thread, remembering what large manifests cost."""

    def __init__(self) -> None:
        # request -> the movies of its last run, its CPU seconds, whether they were new to it
        self._seen: dict[Hashable, tuple[tuple[weakref.ref[Movie], ...], float, bool]] = {}  # oldest first

    async def run(self, work: Callable[[], T], key: Hashable, media: MediaSet, movies: list[Movie],
                  manifest: bool) -> T:
        """work(), for the request `key` on `movies`, inline when it is known to be cheap."""
        if media.cue_count > OFFLOAD_CUES:
            return await asyncio.to_thread(work)
        if not manifest or media.sample_count <= OFFLOAD_SAMPLES:
            return work()
        seen = self._seen.get(key)
        same = seen is not None and len(seen[0]) == len(movies) and \
            all(ref() is movie for ref, movie in zip(seen[0], movies, strict=True))
        if seen is not None and seen[1] <= INLINE_SECONDS and same:
            return work()  # the usual case with the metadata cache on
        if seen is not None and seen[1] <= INLINE_SECONDS and seen[2]:
            result, seconds = _timed(work)
        else:
            result, seconds = await asyncio.to_thread(_timed, work)
        self._seen.pop(key, None)
        self._seen[key] = (tuple(weakref.ref(movie) for movie in movies), seconds, not same)
        while len(self._seen) > REQUESTS_KEPT:
            del self._seen[next(iter(self._seen))]
        return result


def _timed(work: Callable[[], T]) -> tuple[T, float]:
    """work() with the CPU time its thread spent (waits for the GIL are not counted)."""
    started = time.thread_time()
    result = work()
    return result, time.thread_time() - started
