"""Common Encryption (ISO/IEC 23001-7) of fMP4 samples: the 'cenc' scheme (AES-128-CTR) and the
'cbcs' scheme (AES-128-CBC, a pattern of one block encrypted in ten, a constant IV).

'cenc' (10.1):
* Audio (and any non-video track) is encrypted whole (9.4, full-sample encryption).
* H.264 and HEVC are encrypted by subsamples (9.5, 10): each NAL unit is a subsample whose length
  field and NAL header stay clear, so players can walk the NAL units (Chromium rewrites them to
  Annex B before decrypting); non-VCL units (parameter sets, SEI) stay wholly clear. Protected
  ranges are whole 16-byte blocks (the odd bytes of a unit join its clear part), so readers that
  restart or continue the counter between ranges decrypt them alike. A sample needs at most
  MAX_SUBSAMPLES entries (saiz holds an entry's size in one byte: 8 + 2 + 6n <= 255); VCL units
  past that stay clear.
* Per-sample IVs are 8 bytes (tenc default_Per_Sample_IV_Size 8), the 16-byte counter block being
  the IV then a 64-bit block counter from 0. The IV of sample i of a track is a digest of the
  key id, the file's path and the track id, plus i: unique per key across files, tracks and
  samples, and a function of the sample alone (segment N stands alone).

'cbcs' (10.4), as Apple's FairPlay and CMAF players read it:
* H.264 and HEVC slices leave the NAL header and the whole slice header clear (slice_header.py);
  from the slice data on, whole 16-byte blocks are protected, of which the first of every ten is
  encrypted (tenc crypt_byte_block 1, skip_byte_block 9). Each subsample starts a new CBC chain
  from the constant IV; the chain runs through its encrypted blocks only. Other NAL units stay
  clear.
* Audio: every whole block of a sample is encrypted in one chain from the constant IV (pattern 0:0
  in tenc, meaning no pattern); the odd bytes at the end stay clear.
* The constant IV (16 bytes) is in tenc, so senc entries carry no IV, only subsamples; unlike
  nginx-vod-module's FairPlay-style fMP4, tenc carries the real key id, and every fragment its
  saiz/saio/senc, so ISO readers (ffmpeg, Chromium, Shaka) decrypt it.

Boxes: the sample entry becomes encv/enca with a sinf (frma, schm with the scheme, version 1.0,
schi/tenc with the KID) in the init segment, with one pssh per DRM system in its moov; every traf
gets a saiz, a saio and a senc (7.2) giving each sample's IV and subsamples.

Subsample maps depend on the NAL units, so an encrypted fragment's size is known once its frames
are read (`MediaSegment.size` None), unlike clear ones.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from vodorigin.drm import aes
from vodorigin.drm.keys import ContentKey
from vodorigin.drm.slice_header import slice_parser
from vodorigin.errors import UnsupportedMedia
from vodorigin.media.model import MediaType, Track
from vodorigin.mp4 import write

CENC, CBCS = "cenc", "cbcs"
SCHEME_VERSION = 0x00010000
IV_SIZE = 8  # cenc: bytes of each sample's IV
BLOCK = 16
PATTERN = (1, 9)  # cbcs video: crypt_byte_block, skip_byte_block
MAX_SUBSAMPLES = 40
MAX_CLEAR = 0xFFFF  # BytesOfClearData is 16 bits
AVC = ("avc1", "avc3")
HEVC = ("hvc1", "hev1")
SENC_SUBSAMPLES = 0x000002  # senc flags: subsample information present
PIFF_SENC_UUID = bytes.fromhex("a2394f525a9b4f14a2446c427c648df4")  # PIFF 1.1 5.3.2 SampleEncryptionBox


@dataclass(frozen=True, slots=True)
class SampleAux:
    """A sample's auxiliary information: its IV (none under cbcs: tenc's constant IV) and (video)
    its (clear, protected) subsamples."""

    iv: bytes
    subsamples: tuple[tuple[int, int], ...] | None

    @property
    def size(self) -> int:
        return len(self.iv) + (2 + 6 * len(self.subsamples) if self.subsamples is not None else 0)


def check_track(track: Track) -> None:
    """Refuse what we cannot encrypt before anything is listed."""
    if track.media_type is MediaType.VIDEO and track.codec.fourcc not in AVC + HEVC:
        raise UnsupportedMedia(f"{track.key}: {track.codec.codec_string} cannot be encrypted here "
                               "(H.264 and HEVC video can)")
    if track.media_type is MediaType.VIDEO and track.codec.nal_length_size not in (1, 2, 4):
        raise UnsupportedMedia(f"{track.key}: NAL length fields of {track.codec.nal_length_size} bytes")


def encrypt_samples(key: ContentKey, path: str, track: Track, first: int, samples: Sequence[memoryview],
                    scheme: str = CENC, constant_iv: bytes = b"") -> tuple[list[SampleAux], list[bytes]]:
    """The samples first, first + 1... of `track` encrypted, with their auxiliary information
    (cbcs: `constant_iv` is the IV of every sample, the one written in tenc)."""
    if scheme == CBCS:
        return _cbcs_samples(key.key, constant_iv, track, samples)
    seed = key.key_id + path.encode() + struct.pack(">I", track.track_id)
    base = int.from_bytes(hashlib.sha256(seed).digest()[:IV_SIZE], "big")
    video = track.media_type is MediaType.VIDEO
    clear_head = _nal_header_only(track.codec.fourcc in HEVC)
    cipher = algorithms.AES(key.key)
    aux, encrypted = [], []
    for index, sample in enumerate(samples):
        iv = ((base + first + index) & 0xFFFFFFFFFFFFFFFF).to_bytes(IV_SIZE, "big")
        encryptor = Cipher(cipher, modes.CTR(iv + bytes(8))).encryptor()
        if not video:
            aux.append(SampleAux(iv, None))
            encrypted.append(encryptor.update(sample) + encryptor.finalize())
            continue
        subsamples = video_subsamples(sample, track.codec.nal_length_size, clear_head, odd_bytes_first=True)
        aux.append(SampleAux(iv, subsamples))
        encrypted.append(_encrypt_ranges(encryptor, sample, subsamples))
    return aux, encrypted


def _encrypt_ranges(encryptor: CipherContext, sample: memoryview, subsamples: tuple[tuple[int, int], ...]
                    ) -> bytes:
    """The protected ranges encrypted as one counter stream, the clear ones kept."""
    out = bytearray(sample)
    position = 0
    for clear, protected in subsamples:
        position += clear
        if protected:
            out[position : position + protected] = encryptor.update(sample[position : position + protected])
        position += protected
    return bytes(out)


def video_subsamples(sample: memoryview, length_size: int, clear_head: Callable[[memoryview], int | None],
                     odd_bytes_first: bool) -> tuple[tuple[int, int], ...]:
    """(clear, protected) byte counts covering a length-prefixed H.264/HEVC sample: of each NAL
    unit, `clear_head` says how many first bytes stay clear (None: all of it); the rest is
    protected in whole blocks when it holds one, its odd bytes clear before it (cenc: protected
    data ends with the unit) or after it (cbcs: protected data starts with the slice data)."""
    entries: list[tuple[int, int]] = []
    clear, position, size = 0, 0, len(sample)
    while position + length_size < size:
        length = int.from_bytes(sample[position : position + length_size], "big")
        end = position + length_size + length
        if length < 1 or end > size:  # a malformed unit: the rest stays clear
            break
        room = len(entries) < MAX_SUBSAMPLES - 1  # past it, units stay clear: no header is read
        head = clear_head(sample[position + length_size : end]) if room else None
        body = length - head if head is not None else 0
        if body >= BLOCK and room:
            odd = body % BLOCK
            head_clear = length_size + length - body + (odd if odd_bytes_first else 0)
            entries.append((clear + head_clear, body - odd))
            clear = 0 if odd_bytes_first else odd
        else:
            clear += length_size + length
        position = end
    clear += size - position
    entries.append((clear, 0))
    return _bounded(entries)


def _nal_header_only(hevc: bool) -> Callable[[memoryview], int | None]:
    """cenc: a VCL unit keeps its NAL header clear (AVC types 1-5, HEVC types below 32); other
    units (parameter sets, SEI) stay wholly clear."""
    header = 2 if hevc else 1

    def clear_head(nal: memoryview) -> int | None:
        if len(nal) < header:
            return None
        vcl = (nal[0] >> 1) & 0x3F < 32 if hevc else 1 <= nal[0] & 0x1F <= 5
        return header if vcl else None

    return clear_head


def _bounded(entries: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Clear counts over 16 bits split into entries of their own; the last entry dropped when it is
    empty."""
    result: list[tuple[int, int]] = []
    for clear, protected in entries:
        while clear > MAX_CLEAR:
            result.append((MAX_CLEAR, 0))
            clear -= MAX_CLEAR
        result.append((clear, protected))
    if len(result) > 1 and result[-1] == (0, 0):
        result.pop()
    if len(result) > MAX_SUBSAMPLES:
        raise UnsupportedMedia(f"a sample needs {len(result)} subsamples (at most {MAX_SUBSAMPLES})")
    return tuple(result)


# --- cbcs ----------------------------------------------------------------------------------------

def constant_iv(key: ContentKey, path: str) -> bytes:
    """cbcs's IV: the DRM info's, else the file's constant IV (the one HLS writes in its EXT-X-KEY)."""
    return key.iv if key.iv is not None else aes.constant_iv(path)


def _cbcs_samples(key: bytes, iv: bytes, track: Track, samples: Sequence[memoryview]
                  ) -> tuple[list[SampleAux], list[bytes]]:
    aux, encrypted = [], []
    if track.media_type is not MediaType.VIDEO:
        for sample in samples:
            out = bytearray(sample)
            _cbc_blocks(key, iv, out, 0, len(out) - len(out) % BLOCK, every=1)
            aux.append(SampleAux(b"", None))
            encrypted.append(bytes(out))
        return aux, encrypted
    slices = slice_parser(track.codec.fourcc, track.codec.parameter_sets)
    for sample in samples:
        out = bytearray(sample)
        subsamples = video_subsamples(sample, track.codec.nal_length_size, slices.observe, False)
        position = 0
        for clear, protected in subsamples:
            position += clear
            _cbc_blocks(key, iv, out, position, protected, every=PATTERN[0] + PATTERN[1])
            position += protected
        aux.append(SampleAux(b"", subsamples))
        encrypted.append(bytes(out))
    return aux, encrypted


def _cbc_blocks(key: bytes, iv: bytes, out: bytearray, start: int, length: int, every: int) -> None:
    """Encrypt in place one block in `every` of out[start:start + length] (whole blocks), the
    encrypted blocks forming one CBC chain from `iv`."""
    if length < BLOCK:
        return
    blocks = np.frombuffer(out, np.uint8, count=length, offset=start).reshape(-1, BLOCK)[::every]
    cipher_text = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor().update(blocks.tobytes())
    blocks[:] = np.frombuffer(cipher_text, np.uint8).reshape(-1, BLOCK)


# --- boxes ---------------------------------------------------------------------------------------

def traf_boxes(aux: list[SampleAux], senc_offset: int, piff: bool = False) -> bytes:
    """saiz + saio + senc for a traf; `senc_offset` is where this senc box will start, from the
    first byte of the moof (saio counts from the moof: tfhd default-base-is-moof). `piff` writes
    the senc as PIFF's SampleEncryptionBox (a uuid box, 16 bytes longer), which Smooth Streaming
    clients read."""
    sizes = {entry.size for entry in aux}
    if len(sizes) == 1 and 0 not in sizes:  # a default size of 0 means a size per sample follows
        saiz = write.full_box(b"saiz", 0, 0, struct.pack(">BI", sizes.pop(), len(aux)))
    else:
        saiz = write.full_box(b"saiz", 0, 0, struct.pack(">BI", 0, len(aux)), bytes(e.size for e in aux))
    saio_size = 20
    header = 16 + (len(PIFF_SENC_UUID) if piff else 0)  # box header, [uuid], version/flags, sample_count
    saio = write.full_box(b"saio", 0, 0, struct.pack(">II", 1, senc_offset + len(saiz) + saio_size + header))
    assert len(saio) == saio_size
    return saiz + saio + senc(aux, piff)


def traf_boxes_size(aux: list[SampleAux]) -> int:
    return len(traf_boxes(aux, 0))


def senc(aux: list[SampleAux], piff: bool = False) -> bytes:
    subsamples = any(entry.subsamples is not None for entry in aux)
    parts = [struct.pack(">I", len(aux))]
    for entry in aux:
        parts.append(entry.iv)
        if subsamples:
            ranges = entry.subsamples or ()
            parts.append(struct.pack(">H", len(ranges)))
            parts.extend(struct.pack(">HI", clear, protected) for clear, protected in ranges)
    flags = SENC_SUBSAMPLES if subsamples else 0
    if piff:
        return write.box(b"uuid", PIFF_SENC_UUID, struct.pack(">I", flags), *parts)
    return write.full_box(b"senc", 0, flags, *parts)


def protected_sample_entry(entry: bytes, key_id: bytes, scheme: str = CENC, constant_iv: bytes = b""
                           ) -> bytes:
    """A sample entry renamed encv/enca, with a sinf saying what it was and how it is protected
    (tenc 8.2: version 0 for cenc's per-sample IVs; version 1 for cbcs, with its pattern for
    video and its constant IV)."""
    if struct.unpack_from(">I", entry)[0] != len(entry):
        raise UnsupportedMedia("a sample entry with a 64-bit size cannot be rewritten")
    original = entry[4:8]
    video = original in (b"avc1", b"avc3", b"hvc1", b"hev1")
    frma = write.box(b"frma", original)
    schm = write.full_box(b"schm", 0, 0, scheme.encode(), struct.pack(">I", SCHEME_VERSION))
    if scheme == CBCS:
        pattern = PATTERN[0] << 4 | PATTERN[1] if video else 0
        tenc = write.full_box(b"tenc", 1, 0, struct.pack(">BBBB", 0, pattern, 1, 0), key_id,
                              bytes([len(constant_iv)]), constant_iv)
    else:
        tenc = write.full_box(b"tenc", 0, 0, struct.pack(">BBBB", 0, 0, 1, IV_SIZE), key_id)
    sinf = write.box(b"sinf", frma, schm, write.box(b"schi", tenc))
    renamed = b"encv" if video else b"enca"
    return write.box(renamed, entry[8:], sinf)
