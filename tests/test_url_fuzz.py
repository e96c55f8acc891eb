"""Hostile URLs never produce a 500: paths built from the grammar's own vocabulary plus noise."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VOCABULARY = [
    "hls", "pd", "clipFrom", "clipTo", "tracks", "shift", "lang", "0", "1", "5000", "99999999999",
    "-1", "v1-a1", "v0", "a9", "x", "..", ".", "%2e%2e", "%252e", "bframes.mp4", "moov_end.mp4",
    "clip_,180p,360p,.mp4.urlset", "a,b.urlset", ",,,.urlset", "master.m3u8", "index.m3u8",
    "index-v1-a1.m3u8", "seg-1.ts", "seg-2-v1-a1.ts", "seg-0.ts", "seg-99999999999.ts",
    "seg-1-f3-v1.ts", "seg-1-l.ts", "seg--1.ts", "index-f0.m3u8", "%00", "\u00e9", "a" * 300,
    "manifest.mpd", "init-v1.mp4", "init-f2-a1.mp4", "fragment-1-v1.m4s", "fragment-0-a1.m4s",
    "fragment-3-v1-a1.m4s", "init-v1-a1.mp4", "seg-2-v1-a1.m4s", "fragment-99999-v1.m4s", "audio_only.m4a",
    "manifest", "QualityLevels(254000)", "QualityLevels(1)", "QualityLevels(", "Fragments(video=13333333)",
    "Fragments(audio=0)", "Fragments(video=-1)", "Fragments(text=1)", "manifest.f4m", "frag-v1-a1-Seg1-Frag1",
    "frag-Seg1-Frag2", "frag-f2-v1-Seg1-Frag1", "frag-v1-Seg0-Frag0", "frag-v1-a1-Seg1-Frag99999999",
]
segment = st.one_of(st.sampled_from(VOCABULARY), st.text(alphabet="abc-_.,%019", min_size=1, max_size=12))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(protocol=st.sampled_from(["hls", "dash", "hds", "mss", "pd"]),
       parts=st.lists(segment, min_size=1, max_size=7))
def test_no_url_makes_a_server_error(protocol: str, parts: list[str], http: httpx.Client) -> None:
    path = f"/{protocol}/" + "/".join(parts)
    response = http.get(path)
    assert response.status_code < 500, f"{path} -> {response.status_code} {response.text}"
    if response.status_code >= 400:
        assert response.json()["error"]


HEADER_VALUES = st.one_of(
    st.sampled_from(["*", '"x"', 'W/"x"', "gzip", "gzip;q=0", "gzip;q=abc", "bytes=0-10", "bytes=5-",
                     "Mon, 01 Jan 2001 00:00:00 GMT", "Fri, 31 Dec 99999 23:59:59 GMT", "Thu, 99 Foo 2020",
                     "0", "-1", ",,,", "", "bytes=-0", "bytes=99999999999-"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.strip))
    # (stripped: HTTP clients refuse header values with leading or trailing blanks)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["/hls/bframes.mp4/master.m3u8", "/hls/bframes.mp4/seg-1-v1-a1.ts",
                              "/dash/bframes.mp4/manifest.mpd", "/pd/bframes.mp4"]),
       headers=st.dictionaries(st.sampled_from(["if-none-match", "if-modified-since", "if-range", "range",
                                                "accept-encoding"]), HEADER_VALUES, max_size=5))
def test_no_conditional_header_makes_a_server_error(route: str, headers: dict[str, str],
                                                    http: httpx.Client) -> None:
    response = http.get(route, headers=headers)
    assert response.status_code in (200, 206, 304, 416), f"{headers} -> {response.status_code}"
