"""FLV tags for HDS fragments (Adobe Flash Video File Format Specification 10.1, annex E).

A fragment's tags are planned from metadata alone, as for TS and fMP4: every tag header is built
and the exact size known before any media byte is read; writing only splices in the frames.

* Each fragment opens with the sequence headers (AVCDecoderConfigurationRecord, AAC
  AudioSpecificConfig), so it decodes on its own; then one tag per frame, all tracks interleaved
  by decode time.
* Video tags: FrameType (1 key, 2 inter) | CodecID 7 (AVC), AVCPacketType 1, CompositionTime
  (pts - dts, ms, signed 24 bits), then the sample as stored in the MP4 (length-prefixed NAL units).
* Audio tags: 0xAF (SoundFormat 10 AAC; for AAC the rate and type fields are fixed at 44 kHz
  stereo, E.4.2.1), AACPacketType 1, the raw frame.
* Timestamps are decode times in milliseconds, the presentation delay of timing.py included, so
  B-frames and AAC priming never go below 0.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from vodorigin.errors import MediaError, UnsupportedMedia
from vodorigin.media.frames import TrackFrames
from vodorigin.media.model import MediaType, Track
from vodorigin.timing import PRESENTATION_DELAY_MS, rescale_array

TAG_AUDIO, TAG_VIDEO = 8, 9
TAG_HEADER_SIZE = 11
PREVIOUS_TAG_SIZE = 4
CODEC_AVC = 7
AAC_AUDIO_BYTE = 0xAF
SEQUENCE_HEADER, CODED_FRAME = 0, 1
MAX_TAG_DATA = (1 << 24) - 1  # DataSize is 24 bits
FILE_HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + bytes(PREVIOUS_TAG_SIZE)  # audio + video, for tests


def check_codec(track: Track) -> None:
    codec = track.codec
    if track.media_type is MediaType.VIDEO and codec.fourcc not in ("avc1", "avc3"):
        raise UnsupportedMedia(f"{track.key}: FLV (HDS) carries H.264 video, not {codec.codec_string}")
    if track.media_type is MediaType.AUDIO and codec.fourcc != "mp4a":
        raise UnsupportedMedia(f"{track.key}: FLV (HDS) carries AAC audio, not {codec.codec_string}")


def milliseconds(ticks: np.ndarray, timescale: int) -> np.ndarray:
    """Track ticks -> milliseconds (timing.rescale_array), the presentation delay added."""
    return rescale_array(ticks, timescale, 1000) + PRESENTATION_DELAY_MS


def tag_header(tag_type: int, data_size: int, timestamp: int) -> bytes:
    """TagType, DataSize (24 bits), Timestamp (SI32: the low 24 bits, then the high 8), StreamID 0."""
    if data_size > MAX_TAG_DATA:
        raise UnsupportedMedia(f"a frame of {data_size} bytes is too large for an FLV tag")
    return struct.pack(">B3s3sB3s", tag_type, data_size.to_bytes(3, "big"),
                       (timestamp & 0xFFFFFF).to_bytes(3, "big"), (timestamp >> 24) & 0xFF, b"\0\0\0")


@dataclass(frozen=True, slots=True, eq=False)
class TagPlan:
    """The tags of one fragment: `pieces` are bytes or (track, frame) references, in order."""

    pieces: list[bytes | tuple[int, int]]
    size: int
    key_frames: list[tuple[int, int]]  # (timestamp ms, offset of the tag in the tags) of video key frames


def plan_tags(tracks: list[TrackFrames]) -> TagPlan:
    for frames in tracks:
        check_codec(frames.track)
    events: list[tuple[int, int, int]] = []  # (timestamp, track, frame)
    times: list[tuple[np.ndarray, np.ndarray]] = []
    for index, frames in enumerate(tracks):
        timescale = frames.track.timescale
        dts, pts = milliseconds(frames.dts, timescale), milliseconds(frames.pts, timescale)
        times.append((dts, pts))
        events.extend((int(t), index, n) for n, t in enumerate(dts.tolist()))
    events.sort()
    start = events[0][0] if events else 0
    pieces: list[bytes | tuple[int, int]] = []
    size = 0
    for frames in tracks:  # sequence headers first, at the fragment's first timestamp
        tag = _sequence_header(frames, start)
        pieces.append(tag)
        size += len(tag)
    key_frames = []
    for timestamp, index, n in events:
        frames = tracks[index]
        frame_size = int(frames.sizes[n])
        if frames.track.media_type is MediaType.VIDEO:
            key = bool(frames.sync[n])
            if key:
                key_frames.append((timestamp, size))
            composition = int(times[index][1][n]) - timestamp
            if not -(1 << 23) <= composition < 1 << 23:
                raise MediaError(f"{frames.track.key}: composition offset {composition} ms does not fit FLV")
            prefix = bytes(((1 if key else 2) << 4 | CODEC_AVC, CODED_FRAME)) + \
                composition.to_bytes(3, "big", signed=True)
            head = tag_header(TAG_VIDEO, len(prefix) + frame_size, timestamp) + prefix
        else:
            head = tag_header(TAG_AUDIO, 2 + frame_size, timestamp) + bytes((AAC_AUDIO_BYTE, CODED_FRAME))
        trailer = struct.pack(">I", len(head) + frame_size)
        pieces.extend((head, (index, n), trailer))
        size += len(head) + frame_size + PREVIOUS_TAG_SIZE
    return TagPlan(pieces, size, key_frames)


def _sequence_header(frames: TrackFrames, timestamp: int) -> bytes:
    config = frames.track.codec.decoder_config
    if frames.track.media_type is MediaType.VIDEO:
        body = bytes((1 << 4 | CODEC_AVC, SEQUENCE_HEADER, 0, 0, 0)) + config
        tag_type = TAG_VIDEO
    else:
        body = bytes((AAC_AUDIO_BYTE, SEQUENCE_HEADER)) + config
        tag_type = TAG_AUDIO
    tag = tag_header(tag_type, len(body), timestamp) + body
    return tag + struct.pack(">I", len(tag))


def write_tags(plan: TagPlan, frame_bytes: list[list[memoryview]]) -> list[bytes | memoryview]:
    """The tags' bytes in order; frame_bytes[i] holds the frames of track i in decode order."""
    return [piece if isinstance(piece, bytes) else frame_bytes[piece[0]][piece[1]] for piece in plan.pieces]
