"""What a packager returns: a rendered document, a media segment to render, or spliced file parts.

The web layer turns each into a response; none of these know HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vodorigin.drm.keys import ContentKey, FileKeys
from vodorigin.media.frames import ByteRange, SourceBytes
from vodorigin.media.model import MediaType, SourceIdentity
from vodorigin.media.segmenter import SegmentConfig
from vodorigin.settings import Settings


@dataclass(frozen=True, slots=True)
class PackagerContext:
    """The settings packagers use, derived once per application."""

    segments: SegmentConfig
    max_frames_per_segment: int
    read_merge_gap: int
    hls_container: str = "auto"
    max_clip_frames: int = 4_000_000  # a progressive clip (or an I-frame playlist) spans a whole track
    hls_iframes_playlists: bool = True
    dash_manifest_format: str = "segmenttimeline"
    dash_segment_index: bool = False
    dash_subtitle_format: str = "webvtt"
    hls_encryption_method: str = "none"
    hls_encryption_key_uri: str = ""
    drm_enabled: bool = False
    clear_lead: int = 0  # DASH: segments at the start left clear (drm_clear_lead_segment_count)
    dash_encryption_scheme: str = "cenc"
    hls_encryption_key_formats: tuple[str, ...] = ("identity",)
    keys: Mapping[str, FileKeys] = field(default_factory=dict)  # by media path, for this request

    @classmethod
    def from_settings(cls, settings: Settings) -> PackagerContext:
        return cls(SegmentConfig.from_settings(settings), settings.max_frames_per_segment,
                   settings.read_merge_gap, settings.hls_container, settings.max_samples_per_track,
                   settings.hls_iframes_playlists, settings.dash_manifest_format, settings.dash_segment_index,
                   settings.dash_subtitle_format, settings.hls_encryption_method,
                   settings.hls_encryption_key_uri, settings.drm_enabled,
                   settings.drm_clear_lead_segment_count, settings.dash_encryption_scheme,
                   settings.hls_encryption_key_formats)

    def encrypts(self, protocol: str) -> bool:
        """Whether this protocol's media is encrypted (and needs the keys of its files)."""
        return self.hls_encryption_method != "none" if protocol == "hls" else \
            self.drm_enabled and protocol in ("dash", "mss")

    def key(self, path: str, media_type: MediaType = MediaType.VIDEO) -> ContentKey:
        """The key of a file's tracks of that type (one key for all, unless CPIX gives one per type)."""
        return self.keys[path].of(media_type)


@dataclass(frozen=True, slots=True)
class Document:
    """A manifest or playlist, rendered from metadata alone."""

    body: bytes
    content_type: str
    sources: tuple[SourceIdentity, ...]


@dataclass(frozen=True, slots=True, eq=False)
class MediaSegment:
    """A segment and its exact size (None: known once its frames are read, as an encrypted
    fragment's, whose subsample map depends on its NAL units); `render` makes its bytes from the
    ranges read."""

    size: int | None
    content_type: str
    source: SourceIdentity
    ranges: list[ByteRange]
    render: Callable[[SourceBytes], bytes]


@dataclass(frozen=True, slots=True)
class FileParts:
    """A file made of new bytes and ranges of a source, streamed in order (progressive download)."""

    content_type: str
    source: SourceIdentity
    parts: tuple[bytes | ByteRange, ...]

    @property
    def size(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p.length for p in self.parts)


Output = Document | MediaSegment | FileParts
