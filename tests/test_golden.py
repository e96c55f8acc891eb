"""Golden manifests: what the HLS, DASH, MSS and HDS packagers render for fixed scenarios, reviewed
when it changes.

Run `UPDATE_GOLDEN=1 make test` to rewrite tests/golden/ after a deliberate change, then
review the diff of the golden files like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

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
