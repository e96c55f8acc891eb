"""HLS (RFC 8216): the file names a client asks for, routed to their renderers.

URLs (REFERENCE.md): master[-l<lang>].m3u8 (hls_master.py); index[-f1][-v1][-a1|-t1].m3u8 and
seg-N[-f1][-v1][-a1].ts, for fMP4 init[-f1][-v1][-a1].mp4 + seg-N[-f1][-v1][-a1].m4s, and
seg-N[-f1]-t1.vtt for subtitles (hls_media.py); iframes[-f1]-v1.m3u8 (hls_iframes.py). A token
l<lang> keeps only the audio and subtitle tracks in that language, in any of them.
"""

from __future__ import annotations

from vodorigin.errors import BadRequest
from vodorigin.media.model import MediaSet
from vodorigin.packagers.hls_iframes import iframes_playlist
from vodorigin.packagers.hls_keys import key_file
from vodorigin.packagers.hls_master import render_master_playlist
from vodorigin.packagers.hls_media import (
    fmp4_segment,
    init_segment,
    media_playlist,
    playlist,
    render_media_playlist,
    ts_segment,
    webvtt_segment,
)
from vodorigin.packagers.output import Output, PackagerContext
from vodorigin.packagers.renditions import narrowed
from vodorigin.urls import parse_file_name

__all__ = ["handle", "render_master_playlist", "render_media_playlist", "timing_only"]


def timing_only(file_name: str) -> bool:
    """Whether the file is a media playlist, which needs nothing of the movies but their tracks'
    timing: neither sample sizes nor where samples are (Origin.movie_of may leave them unread)."""
    return file_name.startswith("index") and file_name.endswith(".m3u8")


def handle(file_name: str, media: MediaSet, context: PackagerContext) -> Output:
    """Route an HLS file name to its renderer."""
    name = parse_file_name(file_name, numbered=file_name.startswith("seg-"))
    media = narrowed(media, name)
    route = (name.kind, name.extension)
    if route == ("master", "m3u8"):
        if name.file_index is not None or not name.tracks.empty:
            raise BadRequest("a master playlist lists every track: only an l<lang> token applies to it")
        return playlist(render_master_playlist(media, context), media)
    if route == ("index", "m3u8"):
        return media_playlist(name, media, context)
    if route == ("iframes", "m3u8"):
        return playlist(iframes_playlist(name, media, context), media)
    if route == ("init", "mp4"):
        return init_segment(name, media, context)
    if route == ("seg", "ts"):
        return ts_segment(name, media, context)
    if route == ("seg", "m4s"):
        return fmp4_segment(name, media, context)
    if route == ("seg", "vtt"):
        return webvtt_segment(name, media, context)
    if route == ("encryption", "key"):
        return key_file(name, media, context)
    raise BadRequest(f"unknown HLS file name {file_name!r}")
