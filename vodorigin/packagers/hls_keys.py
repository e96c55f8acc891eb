"""HLS encryption (RFC 8216 4.3.2.4): EXT-X-KEY tags, encrypted segments and the key files.

`hls_encryption_method = "aes-128"` encrypts every media segment whole (drm/aes.py);
`"sample-aes"` encrypts the samples of TS segments (drm/sample_aes.py: H.264, AAC, AC-3; other
codecs and fMP4 renditions are 415). The key of a
rendition is its file's: from `secret_key` (served here at `encryption.key`, or
`encryption-f2.key` / `-s<id>` for a part of a set and `-c2` for a clip of a mapped playlist, as
nginx-vod-module names them) or from the DRM-info service (`drm_enabled`; never served here: point
`hls_encryption_key_uri` at the key server). `hls_encryption_key_uri` replaces the URI; `{path}`
(the file's media path) and `{key_id}` (hex) in it are filled in.

IVs: TS segments encrypted whole use their media sequence number (no IV attribute) unless the
DRM info gives an IV; fMP4 renditions encrypt their initialization section too, so their
EXT-X-KEY (written before the EXT-X-MAP it covers) carries an explicit IV used by the init and
every segment, and so does SAMPLE-AES (see _iv). WebVTT
subtitle playlists stay clear, as do I-frame playlists' absence: byte ranges cannot address
frames inside a whole-segment cipher, so none is offered when encrypting.
"""

from __future__ import annotations

from dataclasses import replace

from vodorigin.drm import aes
from vodorigin.drm.keys import ContentKey
from vodorigin.drm.sample_aes import check_track, encrypt_segment
from vodorigin.errors import NotFound, UnsupportedMedia
from vodorigin.media.frames import ByteRange, SourceBytes, TrackFrames
from vodorigin.media.model import MediaSet
from vodorigin.mux import mpegts, ts_write
from vodorigin.packagers.output import Document, MediaSegment, PackagerContext
from vodorigin.packagers.playlist import Placed, in_clip, placed
from vodorigin.packagers.shared import FMP4, MPEGTS, TS_TYPE
from vodorigin.urls import FileName

KEY_TYPE = "application/octet-stream"


def encrypting(context: PackagerContext) -> bool:
    return context.encrypts("hls")


def sample_aes(context: PackagerContext) -> bool:
    return context.hls_encryption_method == "sample-aes"


def key_tag(name: FileName, clips: list[Placed], clip: Placed, container: str, context: PackagerContext
            ) -> str:
    """The EXT-X-KEY of one clip of a rendition."""
    key, path = context.key(clip.movie.source.path), clip.movie.source.path
    if sample_aes(context):
        _check_container(container)
        for track in clip.tracks:
            check_track(track.codec.fourcc, track.codec.codec_string, track.media_type)
    method = "SAMPLE-AES" if sample_aes(context) else "AES-128"
    attributes = [f"METHOD={method}", f'URI="{_uri(name, clips, clip, key, context)}"']
    iv = _iv(key, path, container, None, sample_aes(context))
    if iv is not None:
        attributes.append(f"IV=0x{iv.hex().upper()}")
    return "#EXT-X-KEY:" + ",".join(attributes)


def _uri(name: FileName, clips: list[Placed], clip: Placed, key: ContentKey, context: PackagerContext) -> str:
    if context.hls_encryption_key_uri:
        return context.hls_encryption_key_uri.replace("{path}", clip.movie.source.path) \
            .replace("{key_id}", key.key_id.hex())
    tokens = [f"f{name.file_index}"] if name.file_index else []
    tokens += [f"s{name.sequence_id}"] if name.sequence_id else []
    tokens += [f"c{clip.index + 1}"] if len(clips) > 1 else []
    return "encryption" + "".join(f"-{token}" for token in tokens) + ".key"


def _iv(key: ContentKey, path: str, container: str, number: int | None, samples: bool = False
        ) -> bytes | None:
    """The IV: the DRM info's; for fMP4 (the init is encrypted too) and for SAMPLE-AES a constant
    one, written in the EXT-X-KEY; for a TS segment encrypted whole its media sequence number
    (None in the playlist: no IV attribute). SAMPLE-AES differs from nginx-vod-module here, which
    leaves the IV to the sequence number: hls.js decrypts SAMPLE-AES only with an IV attribute,
    and ffmpeg decrypts the last frame of each segment with the next segment's IV."""
    if key.iv is not None:
        return key.iv
    if container == FMP4 or samples:
        return aes.constant_iv(path)
    return aes.sequence_iv(number) if number is not None else None


def _check_container(container: str) -> None:
    if container == FMP4:
        raise UnsupportedMedia("SAMPLE-AES is written in MPEG-TS only (H.264 with AAC or AC-3); this "
                               "rendition is fMP4 (its codecs, or hls_container): cbcs is not done")


def sample_aes_segment(frames: list[TrackFrames], clip: Placed, number: int, ranges: list[ByteRange],
                       context: PackagerContext) -> MediaSegment:
    """TS segment `number` with its samples encrypted (drm/sample_aes.py), planned once they are:
    emulation prevention adds bytes, so its size is known only then. Codecs SAMPLE-AES cannot carry
    are a 415 before anything is read."""
    for track in frames:
        check_track(track.track.codec.fourcc, track.track.codec.codec_string, track.track.media_type)
    key, iv = _key_and_iv(clip, MPEGTS, number, context)

    def render(source: SourceBytes) -> bytes:
        encrypted, buffer = encrypt_segment(frames, source, key.key, iv)
        return ts_write.write_segment(mpegts.plan_segment(number, encrypted, sample_aes=True), buffer)

    return MediaSegment(None, TS_TYPE, clip.movie.source, ranges, render)


def encrypted_segment(segment: MediaSegment, clip: Placed, number: int, container: str,
                      context: PackagerContext) -> MediaSegment:
    """The segment encrypted whole when HLS encrypts (its size stays known before its bytes:
    PKCS#7 pads predictably), else as it is."""
    if not encrypting(context):
        return segment
    key, iv = _key_and_iv(clip, container, number, context)
    assert segment.size is not None
    render = segment.render
    return replace(segment, size=aes.padded_size(segment.size),
                   render=lambda source: aes.encrypt(render(source), key.key, iv))


def encrypted_init(document: Document, clip: Placed, context: PackagerContext) -> Document:
    """The initialization section, encrypted when HLS encrypts."""
    if not encrypting(context):
        return document
    key, iv = _key_and_iv(clip, FMP4, None, context)
    return replace(document, body=aes.encrypt(document.body, key.key, iv))


def _key_and_iv(clip: Placed, container: str, number: int | None, context: PackagerContext
                ) -> tuple[ContentKey, bytes]:
    """The key and IV that encrypt a segment (number) or an init section (None) of a clip."""
    samples = sample_aes(context)
    if samples:
        _check_container(container)
    key, path = context.key(clip.movie.source.path), clip.movie.source.path
    iv = _iv(key, path, container, number, samples)
    assert iv is not None
    return key, iv


def key_file(name: FileName, media: MediaSet, context: PackagerContext) -> Document:
    """encryption[-f<n>|-s<id>][-c<n>].key: the 16 bytes of a key derived from secret_key."""
    if not encrypting(context):
        raise NotFound("HLS encryption is off (hls_encryption_method)")
    clip = in_clip(placed(media, name, context.segments), name.clip_index)
    key = context.key(clip.movie.source.path)
    if not key.served:
        raise NotFound("keys from the DRM-info service are not served here (hls_encryption_key_uri names "
                       "the key server)")
    return Document(key.key, KEY_TYPE, (clip.movie.source,))
