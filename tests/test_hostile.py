"""Hostile input (issue 15): files, URLs and connections that once made 500s, truncated 200s,
unbounded work or memory. Each test here failed before its fix."""

from __future__ import annotations

import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, LiveServer, require_tools
from tests.fuzz import SUBTITLE_SUFFIXES
from tests.fuzz.amplify import AMPLIFIERS
from tests.fuzz.mutate import mutate_bytes
from tests.mp4edit import claiming_file, find, payload, put, sample_entry, trak_of
from tests.test_cli import free_port, wait_for
from vodorigin.settings import Settings

BFRAMES = (FIXTURES / "bframes.mp4").read_bytes()
ROUTES = ["hls/{f}/master.m3u8", "hls/{f}/index-v1-a1.m3u8", "hls/{f}/iframes-v1.m3u8",
          "hls/{f}/seg-1-v1-a1.ts", "hls/{f}/init-v1-a1.mp4", "hls/{f}/seg-2-v1-a1.m4s",
          "dash/{f}/manifest.mpd", "dash/{f}/init-v1.mp4", "dash/{f}/fragment-1-a1.m4s",
          "mss/{f}/manifest", "hds/{f}/manifest.f4m", "hds/{f}/frag-v1-a1-Seg1-Frag1",
          "pd/clipFrom/1000/clipTo/5000/{f}", "pd/{f}", "dash/clipFrom/11000/{f}/manifest.mpd",
          "hls/clipFrom/11000/{f}/index-v1-a1.m3u8"]


def _mutated() -> dict[str, bytes]:
    """Regression files made from bframes.mp4 (moov first: faststart) by changing single fields."""
    video_stts = payload(BFRAMES, b"vide", b"stts")
    audio_stts = payload(BFRAMES, b"soun", b"stts")
    video_mdhd = payload(BFRAMES, b"vide", b"mdhd")
    moov_start, moov_end = find(BFRAMES, b"moov")[0]
    stco = payload(BFRAMES, b"vide", b"stco")
    files = {
        "truncated_after_moov.mp4": BFRAMES[:moov_end],
        "offsets_past_end.mp4": put(BFRAMES, stco + 8, ">I", len(BFRAMES) - 100),
        "track_id_max.mp4": put(BFRAMES, find(BFRAMES, b"tkhd", trak_of(BFRAMES, b"vide"))[0][0] + 20,
                                ">I", 0xFFFFFFFF),
        "empty_stss.mp4": put(BFRAMES, payload(BFRAMES, b"vide", b"stss"), ">I", 0),
        "audio_delta_0.mp4": put(BFRAMES, audio_stts + 8, ">I", 0),
        "audio_delta_2_31.mp4": put(BFRAMES, audio_stts + 8, ">I", 2**31),
        "video_delta_max.mp4": put(BFRAMES, video_stts + 8, ">I", 0xFFFFFFFF),
        "huge_composition.mp4": put(BFRAMES, payload(BFRAMES, b"vide", b"ctts") + 8, ">I", 0x7FFFFFF0),
        "huge_media_time.mp4": put(BFRAMES, payload(BFRAMES, b"vide", b"elst") + 8, ">I", 0x7FFFFFF0),
    }
    for timescale in (1, 7, 2**32 - 1):
        files[f"timescale_{timescale}.mp4"] = put(BFRAMES, video_mdhd + 8, ">I", timescale)
        files[f"audio_timescale_{timescale}.mp4"] = put(BFRAMES, payload(BFRAMES, b"soun", b"mdhd") + 8,
                                                        ">I", timescale)
    assert moov_start < stco < moov_end
    return files


def _amplifiers() -> dict[str, bytes]:
    """The amplification files of the issue: a few kilobytes claiming millions of samples, and one
    sample lasting 2^32 - 1 s."""
    entry = sample_entry(FIXTURES / "bframes.mp4", b"vide")
    return {"claims_20m.mp4": claiming_file(entry, 19_999_999),
            "claims_20m_32_tracks.mp4": claiming_file(entry, 19_999_999, tracks=32),
            "claims_400k.mp4": claiming_file(entry, 400_000, mdat_bytes=400_100),  # fits its bytes: served
            "one_long_sample.mp4": claiming_file(entry, 1, delta=2**32 - 1, timescale=1)}


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    for name, data in {**_mutated(), **_amplifiers()}.items():
        (root / name).write_bytes(data)
    shutil.copy(FIXTURES / "bframes.mp4", root / "bframes.mp4")
    os.symlink("loop_b.mp4", root / "loop_a.mp4")
    os.symlink("loop_a.mp4", root / "loop_b.mp4")
    outside = tmp_path_factory.mktemp("outside")
    shutil.copy(FIXTURES / "video_only.mp4", outside / "secret.mp4")
    os.symlink(outside, root / "linked_dir")
    return root


@pytest.fixture(scope="module")
def server(hostile_root: Path) -> Iterator[LiveServer]:
    settings = Settings(media_root=str(hostile_root), segment_duration=4.0, header_timeout=1.0)
    with LiveServer(settings) as live:
        yield live


def _get(client: httpx.Client, path: str, **headers: str) -> httpx.Response:
    """GET that fails the test on a 5xx or on a body shorter than its Content-Length."""
    response = client.get(path, headers=headers)
    assert response.status_code < 500, f"{path}: {response.status_code} {response.text[:200]}"
    if "content-length" in response.headers and "content-encoding" not in response.headers:
        assert len(response.content) == int(response.headers["content-length"]), f"{path}: truncated body"
    return response


@pytest.mark.parametrize("name", sorted({**_mutated(), **_amplifiers()}))
def test_every_route_of_a_hostile_file_is_a_clean_answer(name: str, server: LiveServer) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for route in ROUTES:
            _get(client, "/" + route.format(f=name))


@pytest.mark.parametrize(("name", "status"), [
    ("truncated_after_moov.mp4", 200), ("offsets_past_end.mp4", 200), ("empty_stss.mp4", 422),
    ("claims_20m.mp4", 422), ("claims_20m_32_tracks.mp4", 422), ("one_long_sample.mp4", 422),
    ("timescale_4294967295.mp4", 422), ("track_id_max.mp4", 200), ("claims_400k.mp4", 200)])
def test_hostile_master_status(name: str, status: int, server: LiveServer) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        response = _get(client, f"/hls/{name}/master.m3u8")
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["error"]


@pytest.mark.parametrize(("name", "audio"), [("truncated_after_moov.mp4", 422),
                                             ("offsets_past_end.mp4", 200)])
def test_samples_outside_the_file_are_422_for_every_segment(name: str, audio: int,
                                                           server: LiveServer) -> None:
    """Where samples are is checked when a request first needs it (a manifest does not): the
    manifests list the file, and every segment with the track whose samples lie past the end of
    the file (every track of a truncated upload; the video of a file with one chunk offset moved)
    is a 422 that says why, each time it is asked for."""
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for route in ("/hls/{f}/seg-1-v1-a1.ts", "/hls/{f}/seg-2-v1.ts", "/hls/{f}/seg-2-v1-a1.m4s",
                      "/dash/{f}/fragment-1-v1.m4s", "/hds/{f}/frag-v1-a1-Seg1-Frag1"):
            for _ in range(2):  # the second from the failure the cached movie keeps
                response = _get(client, route.format(f=name))
                assert response.status_code == 422, (route, response.text)
                assert "track 1: sample data runs to byte" in response.json()["error"], route
        assert _get(client, f"/dash/{name}/fragment-1-a1.m4s").status_code == audio


def test_a_truncated_upload_is_422_before_any_byte_of_a_clip(server: LiveServer) -> None:
    """A /pd/ clip of a file cut after its moov used to promise 826 kB and send 4.8 kB; the whole
    file is still served as it is, with its real length."""
    with httpx.Client(base_url=server.base, timeout=30) as client:
        clip = _get(client, "/pd/clipFrom/1000/clipTo/5000/truncated_after_moov.mp4")
        whole = _get(client, "/pd/truncated_after_moov.mp4")
    assert clip.status_code == 422 and "past the end of the file" in clip.json()["error"]
    assert whole.status_code == 200 and len(whole.content) == find(BFRAMES, b"moov")[0][1]


def test_track_id_max_still_packages(server: LiveServer, tmp_path: Path) -> None:
    """next_track_ID would be 2^32 (a struct.error building the init segment): it is capped."""
    require_tools()
    with httpx.Client(base_url=server.base, timeout=30) as client:
        init = _get(client, "/dash/track_id_max.mp4/init-v1.mp4")
        fragment = _get(client, "/dash/track_id_max.mp4/fragment-1-v1.m4s")
    assert init.status_code == fragment.status_code == 200
    (tmp_path / "v.mp4").write_bytes(init.content + fragment.content)
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries",
                            "stream=nb_read_packets", "-of", "csv=p=0", str(tmp_path / "v.mp4")],
                           capture_output=True, text=True, timeout=60, check=True)
    assert int(probe.stdout.strip()) > 0


def test_clip_from_the_end_of_an_ffmpeg_cut(server: LiveServer, hostile_root: Path) -> None:
    """`ffmpeg -t 12 -c copy` leaves audio ending 56 ms before video; clipFrom at the end used to
    raise IndexError building the DASH MPD. The audio, which has no sample there, is not listed."""
    require_tools()
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-v", "error", "-i", str(FIXTURES / "bframes.mp4"),
                    "-t", "12", "-c", "copy", "-movflags", "+faststart", str(hostile_root / "cut12.mp4")],
                   check=True, timeout=60)
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for start in (11000, 11900, 12000, 12050):
            mpd = _get(client, f"/dash/clipFrom/{start}/cut12.mp4/manifest.mpd")
            assert mpd.status_code in (200, 400), mpd.text
            if mpd.status_code == 200:
                assert ' d="0"' not in mpd.text
        assert 'contentType="audio"' not in _get(client, "/dash/clipFrom/12000/cut12.mp4/manifest.mpd").text


@pytest.mark.parametrize("path", ["/hls/clipFrom/%C2%B2/bframes.mp4/master.m3u8",
                                  "/hls/clipFrom/" + "9" * 5001 + "/bframes.mp4/master.m3u8",
                                  "/hls/bframes.mp4/seg-%D9%A3-v1-a1.ts",
                                  "/mss/bframes.mp4/QualityLevels(%D9%A3)/Fragments(video=0)",
                                  "/pd/bframes.mp4%0a", "/hls%2fbframes.mp4/master.m3u8",
                                  "/hls/bframes.mp4%2fmaster.m3u8", "/hls/bframes.mp4/master.m3u8%0A"])
def test_malformed_and_alias_urls_are_400(path: str, server: LiveServer) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        response = client.get(path)
    assert response.status_code in (400, 404), (path, response.status_code)


def test_a_range_of_ten_thousand_digits(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        huge = "9" * 10_000
        assert _get(client, "/pd/bframes.mp4", range=f"bytes={huge}-").status_code == 416
        tail = _get(client, "/pd/bframes.mp4", range=f"bytes=0-{huge}")
        assert tail.status_code == 206 and len(tail.content) == len(BFRAMES)


def test_symlink_loop_is_404(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for path in ("/hls/loop_a.mp4/master.m3u8", "/pd/loop_b.mp4"):
            assert _get(client, path).status_code == 404


def test_player_list_leaves_out_files_behind_a_symlink_out_of_the_root(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        listed = [entry["path"] for entry in client.get("/player/media.json").json()["media"]]
        assert "bframes.mp4" in listed
        assert not any(p.startswith("linked_dir") for p in listed)
        assert client.get("/hls/linked_dir/secret.mp4/master.m3u8").status_code == 404


def test_connections_without_a_request_head_are_closed(server: LiveServer) -> None:
    """With header_timeout 1 s: idle connections and ones sending half a head are closed, while a
    normal request keeps working; a connection that sends its head in time is served."""
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(30)]
    partial = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(30)]
    for connection in partial:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    time.sleep(2.5)
    with httpx.Client(base_url=server.base, timeout=5) as client:
        assert client.get("/health").status_code == 200
    for connection in idle + partial:
        connection.settimeout(2)
        assert connection.recv(1024) in (b"",), "the server closed it"
        connection.close()
    prompt = socket.create_connection(("127.0.0.1", server.port))
    prompt.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    prompt.settimeout(2)
    assert prompt.recv(1024).startswith(b"HTTP/1.1 200")
    prompt.close()


HEAD_TIMEOUT = 3.0  # the next test's server: its steps are a second or more apart from any deadline


@pytest.fixture(scope="module")
def head_timeout_server(hostile_root: Path) -> Iterator[LiveServer]:
    with LiveServer(Settings(media_root=str(hostile_root), header_timeout=HEAD_TIMEOUT)) as live:
        yield live


def test_a_late_head_on_a_kept_alive_connection_is_closed(head_timeout_server: LiveServer) -> None:
    """On connections that have been served, a request's head counts from its first byte, not from
    the connection's start or the last request, whether it begins before the connection's first
    timeout is over (early) or after (late); an idle wait between requests is not a late head.
    Times in units of the header timeout T (3 s): every check is T/6 or more from a deadline."""
    port, unit = head_timeout_server.port, HEAD_TIMEOUT

    def served(connection: socket.socket) -> bytes:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.settimeout(5)
        return connection.recv(1024)

    def still_open(connection: socket.socket) -> bool:
        connection.settimeout(0.05)
        try:
            return connection.recv(1024) != b""
        except TimeoutError:
            return True

    early, late, patient = (socket.create_connection(("127.0.0.1", port)) for _ in range(3))
    assert all(served(c).startswith(b"HTTP/1.1 200") for c in (early, late, patient))
    time.sleep(unit / 2)
    early.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # half a head, due at 1.5 T
    time.sleep(unit * 2 / 3)  # 1.17 T: the connection's first T is over; the head's is not
    assert still_open(early), "closed at the connection's first timeout, not the head's"
    late.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # after the first timeout: due at 2.17 T
    assert served(patient).startswith(b"HTTP/1.1 200"), "an idle wait is not a late head"
    time.sleep(unit / 2)  # 1.67 T
    early.settimeout(unit)
    assert early.recv(1024) == b"", "the server closed it"
    assert still_open(late)
    late.settimeout(unit)
    assert late.recv(1024) == b"", "the server closed it"
    for connection in (early, late, patient):
        connection.close()


# --- the whole corpus through a real server process ---------------------------------------------

SUBTITLE_ROUTES = [f"{protocol}/,bframes.mp4,{{f}},.urlset/{name}" for protocol, name in (
    ("hls", "master.m3u8"), ("hls", "index-f2-t1.m3u8"), ("hls", "seg-2-f2-t1.vtt"),
    ("dash", "manifest.mpd"), ("dash", "sub-f2-t1.vtt"), ("mss", "manifest"))]
PEAK_RSS_MB = 300
ADDRESS_SPACE = 3 << 30  # the server's RLIMIT_AS: an allocation bomb fails inside the process


def _corpus(root: Path) -> list[str]:
    """Every hostile file we have: the regression files above, the fuzz harness's amplifiers and
    crashers, and 40 fixed-seed mutants of the fixtures."""
    files = {**_mutated(), **_amplifiers()}
    files.update({name: build() for name, build in AMPLIFIERS.items()})
    for crasher in sorted((Path(__file__).parent / "fuzz" / "crashers").iterdir()):
        if crasher.suffix != ".txt":
            files[crasher.name] = crasher.read_bytes()
    rng = random.Random(15)
    sources = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".mp4", ".m4a"))
    for number in range(40):
        source = rng.choice(sources)
        files[f"mutant{number}{source.suffix}"] = mutate_bytes(source.read_bytes(), rng).data
    for name, data in files.items():
        (root / name).write_bytes(data)
    shutil.copy(FIXTURES / "bframes.mp4", root / "bframes.mp4")
    return sorted(files)


def test_the_hostile_corpus_through_a_real_server(tmp_path: Path) -> None:
    """`vodorigin serve` (one worker, an address-space limit) answers every route of every hostile
    file without a 5xx or a truncated body, /health answers throughout (the latencies are printed:
    README, Limits), and the worker's peak resident size stays under PEAK_RSS_MB."""
    root = tmp_path / "media"
    root.mkdir()
    names = _corpus(root)
    port = free_port()
    config = tmp_path / "hostile.toml"
    config.write_text(f'media_root = "{root}"\nport = {port}\nhost = "127.0.0.1"\nworkers = 1\n'
                      'access_log = false\nlog_level = "warning"\nsegment_duration = 4\n')
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VODORIGIN_")}
    log = tmp_path / "server.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    command = [sys.executable, "-m", "vodorigin", "serve", "--config", str(config)]
    with log.open("wb") as errors, subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL,
                                                    stderr=errors, preexec_fn=limit) as process:
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/health", process, log)
            health = _HealthProbe(base)
            health.start()
            with httpx.Client(base_url=base, timeout=60) as client:
                requests = 0
                for name in names:
                    routes = SUBTITLE_ROUTES if Path(name).suffix in SUBTITLE_SUFFIXES else ROUTES
                    for route in routes:
                        _get(client, "/" + route.format(f=name))
                        requests += 1
            health.stop()
            peak_mb = _peak_rss_mb(process.pid)
            assert process.poll() is None, log.read_text()
        finally:
            process.terminate()
            process.wait(timeout=10)
    median, worst = statistics.median(health.latencies) * 1000, max(health.latencies) * 1000
    print(f"\nhostile corpus: {len(names)} files, {requests} requests; peak RSS {peak_mb:.0f} MB; "
          f"/health {len(health.latencies)} times, median {median:.1f} ms, max {worst:.1f} ms")
    assert health.failures == [], health.failures[:5]
    assert len(health.latencies) > 10
    assert peak_mb < PEAK_RSS_MB, f"peak RSS {peak_mb:.0f} MB"


class _HealthProbe(threading.Thread):
    """GET /health every 20 ms on its own connection, recording latencies and any failure."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            while not self.done.is_set():
                started = time.perf_counter()
                try:
                    status = client.get("/health").status_code
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                self.latencies.append(time.perf_counter() - started)
                if status != 200:
                    self.failures.append(f"status {status}")
                self.done.wait(0.02)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=30)


def _peak_rss_mb(pid: int) -> float:
    """VmHWM, the process's peak resident set size (proc(5))."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")
