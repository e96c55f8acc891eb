"""Audio codecs beyond AAC: AC-3, E-AC-3 and MP3 through HLS/TS; Opus refused clearly for TS.

The files are made at test time by ffmpeg in a temporary directory (12 s each)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import LiveServer, ffmpeg_read_errors, ffprobe_json, load_movie, require_tools
from tests.mp4edit import find, trak_of
from vodorigin.media.model import MediaType
from vodorigin.settings import Settings

CODECS = {
    "ac3": (["-c:a", "ac3", "-b:a", "96k"], "ac-3", "ac3"),
    "eac3": (["-c:a", "eac3", "-b:a", "96k"], "ec-3", "eac3"),
    "mp3": (["-c:a", "libmp3lame", "-b:a", "64k"], "mp4a.40.34", "mp3"),
    "opus": (["-c:a", "libopus", "-b:a", "48k"], "opus", "opus"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str, Path]]:
    require_tools()
    root = tmp_path_factory.mktemp("codecs")
    for name, (arguments, _, _) in CODECS.items():
        subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i",
                        "sine=frequency=440:sample_rate=48000:duration=12", "-ac", "2", *arguments,
                        "-movflags", "+faststart", str(root / f"{name}.mp4")], check=True, timeout=60)
    subtitles = root / "subtitles.srt"
    subtitles.write_text("1\n00:00:01,000 --> 00:00:03,000\nhello\n")
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(root / "mp3.mp4"),
                    "-i", str(subtitles), "-map", "0", "-map", "1", "-c:a", "copy", "-c:s", "mov_text",
                    str(root / "with_text.mp4")], check=True, timeout=60)
    settings = Settings(media_root=str(root), segment_duration=4.0)
    with LiveServer(settings) as live, httpx.Client(base_url=live.base, timeout=30) as client:
        yield client, live.base, root


@pytest.mark.parametrize("name", ["ac3", "eac3", "mp3"])
def test_audio_codec_through_hls(name: str, server: tuple[httpx.Client, str], tmp_path: Path) -> None:
    client, base, _ = server
    _, codec_string, ffmpeg_name = CODECS[name]
    master = client.get(f"/hls/{name}.mp4/master.m3u8").text
    assert f'CODECS="{codec_string}"' in master
    assert ffmpeg_read_errors(f"{base}/hls/{name}.mp4/master.m3u8") == ""
    segment = tmp_path / "s.ts"
    segment.write_bytes(client.get(f"/hls/{name}.mp4/seg-2.ts").content)
    probe = ffprobe_json(segment, "-show_streams", "-show_packets")
    assert [s["codec_name"] for s in probe["streams"]] == [ffmpeg_name]
    dts = np.array([float(p["dts_time"]) for p in probe["packets"]])
    assert np.all(np.diff(dts) > 0) and 3.5 < dts[-1] - dts[0] + 0.05 < 4.5


@pytest.mark.parametrize("name", list(CODECS))
def test_parsed_audio_matches_ffprobe(name: str, server: tuple[httpx.Client, str, Path]) -> None:
    _, _, root = server
    track = load_movie(f"{name}.mp4", root).tracks[0]
    stream = ffprobe_json(root / f"{name}.mp4", "-show_streams")["streams"][0]
    assert track.codec.codec_string == CODECS[name][1]
    assert track.codec.channels == stream["channels"]
    assert track.codec.sample_rate == int(stream["sample_rate"])


def test_opus_in_ts_is_refused_clearly(server: tuple[httpx.Client, str, Path]) -> None:
    client, _, _ = server
    response = client.get("/hls/opus.mp4/seg-1.ts")
    assert response.status_code == 415
    assert "fMP4" in response.json()["error"]


def test_unknown_tracks_are_skipped(server: tuple[httpx.Client, str, Path]) -> None:
    """A timed-text track is parsed (issue 12); one whose handler we do not know is skipped, not fatal."""
    client, base, root = server
    data = (root / "with_text.mp4").read_bytes()
    kinds = [t.media_type for t in load_movie("with_text.mp4", root).tracks]
    assert kinds == [MediaType.AUDIO, MediaType.SUBTITLE]
    hdlr, _ = find(data, b"hdlr", trak_of(data, b"sbtl"))[0]
    (root / "with_meta.mp4").write_bytes(data[: hdlr + 16] + b"meta" + data[hdlr + 20 :])
    movie = load_movie("with_meta.mp4", root)
    assert len(movie.tracks) == 1
    assert len(movie.skipped) == 1 and "handler 'meta' not packaged" in movie.skipped[0]
    assert ffmpeg_read_errors(f"{base}/hls/with_meta.mp4/master.m3u8") == ""
