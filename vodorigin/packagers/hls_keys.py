"""HLS encryption (RFC 8216 4.3.2.4, 4.3.4.5): EXT-X-KEY and EXT-X-SESSION-KEY tags, encrypted
segments and the key files.

`hls_encryption_method = "aes-128"` encrypts every media segment whole (drm/aes.py);
`"sample-aes"` encrypts the samples: in TS segments Apple's way (drm/sample_aes.py: H.264, AAC,
AC-3; other codecs are 415), in fMP4 renditions as Common Encryption 'cbcs' (drm/cenc.py: the
init segment's sample entries say so, each fragment's senc maps its subsamples), which FairPlay,
Widevine, PlayReady and ClearKey CDMs decrypt; `"sample-aes-ctr"` (nginx-vod-module's
"sample-aes-cenc") encrypts fMP4 renditions as Common Encryption 'cenc', METHOD=SAMPLE-AES-CTR
(TS renditions are 415). The key of a rendition is its file's: from
`secret_key` (served here at `encryption.key`, or `encryption-f2.key` / `-s<id>` for a part of a
set and `-c2` for a clip of a mapped playlist, as nginx-vod-module names them) or from the DRM-info
service (`drm_enabled`; never served here: point `hls_encryption_key_uri` at the key server).
`hls_encryption_key_uri` replaces the URI; `{path}` (the file's media path) and `{key_id}` (hex)
in it are filled in.

Key formats (`hls_encryption_key_formats`, SAMPLE-AES and SAMPLE-AES-CTR; an EXT-X-KEY each, in
that order):
* identity: the key's URI (above);
* com.apple.streamingkeydelivery (FairPlay): `hls_encryption_key_uri`, by default skd://<key id>;
* urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed (Widevine): a data URI of the Widevine pssh box
  (the DRM info's, or one naming the key id), with KEYID;
* com.microsoft.playready: a data URI of the PlayReady object the DRM info gives, with KEYID;
* org.w3.clearkey: a data URI of the key id (where hls.js reads it), with KEYID.
The master playlist repeats each distinct tag as EXT-X-SESSION-KEY, so players can fetch
licenses before the first media playlist.

IVs: TS segments encrypted whole use their media sequence number (no IV attribute) unless the
DRM info gives an IV; fMP4 renditions encrypted whole encrypt their initialization section too,
so their EXT-X-KEY (written before the EXT-X-MAP it covers) carries an explicit IV used by the init
and every segment, and so does SAMPLE-AES (see _iv; for cbcs it is tenc's constant IV). WebVTT
subtitle playlists stay clear, as do I-frame playlists' absence: byte ranges cannot address
frames inside a whole-segment cipher, so none is offered when encrypting.
"""

from __future__ import annotations

import base64
from dataclasses import replace

from vodorigin.drm import aes, cenc
from vodorigin.drm.keys import PLAYREADY_SYSTEM_ID, WIDEVINE_SYSTEM_ID, ContentKey, SystemData
from vodorigin.drm.sample_aes import check_track, encrypt_segment
from vodorigin.errors import NotFound, UnsupportedMedia, UpstreamError
from vodorigin.media.frames import ByteRange, SourceBytes, TrackFrames
from vodorigin.media.model import MediaSet, Track
from vodorigin.mux import fmp4, mpegts, ts_write
from vodorigin.packagers.output import Document, MediaSegment, PackagerContext
from vodorigin.packagers.playlist import Placed, in_clip, placed
from vodorigin.packagers.shared import FMP4, MPEGTS, TS_TYPE
from vodorigin.settings import HLS_KEY_FORMATS
from vodorigin.urls import FileName

KEY_TYPE = "application/octet-stream"
IDENTITY = "identity"
FAIRPLAY = "com.apple.streamingkeydelivery"
WIDEVINE = "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
PLAYREADY = "com.microsoft.playready"
CLEARKEY = "org.w3.clearkey"
assert (IDENTITY, FAIRPLAY, WIDEVINE, PLAYREADY, CLEARKEY) == HLS_KEY_FORMATS


def encrypting(context: PackagerContext) -> bool:
    return context.encrypts("hls")


def sample_aes(context: PackagerContext) -> bool:
    """Whether the samples are encrypted (SAMPLE-AES or SAMPLE-AES-CTR), not whole segments."""
    return context.hls_encryption_method in ("sample-aes", "sample-aes-ctr")


def _scheme(context: PackagerContext) -> str:
    """The Common Encryption scheme of fMP4 renditions."""
    return cenc.CENC if context.hls_encryption_method == "sample-aes-ctr" else cenc.CBCS


def key_tag(name: FileName, clips: list[Placed], clip: Placed, container: str, context: PackagerContext
            ) -> str:
    """The EXT-X-KEY tags of one clip of a rendition (one line per key format)."""
    key, path = _clip_key(clip, context), clip.movie.source.path
    if sample_aes(context):
        check_tracks(clip.tracks, container, context)
    method = context.hls_encryption_method.upper() if sample_aes(context) else "AES-128"
    iv = _iv(key, path, container, None, sample_aes(context)) if _scheme(context) == cenc.CBCS else None
    tags = []
    for key_format in context.hls_encryption_key_formats if sample_aes(context) else (IDENTITY,):
        uri = _uri(name, clips, clip, key, context) if key_format == IDENTITY else \
            _drm_uri(key_format, key, path, context)
        attributes = [f"METHOD={method}", f'URI="{uri}"']
        if iv is not None:
            attributes.append(f"IV=0x{iv.hex().upper()}")
        if key_format != IDENTITY:
            attributes += [f'KEYFORMAT="{key_format}"', 'KEYFORMATVERSIONS="1"']
        if key_format in (WIDEVINE, PLAYREADY, CLEARKEY):
            attributes.append(f"KEYID=0x{key.key_id.hex().upper()}")
        tags.append("#EXT-X-KEY:" + ",".join(attributes))
    return "\n".join(tags)


def session_keys(key_tags: list[str]) -> list[str]:
    """EXT-X-SESSION-KEY (4.3.4.5): each distinct EXT-X-KEY of the renditions, once."""
    lines = (line for tags in key_tags for line in tags.splitlines())
    return [line.replace("#EXT-X-KEY:", "#EXT-X-SESSION-KEY:", 1) for line in dict.fromkeys(lines)]


def check_tracks(tracks: tuple[Track, ...], container: str, context: PackagerContext) -> None:
    """SAMPLE-AES(-CTR): the codecs this container's encryption carries (415 otherwise)."""
    if container != FMP4 and _scheme(context) == cenc.CENC:
        raise UnsupportedMedia("SAMPLE-AES-CTR is Common Encryption in fMP4; this rendition is MPEG-TS "
                               "(hls_container)")
    for track in tracks:
        if container == FMP4:
            cenc.check_track(track)
        else:
            check_track(track.codec.fourcc, track.codec.codec_string, track.media_type)


def _drm_uri(key_format: str, key: ContentKey, path: str, context: PackagerContext) -> str:
    """The URI of a DRM system's EXT-X-KEY (see above)."""
    if key_format == FAIRPLAY:
        template = context.hls_encryption_key_uri or "skd://{key_id}"
        return template.replace("{path}", path).replace("{key_id}", key.key_id.hex())
    if key_format == CLEARKEY:
        return _data_uri(key.key_id)
    system_id = WIDEVINE_SYSTEM_ID if key_format == WIDEVINE else PLAYREADY_SYSTEM_ID
    data = next((system.data for system in key.systems if system.system_id == system_id), None)
    if key_format == PLAYREADY:
        if data is None:
            raise UpstreamError("hls_encryption_key_formats lists PlayReady, and the DRM info gives no "
                                "PlayReady data for this key")
        return _data_uri(data, "text/plain;charset=UTF-16")
    if data is None:  # a Widevine pssh data naming the key id (WidevinePsshData field 2, key_id)
        data = b"\x12\x10" + key.key_id
    return _data_uri(SystemData(system_id, data).pssh)


def _data_uri(data: bytes, media_type: str = "text/plain") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


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


def sample_aes_segment(frames: list[TrackFrames], clip: Placed, number: int, ranges: list[ByteRange],
                       context: PackagerContext) -> MediaSegment:
    """TS segment `number` with its samples encrypted (drm/sample_aes.py), planned once they are:
    emulation prevention adds bytes, so its size is known only then. Codecs SAMPLE-AES cannot carry
    are a 415 before anything is read."""
    check_tracks(tuple(track.track for track in frames), MPEGTS, context)
    key, iv = _key_and_iv(clip, MPEGTS, number, context)

    def render(source: SourceBytes) -> bytes:
        encrypted, buffer = encrypt_segment(frames, source, key.key, iv)
        return ts_write.write_segment(mpegts.plan_segment(number, encrypted, sample_aes=True), buffer)

    return MediaSegment(None, TS_TYPE, clip.movie.source, ranges, render)


def encrypted_segment(segment: MediaSegment, clip: Placed, number: int, container: str,
                      context: PackagerContext) -> MediaSegment:
    """The segment encrypted whole when HLS encrypts with AES-128 (its size stays known before
    its bytes: PKCS#7 pads predictably), else as it is."""
    if not encrypting(context) or sample_aes(context):
        return segment
    key, iv = _key_and_iv(clip, container, number, context)
    assert segment.size is not None
    render = segment.render
    return replace(segment, size=aes.padded_size(segment.size),
                   render=lambda source: aes.encrypt(render(source), key.key, iv))


def sample_encrypted_fragment(clip: Placed, number: int, parts: list[fmp4.FragmentTrack],
                              ranges: list[ByteRange], content_type: str, context: PackagerContext
                              ) -> MediaSegment:
    """fMP4 segment `number` with its samples in 'cbcs' (SAMPLE-AES) or 'cenc' (SAMPLE-AES-CTR),
    planned once they are: its senc boxes depend on the NAL units, so its size is known only then."""
    check_tracks(clip.tracks, FMP4, context)
    key, iv = _key_and_iv(clip, FMP4, None, context)
    path, scheme = clip.movie.source.path, _scheme(context)

    def render(source: SourceBytes) -> bytes:
        encrypted_parts, samples = [], []
        for part in parts:
            frames = part.frames
            aux, encrypted = cenc.encrypt_samples(key, path, frames.track, frames.first,
                                                  source.frame_views(frames), scheme, iv)
            encrypted_parts.append(replace(part, encryption=aux))
            samples.append([memoryview(sample) for sample in encrypted])
        return fmp4.write_fragment(fmp4.plan_fragment(number, encrypted_parts), samples)

    return MediaSegment(None, content_type, clip.movie.source, ranges, render)


def encrypted_init(document: Document, clip: Placed, context: PackagerContext) -> Document:
    """The initialization section: encrypted whole with AES-128; with SAMPLE-AES(-CTR) its sample
    entries protected (the scheme, the key id, for cbcs the constant IV) and the DRM systems' pssh
    boxes in its moov."""
    if not encrypting(context):
        return document
    key, iv = _key_and_iv(clip, FMP4, None, context)
    if sample_aes(context):
        check_tracks(clip.tracks, FMP4, context)
        scheme = _scheme(context)
        constant_iv = iv if scheme == cenc.CBCS else b""
        tracks = [replace(track, codec=replace(track.codec, sample_entry=cenc.protected_sample_entry(
            track.codec.sample_entry, key.key_id, scheme, constant_iv))) for track in clip.tracks]
        pssh = b"".join(system.pssh for system in key.systems)
        return replace(document, body=fmp4.init_segment(tracks, pssh))
    return replace(document, body=aes.encrypt(document.body, key.key, iv))


def _key_and_iv(clip: Placed, container: str, number: int | None, context: PackagerContext
                ) -> tuple[ContentKey, bytes]:
    """The key and IV that encrypt a segment (number) or an init section (None) of a clip."""
    key, path = _clip_key(clip, context), clip.movie.source.path
    iv = _iv(key, path, container, number, sample_aes(context))
    assert iv is not None
    return key, iv


def _clip_key(clip: Placed, context: PackagerContext) -> ContentKey:
    """A rendition's key: its first track's (one EXT-X-KEY covers every track of a segment, so
    with CPIX keys per track type a muxed rendition uses its video's)."""
    return context.key(clip.movie.source.path, clip.tracks[0].media_type)


def key_file(name: FileName, media: MediaSet, context: PackagerContext) -> Document:
    """encryption[-f<n>|-s<id>][-c<n>].key: the 16 bytes of a key derived from secret_key."""
    if not encrypting(context):
        raise NotFound("HLS encryption is off (hls_encryption_method)")
    clip = in_clip(placed(media, name, context.segments), name.clip_index)
    key = _clip_key(clip, context)
    if not key.served:
        raise NotFound("keys from the DRM-info service are not served here (hls_encryption_key_uri names "
                       "the key server)")
    return Document(key.key, KEY_TYPE, (clip.movie.source,))
