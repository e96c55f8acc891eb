"""The server's request pipeline in process, without HTTP and without awaits, on files held in memory.

Each step goes the way vodorigin/web/app.py and vodorigin/origin.py take a request: the URL path
after /<protocol>/ -> urls.parse_request_path -> the parts' movies (MP4 moovs located with
MoovLocator and parsed with parse_moov, or sidecar subtitle files told by their first bytes, under
the default settings' limits) -> mapping.urlset.media_set -> the media-set sample limit -> the
packager's handle(file_name, media, context). A packager that raises CuesNeeded gets the movies
again with the cues of their embedded subtitle tracks read from the file and decoded
(Origin.with_cues), and the request is asked once more; as on the server, the movies with cues
replace the cached ones. Media segments are rendered from the ranges they ask for (a range outside
the file is a MediaError, as Origin.read makes it), and their length checked against their plan;
progressive-download parts are checked the way the server streams them.

The web layer's 422 safety net for struct.error, ArithmeticError, LookupError and ValueError is
not here on purpose: those are crashes of the core.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tests.fuzz.outcomes import (
    CpuBudgetExceeded,
    Outcome,
    PeakMemory,
    RangeOutsideFile,
    Report,
    SizeMismatch,
    SkeletonMismatch,
    check_cue_list,
    classify,
    cpu_budget,
    request_kind,
    slow_outcome,
)
from vodorigin.errors import LimitExceeded, MediaError, VodError
from vodorigin.mapping.urlset import media_set
from vodorigin.media.frames import SourceBytes, merged_ranges_of
from vodorigin.media.model import MediaSet, Movie, SourceIdentity
from vodorigin.media.subtitles import (
    CuesNeeded,
    embedded_cue_ranges,
    embedded_cues,
    needs_cues,
    sidecar_movie,
    with_cues,
)
from vodorigin.mp4.boxes import Moov
from vodorigin.mp4.locate import MoovLocator, ReadRange
from vodorigin.mp4.moov import Limits, parse_moov
from vodorigin.mp4.skeleton import MoovSkeleton
from vodorigin.packagers import dash, hds, hls, mss, pd
from vodorigin.packagers.output import FileParts, MediaSegment, Output, PackagerContext
from vodorigin.settings import Settings
from vodorigin.text import MAX_INPUT_BYTES, detect_format
from vodorigin.urls import MediaRequest, parse_request_path

SETTINGS = Settings()  # type: ignore[call-arg]  # (pydantic fills in the defaults)
CONTEXT = PackagerContext.from_settings(SETTINGS)
LIMITS = Limits(SETTINGS.max_tracks, SETTINGS.max_samples_per_track, SETTINGS.max_samples_per_file,
                SETTINGS.moov_sample_allowance, SETTINGS.max_frame_size, SETTINGS.max_duration_seconds)
HANDLERS: dict[str, Callable[[str, MediaSet, PackagerContext], Output]] = {
    "hls": hls.handle, "dash": dash.handle, "hds": hds.handle, "mss": mss.handle}


@dataclass(frozen=True, slots=True)
class Budget:
    """CPU seconds one request, and all the requests of one input, may use."""

    request_seconds: float = 10.0
    input_seconds: float = 120.0


DEFAULT_BUDGET = Budget()


class NotLoaded(VodError):
    """A part whose file failed to load: its own "parse" step has reported why."""


class Runner:
    """One input's requests over a few files in memory. `run` executes and classifies a step."""

    def __init__(self, files: dict[str, bytes], budget: Budget, memory_mb: int | None) -> None:
        self.files = files
        self.movies: dict[str, Movie | None] = {}  # None: the load failed (its step reported why)
        self.report = Report()
        self.budget = budget
        self.memory_mb = memory_mb
        self.peak = PeakMemory() if memory_mb else None
        self.done: set[str] = set()

    def run(self, step: str, action: Callable[[], Any], expected: type[VodError] = VodError) -> Any:
        """The action's result, or None after recording why it failed; each step once per input.
        A step over its CPU budget is recorded and ends the input (CpuBudgetExceeded goes on)."""
        if step in self.done:
            return None
        self.done.add(step)
        if self.peak:
            self.peak.start()
        left = self.budget.input_seconds - self.report.cpu_seconds
        seconds = min(self.budget.request_seconds, left)
        started = time.process_time()
        try:
            with cpu_budget(seconds):
                if seconds <= 0:
                    raise CpuBudgetExceeded()
                result = action()
                if isinstance(result, (MediaSegment, FileParts)):
                    self.consume(result)
        except CpuBudgetExceeded as exc:
            self.spent(started)
            whole_input = seconds < self.budget.request_seconds
            self.report.outcomes.append(slow_outcome(step, self.budget.input_seconds if whole_input
                                                     else seconds, whole_input, exc))
            raise
        except Exception as exc:  # MemoryError, RecursionError and warnings raised as errors included
            outcome = classify(step, exc, expected)
            self.report.outcomes.append(replace(outcome, cpu_seconds=self.spent(started)))
            return None
        if self.peak and self.memory_mb and (growth := self.peak.growth_mb()) > self.memory_mb:
            self.report.outcomes.append(Outcome(step, "memory", f"peak RSS grew by {growth} MB",
                                                f"memory@{request_kind(step)}"))
        self.report.outcomes.append(Outcome(step, "ok", cpu_seconds=self.spent(started)))
        return result

    def spent(self, started: float) -> float:
        """CPU seconds since `started`, added to the input's."""
        seconds = time.process_time() - started
        self.report.cpu_seconds += seconds
        return seconds

    # --- files ----------------------------------------------------------------------------------

    def source(self, path: str) -> SourceIdentity:
        return SourceIdentity(path, len(self.files[path]), 0.0, "fuzz")

    def read(self, source: SourceIdentity, offset: int, length: int) -> bytes:
        """vodorigin.origin.Origin.read on a file in memory."""
        if offset < 0 or length < 0 or offset + length > source.size:
            raise MediaError(f"{source.path}: data at {offset}+{length} lies outside the file")
        return self.files[source.path][offset : offset + length]

    def load(self, path: str, step: str | None = None) -> Movie | None:
        """Load a file as its own step (once); its movie, None when it failed."""
        if path not in self.movies:
            self.movies[path] = self.run(step or f"parse {path}", lambda: self.load_movie(self.source(path)))
        return self.movies[path]

    def load_movie(self, source: SourceIdentity) -> Movie:
        """vodorigin.origin.Origin._load_movie without the awaits (and without skeletons, which
        compare_skeleton checks against it)."""
        head, found = self.moov_of(source)
        if found is None:
            if source.size > MAX_INPUT_BYTES:
                raise LimitExceeded(f"{source.path}: a subtitle file of {source.size} bytes")
            data = head if len(head) == source.size else self.read(source, 0, source.size)
            return sidecar_movie(source, data)
        return parse_moov(found[1], source, LIMITS)

    def moov_of(self, source: SourceIdentity) -> tuple[bytes, tuple[int, bytes] | None]:
        """The file's first read, and its moov's offset and bytes, located as Origin._load_movie
        locates them (None for a subtitle file, told by its first bytes)."""
        locator = MoovLocator(source.size, SETTINGS.initial_read_size, SETTINGS.max_moov_size,
                              SETTINGS.max_moov_reads)
        first = locator.first_read()
        head = self.read(source, first.offset, first.length)
        if detect_format(head) is not None:
            return head, None
        request: ReadRange | bytes = locator.feed(first.offset, head)
        while isinstance(request, ReadRange):
            request = locator.feed(request.offset, self.read(source, request.offset, request.length))
        return head, (locator.position, request)

    def compare_skeleton(self, path: str) -> None:
        """The moov read as a skeleton (mp4/skeleton.py, with every table skipped and small windows:
        many reads) parses as the whole moov does, to the same timing or the same refusal; else
        SkeletonMismatch. A moov the walk gives up on is read whole on the server: nothing to do."""
        source = self.source(path)
        try:
            _, found = self.moov_of(source)
        except VodError:
            return  # refused before there is a moov (the parse step has told why)
        if found is None:
            return
        start, moov = found
        walker = MoovSkeleton(start, len(moov), skip_min=0, window=64, max_reads=len(moov))
        step = walker.feed(start, moov[:64])
        while isinstance(step, ReadRange):
            step = walker.feed(step.offset, self.read(source, step.offset, step.length))
        if step is not None and (whole := _parsed(moov, source)) != (partial := _parsed(step, source)):
            raise SkeletonMismatch(f"{path}: the skeleton parses to {partial!r:.300}, "
                                   f"the moov to {whole!r:.300}")

    def movie(self, path: str) -> Movie:
        if path not in self.movies:
            raise NotLoaded(f"{path} is not one of the input's loaded files")
        movie = self.movies[path]
        if movie is None:
            raise NotLoaded(f"{path} did not load")
        return movie

    # --- requests -------------------------------------------------------------------------------

    def request(self, step: str, protocol: str, path: str, context: PackagerContext = CONTEXT
                ) -> Output | None:
        """One URL /<protocol>/<path> as a step; its output, None when it failed."""
        return self.run(step, lambda: self.respond(parse_request_path(protocol, path), context))

    def respond(self, request: MediaRequest, context: PackagerContext) -> Output:
        movies = [self.movie(part.path) for part in request.parts]
        if request.protocol == "pd":  # web/app.py serve_pd
            if request.clip.start_ms or request.clip.end_ms is not None or not request.parts[0].tracks.empty:
                return pd.clipped_file(media_set(request, by_path(movies)), context)
            return pd.whole_file(movies[0].source)
        try:
            return self.package(request, movies, context)
        except CuesNeeded:  # web/app.py packaged(): read the embedded cues, then once more
            return self.package(request, self.with_cues(movies), context)

    def package(self, request: MediaRequest, movies: Sequence[Movie], context: PackagerContext) -> Output:
        media = media_set(request, by_path(movies))
        if media.sample_count > SETTINGS.max_samples_per_media_set:  # Origin.check_size
            raise LimitExceeded(f"the media set holds {media.sample_count} samples")
        return HANDLERS[request.protocol](request.file_name, media, context)

    def with_cues(self, movies: Sequence[Movie]) -> list[Movie]:
        """vodorigin.origin.Origin.with_cues without the awaits (the cache is self.movies)."""
        loaded = []
        for movie in movies:
            for track in [t for t in movie.tracks if needs_cues(t)]:
                ranges = merged_ranges_of(embedded_cue_ranges(track), SETTINGS.read_merge_gap)
                data = SourceBytes(ranges, [self.read(movie.source, r.offset, r.length) for r in ranges])
                movie = with_cues(movie, track.track_id, check_cue_list(embedded_cues(track, data)))
            self.movies[movie.source.path] = movie
            loaded.append(movie)
        return loaded

    def consume(self, output: MediaSegment | FileParts) -> None:
        """Render a segment from the bytes it asks for; check a progressive body's parts."""
        if isinstance(output, MediaSegment):
            buffers = [self.read(output.source, r.offset, r.length) for r in output.ranges]
            body = output.render(SourceBytes(output.ranges, buffers))
            if len(body) != output.size:
                raise SizeMismatch(f"planned {output.size} bytes, rendered {len(body)}")
            return
        size = output.source.size
        for part in output.parts:
            if not isinstance(part, bytes) and (part.offset < 0 or part.length < 0
                                                or part.offset + part.length > size):
                raise RangeOutsideFile(f"part {part.offset}+{part.length} of a {size}-byte file")


def timing_of(movie: Movie) -> list[tuple[object, ...]]:
    """What a media playlist may read of each track of a movie: everything but its sample sizes
    and where its samples are (what a skeleton leaves unread)."""
    described = []
    for track in movie.tracks:
        samples = track.samples
        times = samples.decode_times
        described.append((
            track.track_id, track.number, track.media_type, track.timescale, track.codec, track.language,
            track.label, track.edit_shift, track.presentation_end, samples.count, samples.end_dts,
            times.counts.tolist(), times.deltas.tolist(), times.first_time.tolist(),
            None if samples.composition_offsets is None else samples.composition_offsets.tolist(),
            None if samples.sync is None else samples.sync.tolist(),
            None if track.key_times is None else track.key_times.tolist()))
    return described


def _parsed(moov: Moov, source: SourceIdentity) -> list[tuple[object, ...]] | str:
    """A moov's timing (timing_of), or its refusal's kind and message."""
    try:
        return timing_of(parse_moov(moov, source, LIMITS))
    except VodError as error:
        return f"{type(error).__name__}: {error.message}"


def by_path(movies: Sequence[Movie]) -> dict[str, Movie]:
    return {movie.source.path: movie for movie in movies}
