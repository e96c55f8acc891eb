"""Golden manifests: what the HLS, DASH, MSS and HDS packagers render for fixed scenarios, reviewed
when it changes.

Run `UPDATE_GOLDEN=1 make test` to rewrite tests/golden/ after a deliberate change, then
review the diff of the golden files like code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx
import m3u8
import pytest

from tests.conftest import FIXTURES

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SCENARIOS = {
    "hls/bframes_master.m3u8": "/hls/bframes.mp4/master.m3u8",
    "hls/bframes_index.m3u8": "/hls/bframes.mp4/index-v1-a1.m3u8",
    "hls/urlset_master.m3u8": "/hls/clip_,180p,360p,.mp4.urlset/master.m3u8",
    "hls/irregular_gop_index.m3u8": "/hls/irregular_gop.mp4/index.m3u8",
    "hls/clip_index.m3u8": "/hls/clipFrom/5000/clipTo/15000/moov_end.mp4/index-a1.m3u8",
    "hls/audio_only_master.m3u8": "/hls/audio_only.m4a/master.m3u8",
    "hls/hevc_fmp4_index.m3u8": "/hls/hevc.mp4/index-v1-a1.m3u8",
    "hls/bframes_iframes.m3u8": "/hls/bframes.mp4/iframes-v1.m3u8",
    "hls/hevc_fmp4_iframes.m3u8": "/hls/hevc.mp4/iframes-v1.m3u8",
    "dash/bframes.mpd": "/dash/bframes.mp4/manifest.mpd",
    "dash/urlset.mpd": "/dash/clip_,180p,360p,.mp4.urlset/manifest.mpd",
    "dash/irregular_gop.mpd": "/dash/irregular_gop.mp4/manifest.mpd",
    "mss/bframes.xml": "/mss/bframes.mp4/manifest",
    "hds/bframes.f4m": "/hds/bframes.mp4/manifest.f4m",
    "hds/urlset.f4m": "/hds/clip_,180p,360p,.mp4.urlset/manifest.f4m",
    "mss/urlset.xml": "/mss/clip_,180p,360p,.mp4.urlset/manifest",
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_playlist_matches_golden(name: str, http: httpx.Client) -> None:
    check_golden(name, http.get(SCENARIOS[name]))


def check_golden(name: str, response: httpx.Response) -> None:
    """The response's text equals tests/golden/<name> (UPDATE_GOLDEN=1 rewrites it)."""
    assert response.status_code == 200
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(response.text)
    assert path.exists(), f"no golden file {path}: run with UPDATE_GOLDEN=1 and review it"
    assert response.text == path.read_text(), f"{name} changed: review, then update the golden files"


def test_ts_segments_match_their_digests(http: httpx.Client) -> None:
    """Every MPEG-TS segment of every fixture (each variant and audio rendition of its master), and
    the urlset's, byte for byte as reviewed: SHA-256 digests in tests/golden/hls/ts_segments.json.
    The muxer is rewritten for speed from time to time (issue 17); its output must not move."""
    media = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".mp4", ".m4a"))
    masters = [f"/hls/{name}/master.m3u8" for name in media]
    masters.append("/hls/clip_,180p,360p,.mp4.urlset/master.m3u8")
    digests: dict[str, str] = {}
    for master_url in masters:
        master = http.get(master_url)
        if master.status_code != 200:
            continue
        playlists = m3u8.loads(master.text, uri=str(http.base_url.join(master_url)))
        uris = [p.absolute_uri for p in playlists.playlists]
        uris += [m.absolute_uri for m in playlists.media if m.uri and m.type == "AUDIO"]
        for uri in uris:
            for segment in m3u8.loads(http.get(uri).text, uri=uri).segments:
                if segment.uri.endswith(".ts"):
                    path = httpx.URL(segment.absolute_uri).path
                    digests[path] = hashlib.sha256(http.get(path).content).hexdigest()
    assert len(digests) > 50
    path = GOLDEN / "hls" / "ts_segments.json"
    if UPDATE:
        path.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
    expected = json.loads(path.read_text())
    changed = sorted(url for url in expected.keys() | digests.keys() if expected.get(url) != digests.get(url))
    assert not changed, f"{len(changed)} TS segments changed, e.g. {changed[:3]}"
