"""Audio languages and subtitles in real players (issue 12): hls.js and dash.js (with its Smooth
Streaming support) on the /player/ page, in headless Chromium (see test_browser.py).

Audio: the page's audio menu lists each language with its label; what the video element plays is
routed through Web Audio (createMediaElementSource -> AnalyserNode) and its loudest frequency must
be the first language's tone, then, after a switch from the menu, the second one's. The fixtures'
languages are sine tones: multi_audio.mp4 440 Hz (Japanese) and 880 Hz (English); the urlset's
audio_jpn.m4a 523 Hz and audio_eng.m4a 659 Hz.

Subtitles: a language is turned on from the menu, the video is sought to times inside known cues
of fixtures/subs_en.srt and subs_fr.vtt and played slowly from there, and the showing text track's
activeCues must hold that cue's text once, within its times; no cue may be in the track twice (HLS
repeats a cue that crosses a segment boundary in both segments: the player must show it once).

Controls: the same checks fail when no switch happens, at a time between two cues, and on a cue
added twice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page

from tests.conftest import LiveServer
from tests.test_browser import TOLERATED, chromium_page, player_settings

URLSET = ",video_only.mp4,audio_jpn.m4a,audio_eng.m4a,lang/eng/subs_en.srt,lang/fra/subs_fr.vtt,.urlset"
# not fatal: hls.js 1.7 reports bufferAppendNoProgress once for the first fragment of a TS alternate
# audio playlist, and "aborted" for the loads a seek cancels
NOTICES = TOLERATED | {"bufferAppendNoProgress", "aborted"}
Tracks = list[tuple[str, str | None]]  # (language, label) in menu order; label None: not checked
MULTI_AUDIO = [("ja", "日本語"), ("en", "English dub")]
URLSET_AUDIO = [("ja", "Japanese"), ("en", "English")]
SMOOTH_AUDIO = [("ja", None), ("en", None)]  # a Smooth StreamIndex has a Language but no label
AUDIO: dict[str, tuple[str, str, Tracks, tuple[int, int]]] = {  # name -> (server, URL, tracks, tones in Hz)
    "hls": ("mpegts", "/hls/multi_audio.mp4/master.m3u8", MULTI_AUDIO, (440, 880)),
    "hls-fmp4": ("fmp4", "/hls/multi_audio.mp4/master.m3u8", MULTI_AUDIO, (440, 880)),
    "hls-urlset": ("mpegts", f"/hls/{URLSET}/master.m3u8", URLSET_AUDIO, (523, 659)),
    "dash": ("mpegts", "/dash/multi_audio.mp4/manifest.mpd", MULTI_AUDIO, (440, 880)),
    "dash-urlset": ("mpegts", f"/dash/{URLSET}/manifest.mpd", URLSET_AUDIO, (523, 659)),
    "mss": ("mpegts", "/mss/multi_audio.mp4/manifest", SMOOTH_AUDIO, (440, 880)),
    "mss-urlset": ("mpegts", f"/mss/{URLSET}/manifest", SMOOTH_AUDIO, (523, 659)),
}
SUBTITLES_URLSET = [("en", "English"), ("fr", "French")]
SUBTITLES: dict[str, tuple[str, str, Tracks, str]] = {  # name -> (server, URL, tracks, language to show)
    "hls-urlset": ("mpegts", f"/hls/{URLSET}/master.m3u8", SUBTITLES_URLSET, "en"),
    "hls-fmp4-urlset": ("fmp4", f"/hls/{URLSET}/master.m3u8", SUBTITLES_URLSET, "fr"),
    "hls-embedded": ("mpegts", "/hls/subs_embedded.mp4/master.m3u8", [("en", "English")], "en"),
    "dash-urlset": ("mpegts", f"/dash/{URLSET}/manifest.mpd", SUBTITLES_URLSET, "fr"),
    "dash-wvtt-urlset": ("wvtt", f"/dash/{URLSET}/manifest.mpd", SUBTITLES_URLSET, "en"),
    "dash-stpp-urlset": ("stpp", f"/dash/{URLSET}/manifest.mpd", SUBTITLES_URLSET, "en"),
    "mss-urlset": ("mpegts", f"/mss/{URLSET}/manifest", [("en", None), ("fr", None)], "en"),
}
Cue = tuple[float, float, float, str]  # a time to look at, and the start, end and text of the cue then
# language -> cues, from fixtures/subs_en.srt and subs_fr.vtt: the first crosses 6 s, where the
# HLS segments 2 and 3 meet, so both carry it
CUES: dict[str, list[Cue]] = {
    "en": [(6.3, 5.2, 6.8, "This one crosses 6 s."),
           (8.5, 8.0, 11.5, "A caption at the top, across 10 s."),
           (13.0, 12.0, 24.5, "This cue stays on screen for twelve and a half seconds.")],
    "fr": [(6.3, 5.2, 6.8, "Celle-ci traverse 6 s."),
           (8.5, 8.0, 11.5, "Un sous-titre en haut, à travers 10 s."),
           (13.0, 12.0, 24.5, "Ce sous-titre reste à l’écran pendant douze secondes et demie.")],
}
BETWEEN_CUES = 7.4  # no cue from 6.8 to 8 s
WINDOW = 0.4  # of media time after the time asked for, in which a cue check reads the text track
# Players shift a whole stream by a few frames (hls.js starts the timeline at the first TS DTS,
# dash.js's Smooth support at the earliest audio or video chunk): cue times may move this much.
# Fragmented subtitles (wvtt, stpp) cut a cue at fragment boundaries, and a player that has loaded
# only some fragments shows a part of it: an active cue must lie within the cue, not match it.
CUE_SLACK = 0.3

LISTEN = """async () => {
  if (!window.listening) {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 8192;  // bins of 44100 / 8192 = 5.4 Hz
    context.createMediaElementSource(video).connect(analyser);
    analyser.connect(context.destination);
    await context.resume();
    window.listening = {context, analyser, bins: new Float32Array(analyser.frequencyBinCount)};
  }
  const {context, analyser, bins} = window.listening;
  analyser.getFloatFrequencyData(bins);
  let loudest = 1;
  for (let i = 2; i < bins.length; i++) if (bins[i] > bins[loudest]) loudest = i;
  return {hz: loudest * context.sampleRate / analyser.fftSize, db: bins[loudest], time: video.currentTime,
          current: vod.currentAudio(), errors: vod.errors,
          menu: [...document.querySelectorAll("#audio li.current")].map((item) => item.textContent)};
}"""

SHOWN = """() => {
  const captions = document.getElementById("captions");  // where dash.js draws TTML cues (empty text)
  const drawn = (cue) => cue.cueID && captions.querySelector("#" + CSS.escape(cue.cueID));
  const text = (cue) => cue.text || (drawn(cue) || {}).textContent || "";
  const list = (cues) => [...(cues || [])].map((cue) => [cue.startTime, cue.endTime, text(cue)]);
  return {time: video.currentTime, seeking: video.seeking, errors: vod.errors, current: vod.currentText(),
          menu: [...document.querySelectorAll("#subtitles li.current")].map((item) => item.textContent),
          showing: [...video.textTracks].filter((track) => track.mode === "showing").map((track) =>
            ({lang: track.language, cues: list(track.cues), active: list(track.activeCues)}))};
}"""


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium_page() as opened:
        yield opened


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LiveServer]]:
    with LiveServer(player_settings("mpegts")) as ts, LiveServer(player_settings("fmp4")) as fmp4, \
            LiveServer(player_settings("mpegts", dash_subtitle_format="wvtt")) as wvtt, \
            LiveServer(player_settings("mpegts", dash_subtitle_format="stpp")) as stpp:
        yield {"mpegts": ts, "fmp4": fmp4, "wvtt": wvtt, "stpp": stpp}


def poll(page: Page, script: str, condition: Callable[[Any], bool], seconds: float) -> Any:
    """Evaluate the script until the condition holds, a fatal error shows, or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        result = page.evaluate(script)
        fatal = isinstance(result, dict) and any(e["fatal"] for e in result.get("errors", []))
        if condition(result) or fatal or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def open_player(page: Page, base: str, url: str, tracks: str, count: int) -> list[dict[str, str]]:
    """Load the URL in the page, wait until it plays and lists `count` tracks (vod.audioTracks or
    vod.textTracks), and return them."""
    page.goto(f"{base}/player/?url={quote(url)}")
    script = f"() => ({{time: video.currentTime, errors: vod.errors, tracks: vod.{tracks}()}})"
    current = poll(page, script, lambda s: s["time"] > 0.3 and len(s["tracks"]) >= count, 20)
    return list(current["tracks"])


def track_problems(listed: list[dict[str, str]], expected: Tracks) -> list[str]:
    languages = [(track["lang"], track["label"] if label is not None else None)
                 for track, (_, label) in zip(listed, expected, strict=False)]
    return [] if languages == expected else [f"menu lists {listed}, expected {expected}"]


def near(hz: float, tone: float) -> bool:
    return abs(hz - tone) <= tone * 0.03  # a few 5.4 Hz bins


def errors_problems(errors: list[dict[str, Any]]) -> list[str]:
    return [f"{e['engine']} {'fatal ' if e['fatal'] else ''}{e['type']} {e['details']}"
            for e in errors if e["fatal"] or e["details"] not in NOTICES]


@dataclass
class Heard:
    tracks: list[dict[str, str]] = field(default_factory=list)
    first: dict[str, Any] = field(default_factory=dict)   # the last reading before the switch
    second: dict[str, Any] = field(default_factory=dict)  # the last reading after it


def listen(page: Page, base: str, url: str, tones: tuple[int, int], switch: bool = True) -> Heard:
    """Play, hear the first tone, switch to the second audio track (unless told not to), hear again."""
    heard = Heard(tracks=open_player(page, base, url, "audioTracks", 2))
    heard.first = poll(page, LISTEN, hears(tones[0], track=0), 10)
    if switch:
        page.evaluate("vod.setAudio(1)")
    heard.second = poll(page, LISTEN, hears(tones[1], track=1), 8)
    return heard


def hears(tone: int, track: int) -> Callable[[dict[str, Any]], bool]:
    """Track `track` is current and two readings in a row are near the tone (not a passing blend)."""
    readings: list[bool] = []

    def condition(reading: dict[str, Any]) -> bool:
        readings.append(reading["current"] == track and near(reading["hz"], tone))
        return readings[-2:] == [True, True]

    return condition


def heard_problems(heard: Heard, expected: Tracks, tones: tuple[int, int]) -> list[str]:
    found = track_problems(heard.tracks, expected)
    for reading, tone, index in ((heard.first, tones[0], 0), (heard.second, tones[1], 1)):
        if not near(reading["hz"], tone):
            found.append(f"heard {reading['hz']:.0f} Hz ({reading['db']:.0f} dB) at {reading['time']:.2f} s, "
                         f"expected {tone} Hz")
        if reading["current"] != index or len(reading["menu"]) != 1:
            found.append(f"audio track {reading['current']} current, menu marks {reading['menu']}; "
                         f"expected {index}")
    return found + errors_problems(heard.second["errors"])


@pytest.mark.parametrize("name", list(AUDIO))
def test_switch_to_the_second_audio_language_and_hear_it(name: str, page: Page,
                                                         servers: dict[str, LiveServer]) -> None:
    server, url, tracks, tones = AUDIO[name]
    heard = listen(page, servers[server].base, url, tones)
    assert heard_problems(heard, tracks, tones) == [], heard


def test_the_tone_check_fails_without_a_switch(page: Page, servers: dict[str, LiveServer]) -> None:
    server, url, tracks, tones = AUDIO["hls"]
    heard = listen(page, servers[server].base, url, tones, switch=False)
    assert near(heard.first["hz"], tones[0]), heard
    assert any("expected 880 Hz" in problem for problem in heard_problems(heard, tracks, tones)), heard


def words(text: str) -> str:
    """Cue text without tags and whitespace: WebVTT keeps <i> and line breaks, TTML drawn as HTML not."""
    return "".join(re.sub(r"<[^>]*>", "", text).split())


def turn_on(page: Page, base: str, url: str, expected: Tracks, language: str) -> list[str]:
    """Load, check the subtitles menu, show the language and wait for its first cues (dash.js
    loses a WebVTT file that arrives during a seek): the problems found on the way."""
    listed = open_player(page, base, url, "textTracks", len(expected))
    index = next((i for i, track in enumerate(listed) if track["lang"] == language), -1)
    page.evaluate(f"vod.setText({index})")

    def turned_on(shown: dict[str, Any]) -> bool:
        loaded = any(track["cues"] for track in shown["showing"])
        return shown["current"] == index and len(shown["menu"]) == 1 and loaded

    shown = poll(page, SHOWN, turned_on, 10)
    found = track_problems(listed, expected)
    if not turned_on(shown):
        found.append(f"subtitles {shown['current']} current, menu marks {shown['menu']}, tracks showing "
                     f"{shown['showing']}; expected {index} with cues")
    return found


def shown_at(page: Page, at: float, text: str, seconds: float = 10) -> dict[str, Any]:
    """Seek to `at` and play at a quarter speed (dash.js puts cues on its text track only as the
    time moves), until the cue with this text is active or the time passes `at` + WINDOW."""
    page.evaluate(f"video.playbackRate = 0.25; video.currentTime = {at}; video.play()")

    def seen(shown: dict[str, Any]) -> bool:
        active = any(words(cue[2]) == words(text) for track in shown["showing"] for cue in track["active"])
        return not shown["seeking"] and (active or shown["time"] > at + WINDOW)

    return dict(poll(page, SHOWN, seen, seconds))


def cue_problems(shown: dict[str, Any], language: str, cue: Cue) -> list[str]:
    """The one showing track is in the language and has the cue active once, within its times; no
    cue of the track is there twice."""
    at, start, end, text = cue
    if [track["lang"] for track in shown["showing"]] != [language]:
        return [f"at {at} s the tracks showing are {shown['showing']}, expected one in {language}"]
    track = shown["showing"][0]
    matching = [active for active in track["active"] if words(active[2]) == words(text)]
    found = []
    if len(matching) != 1 or matching[0][0] < start - CUE_SLACK or matching[0][1] > end + CUE_SLACK:
        found.append(f"at {shown['time']:.2f} s the active cues are {track['active']}, expected {text!r} "
                     f"within {start}-{end} s once")
    cues = [tuple(each) for each in track["cues"]]
    found += [f"cue {each} is in the track twice" for each in sorted(set(cues)) if cues.count(each) > 1]
    return found + errors_problems(shown["errors"])


@pytest.mark.parametrize("name", list(SUBTITLES))
def test_turn_on_subtitles_and_see_a_known_cue_at_its_time(name: str, page: Page,
                                                            servers: dict[str, LiveServer]) -> None:
    server, url, tracks, language = SUBTITLES[name]
    found = turn_on(page, servers[server].base, url, tracks, language)
    for cue in CUES[language]:
        found += cue_problems(shown_at(page, cue[0], cue[3]), language, cue)
    assert found == [], found


def test_the_cue_check_fails_between_cues_and_on_a_repeated_cue(page: Page,
                                                                  servers: dict[str, LiveServer]) -> None:
    server, url, tracks, language = SUBTITLES["hls-urlset"]
    assert turn_on(page, servers[server].base, url, tracks, language) == []
    cue = CUES[language][1]
    at, text = cue[0], cue[3]
    assert cue_problems(shown_at(page, at, text), language, cue) == []
    between = shown_at(page, BETWEEN_CUES, text)
    assert between["time"] < cue[1], between  # still before the cue
    problems = cue_problems(between, language, (BETWEEN_CUES, *cue[1:]))
    assert any("active cues are" in problem for problem in problems), between
    page.evaluate(f"""() => {{
        const track = [...video.textTracks].find((t) => t.mode === "showing");
        const cue = [...track.cues].find((c) => c.startTime <= {at} && {at} <= c.endTime);
        track.addCue(new VTTCue(cue.startTime, cue.endTime, cue.text));
    }}""")
    twice = shown_at(page, at, text)
    assert any("twice" in problem for problem in cue_problems(twice, language, cue)), twice
