"""HLS SAMPLE-AES in MPEG-TS (Apple, "MPEG-2 Stream Encryption Format for HTTP Live Streaming";
RFC 8216 4.3.2.4): the samples are encrypted, the transport stream around them stays clear.

* H.264: slice NAL units (types 1 and 5) longer than 48 bytes. The first 32 bytes (NAL header
  included) stay clear; then one 16-byte block in ten is encrypted (16 encrypted, 144 clear), for
  every block that starts more than 16 bytes before the NAL's end; the rest is clear. The blocks of
  one NAL form one AES-128-CBC chain that starts from the segment's IV. Emulation prevention is
  then applied to the whole NAL, clear bytes and cipher text alike (an 0x03 before any byte <= 3
  that follows two zeros, so an 0x03 already there gets another), and the NAL's length follows.
  Other NAL units are left as they are.
* AAC (ADTS) and AC-3: each frame's first 16 bytes stay clear, then its whole 16-byte blocks are
  encrypted in one CBC chain from the segment's IV; the tail and the ADTS header stay clear.
* The PMT says so (ts stream types 0xDB, 0xCF, 0xC1 with their private data indicators, and for
  audio an 'apad' registration descriptor with the audio setup information): mpegts.stream_format.

Byte for byte this is what nginx-vod-module's `vod_hls_encryption_method sample-aes` writes for TS
(vod/hls/sample_aes_avc_filter.c, frame_encrypt_filter.c). Segment sizes are then known only once
the frames are encrypted (emulation prevention adds bytes): MediaSegment.size is None.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from vodorigin.errors import MediaError, UnsupportedMedia
from vodorigin.media.frames import ByteRange, SourceBytes, TrackFrames
from vodorigin.media.model import MediaType

BLOCK = 16
CLEAR_LEAD = 32  # NAL bytes before the first encrypted block
MAX_CLEAR_NAL = 48  # NAL units this long or shorter stay clear
PERIOD = 10 * BLOCK  # one block encrypted in every ten
SLICE_TYPES = (1, 5)  # coded slice of a non-IDR / of an IDR picture (H.264 7.4.1.2.3)
AUDIO_CODECS = ("mp4a", "ac-3")


def check_track(codec_fourcc: str, codec_string: str, media_type: MediaType) -> None:
    """SAMPLE-AES in TS carries H.264, AAC and AC-3 (not HEVC, MP3, E-AC-3: 415)."""
    if media_type is MediaType.VIDEO and codec_fourcc not in ("avc1", "avc3"):
        raise UnsupportedMedia(f"SAMPLE-AES in MPEG-TS encrypts H.264 only, not {codec_string}")
    if media_type is MediaType.AUDIO and (codec_fourcc not in AUDIO_CODECS or codec_string == "mp4a.40.34"):
        raise UnsupportedMedia(f"SAMPLE-AES in MPEG-TS encrypts AAC and AC-3 audio, not {codec_string}")


def encrypt_segment(tracks: list[TrackFrames], source: SourceBytes, key: bytes, iv: bytes
                    ) -> tuple[list[TrackFrames], SourceBytes]:
    """The segment's frames encrypted, as new frames over one new buffer (their sizes may grow);
    their codecs are ones check_track accepts."""
    pieces: list[bytes] = []
    position = 0
    encrypted = []
    for frames in tracks:
        track = frames.track
        video = track.media_type is MediaType.VIDEO
        sizes = []
        for view in source.frame_views(frames):
            data = encrypt_h264_frame(view, key, iv, track.codec.nal_length_size) if video else \
                encrypt_audio_frame(view, key, iv)
            pieces.append(data)
            sizes.append(len(data))
        sizes_array = np.array(sizes, dtype=np.int64)
        offsets = position + np.concatenate(([0], np.cumsum(sizes_array)[:-1])).astype(np.int64) \
            if sizes else np.zeros(0, dtype=np.int64)
        position += int(sizes_array.sum())
        encrypted.append(replace(frames, sizes=sizes_array, offsets=offsets))
    buffer = b"".join(pieces)
    return encrypted, SourceBytes([ByteRange(0, len(buffer))] if buffer else [], [buffer] if buffer else [])


def encrypt_audio_frame(frame: memoryview, key: bytes, iv: bytes) -> bytes:
    """An AAC or AC-3 frame: 16 clear bytes, its whole blocks encrypted, the tail clear."""
    whole = (len(frame) - BLOCK) // BLOCK * BLOCK
    if whole <= 0:
        return bytes(frame)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    middle = encryptor.update(frame[BLOCK : BLOCK + whole])
    return b"".join((frame[:BLOCK], middle, frame[BLOCK + whole :]))


def encrypt_h264_frame(frame: memoryview, key: bytes, iv: bytes, length_size: int) -> bytes:
    """A length-prefixed H.264 sample (ISO/IEC 14496-15) with its slice NAL units encrypted."""
    parts: list[bytes | memoryview] = []
    position, end = 0, len(frame)
    while position < end:
        if position + length_size > end:
            raise MediaError("H.264 sample: truncated NAL length")
        length = int.from_bytes(frame[position : position + length_size], "big")
        start = position + length_size
        if start + length > end:
            raise MediaError("H.264 sample: NAL unit overruns the sample")
        nal: bytes | memoryview = frame[start : start + length]
        if length > MAX_CLEAR_NAL and frame[start] & 0x1F in SLICE_TYPES:
            nal = emulation_prevented(encrypt_nal(frame[start : start + length], key, iv))
            if len(nal) >= 1 << (8 * length_size):
                raise UnsupportedMedia("an encrypted NAL unit outgrows its length field")
        parts += [len(nal).to_bytes(length_size, "big"), nal]
        position = start + length
    return b"".join(parts)


def encrypt_nal(nal: memoryview, key: bytes, iv: bytes) -> bytes:
    """The NAL's pattern blocks (one in ten from byte 32, each starting more than 16 bytes before
    the end) encrypted as one CBC chain; every other byte as it was."""
    starts = range(CLEAR_LEAD, len(nal) - BLOCK, PERIOD)
    blocks = b"".join(nal[start : start + BLOCK] for start in starts)
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor().update(blocks)
    out = bytearray(nal)
    for index, start in enumerate(starts):
        out[start : start + BLOCK] = cipher[index * BLOCK : (index + 1) * BLOCK]
    return bytes(out)


def emulation_prevented(nal: bytes) -> bytes:
    """H.264 7.4.1 emulation prevention as a writer applies it to a whole NAL: counting zeros from
    the NAL's start, an 0x03 goes before any byte <= 3 that follows two zeros (and the count then
    restarts with that byte). Only runs of zeros need looking at, so they are found with find()."""
    parts, last = [], 0
    position = nal.find(b"\x00\x00")
    while position != -1:
        run_end = position + 2
        while run_end < len(nal) and nal[run_end] == 0:
            run_end += 1
        zeros = run_end - position
        # within the run, before its zeros number 2, 4, ...; then before the byte after an even run
        inserts = list(range(position + 2, position + zeros, 2))
        if zeros % 2 == 0 and run_end < len(nal) and nal[run_end] <= 3:
            inserts.append(run_end)
        for at in inserts:
            parts += [nal[last:at], b"\x03"]
            last = at
        position = nal.find(b"\x00\x00", run_end + 1) if run_end < len(nal) else -1
    if not parts:
        return nal
    parts.append(nal[last:])
    return b"".join(parts)
