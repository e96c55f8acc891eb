"""The HLS master playlist (RFC 8216 4.3.4; Apple's HLS authoring specification).

Two shapes, chosen per media set (packagers/renditions.py says which tracks are renditions):
* muxed: one audio rendition (or none) goes inside the variants' segments, as today: a variant
  per video track of each part, with its part's first audio (an audio-only part: a variant of
  its own). This is a bit-rate ladder's shape.
* alternate audio, when the set has several audio renditions (languages, labels, codecs) or its
  audio lives in other files than its video: every audio rendition is an EXT-X-MEDIA TYPE=AUDIO
  with its own playlist (LANGUAGE as a BCP 47 tag, NAME, CHANNELS, one DEFAULT=YES per group),
  grouped by codec family and channel count; the variants are video-only, one per video track
  and audio group, naming their group, BANDWIDTH counting the group's largest audio.
Subtitle tracks are EXT-X-MEDIA TYPE=SUBTITLES in one group that every variant names.
"""

from __future__ import annotations

import re

from vodorigin.drm import aes
from vodorigin.media.model import MediaSet, MediaType, Track
from vodorigin.packagers.hls_iframes import iframe_stream_infs
from vodorigin.packagers.hls_keys import encrypting, key_tag, session_keys
from vodorigin.packagers.hls_media import HLS_VERSION, choose_container
from vodorigin.packagers.output import PackagerContext
from vodorigin.packagers.playlist import placed, playlist_rates
from vodorigin.packagers.renditions import (
    Rendition,
    codec_family,
    defaults,
    narrowed,
    part_tokens,
    quoted,
    renditions,
)
from vodorigin.packagers.shared import frame_rate
from vodorigin.urls import parse_file_name

SUBTITLE_GROUP = "subs"


class _Rates:
    """(peak, average) bit rates and containers of renditions, computed once each."""

    def __init__(self, media: MediaSet, context: PackagerContext) -> None:
        self.media = media
        self.context = context

    def container(self, tracks: tuple[Track, ...]) -> str:
        return choose_container(tracks, self.context.hls_container, self.media)

    def of(self, rendition: Rendition, tracks: tuple[Track, ...]) -> tuple[int, int]:
        """(peak, average) over the rendition's segments; in a playlist, over every clip's."""
        container = self.container(tracks)
        padding = aes.BLOCK if self.context.encrypts("hls") else 0  # AES-128's PKCS#7 padding
        return playlist_rates(self.media, rendition.file, tracks, self.context.segments, container, padding)


def render_master_playlist(media: MediaSet, context: PackagerContext) -> str:
    rates = _Rates(media, context)
    videos = renditions(media, MediaType.VIDEO)
    audios = renditions(media, MediaType.AUDIO)
    subtitles = renditions(media, MediaType.SUBTITLE)
    media_lines = [_subtitle_media(r, media, default) for r, default in zip(subtitles, defaults(subtitles),
                                                                          strict=True)]
    if _alternate_audio(videos, audios):
        groups = _audio_groups(audios)
        audio_lines = [_audio_media(group, members, media) for group, members in groups.items()]
        media_lines = [line for lines in audio_lines for line in lines] + media_lines
        variants = _alternate_variants(videos, groups, media, rates, bool(subtitles))
        containers = [rates.container((r.track,)) for r in [*videos, *audios]]
    else:
        variants, containers = _muxed_variants(media, rates, bool(subtitles))
    version = max((HLS_VERSION[c] for c in containers), default=3)
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", "#EXT-X-INDEPENDENT-SEGMENTS",
             *_session_keys(media, context, [*media_lines, *variants]), *media_lines, *variants]
    if context.hls_iframes_playlists:
        lines += iframe_stream_infs(media, context)
    return "\n".join(lines) + "\n"


def _session_keys(media: MediaSet, context: PackagerContext, lines: list[str]) -> list[str]:
    """The EXT-X-SESSION-KEY tags: the EXT-X-KEY tags of every audio and video playlist listed."""
    if not encrypting(context):
        return []
    tags = []
    for uri in dict.fromkeys(re.findall(r"index-[^\"\s]*\.m3u8", "\n".join(lines))):
        name = parse_file_name(uri)
        clips = placed(narrowed(media, name), name, context.segments)
        if clips[0].tracks[0].media_type is MediaType.SUBTITLE:
            continue
        container = choose_container(clips[0].tracks, context.hls_container, media)
        tags += [key_tag(name, clips, clip, container, context) for clip in clips]
    return session_keys(tags)


def _alternate_audio(videos: list[Rendition], audios: list[Rendition]) -> bool:
    """Several audio renditions, or video whose audio is in other files of the set."""
    if len(audios) > 1:
        return True
    return bool(videos and audios) and any(not v.movie.tracks_of(MediaType.AUDIO) for v in videos)


def _audio_groups(audios: list[Rendition]) -> dict[str, list[Rendition]]:
    """Audio renditions by codec family and channel count (Apple: a group per kind of audio)."""
    groups: dict[str, list[Rendition]] = {}
    for rendition in audios:
        codec = rendition.track.codec
        groups.setdefault(f"audio-{codec_family(rendition.track)}-{codec.channels}ch", []).append(rendition)
    return groups


def _audio_media(group: str, members: list[Rendition], media: MediaSet) -> list[str]:
    lines = []
    for rendition, default in zip(members, defaults(members), strict=True):
        track = rendition.track
        attributes = [f'TYPE=AUDIO,GROUP-ID="{group}"', *_language(track),
                      f'NAME="{quoted(track.display_label)}"',
                      f"DEFAULT={'YES' if default else 'NO'},AUTOSELECT=YES",
                      f'CHANNELS="{track.codec.channels}"', f'URI="index-{rendition.tokens(media)}.m3u8"']
        lines.append("#EXT-X-MEDIA:" + ",".join(attributes))
    return lines


def _subtitle_media(rendition: Rendition, media: MediaSet, default: bool) -> str:
    """Subtitles: AUTOSELECT=YES so players pick them by the viewer's language; DEFAULT only when
    a track is marked default (a first subtitle track is not forced on anyone)."""
    track = rendition.track
    attributes = [f'TYPE=SUBTITLES,GROUP-ID="{SUBTITLE_GROUP}"', *_language(track),
                  f'NAME="{quoted(track.display_label)}"',
                  f"DEFAULT={'YES' if default and track.default else 'NO'},AUTOSELECT=YES",
                  f'URI="index-{rendition.tokens(media)}.m3u8"']
    return "#EXT-X-MEDIA:" + ",".join(attributes)


def _language(track: Track) -> list[str]:
    return [] if track.language == "und" else [f'LANGUAGE="{track.language}"']


def _alternate_variants(videos: list[Rendition], groups: dict[str, list[Rendition]], media: MediaSet,
                        rates: _Rates, subtitles: bool) -> list[str]:
    """A video-only variant per video track and audio group; with no video, one per group whose
    URI is the group's default rendition."""
    lines = []
    for group, members in groups.items():
        audio_rates = [rates.of(r, (r.track,)) for r in members]
        peak_audio = max(peak for peak, _ in audio_rates)
        average_audio = max(average for _, average in audio_rates)
        codecs = list(dict.fromkeys(r.track.codec.codec_string for r in members))
        for video in videos:
            peak, average = rates.of(video, (video.track,))
            attributes = _stream_attributes(peak + peak_audio, average + average_audio, video.track, codecs)
            lines += [_stream_inf(attributes, group, subtitles), f"index-{video.tokens(media)}.m3u8"]
        if not videos:
            first = members[defaults(members).index(True)]
            attributes = _stream_attributes(peak_audio, average_audio, None, codecs)
            lines += [_stream_inf(attributes, group, subtitles), f"index-{first.tokens(media)}.m3u8"]
    return lines


def _muxed_variants(media: MediaSet, rates: _Rates, subtitles: bool) -> tuple[list[str], list[str]]:
    """A variant per video track of each part, with that part's first audio muxed in; a part with
    audio only is a variant of its own."""
    lines: list[str] = []
    containers: list[str] = []
    for file_number, movie in enumerate(media.movies, start=1):
        audio = movie.tracks_of(MediaType.AUDIO)[:1]
        muxed = [(video, *audio) for video in movie.tracks_of(MediaType.VIDEO)]
        for tracks in muxed or ([audio] if audio else []):
            rendition = Rendition(file_number, movie, tracks[0])
            peak, average = rates.of(rendition, tracks)
            video = tracks[0] if tracks[0].media_type is MediaType.VIDEO else None
            codecs = [t.codec.codec_string for t in tracks if t is not video]
            lines += [_stream_inf(_stream_attributes(peak, average, video, codecs), None, subtitles),
                      f"index-{part_tokens(media, file_number, movie, tracks)}.m3u8"]
            containers.append(rates.container(tracks))
    return lines, containers


def _stream_attributes(peak: int, average: int, video: Track | None, audio_codecs: list[str]) -> list[str]:
    attributes = [f"BANDWIDTH={peak}", f"AVERAGE-BANDWIDTH={average}"]
    codecs = audio_codecs
    if video is not None:
        attributes.append(f"RESOLUTION={video.codec.width}x{video.codec.height}")
        attributes.append(f"FRAME-RATE={frame_rate(video):.3f}")
        codecs = [video.codec.codec_string, *audio_codecs]
    attributes.append(f'CODECS="{",".join(codecs)}"')
    return attributes


def _stream_inf(attributes: list[str], audio_group: str | None, subtitles: bool) -> str:
    if audio_group is not None:
        attributes = [*attributes, f'AUDIO="{audio_group}"']
    if subtitles:
        attributes = [*attributes, f'SUBTITLES="{SUBTITLE_GROUP}"']
    return "#EXT-X-STREAM-INF:" + ",".join(attributes)
