"""MP4 metadata: box walking, the moov locator's bounded reads, sample tables, codec strings."""

from __future__ import annotations

import contextlib
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FIXTURES, MEDIA_FILES, ffprobe_json, ffprobe_packets, load_movie
from vodorigin.errors import LimitExceeded, MediaError, UnsupportedMedia
from vodorigin.media.languages import language_tag
from vodorigin.media.model import MediaSet, MediaType, SourceIdentity
from vodorigin.media.samples import ChunkMap, DeferredChunks
from vodorigin.mp4 import codecs, write
from vodorigin.mp4.boxes import iter_boxes, read_box_header
from vodorigin.mp4.locate import MoovLocator, ReadRange
from vodorigin.mp4.moov import Limits, parse_moov
from vodorigin.packagers import dash, hds, hls, mss
from vodorigin.packagers.output import PackagerContext
from vodorigin.settings import Settings

BFRAMES = SourceIdentity("bframes.mp4", (FIXTURES / "bframes.mp4").stat().st_size, 0, "")


def locate(data: bytes, read_size: int = 4096, max_reads: int = 4) -> tuple[bytes, int]:
    """Run the locator over an in-memory file; returns (moov, reads)."""
    locator = MoovLocator(len(data), read_size, 1 << 24, max_reads)
    request: ReadRange | bytes = locator.first_read()
    while isinstance(request, ReadRange):
        request = locator.feed(request.offset, data[request.offset : request.offset + request.length])
    return request, locator.reads


def test_box_header_sizes() -> None:
    large = struct.pack(">I4sQ", 1, b"mdat", 24) + bytes(8)
    box = read_box_header(large, 0, len(large))
    assert box is not None and (box.header_size, box.size) == (16, 24)
    to_end = struct.pack(">I4s", 0, b"mdat") + bytes(100)
    box = read_box_header(to_end, 0, len(to_end))
    assert box is not None and box.size == 108
    assert read_box_header(b"\x00\x00", 0, 2) is None
    with pytest.raises(MediaError):
        read_box_header(struct.pack(">I4s", 4, b"free"), 0, 8)


def test_iter_boxes_rejects_overrun() -> None:
    data = struct.pack(">I4s", 100, b"free") + bytes(10)
    with pytest.raises(MediaError, match="overruns"):
        list(iter_boxes(data, 0, len(data)))


@pytest.mark.parametrize("name", MEDIA_FILES)
def test_locator_reads_are_bounded(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    moov, reads = locate(data, read_size=65536)
    assert moov[4:8] == b"moov"
    assert reads <= (2 if name == "moov_end.mp4" else 1)


def test_locator_moov_after_64bit_mdat() -> None:
    moov = write.box(b"moov", write.mvhd(1000, 0, 2))
    mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + 50_000) + bytes(50_000)
    found, reads = locate(write.ftyp() + mdat + moov)
    assert found == moov and reads == 2


def test_locator_errors() -> None:
    with pytest.raises(MediaError, match="not an MP4"):
        locate(b"<html>" + bytes(100))
    with pytest.raises(MediaError):
        locate(write.ftyp() + struct.pack(">I4s", 1000, b"moov"))  # truncated moov
    with pytest.raises(MediaError, match="no moov"):
        locate(write.ftyp() + write.box(b"free", bytes(10)))
    with pytest.raises(UnsupportedMedia):
        locate(write.ftyp() + write.box(b"moof", bytes(10)))
    boxes = write.ftyp() + b"".join(write.box(b"free", bytes(5000)) for _ in range(10)) + write.box(b"moov")
    with pytest.raises(LimitExceeded):
        locate(boxes, read_size=4096, max_reads=3)


@pytest.mark.parametrize("name", MEDIA_FILES)
def test_sample_tables_match_ffprobe(name: str) -> None:
    """Every sample's offset, size, dts and key flag agree with ffprobe's packet list (audio and
    video: ffmpeg leaves out a subtitle track's closing empty sample)."""
    movie = load_movie(name)
    packets = ffprobe_packets(FIXTURES / name)
    for stream_index, track in enumerate(movie.tracks):
        if track.media_type is MediaType.SUBTITLE:
            continue
        theirs = [p for p in packets if p["stream_index"] == stream_index]
        samples = track.samples
        assert samples.count == len(theirs)
        assert samples.offsets(0, samples.count).tolist() == [int(p["pos"]) for p in theirs]
        assert samples.sizes.tolist() == [int(p["size"]) for p in theirs]
        dts = (samples.dts + track.edit_shift).tolist()
        assert dts == [int(p["dts"]) for p in theirs]
        assert samples.is_sync(0, samples.count).tolist() == ["K" in p["flags"] for p in theirs]


def test_offsets_of_a_range_match_the_whole() -> None:
    samples = load_movie("moov_end.mp4").tracks[1].samples
    whole = samples.offsets(0, samples.count)
    for start, stop in ((37, 101), (0, 1), (samples.count - 3, samples.count), (500, 500)):
        assert samples.offsets(start, stop).tolist() == whole[start:stop].tolist()


@pytest.mark.parametrize("name", MEDIA_FILES)
def test_codecs_match_ffprobe(name: str) -> None:
    movie = load_movie(name)
    streams = ffprobe_json(FIXTURES / name, "-show_streams")["streams"]
    for track, stream in zip(movie.tracks, streams, strict=True):
        if track.media_type is MediaType.VIDEO:
            assert (track.codec.width, track.codec.height) == (stream["width"], stream["height"])
            prefix = {"h264": "avc1.", "hevc": "hvc1."}[stream["codec_name"]]
            assert track.codec.codec_string.startswith(prefix)
        elif track.media_type is MediaType.AUDIO:
            assert track.codec.sample_rate == int(stream["sample_rate"])
            assert track.codec.channels == stream["channels"]
            assert track.codec.codec_string == "mp4a.40.2"
        else:
            assert (stream["codec_name"], track.codec.fourcc) == ("mov_text", "tx3g")
        assert track.language == language_tag(stream["tags"].get("language", "und"))


def test_avc_codec_string_from_profile_and_level() -> None:
    streams = ffprobe_json(FIXTURES / "clip_360p.mp4", "-show_streams")["streams"]
    codec = load_movie("clip_360p.mp4").tracks[0].codec.codec_string
    assert codec == f"avc1.64{0:02x}{streams[0]['level']:02x}"  # High profile, constraint 0, level


def test_built_moov_parses_back() -> None:
    """write.* boxes parse back through parse_moov into the same tables (round trip)."""
    source = load_movie("bframes.mp4").tracks[0]
    durations = np.array([512, 512, 1024, 256], dtype=np.int64)
    offsets = np.array([1000, 5000, 9000, 2**33], dtype=np.int64)
    sizes = np.array([10, 20, 30, 40], dtype=np.int64)
    stbl = write.box(
        b"stbl", write.stsd(source.codec.sample_entry), write.stts(durations),
        write.ctts(np.array([1024, 0, -512, 0])), write.stss(np.array([1, 3])), write.stsz(sizes),
        write.stsc_one_sample_per_chunk(), write.chunk_offsets(offsets),
    )
    minf = write.box(b"minf", write.media_header(False), write.dinf(), stbl)
    mdia = write.box(b"mdia", write.mdhd(15360, 2304, "eng"), write.hdlr(b"vide", "v"), minf)
    trak = write.box(b"trak", write.tkhd(7, 150, 320, 180, False), write.elst([(150, 1024)]), mdia)
    moov = write.box(b"moov", write.mvhd(1000, 150, 8), trak)
    movie = parse_moov(moov, SourceIdentity("x", 2**34, 0, ""), Limits())
    track = movie.tracks[0]
    samples = track.samples
    assert (track.track_id, track.timescale, track.language, track.edit_shift) == (7, 15360, "en", -1024)
    assert samples.dts.tolist() == [0, 512, 1024, 2048] and samples.end_dts == 2304
    assert samples.composition_offsets is not None
    assert samples.composition_offsets.tolist() == [1024, 0, -512, 0]
    assert samples.sync is not None and samples.sync.tolist() == [0, 2]
    assert samples.offsets(0, 4).tolist() == offsets.tolist()
    assert samples.sizes.tolist() == sizes.tolist()
    assert track.codec == source.codec


def test_large_tables_are_read_in_place() -> None:
    """A moov's per-sample and per-chunk tables are not copied when it is parsed: the parse of a
    track of 300,000 samples allocates a small fraction of its 3.6 MB of stsz and co64, and the
    movie counts the moov it keeps (its tables are views into it) instead."""
    source = load_movie("bframes.mp4").tracks[0]
    count = 300_000
    sizes = np.full(count, 1000, dtype=np.int64)
    sizes[::7] = 3000
    stbl = write.box(
        b"stbl", write.stsd(source.codec.sample_entry), write.stts(np.full(count, 512, dtype=np.int64)),
        write.stss(np.arange(1, count + 1, 50)), write.stsz(sizes), write.stsc_one_sample_per_chunk(),
        write.chunk_offsets(np.cumsum(sizes) - sizes + 2**32),
    )
    minf = write.box(b"minf", write.media_header(False), write.dinf(), stbl)
    mdia = write.box(b"mdia", write.mdhd(15360, count * 512, "eng"), write.hdlr(b"vide", "v"), minf)
    moov = write.box(b"moov", write.mvhd(1000, 10_000_000, 2),
                     write.box(b"trak", write.tkhd(1, 10_000_000, 320, 180, False), mdia))
    tables = count * (4 + 8)
    tracemalloc.start()
    try:
        movie = parse_moov(moov, SourceIdentity("x", 2**33, 0, ""), Limits())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < tables / 8, (peak, tables)
    samples = movie.tracks[0].samples
    assert samples.sizes[:8].tolist() == sizes[:8].tolist() and int(samples.sizes.sum()) == int(sizes.sum())
    assert samples.offsets(count - 3, count).tolist() == (np.cumsum(sizes) - sizes + 2**32)[-3:].tolist()
    assert movie.moov_bytes == len(moov) and movie.nbytes >= len(moov)


@pytest.mark.parametrize("cut", [8, 100, 1000, 3000, 20000])
def test_truncated_moov_is_a_media_error(cut: int) -> None:
    moov, _ = locate((FIXTURES / "bframes.mp4").read_bytes(), read_size=65536)
    damaged = struct.pack(">I", cut) + moov[4:cut]
    with pytest.raises(MediaError):
        parse_moov(damaged, BFRAMES, Limits())


def test_random_corruption_never_escapes_as_another_error() -> None:
    """Flip bytes all over a real moov: parsing either works or raises MediaError, nothing else."""
    moov, _ = locate((FIXTURES / "bframes.mp4").read_bytes(), read_size=65536)
    rng = np.random.default_rng(7)
    for _ in range(300):
        damaged = bytearray(moov)
        for position in rng.integers(8, len(moov), size=4):
            damaged[position] = int(rng.integers(0, 256))
        with contextlib.suppress(MediaError):
            parse_moov(bytes(damaged), BFRAMES, Limits())


def test_limits_are_enforced() -> None:
    moov, _ = locate((FIXTURES / "bframes.mp4").read_bytes(), read_size=65536)
    source = BFRAMES
    parse_moov(moov, source, Limits())
    with pytest.raises(LimitExceeded):
        parse_moov(moov, source, Limits(max_tracks=1))
    with pytest.raises(LimitExceeded):
        parse_moov(moov, source, Limits(max_samples_per_track=100))
    large_frames = parse_moov(moov, source, Limits(max_frame_size=1000))  # checked when first located
    with pytest.raises(LimitExceeded, match="a frame is larger than max_frame_size"):
        large_frames.tracks[0].samples.offsets(0, 1)


def test_where_samples_are_is_derived_when_first_asked_for() -> None:
    """A manifest never needs the chunk map: parsing leaves it (and its checks) to the first
    request that does. A failure then is told as one while parsing is, with the file and track,
    and again on every later request."""
    moov, _ = locate((FIXTURES / "bframes.mp4").read_bytes(), read_size=65536)
    movie = parse_moov(moov, BFRAMES, Limits(max_frame_size=1000))
    deferred = [track.samples.located for track in movie.tracks]
    assert all(isinstance(d, DeferredChunks) and not d.derived for d in deferred)
    video, audio = movie.tracks
    for _ in range(2):
        with pytest.raises(LimitExceeded) as raised:
            video.samples.offsets(0, 1)
        assert raised.value.message == f"{BFRAMES.path}: track {video.track_id}: a frame is larger than " \
            "max_frame_size"
    assert int(audio.samples.sizes.max()) <= 1000  # AAC frames of a few hundred bytes: under the limit
    chunks = audio.samples.chunks
    assert isinstance(chunks, ChunkMap) and audio.samples.chunks is chunks and deferred[1].derived


@pytest.mark.parametrize(("protocol", "name"), [
    ("hls", "master.m3u8"), ("hls", "index-v1-a1.m3u8"), ("hls", "iframes-v1.m3u8"), ("dash", "manifest.mpd"),
    ("mss", "manifest"), ("hds", "manifest.f4m")])
def test_no_manifest_derives_where_samples_are(protocol: str, name: str) -> None:
    """The passes over stsz, stsc and stco (most of a long title's moov) are left to segments."""
    moov, _ = locate((FIXTURES / "bframes.mp4").read_bytes(), read_size=65536)
    movie = parse_moov(moov, BFRAMES, Limits())
    handler = {"hls": hls.handle, "dash": dash.handle, "mss": mss.handle, "hds": hds.handle}[protocol]
    handler(name, MediaSet((movie,)), PackagerContext.from_settings(Settings()))  # type: ignore[call-arg]
    located = [track.samples.located for track in movie.tracks]
    assert located and not any(isinstance(d, ChunkMap) or d.derived for d in located)
    movie.tracks[0].samples.offsets(0, 1)  # a segment's first question
    assert isinstance(located[0], DeferredChunks) and located[0].derived


def test_edit_lists() -> None:
    delayed = load_movie("edit_delay.mp4")
    audio = delayed.tracks_of(MediaType.AUDIO)[0]
    starts = ffprobe_json(FIXTURES / "edit_delay.mp4", "-show_streams")["streams"]
    assert abs(audio.edit_shift / audio.timescale - float(starts[1]["start_time"])) < 0.05
    video = load_movie("bframes.mp4").tracks[0]
    assert video.key_times is not None and int(video.key_times[0]) == 0  # the B-frame delay is edited out


@pytest.mark.parametrize("field_size", [4, 8, 16])
def test_compact_sample_sizes(field_size: int) -> None:
    """stz2 (8.7.3.3) with 4-, 8- and 16-bit fields parses to the same sizes as stsz."""
    from vodorigin.mp4.tables import RawTables, TableBounds, parse_sample_sizes

    sizes = [3, 15, 0, 7, 9] if field_size == 4 else [1, 200, 255, 17, 90]
    if field_size == 16:
        sizes = [1000, 65535, 3, 4242, 9]
    if field_size == 4:
        packed = bytes((sizes[i] << 4) | (sizes[i + 1] if i + 1 < len(sizes) else 0) for i in range(0, 5, 2))
    else:
        packed = b"".join(s.to_bytes(field_size // 8, "big") for s in sizes)
    payload = struct.pack(">3xBI", field_size, len(sizes)) + packed
    raw = RawTables(stts=b"", stsz=payload, stsc=b"", chunk_offsets=b"", chunk_offsets_64bit=False,
                    compact_sizes=True)
    assert parse_sample_sizes(raw, TableBounds(100, "a limit", 10**6)).tolist() == sizes


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=8), widths=st.lists(st.integers(0, 24), max_size=8))
def test_bit_reader_reads_fields_most_significant_bit_first(data: bytes, widths: list[int]) -> None:
    """AudioSpecificConfig's reader against the bits written out as text: every field, and a
    field past the end refused."""
    bits = "".join(f"{byte:08b}" for byte in data)
    reader = codecs._BitReader(data)
    position = 0
    for width in widths:
        if position + width > len(bits):
            with pytest.raises(MediaError, match="truncated"):
                reader.read(width)
            return
        assert reader.read(width) == int(bits[position : position + width] or "0", 2)
        position += width


def test_audio_specific_config_fields() -> None:
    """An explicit 24-bit rate (index 15), an escaped object type (31 + 6 bits: 32 + n) and HE-AAC's
    extension, read from hand-packed bits (ISO/IEC 14496-3 1.6.2.1)."""
    def packed(*fields: tuple[int, int]) -> bytes:
        text = "".join(f"{value:0{width}b}" for value, width in fields)
        text += "0" * (-len(text) % 8)
        return int(text, 2).to_bytes(len(text) // 8, "big")

    explicit = codecs.parse_audio_specific_config(packed((2, 5), (15, 4), (22050, 24), (2, 4)))
    assert (explicit.object_type, explicit.sample_rate, explicit.channels) == (2, 22050, 2)
    escaped = codecs.parse_audio_specific_config(packed((31, 5), (10, 6), (3, 4), (1, 4)))
    assert (escaped.object_type, escaped.sample_rate, escaped.channels) == (42, 48000, 1)
    he = codecs.parse_audio_specific_config(packed((5, 5), (6, 4), (2, 4), (3, 4), (2, 5)))
    assert (he.object_type, he.core_object_type, he.sample_rate) == (5, 2, 24000)
