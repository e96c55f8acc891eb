"""`make bench`: throughput and latency figures, with ratios against baselines of the same run.

Media is generated under bench/media (not committed): one minute is encoded, then stream-copied in a
loop into a 2-hour 360p file and a 10-minute 720p file. Nothing here asserts on time.

Baselines: `read+join` reads the same byte ranges a segment needs and joins them (the least any
packager must do); over HTTP, `/pd` ranges of the same size show what the server costs by itself.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx

from tests.conftest import LiveServer
from tests.ts_reference import reference_segment
from vodorigin.drm.keys import ContentKey, FileKeys
from vodorigin.media.frames import merged_ranges, segment_frames
from vodorigin.media.model import MediaSet, TrackSpec, select_tracks
from vodorigin.media.segmenter import movie_timeline
from vodorigin.mux import mpegts, ts_kernel, ts_write
from vodorigin.origin import Origin
from vodorigin.packagers import dash, hds, hls, mss
from vodorigin.packagers.output import MediaSegment, PackagerContext
from vodorigin.settings import Settings
from vodorigin.storage.local import LocalStorage
from vodorigin.storage.reads import ReadPolicy, ResilientStorage

MEDIA = Path(__file__).resolve().parent / "media"
FILES = {"long_360p.mp4": ("640x360", 120), "medium_720p.mp4": ("1280x720", 10)}  # size, minutes

def make_media() -> None:
    MEDIA.mkdir(exist_ok=True)
    for name, (size, minutes) in FILES.items():
        target = MEDIA / name
        if target.exists():
            continue
        minute = MEDIA / f"minute_{size}.mp4"
        print(f"generating {name} ({minutes} min at {size})...", flush=True)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-y", "-v", "error",
             "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration=60",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=60", "-c:v", "libx264",
             "-preset", "ultrafast", "-b:v", "1200k" if size == "640x360" else "3000k", "-g", "60",
             "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
             str(minute)], check=True)
        subprocess.run(
            ["ffmpeg", "-nostdin", "-y", "-v", "error", "-stream_loop", str(minutes - 1), "-i", str(minute),
             "-c", "copy", "-movflags", "+faststart", str(target)], check=True)
        minute.unlink()

def timed(function: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return samples

def row(name: str, value: str, note: str = "") -> None:
    print(f"  {name:<48} {value:>16}  {note}")

def bench_metadata(settings: Settings) -> None:
    print("manifests (2-hour file, in process)")
    context = PackagerContext.from_settings(settings)

    async def cold_index() -> float:
        start = time.perf_counter()
        origin = Origin(settings, LocalStorage(MEDIA))  # new caches: a cold request
        movie = await origin.movie("long_360p.mp4")
        hls.render_media_playlist([movie_timeline(movie, context.segments)], "v1-a1")
        return time.perf_counter() - start

    async def cold_indexes() -> list[float]:  # one event loop, as in the server
        return [await cold_index() for _ in range(7)]

    cold = asyncio.run(cold_indexes())
    row("cold index.m3u8 (read + parse moov + render)", f"{statistics.median(cold) * 1000:.1f} ms",
        "target <= 50 ms; C reference 11 ms")
    origin = Origin(settings, LocalStorage(MEDIA))
    movie = asyncio.run(origin.movie("long_360p.mp4"))
    warm = timed(lambda: hls.render_media_playlist([movie_timeline(movie, context.segments)], "v1-a1"), 50)
    row("index.m3u8 from cached metadata", f"{statistics.median(warm) * 1000:.2f} ms", "target <= 5 ms")

    master = timed(lambda: hls.render_master_playlist(MediaSet((movie,)), context), 20)
    row("master.m3u8 from cached metadata (peak bandwidth)", f"{statistics.median(master) * 1000:.2f} ms",
        "with its I-frame entry")
    iframes = timed(lambda: hls.handle("iframes-v1.m3u8", MediaSet((movie,)), context), 20)
    row("iframes-v1.m3u8 from cached metadata (TS)", f"{statistics.median(iframes) * 1000:.2f} ms")

def bench_segments(settings: Settings, name: str) -> None:
    print(f"TS segments, in process ({name})")
    asyncio.run(_bench_segments(settings, name))


async def _bench_segments(settings: Settings, name: str) -> None:
    """One event loop for the run, as in the server. Baseline: read and join the same ranges."""
    context = PackagerContext.from_settings(settings)
    origin = Origin(settings, LocalStorage(MEDIA))
    movie = await origin.movie(name)
    timeline = movie_timeline(movie, context.segments)
    tracks = select_tracks(movie.tracks, TrackSpec(), default_first=True)
    numbers = list(range(1, min(timeline.count, 60) + 1))
    produced = raw = 0
    mux_time = raw_time = 0.0
    for number in numbers:
        start = time.perf_counter()
        frames = [segment_frames(t, timeline, number, 100_000) for t in tracks]
        ranges = merged_ranges(frames, settings.read_merge_gap)
        buffers = [await origin.read(movie.source, r.offset, r.length) for r in ranges]
        raw += len(b"".join(buffers))
        raw_time += time.perf_counter() - start
        start = time.perf_counter()
        frames = [segment_frames(t, timeline, number, 100_000) for t in tracks]
        plan = mpegts.plan_segment(number, frames)
        source = await origin.read_ranges(movie.source, merged_ranges(frames, settings.read_merge_gap))
        produced += len(ts_write.write_segment(plan, source))
        mux_time += time.perf_counter() - start
    ours, baseline = produced / mux_time / 1e6, raw / raw_time / 1e6
    each = produced / len(numbers) / 1e6
    row("TS plan + read + mux", f"{ours:.0f} MB/s", f"{len(numbers)} segments, {each:.2f} MB each")
    row("baseline: select frames + read + join the ranges", f"{baseline:.0f} MB/s",
        f"ratio {ours / baseline:.2f}")


def bench_ts_mux(settings: Settings, name: str) -> None:
    print(f"TS muxing alone, frames in memory ({name}), best of 7 interleaved")
    asyncio.run(_bench_ts_mux(settings, name))


async def _bench_ts_mux(settings: Settings, name: str) -> None:
    """The writer against its floor (a memcpy of the frames' bytes: b"".join of their views) and
    against the plain reference writer the tests compare it with (tests/ts_reference.py), which is
    how segments were written before issue 17."""
    context = PackagerContext.from_settings(settings)
    origin = Origin(settings, LocalStorage(MEDIA))
    movie = await origin.movie(name)
    timeline = movie_timeline(movie, context.segments)
    tracks = select_tracks(movie.tracks, TrackSpec(), default_first=True)
    items = []
    for number in range(1, min(timeline.count, 20) + 1):
        frames = [segment_frames(t, timeline, number, 100_000) for t in tracks]
        source = await origin.read_ranges(movie.source, merged_ranges(frames, settings.read_merge_gap))
        items.append((mpegts.plan_segment(number, frames), frames, source))
    size = sum(plan.size for plan, _, _ in items)
    runs: dict[str, list[float]] = {"writer": [], "numpy": [], "reference": [], "floor": []}
    for _ in range(7):
        start = time.perf_counter()
        for plan, _, source in items:
            ts_write.write_segment(plan, source)
        runs["writer"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for plan, _, source in items:
            ts_write.write_segment_numpy(plan, source)
        runs["numpy"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for plan, frames, source in items:
            reference_segment(plan, [source.frame_views(f) for f in frames])
        runs["reference"].append(time.perf_counter() - start)
        start = time.perf_counter()
        for _, frames, source in items:
            b"".join(view for f in frames for view in source.frame_views(f))
        runs["floor"].append(time.perf_counter() - start)
    rate = {label: size / min(seconds) / 1e6 for label, seconds in runs.items()}
    writer = "compiled kernel" if ts_kernel.available() else "numpy: the kernel is not built"
    row(f"TS writer ({writer})", f"{rate['writer']:.0f} MB/s",
        f"{min(runs['writer']) / len(items) * 1000:.2f} ms per {size / len(items) / 1e6:.2f} MB segment")
    row("numpy writer (mux/ts_write.py)", f"{rate['numpy']:.0f} MB/s",
        f"writer / numpy {rate['writer'] / rate['numpy']:.2f}")
    row("reference writer (before issue 17)", f"{rate['reference']:.0f} MB/s",
        f"writer / reference {rate['writer'] / rate['reference']:.2f}")
    row("floor: join the frames' bytes", f"{rate['floor']:.0f} MB/s",
        f"writer / floor {rate['writer'] / rate['floor']:.2f}")


def bench_fmp4(settings: Settings, name: str) -> None:
    print(f"fMP4 fragments (DASH, video track), in process ({name})")
    asyncio.run(_bench_fmp4(settings, name))


async def _bench_fmp4(settings: Settings, name: str) -> None:
    context = PackagerContext.from_settings(settings)
    origin = Origin(settings, LocalStorage(MEDIA))
    movie = await origin.movie(name)
    media = MediaSet((movie,))
    numbers = range(1, min(movie_timeline(movie, context.segments).count, 60) + 1)
    produced, seconds = 0, 0.0
    for number in numbers:
        start = time.perf_counter()
        segment = dash.handle(f"fragment-{number}-v1.m4s", media, context)
        assert isinstance(segment, MediaSegment)
        source = await origin.read_ranges(movie.source, segment.ranges)
        produced += len(segment.render(source))
        seconds += time.perf_counter() - start
    row("fMP4 plan + read + mux", f"{produced / seconds / 1e6:.0f} MB/s", "target >= 600 MB/s; C ~1 GB/s")
    mpd = timed(lambda: dash.handle("manifest.mpd", media, context), 20)
    row("manifest.mpd from cached metadata", f"{statistics.median(mpd) * 1000:.2f} ms", "2-hour file")


def bench_encryption(settings: Settings, name: str) -> None:
    print(f"Encryption, in process ({name}): the same segments in the clear and encrypted")
    asyncio.run(_bench_encryption(settings, name))


async def _bench_encryption(settings: Settings, name: str) -> None:
    """TS segments whole in AES-128-CBC and in SAMPLE-AES (HLS), video fragments in Common
    Encryption 'cenc' and 'cbcs' (DASH), each against the clear segments of the same numbers,
    read + mux (+ encrypt) timed together."""
    origin = Origin(settings, LocalStorage(MEDIA))
    movie = await origin.movie(name)
    media = MediaSet((movie,))
    key = ContentKey(bytes(range(16)), bytes(range(16, 32)), served=True)
    clear = PackagerContext.from_settings(settings)
    encrypted = replace(clear, hls_encryption_method="aes-128", drm_enabled=True, keys={name: FileKeys(key)})
    numbers = range(1, min(movie_timeline(movie, clear.segments).count, 30) + 1)
    cases = (("HLS TS AES-128", hls.handle, "seg-{}-v1-a1.ts", encrypted),
             ("HLS TS SAMPLE-AES", hls.handle, "seg-{}-v1-a1.ts",
              replace(encrypted, hls_encryption_method="sample-aes")),
             ("DASH video fragment cenc", dash.handle, "fragment-{}-v1.m4s", encrypted),
             ("DASH video fragment cbcs", dash.handle, "fragment-{}-v1.m4s",
              replace(encrypted, dash_encryption_scheme="cbcs")))
    for label, handle, file_name, protected in cases:
        rates = {}
        for kind, context in (("clear", clear), ("encrypted", protected)):
            produced, seconds = 0, 0.0
            for number in numbers:
                start = time.perf_counter()
                segment = handle(file_name.format(number), media, context)
                assert isinstance(segment, MediaSegment)
                produced += len(segment.render(await origin.read_ranges(movie.source, segment.ranges)))
                seconds += time.perf_counter() - start
            rates[kind] = produced / seconds / 1e6
        row(label, f"{rates['encrypted']:.0f} MB/s",
            f"clear {rates['clear']:.0f} MB/s: ratio {rates['encrypted'] / rates['clear']:.2f}")


def bench_hds_mss(settings: Settings, name: str) -> None:
    print(f"HDS and MSS, in process ({name})")
    asyncio.run(_bench_hds_mss(settings, name))


async def _bench_hds_mss(settings: Settings, name: str) -> None:
    """HDS fragments (video + audio FLV tags) and MSS video fragments, against DASH video fragments of
    the same segments (the fMP4 muxer MSS shares) as the baseline."""
    context = PackagerContext.from_settings(settings)
    origin = Origin(settings, LocalStorage(MEDIA))
    movie = await origin.movie(name)
    media = MediaSet((movie,))
    numbers = range(1, min(movie_timeline(movie, context.segments).count, 60) + 1)
    manifest = mss.render_manifest(media, context).decode()
    starts = [int(t) for t in re.findall(r'<c t="(\d+)"', manifest.split("</StreamIndex>")[0])]
    bitrate = re.findall(r'Bitrate="(\d+)"', manifest)[0]
    names = {"HDS fragments (v1-a1, FLV)": (hds, [f"frag-v1-a1-Seg1-Frag{n}" for n in numbers]),
             "MSS video fragments": (mss, [f"QualityLevels({bitrate})/Fragments(video={starts[n - 1]})"
                                           for n in numbers]),
             "DASH video fragments (baseline)": (dash, [f"fragment-{n}-v1.m4s" for n in numbers])}
    rates = {}
    for label, (packager, files) in names.items():
        produced, seconds = 0, 0.0
        for file_name in files:
            start = time.perf_counter()
            segment = packager.handle(file_name, media, context)
            assert isinstance(segment, MediaSegment)
            source = await origin.read_ranges(movie.source, segment.ranges)
            produced += len(segment.render(source))
            seconds += time.perf_counter() - start
        rates[label] = produced / seconds / 1e6
    baseline = rates["DASH video fragments (baseline)"]
    for label, rate in rates.items():
        row(label + " plan + read + mux", f"{rate:.0f} MB/s", f"ratio {rate / baseline:.2f}")
    for label, render in (("manifest.f4m", hds.render_manifest), ("MSS manifest", mss.render_manifest)):
        latency = timed(lambda render=render: render(media, context), 10)  # type: ignore[misc]
        row(f"{label} from cached metadata", f"{statistics.median(latency) * 1000:.2f} ms", "2-hour file")


def bench_http(settings: Settings) -> None:
    print("over HTTP (one uvicorn worker, sequential requests on 127.0.0.1)")
    with LiveServer(settings) as server, httpx.Client(base_url=server.base, timeout=60) as client:
        client.get("/hls/long_360p.mp4/index.m3u8")
        total = 0
        start = time.perf_counter()
        for number in range(1, 41):
            total += len(client.get(f"/hls/long_360p.mp4/seg-{number}-v1-a1.ts").content)
        seconds = time.perf_counter() - start
        ts_rate = total / seconds / 1e6
        row("TS segments", f"{ts_rate:.0f} MB/s", f"{seconds / 40 * 1000:.1f} ms per segment")
        mib = 1024 * 1024
        start = time.perf_counter()
        for i in range(100):
            offset = i * mib
            byte_range = {"range": f"bytes={offset}-{offset + mib - 1}"}
            response = client.get("/pd/long_360p.mp4", headers=byte_range)
            assert response.status_code == 206
        seconds = time.perf_counter() - start
        pd_rate = 100 * mib / seconds / 1e6
        row("/pd 1 MiB ranges", f"{pd_rate:.0f} MB/s", f"{seconds / 100 * 1000:.1f} ms per range")
        row("ratio TS / pd (packaging cost over plain bytes)", f"{ts_rate / pd_rate:.2f}")
        client.get("/dash/long_360p.mp4/manifest.mpd")
        total = 0
        start = time.perf_counter()
        for number in range(1, 41):
            total += len(client.get(f"/dash/long_360p.mp4/fragment-{number}-v1.m4s").content)
        seconds = time.perf_counter() - start
        fmp4_rate = total / seconds / 1e6
        row("DASH video fragments", f"{fmp4_rate:.0f} MB/s", f"ratio fMP4 / pd {fmp4_rate / pd_rate:.2f}")
        latency = timed(lambda: client.get("/hls/long_360p.mp4/index-v1-a1.m3u8"), 50)
        row("index.m3u8 latency (warm)", f"{statistics.median(latency) * 1000:.1f} ms", "median of 50")
        cached = statistics.median(timed(lambda: client.get("/hls/long_360p.mp4/master.m3u8"), 50))
    uncached_settings = settings.model_copy(update={"response_cache_bytes": 0})
    with LiveServer(uncached_settings) as server, httpx.Client(base_url=server.base, timeout=60) as client:
        client.get("/hls/long_360p.mp4/master.m3u8")
        uncached = statistics.median(timed(lambda: client.get("/hls/long_360p.mp4/master.m3u8"), 20))
    row("master.m3u8 latency, response cache", f"{cached * 1000:.1f} ms", "median of 50")
    row("master.m3u8 latency, no response cache", f"{uncached * 1000:.1f} ms",
        f"baseline; ratio cached / uncached {cached / uncached:.2f}")

def bench_block_reads(settings: Settings, name: str) -> None:
    print(f"Remote read layer, in process ({name})")
    asyncio.run(_bench_block_reads(settings, name))


async def _bench_block_reads(settings: Settings, name: str) -> None:
    """The block layer (storage/reads.py) over local files, as if they were remote, against the
    same ranges read directly: what blocks, single-flight and the block cache cost per byte."""
    local = LocalStorage(MEDIA)
    policy = ReadPolicy(block_size=settings.upstream_block_size,
                        block_cache_bytes=settings.upstream_block_cache_bytes)
    blocks = ResilientStorage(local, policy, "bench")
    movie = await Origin(settings, local).movie(name)
    timeline = movie_timeline(movie, PackagerContext.from_settings(settings).segments)
    per_segment = [merged_ranges([segment_frames(t, timeline, n, 100_000)], settings.read_merge_gap)
                   for n in range(1, min(timeline.count, 60) + 1) for t in movie.tracks]
    rates = {}
    for label, storage in (("direct", local), ("blocks", blocks)):
        size = 0
        start = time.perf_counter()
        for ranges in per_segment:  # video then audio of each segment, as DASH asks for them
            for r in ranges:
                size += len(await storage.read(movie.source, r.offset, r.length))
        rates[label] = size / (time.perf_counter() - start) / 1e6
    row("segment ranges read directly (baseline)", f"{rates['direct']:.0f} MB/s")
    row("through blocks + block cache", f"{rates['blocks']:.0f} MB/s",
        f"ratio {rates['blocks'] / rates['direct']:.2f}; {blocks.counters.reads} upstream reads for "
        f"{len(per_segment)} track segments, {blocks.counters.block_hits} block hits")


def main() -> None:
    make_media()
    settings = Settings(media_root=str(MEDIA), log_level="warning")
    print(f"vodorigin bench, Python {sys.version.split()[0]}")
    bench_metadata(settings)
    bench_segments(settings, "long_360p.mp4")
    bench_segments(settings, "medium_720p.mp4")
    bench_ts_mux(settings, "long_360p.mp4")
    bench_fmp4(settings, "long_360p.mp4")
    bench_hds_mss(settings, "long_360p.mp4")
    bench_encryption(settings, "long_360p.mp4")
    bench_block_reads(settings, "long_360p.mp4")
    bench_http(settings)

if __name__ == "__main__":
    main()
