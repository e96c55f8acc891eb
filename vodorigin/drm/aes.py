"""HLS AES-128 (RFC 8216 4.3.2.4, 5.2): whole segments encrypted with AES-128-CBC and PKCS#7 padding.

The cipher is the `cryptography` package's (OpenSSL underneath). A segment's encrypted size is
known before its bytes: PKCS#7 always adds 1 to 16 bytes, up to the next multiple of 16.

IVs: with no IV attribute, a player uses the segment's media sequence number (16 bytes, big
endian); the DRM info's `iv`, when it gives one, is written in the EXT-X-KEY and used for every
segment. fMP4 renditions encrypt their initialization section too, which needs an explicit IV
(RFC 8216 4.3.2.5): MD5 of nginx-vod-module's salt and the media path, unless the DRM info gives one.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16
IV_SALT = bytes.fromhex("a7c617ab522c403cf68a")  # nginx-vod-module's salt for its constant HLS IV


def padded_size(size: int) -> int:
    """The size of `size` bytes once encrypted (PKCS#7 always pads, 1 to 16 bytes)."""
    return (size // BLOCK + 1) * BLOCK


def sequence_iv(number: int) -> bytes:
    """The IV of media sequence number `number` when the EXT-X-KEY has none (RFC 8216 5.2)."""
    return number.to_bytes(BLOCK, "big")


def constant_iv(path: str) -> bytes:
    return hashlib.md5(IV_SALT + path.encode(), usedforsecurity=False).digest()


def encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(BLOCK * 8).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()
