"""Encryption (issue 13): HLS AES-128 and DASH Common Encryption ('cenc'), keys from `secret_key`
and from a fake DRM-info service on 127.0.0.1.

What we serve is decrypted here with an independent implementation (the `cryptography` package;
sample maps read from the senc boxes by a test-side parser) and compared byte for byte with the
same segments served in the clear; ffmpeg reads the encrypted HLS through its key URI and
decrypts each cenc fragment with `-decryption_key`, and nothing decodes without the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import m3u8
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.boxread import boxes, trun_sizes
from tests.conftest import FIXTURES, LIVE_SETTINGS, LiveServer, ffmpeg_read_errors, require_tools
from tests.upstream import FaultServer
from vodorigin.drm.cpix import parse_cpix
from vodorigin.drm.sample_aes import emulation_prevented
from vodorigin.errors import UpstreamError
from vodorigin.settings import Settings, SettingsError, load_settings

SECRET = "vodorigin-test-$vod_filepath"
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
KID = bytes.fromhex("0123456789abcdef0123456789abcdef")
IV = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
CLEARKEY = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"
WIDEVINE = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
PLAYREADY = "9a04f079-9840-4286-ab92-e65be0885f95"
MPD = {"d": "urn:mpeg:dash:schema:mpd:2011", "cenc": "urn:mpeg:cenc:2013"}
URLSET = "clip_,180p,360p,.mp4.urlset"


def drm_info(key: bytes = KEY, kid: bytes = KID, iv: bytes | None = None,
             others: tuple[tuple[str, bytes], ...] = ()) -> bytes:
    """nginx-vod-module's DRM-info JSON with a W3C ClearKey pssh (KID count, KID, no data), and
    the data of other systems."""
    clearkey = base64.b64encode(struct.pack(">I", 1) + kid + bytes(4)).decode()
    systems = [{"uuid": CLEARKEY, "data": clearkey}]
    systems += [{"uuid": system, "data": base64.b64encode(data).decode()} for system, data in others]
    entry: dict[str, object] = {"key": base64.b64encode(key).decode(),
                                "key_id": base64.b64encode(kid).decode(), "pssh": systems}
    if iv is not None:
        entry["iv"] = base64.b64encode(iv).decode()
    return json.dumps([entry]).encode()


@pytest.fixture(scope="module")
def drm_service() -> Iterator[FaultServer]:
    with FaultServer() as upstream:
        for name in ("bframes.mp4", "clip_180p.mp4", "clip_360p.mp4", "moov_end.mp4", "hevc.mp4"):
            upstream.documents[f"/drm/{name}"] = drm_info()
            upstream.documents[f"/drm-iv/{name}"] = drm_info(iv=IV)
        for name in ("irregular_gop.mp4", "video_only.mp4"):
            upstream.documents[f"/drm/{name}"] = drm_info(others=((WIDEVINE, b"widevine data"),
                                                                  (PLAYREADY, b"<WRMHEADER/>")))
        upstream.statuses["/bad/bframes.mp4"] = 500
        upstream.documents["/bad/moov_end.mp4"] = b"<html>not json</html>"
        upstream.documents["/bad/clip_180p.mp4"] = drm_info(key=KEY[:15])
        upstream.statuses["/bad/video_only.mp4"] = 404
        yield upstream


def _client(settings: Settings) -> Iterator[httpx.Client]:
    with LiveServer(settings) as live, httpx.Client(base_url=live.base, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def encrypted(drm_service: FaultServer) -> Iterator[httpx.Client]:
    """HLS AES-128 with keys from secret_key; DASH cenc with keys from the DRM-info service."""
    settings = Settings(media_root=str(FIXTURES), secret_key=SECRET, hls_encryption_method="aes-128",
                        drm_info_url=f"{drm_service.base}/drm", dash={"drm_enabled": True},
                        **LIVE_SETTINGS)  # type: ignore[arg-type]
    yield from _client(settings)


@pytest.fixture(scope="module")
def drm_fmp4(drm_service: FaultServer) -> Iterator[httpx.Client]:
    """HLS fMP4 AES-128 with DRM keys (and the DRM info's IV), a key server named by template."""
    settings = Settings(media_root=str(FIXTURES), hls_container="fmp4", hls_encryption_method="aes-128",
                        drm_enabled=True, drm_info_url=f"{drm_service.base}/drm-iv",
                        hls_encryption_key_uri="https://keys.example.com/{key_id}?file={path}",
                        hds={"drm_enabled": False}, mss={"drm_enabled": False},
                        **LIVE_SETTINGS)  # type: ignore[arg-type]
    yield from _client(settings)


@pytest.fixture(scope="module")
def clear() -> Iterator[httpx.Client]:
    yield from _client(Settings(media_root=str(FIXTURES), **LIVE_SETTINGS))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def clear_fmp4() -> Iterator[httpx.Client]:
    yield from _client(Settings(media_root=str(FIXTURES), hls_container="fmp4",
                                **LIVE_SETTINGS))  # type: ignore[arg-type]


def cbc_decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    assert len(data) % 16 == 0
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    padding = plain[-1]
    assert 1 <= padding <= 16 and plain[-padding:] == bytes([padding]) * padding, "PKCS#7 padding"
    return plain[:-padding]


def key_tags(text: str, tag: str = "#EXT-X-KEY:") -> list[dict[str, str]]:
    """The attributes of every `tag` line, quotes removed (RFC 8216 4.2)."""
    return [{name: value.strip('"') for name, value in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', line)}
            for line in text.splitlines() if line.startswith(tag)]


def key_tag(playlist_text: str) -> dict[str, str]:
    """The attributes of a playlist's one EXT-X-KEY."""
    (tag,) = key_tags(playlist_text)
    return tag


# ---- HLS AES-128 ----

def test_hls_aes128_ts_with_the_secret_key(encrypted: httpx.Client, clear: httpx.Client) -> None:
    """The key is nginx-vod-module's (MD5 of the secret with the path), served at encryption.key;
    each TS segment, decrypted with its media sequence number as IV, is the clear segment."""
    index = encrypted.get("/hls/bframes.mp4/index-v1-a1.m3u8").text
    tag = key_tag(index)
    assert tag == {"METHOD": "AES-128", "URI": "encryption.key"}
    assert index.index("#EXT-X-KEY") < index.index("#EXTINF")
    key = encrypted.get("/hls/bframes.mp4/encryption.key").content
    assert key == hashlib.md5(b"vodorigin-test-bframes.mp4").digest()
    for number, segment in enumerate(m3u8.loads(index).segments, start=1):
        body = encrypted.get(f"/hls/bframes.mp4/{segment.uri}").content
        assert int(encrypted.head(f"/hls/bframes.mp4/{segment.uri}").headers["content-length"]) == len(body)
        assert cbc_decrypt(body, key, number.to_bytes(16, "big")) == \
            clear.get(f"/hls/bframes.mp4/{segment.uri}").content, number
        assert body[:4] != b"\x47" * 4 and body[0] != 0x47  # no TS sync byte: not clear


def test_ffmpeg_plays_aes128_hls_through_its_key(encrypted: httpx.Client) -> None:
    assert ffmpeg_read_errors(f"{encrypted.base_url}/hls/bframes.mp4/master.m3u8") == ""
    assert ffmpeg_read_errors(f"{encrypted.base_url}/hls/{URLSET}/master.m3u8") == ""


def test_each_file_of_a_urlset_has_its_key(encrypted: httpx.Client) -> None:
    index = encrypted.get(f"/hls/{URLSET}/index-f2-v1-a1.m3u8").text
    assert key_tag(index)["URI"] == "encryption-f2.key"
    key = encrypted.get(f"/hls/{URLSET}/encryption-f2.key").content
    assert key == hashlib.md5(b"vodorigin-test-clip_360p.mp4").digest()


def test_no_iframe_playlists_when_segments_are_encrypted(encrypted: httpx.Client) -> None:
    """Byte ranges cannot address a frame inside a segment encrypted whole (nginx-vod-module
    refuses them too)."""
    assert "I-FRAME" not in encrypted.get("/hls/bframes.mp4/master.m3u8").text
    assert encrypted.get("/hls/bframes.mp4/iframes-v1.m3u8").status_code == 404


def test_hls_aes128_fmp4_with_drm_keys(drm_fmp4: httpx.Client, clear_fmp4: httpx.Client) -> None:
    """fMP4: the EXT-X-KEY precedes the EXT-X-MAP (the init is encrypted too), with the DRM info's
    IV and the key server's URI; the key itself is not served here."""
    index = drm_fmp4.get("/hls/bframes.mp4/index-v1-a1.m3u8").text
    tag = key_tag(index)
    assert tag["IV"] == "0x" + IV.hex().upper()
    assert tag["URI"] == f"https://keys.example.com/{KID.hex()}?file=bframes.mp4"
    assert index.index("#EXT-X-KEY") < index.index("#EXT-X-MAP")
    init = drm_fmp4.get("/hls/bframes.mp4/init-v1-a1.mp4").content
    assert cbc_decrypt(init, KEY, IV) == clear_fmp4.get("/hls/bframes.mp4/init-v1-a1.mp4").content
    for segment in m3u8.loads(index).segments[:3]:
        body = drm_fmp4.get(f"/hls/bframes.mp4/{segment.uri}").content
        assert cbc_decrypt(body, KEY, IV) == clear_fmp4.get(f"/hls/bframes.mp4/{segment.uri}").content
    assert drm_fmp4.get("/hls/bframes.mp4/encryption.key").status_code == 404


# ---- DASH Common Encryption ----

def _find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> tuple[int, int]:
    """(payload start, end) of the box at `path` (the first of each type)."""
    end = len(data) if end is None else end
    for kind in path:
        start, end = next((s, e) for k, s, e in boxes(data, start, end) if k == kind)
    return start, end


def test_mpd_signals_the_protection(encrypted: httpx.Client) -> None:
    """On each AdaptationSet (where dash.js looks): mp4protection with cenc:default_KID (which
    nginx-vod-module leaves off), then ClearKey in DASH-IF's scheme with the same KID (its W3C
    pssh box is in the init segment)."""
    mpd = etree.fromstring(encrypted.get("/dash/bframes.mp4/manifest.mpd").content)
    for adaptation in mpd.iterfind(".//d:AdaptationSet", MPD):
        first, second = adaptation.findall("d:ContentProtection", MPD)
        assert adaptation.index(first) == 0
        assert first.get("schemeIdUri") == "urn:mpeg:dash:mp4protection:2011" and first.get("value") == "cenc"
        kid = str(uuid.UUID(bytes=KID))
        assert first.get(f"{{{MPD['cenc']}}}default_KID") == kid
        assert second.get("schemeIdUri") == "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
        assert second.get(f"{{{MPD['cenc']}}}default_KID") == kid and second.find("cenc:pssh", MPD) is None
        assert not adaptation.findall(".//d:Representation/d:ContentProtection", MPD)


def test_every_drm_system_of_the_drm_info_is_signalled(encrypted: httpx.Client) -> None:
    """Other systems (here Widevine and PlayReady) get their element with the whole pssh box
    (PlayReady also its mspr:pro), and their pssh boxes end the init segment's moov."""
    mpd = etree.fromstring(encrypted.get("/dash/irregular_gop.mp4/manifest.mpd").content)
    adaptation = mpd.find(".//d:AdaptationSet", MPD)
    elements = {e.get("schemeIdUri"): e for e in adaptation.findall("d:ContentProtection", MPD)}
    for system, data in ((WIDEVINE, b"widevine data"), (PLAYREADY, b"<WRMHEADER/>")):
        pssh = base64.b64decode(elements[f"urn:uuid:{system}"].findtext("cenc:pssh", namespaces=MPD))
        assert pssh[8] == 0 and pssh[12:28] == uuid.UUID(system).bytes
        assert struct.unpack_from(">I", pssh, 28)[0] == len(data) and pssh[32:] == data
    pro = elements[f"urn:uuid:{PLAYREADY}"].findtext("{urn:microsoft:playready}pro")
    assert base64.b64decode(pro) == b"<WRMHEADER/>"
    init = encrypted.get("/dash/irregular_gop.mp4/init-v1.mp4").content
    moov = _find(init, [b"moov"])
    systems = [init[s + 4 : s + 20] for kind, s, _ in boxes(init, *moov) if kind == b"pssh"]
    assert systems == [uuid.UUID(s).bytes for s in (CLEARKEY, WIDEVINE, PLAYREADY)]


def test_init_segments_are_protected(encrypted: httpx.Client) -> None:
    for rep, original, renamed in (("v1", b"avc1", b"encv"), ("a1", b"mp4a", b"enca")):
        init = encrypted.get(f"/dash/bframes.mp4/init-{rep}.mp4").content
        stsd = _find(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
        (kind, entry_start, entry_end), (clear_kind, _, _) = boxes(init, stsd[0] + 8, stsd[1])
        assert kind == renamed and clear_kind == original  # the clear entry for the clear lead
        sinf = init.index(b"sinf", entry_start, entry_end) - 4
        frma = _find(init, [b"frma"], sinf + 8, entry_end)
        assert init[frma[0] : frma[1]] == original
        schm = _find(init, [b"schm"], sinf + 8, entry_end)
        assert init[schm[0] + 4 : schm[0] + 12] == b"cenc\x00\x01\x00\x00"
        tenc = _find(init, [b"schi", b"tenc"], sinf + 8, entry_end)
        assert init[tenc[0] + 6 : tenc[0] + 8] == b"\x01\x08" and init[tenc[0] + 8 : tenc[0] + 24] == KID
        pssh = _find(init, [b"moov", b"pssh"])  # W3C Common PSSH (version 1): KID count, KIDs, no data
        assert init[pssh[0]] == 1 and init[pssh[0] + 4 : pssh[0] + 20] == uuid.UUID(CLEARKEY).bytes
        assert init[pssh[0] + 20 : pssh[0] + 40] == struct.pack(">I", 1) + KID


def senc_entries(fragment: bytes, iv_size: int = 8) -> list[tuple[bytes, list[tuple[int, int]] | None]]:
    """Each sample's (IV, subsamples) from the senc (ISO/IEC 23001-7 7.2), read here."""
    start, _ = _find(fragment, [b"moof", b"traf", b"senc"])
    flags = int.from_bytes(fragment[start + 1 : start + 4], "big")
    count = struct.unpack_from(">I", fragment, start + 4)[0]
    position, entries = start + 8, []
    for _ in range(count):
        iv = fragment[position : position + iv_size]
        position += iv_size
        subsamples = None
        if flags & 2:
            n = struct.unpack_from(">H", fragment, position)[0]
            subsamples = [struct.unpack_from(">HI", fragment, position + 2 + 6 * k) for k in range(n)]
            position += 2 + 6 * n
        entries.append((iv, subsamples))
    return entries


def vcl_units(sample: bytes) -> list[int]:
    """Sizes of the H.264 slice NAL units (types 1-5) of a length-prefixed sample."""
    sizes, position = [], 0
    while position + 4 < len(sample):
        length = struct.unpack_from(">I", sample, position)[0]
        if 1 <= sample[position + 4] & 0x1F <= 5:
            sizes.append(length)
        position += 4 + length
    return sizes


def ctr_decrypt(sample: bytes, iv: bytes, subsamples: list[tuple[int, int]] | None, key: bytes = KEY
                ) -> tuple[bytes, int]:
    """The sample decrypted (protected ranges as one counter stream), and how many bytes were."""
    decryptor = Cipher(algorithms.AES(key), modes.CTR(iv + bytes(8))).decryptor()
    if subsamples is None:
        return decryptor.update(sample), len(sample)
    out, position, protected_total = bytearray(sample), 0, 0
    assert sum(c + p for c, p in subsamples) == len(sample)
    for clear_bytes, protected in subsamples:
        position += clear_bytes
        out[position : position + protected] = decryptor.update(sample[position : position + protected])
        position += protected
        protected_total += protected
    return bytes(out), protected_total


@pytest.mark.parametrize("rep", ["v1", "a1"])
def test_cenc_fragments_decrypt_to_the_clear_ones(rep: str, encrypted: httpx.Client, clear: httpx.Client,
                                                  tmp_path: Path) -> None:
    """The first fragment is the clear lead (the init's second, clear sample entry; nothing to
    decrypt). Every other fragment: senc/saiz/saio describe its samples, and decrypted it is the
    clear fragment's mdat byte for byte; most of each video sample was encrypted (NAL headers
    clear); HEAD says the size GET sends; ffmpeg decrypts it with -decryption_key and cannot
    decode it without."""
    require_tools()
    mpd = etree.fromstring(encrypted.get("/dash/bframes.mp4/manifest.mpd").content)
    timeline = mpd.find(f".//d:Representation[@id='{rep}']/d:SegmentTemplate/d:SegmentTimeline", MPD)
    count = sum(int(s.get("r", 0)) + 1 for s in timeline.iterfind("d:S", MPD))
    init = encrypted.get(f"/dash/bframes.mp4/init-{rep}.mp4").content
    ivs: set[bytes] = set()
    for number in range(1, count + 1):
        url = f"/dash/bframes.mp4/fragment-{number}-{rep}.m4s"
        fragment = encrypted.get(url).content
        assert int(encrypted.head(url).headers["content-length"]) == len(fragment)
        plain = clear.get(url).content
        sizes = trun_sizes(fragment)
        assert sizes == trun_sizes(plain)
        if number == 1:  # the clear lead (drm_clear_lead_segment_count 1): the clear entry, no senc
            assert b"senc" not in fragment and fragment[_find(fragment, [b"mdat"])[0] :] == \
                plain[_find(plain, [b"mdat"])[0] :]
            tfhd = _find(fragment, [b"moof", b"traf", b"tfhd"])
            flags, index = fragment[tfhd[0] + 3], fragment[tfhd[0] + 8 : tfhd[0] + 12]
            assert flags & 0x02 and index == b"\x00\x00\x00\x02"  # sample_description_index 2
            continue
        entries = senc_entries(fragment)
        assert len(entries) == len(sizes)
        saiz = _find(fragment, [b"moof", b"traf", b"saiz"])
        default_size, saiz_count = struct.unpack_from(">BI", fragment, saiz[0] + 4)
        assert saiz_count == len(sizes)
        saio = _find(fragment, [b"moof", b"traf", b"saio"])
        moof = fragment.index(b"moof") - 4
        aux = moof + struct.unpack_from(">I", fragment, saio[0] + 8)[0]
        assert fragment[aux : aux + 8] == entries[0][0], "saio points at the first sample's IV"
        mdat = _find(fragment, [b"mdat"])
        clear_mdat = _find(plain, [b"mdat"])
        position = mdat[0]
        for (iv, subsamples), size in zip(entries, sizes, strict=True):
            sample = fragment[position : position + size]
            decrypted, protected = ctr_decrypt(sample, iv, subsamples)
            offset = position - mdat[0]
            assert decrypted == plain[clear_mdat[0] + offset : clear_mdat[0] + offset + size]
            if rep == "v1":
                assert default_size in (0, 16)
                units = vcl_units(decrypted)
                assert protected >= sum(units) - 17 * len(units), "slices are encrypted past their header"
            assert iv not in ivs, "IVs are never reused"
            ivs.add(iv)
            position += size
        (tmp_path / "one.mp4").write_bytes(init + fragment)
        decrypt = ["ffmpeg", "-nostdin", "-v", "error", "-decryption_key", KEY.hex(), "-i",
                   str(tmp_path / "one.mp4"), "-f", "null", "-"]
        result = subprocess.run(decrypt, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0 and result.stderr == "", result.stderr
    without = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(tmp_path / "one.mp4"),
                              "-f", "null", "-"], capture_output=True, text=True, timeout=60, check=False)
    assert without.returncode != 0 or without.stderr != "", "the encrypted media decodes without its key"


def test_drm_info_is_asked_once_per_file(encrypted: httpx.Client, drm_service: FaultServer) -> None:
    for _ in range(3):
        assert encrypted.get("/dash/moov_end.mp4/manifest.mpd").status_code == 200
        assert encrypted.get("/dash/moov_end.mp4/init-v1.mp4").status_code == 200
    assert sum(n for key, n in drm_service.requests.items() if key.startswith("GET /drm/moov_end.mp4 ")) == 1


@pytest.mark.parametrize(("name", "status", "says"), [
    ("bframes.mp4", 502, "answered 500"),
    ("moov_end.mp4", 502, "not JSON"),
    ("clip_180p.mp4", 502, "16 bytes"),
    ("video_only.mp4", 502, "no key"),
])
def test_drm_info_failures_are_clear(name: str, status: int, says: str, drm_service: FaultServer) -> None:
    settings = Settings(media_root=str(FIXTURES), drm_info_url=f"{drm_service.base}/bad",
                        dash={"drm_enabled": True}, upstream_timeout=2.0)  # type: ignore[arg-type]
    for client in _client(settings):
        response = client.get(f"/dash/{name}/manifest.mpd")
        assert response.status_code == status and says in response.json()["error"], response.text
        assert client.get("/hls/bframes.mp4/master.m3u8").status_code == 200  # HLS is clear: unaffected


def test_a_silent_drm_service_is_a_504(drm_service: FaultServer) -> None:
    settings = Settings(media_root=str(FIXTURES), drm_info_url=f"{drm_service.base}/slow",
                        dash={"drm_enabled": True}, upstream_timeout=1.0)  # type: ignore[arg-type]
    for client in _client(settings):
        assert client.get("/dash/bframes.mp4/manifest.mpd").status_code == 504
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize(("text", "says"), [
    ('hls_encryption_method = "aes-128"\n', "needs keys"),
    ("drm_enabled = true\n", "drm_info_url"),
    ('drm_info_url = "http://drm"\n[hds]\ndrm_enabled = true\n', "not supported"),
    ('drm_enabled = true\ndrm_info_url = "http://drm"\n', "[hds] drm_enabled"),
    ('secret_key = "s"\nhls_encryption_method = "sample-aes"\nhls_encryption_key_formats = ["fairplay"]\n',
     "not a list of distinct formats"),
    ('secret_key = "s"\nhls_encryption_method = "aes-128"\n'
     'hls_encryption_key_formats = ["org.w3.clearkey"]\n', "need hls_encryption_method = sample-aes"),
    ('secret_key = "s"\nhls_encryption_method = "sample-aes"\n'
     'hls_encryption_key_formats = ["com.microsoft.playready"]\n', "PlayReady needs"),
])
def test_encryption_settings_are_checked(text: str, says: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=says.replace("[", r"\[").replace("]", r"\]")):
        load_settings(config, environ={})


# ---- HLS SAMPLE-AES (MPEG-TS) ----

@pytest.fixture(scope="module")
def sample_aes() -> Iterator[httpx.Client]:
    settings = Settings(media_root=str(FIXTURES), secret_key=SECRET, hls_encryption_method="sample-aes",
                        **LIVE_SETTINGS)  # type: ignore[arg-type]
    yield from _client(settings)


def without_emulation_prevention(nal: bytes) -> bytes:
    """H.264 7.4.1: each 0x03 after two zeros removed (as a decryptor does before decrypting)."""
    out, zeros = bytearray(), 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def sample_aes_decrypt_nal(nal: bytes, key: bytes, iv: bytes) -> bytes:
    """Apple's decryption of a video NAL: emulation prevention removed, then from byte 32 one
    16-byte block in ten decrypted while more than 16 bytes remain, one CBC chain per NAL."""
    data = bytearray(without_emulation_prevention(nal))
    if len(data) <= 48 or data[0] & 0x1F not in (1, 5):
        return nal
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    position = 32
    while len(data) - position > 16:
        data[position : position + 16] = decryptor.update(bytes(data[position : position + 16]))
        position += 160
    return bytes(data)


def annexb_nals(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (4-byte start codes, as our muxer writes them)."""
    return [part for part in data.split(b"\x00\x00\x00\x01") if part]


def adts_frames(data: bytes) -> list[tuple[bytes, bytes]]:
    """(header, payload) of each ADTS frame."""
    frames, position = [], 0
    while position < len(data):
        length = ((data[position + 3] & 3) << 11) | (data[position + 4] << 3) | (data[position + 5] >> 5)
        frames.append((data[position : position + 7], data[position + 7 : position + length]))
        position += length
    return frames


def es_of(segment: bytes, pid: int) -> tuple[bytes, list[tuple[int, int]]]:
    """The elementary stream bytes of one PID and its PES timestamps."""
    from tests import tsparse

    units = tsparse.pes_payloads(tsparse.packets(segment), pid)
    return b"".join(unit[9 + unit[8] :] for unit in units), [tsparse.pes_timestamp(unit) for unit in units]


def test_sample_aes_ts_decrypts_to_the_clear_samples(sample_aes: httpx.Client, clear: httpx.Client) -> None:
    """Every slice NAL and AAC frame of every segment, decrypted the way Apple's spec says (and
    ffmpeg and hls.js do), is the clear segment's; everything else, timestamps included, is the
    same; the PMT announces SAMPLE-AES streams."""
    index = sample_aes.get("/hls/bframes.mp4/index-v1-a1.m3u8").text
    tag = key_tag(index)
    # one IV for every segment, written out (hls.js needs it; nginx-vod-module's salt and the path)
    constant_iv = hashlib.md5(bytes.fromhex("a7c617ab522c403cf68a") + b"bframes.mp4").digest()
    assert tag == {"METHOD": "SAMPLE-AES", "URI": "encryption.key", "IV": f"0x{constant_iv.hex().upper()}"}
    assert "#EXT-X-VERSION:5" in index
    key = sample_aes.get("/hls/bframes.mp4/encryption.key").content
    encrypted_nals = 0
    for segment in m3u8.loads(index).segments:
        ours = sample_aes.get(f"/hls/bframes.mp4/{segment.uri}")
        theirs = clear.get(f"/hls/bframes.mp4/{segment.uri}").content
        assert ours.status_code == 200
        assert int(sample_aes.head(f"/hls/bframes.mp4/{segment.uri}").headers["content-length"]) == \
            len(ours.content)
        pmt = ours.content[188 : 2 * 188]
        assert b"\xdb\xe1\x00" in pmt and b"\x0f\x04zavc" in pmt, "H.264 as SAMPLE-AES (0xDB)"
        assert b"\xcf\xe1\x01" in pmt and b"\x0f\x04aacd" in pmt and b"apadzaac" in pmt, "AAC (0xCF)"
        iv = constant_iv
        video, video_times = es_of(ours.content, 0x100)
        clear_video, clear_times = es_of(theirs, 0x100)
        assert video_times == clear_times
        ours_nals, clear_nals = annexb_nals(video), annexb_nals(clear_video)
        assert len(ours_nals) == len(clear_nals)
        for nal, reference in zip(ours_nals, clear_nals, strict=True):
            assert sample_aes_decrypt_nal(nal, key, iv) == reference
            encrypted_nals += nal != reference
        audio, audio_times = es_of(ours.content, 0x101)
        clear_audio, clear_audio_times = es_of(theirs, 0x101)
        assert audio_times == clear_audio_times
        pairs = zip(adts_frames(audio), adts_frames(clear_audio), strict=True)
        for (header, payload), (clear_header, clear_payload) in pairs:
            assert header == clear_header
            whole = (len(payload) - 16) // 16 * 16
            if whole > 0:
                decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
                assert payload[16 : 16 + whole] != clear_payload[16 : 16 + whole]  # encrypted
                payload = payload[:16] + decryptor.update(payload[16 : 16 + whole]) + payload[16 + whole :]
            assert payload == clear_payload
    assert encrypted_nals > 50  # the slices really are encrypted


@pytest.fixture(scope="module")
def sample_aes_drm(drm_service: FaultServer) -> Iterator[httpx.Client]:
    """SAMPLE-AES with the DRM info's key and IV, the key served by a key server (the template)."""
    drm_service.documents[f"/keys/{KID.hex()}"] = KEY
    settings = Settings(media_root=str(FIXTURES), hls_encryption_method="sample-aes", drm_enabled=True,
                        drm_info_url=f"{drm_service.base}/drm-iv", hls_encryption_key_uri=drm_service.base
                        + "/keys/{key_id}", hds={"drm_enabled": False}, mss={"drm_enabled": False},
                        **LIVE_SETTINGS)  # type: ignore[arg-type]
    yield from _client(settings)


def test_ffmpeg_decodes_sample_aes_to_the_clear_frames(sample_aes_drm: httpx.Client,
                                                       clear: httpx.Client) -> None:
    """ffmpeg fetches the key, decrypts each sample (its hls_sample_encryption) and decodes the
    same pictures and sound as from the clear stream; here with the DRM info's key and IV. (28 of
    its 30 s: ffmpeg 5.1 does not decrypt the stream's very last frame right; it also decrypts the
    last frame of each segment after moving to the next, which is why our SAMPLE-AES IV is one
    for all segments: README, Encryption.)"""
    require_tools()
    tag = key_tag(sample_aes_drm.get("/hls/bframes.mp4/index-v1-a1.m3u8").text)
    assert tag["METHOD"] == "SAMPLE-AES" and tag["IV"] == f"0x{IV.hex().upper()}"

    def frames(base: str) -> list[str]:
        master = f"{base}/hls/bframes.mp4/master.m3u8"
        result = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", master, "-t", "28",
                                 "-map", "0:v", "-map", "0:a", "-f", "framemd5", "-"],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        return [line for line in result.stdout.splitlines() if not line.startswith("#")]

    ours, theirs = frames(str(sample_aes_drm.base_url)), frames(str(clear.base_url))
    assert len(ours) > 1000 and ours == theirs


def test_sample_aes_refuses_what_it_cannot_carry(sample_aes: httpx.Client) -> None:
    """TS carries SAMPLE-AES for H.264 with AAC or AC-3: HEVC in TS is a 415 for the playlist and
    its segments, never clear media; in fMP4 (hls_container auto) HEVC is 'cbcs'."""
    assert sample_aes.get("/hls/hevc.mp4/index-v1-a1.m3u8").status_code == 200
    init = sample_aes.get("/hls/hevc.mp4/init-v1-a1.mp4").content
    assert b"encv" in init and b"cbcs" in init
    settings = Settings(media_root=str(FIXTURES), secret_key=SECRET, hls_encryption_method="sample-aes",
                        hls_container="mpegts", **LIVE_SETTINGS)  # type: ignore[arg-type]
    for client in _client(settings):
        for name in ("index-v1-a1.m3u8", "seg-1-v1-a1.ts"):
            response = client.get(f"/hls/hevc.mp4/{name}")
            assert response.status_code == 415 and "SAMPLE-AES" in response.json()["error"], name


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0, 0, 0, 1, 2, 3, 4, 0x65, 0xFF]), max_size=60))
def test_emulation_prevention_matches_a_writers_state_machine(values: list[int]) -> None:
    """drm/sample_aes.emulation_prevented equals the byte-by-byte rule (nginx-vod-module's
    sample_aes_avc_write_emulation_prevention), and a decoder's removal gives the input back."""
    data = bytes(values)
    out, zeros = bytearray(), 0
    for byte in data:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    assert emulation_prevented(data) == bytes(out)
    assert without_emulation_prevention(bytes(out)) == data


@pytest.mark.parametrize("count", [0, 2])
def test_the_clear_lead_is_a_setting(count: int, drm_service: FaultServer) -> None:
    """drm_clear_lead_segment_count: 0 encrypts from the first fragment and the init has one sample
    entry; 2 leaves two fragments clear."""
    settings = Settings(media_root=str(FIXTURES), drm_info_url=f"{drm_service.base}/drm",
                        dash={"drm_enabled": True}, drm_clear_lead_segment_count=count,
                        **LIVE_SETTINGS)  # type: ignore[arg-type]
    with LiveServer(settings) as live, httpx.Client(base_url=live.base, timeout=30) as client:
        init = client.get("/dash/bframes.mp4/init-v1.mp4").content
        stsd = _find(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
        assert len(boxes(init, stsd[0] + 8, stsd[1])) == (2 if count else 1)
        encrypted = [b"senc" in client.get(f"/dash/bframes.mp4/fragment-{n}-v1.m4s").content
                     for n in (1, 2, 3)]
    assert encrypted == [n > count for n in (1, 2, 3)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 5, 6, 9]), st.binary(min_size=0, max_size=400)),
                min_size=1, max_size=4),
       st.sampled_from([b"\x00" * 40, bytes(range(40))]))
def test_sample_aes_frames_decrypt_to_themselves(nals: list[tuple[int, bytes]], padding: bytes) -> None:
    """Any length-prefixed frame (slices and others, with runs of zeros and bytes <= 3 anywhere):
    encrypted, each NAL unit decrypts the Apple way back to itself, and the lengths follow."""
    from vodorigin.drm.sample_aes import encrypt_h264_frame

    units = [bytes((0x60 | kind,)) + body + padding[: len(body) % 41] + b"\x80" for kind, body in nals]
    frame = b"".join(len(unit).to_bytes(4, "big") + unit for unit in units)
    encrypted = encrypt_h264_frame(memoryview(frame), KEY, IV, 4)
    position, decrypted = 0, []
    while position < len(encrypted):
        length = int.from_bytes(encrypted[position : position + 4], "big")
        decrypted.append(sample_aes_decrypt_nal(encrypted[position + 4 : position + 4 + length], KEY, IV))
        position += 4 + length
    assert position == len(encrypted) and decrypted == units


# --- cbcs -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cbcs(drm_service: FaultServer) -> Iterator[httpx.Client]:
    """DASH in Common Encryption 'cbcs' with keys from the DRM-info service."""
    settings = Settings(media_root=str(FIXTURES), drm_info_url=f"{drm_service.base}/drm",
                        dash={"drm_enabled": True, "dash_encryption_scheme": "cbcs"},
                        **LIVE_SETTINGS)  # type: ignore[arg-type]
    yield from _client(settings)


def tenc(init: bytes) -> tuple[int, int, bytes, bytes]:
    """(version, pattern byte, KID, constant IV) of the init segment's tenc (23001-7 8.2)."""
    start, _ = _find(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    at = init.index(b"tenc", start) + 4
    version, pattern, kid = init[at], init[at + 5], init[at + 8 : at + 24]
    iv = init[at + 25 : at + 25 + init[at + 24]] if init[at + 7] == 0 else b""
    return version, pattern, kid, iv


def paired_samples(fragment: bytes, plain: bytes, entries: list[tuple[bytes, list[tuple[int, int]] | None]]
                   ) -> Iterator[tuple[bytes, list[tuple[int, int]] | None, bytes, bytes]]:
    """Each sample's (IV, subsamples, bytes in the encrypted fragment, bytes in the clear one)."""
    position, clear_position = _find(fragment, [b"mdat"])[0], _find(plain, [b"mdat"])[0]
    for (iv, subsamples), size in zip(entries, trun_sizes(fragment), strict=True):
        clear_sample = plain[clear_position : clear_position + size]
        yield iv, subsamples, fragment[position : position + size], clear_sample
        position += size
        clear_position += size


def assert_ffmpeg_decrypts(init: bytes, fragment: bytes, clear_init: bytes, plain: bytes, folder: Path
                           ) -> list[str]:
    """ffmpeg decodes the encrypted fragment with the key to the clear fragment's frames (5.1
    reads encrypted fragments one at a time: given several, it mismatches their sample maps, its
    own cenc output included); the frames' digests."""
    (folder / "encrypted.mp4").write_bytes(init + fragment)
    (folder / "clear.mp4").write_bytes(clear_init + plain)
    decrypted = _framemd5("-decryption_key", KEY.hex(), "-i", str(folder / "encrypted.mp4"))
    assert decrypted and decrypted == _framemd5("-i", str(folder / "clear.mp4"))
    return decrypted


def cbcs_decrypt(sample: bytes, iv: bytes, subsamples: list[tuple[int, int]] | None, every: int) -> bytes:
    """A cbcs sample decrypted: in each protected range (the whole sample without subsamples),
    one block in `every` from its first, in one CBC chain from the constant IV."""
    ranges = [(0, len(sample))] if subsamples is None else []
    position = 0
    for clear_bytes, protected in subsamples or ():
        ranges.append((position + clear_bytes, protected))
        position += clear_bytes + protected
    out = bytearray(sample)
    for start, length in ranges:
        starts = range(start, start + length - length % 16, 16 * every)
        chain = Cipher(algorithms.AES(KEY), modes.CBC(iv)).decryptor()
        plain = chain.update(b"".join(sample[s : s + 16] for s in starts))
        for index, s in enumerate(starts):
            out[s : s + 16] = plain[16 * index : 16 * index + 16]
    return bytes(out)


@pytest.mark.parametrize(("media", "rep"), [("bframes.mp4", "v1"), ("bframes.mp4", "a1"), ("hevc.mp4", "v1")])
def test_cbcs_fragments_decrypt_to_the_clear_ones(media: str, rep: str, cbcs: httpx.Client,
                                                  clear: httpx.Client, tmp_path: Path) -> None:
    """tenc v1 carries the real KID, the 1:9 pattern (video) and a constant IV; each fragment's
    senc lists subsamples without IVs; decrypted here the cbcs way, every sample is the clear
    one, and a slice keeps only its header clear; ffmpeg decodes the whole stream with the key
    to the clear stream's frames, and not without it."""
    require_tools()
    mpd = etree.fromstring(cbcs.get(f"/dash/{media}/manifest.mpd").content)
    assert mpd.find(".//d:ContentProtection[@value='cbcs']", MPD) is not None
    timeline = mpd.find(f".//d:Representation[@id='{rep}']/d:SegmentTemplate/d:SegmentTimeline", MPD)
    count = sum(int(s.get("r", 0)) + 1 for s in timeline.iterfind("d:S", MPD))
    init = cbcs.get(f"/dash/{media}/init-{rep}.mp4").content
    version, pattern, kid, iv = tenc(init)
    assert (version, kid, len(iv)) == (1, KID, 16)
    assert pattern == (0x19 if rep == "v1" else 0)
    every = 10 if rep == "v1" else 1
    clear_init = clear.get(f"/dash/{media}/init-{rep}.mp4").content
    for number in range(2, count + 1):  # fragment 1 is the clear lead
        url = f"/dash/{media}/fragment-{number}-{rep}.m4s"
        fragment = cbcs.get(url).content
        plain = clear.get(url).content
        for _, subsamples, sample, expected in paired_samples(fragment, plain, senc_entries(fragment, 0)):
            assert (subsamples is None) == (rep == "a1")
            assert cbcs_decrypt(sample, iv, subsamples, every) == expected
            assert sample != expected or len(sample) < 16
            if subsamples is not None:
                assert sum(c + p for c, p in subsamples) == len(sample)
                assert all(protected % 16 == 0 for _, protected in subsamples)
                slices = vcl_units(expected)
                assert sum(p for _, p in subsamples) >= sum(slices) - (16 + 64) * len(slices)
        decrypted = assert_ffmpeg_decrypts(init, fragment, clear_init, plain, tmp_path)
    encrypted_file = str(tmp_path / "encrypted.mp4")
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", encrypted_file, "-f", "framemd5", "-"]
    without = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert without.returncode != 0 or without.stderr != "" or \
        [line for line in without.stdout.splitlines() if not line.startswith("#")] != decrypted


def _framemd5(*arguments: str) -> list[str]:
    """ffmpeg's digest of every decoded frame (comment lines dropped)."""
    result = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *arguments, "-f", "framemd5", "-"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return [line for line in result.stdout.splitlines() if not line.startswith("#")]


# --- HLS SAMPLE-AES in fMP4: cbcs ------------------------------------------------------------------

FORMATS = ("org.w3.clearkey", "urn:uuid:" + WIDEVINE, "com.microsoft.playready",
           "com.apple.streamingkeydelivery", "identity")


@pytest.fixture(scope="module")
def hls_cbcs(drm_service: FaultServer) -> Iterator[httpx.Client]:
    """HLS fMP4 SAMPLE-AES ('cbcs') with DRM keys, an EXT-X-KEY for every key format."""
    settings = Settings(media_root=str(FIXTURES), hls_container="fmp4", hls_encryption_method="sample-aes",
                        hls_encryption_key_formats=FORMATS, drm_enabled=True,
                        drm_info_url=f"{drm_service.base}/drm", hds={"drm_enabled": False},
                        mss={"drm_enabled": False}, **LIVE_SETTINGS)  # type: ignore[arg-type]
    yield from _client(settings)


def data_uri(uri: str) -> bytes:
    assert uri.startswith("data:text/plain") and ";base64," in uri
    return base64.b64decode(uri.split(";base64,", 1)[1])


def test_hls_cbcs_key_tags_name_every_drm_system(hls_cbcs: httpx.Client) -> None:
    """One EXT-X-KEY per key format, each with the IV tenc carries; the master repeats them as
    EXT-X-SESSION-KEY; each system's URI carries what its CDM needs."""
    text = hls_cbcs.get("/hls/irregular_gop.mp4/index-v1-a1.m3u8").text
    tags = key_tags(text)
    assert [tag.get("KEYFORMAT", "identity") for tag in tags] == list(FORMATS)
    init = hls_cbcs.get("/hls/irregular_gop.mp4/init-v1-a1.mp4").content
    _, _, kid, iv = tenc(init)
    assert kid == KID
    for tag in tags:
        assert tag["METHOD"] == "SAMPLE-AES" and tag["IV"] == "0x" + iv.hex().upper()
    uris = {tag.get("KEYFORMAT", "identity"): tag["URI"] for tag in tags}
    assert data_uri(uris["org.w3.clearkey"]) == KID
    widevine = data_uri(uris["urn:uuid:" + WIDEVINE])
    assert widevine[4:8] == b"pssh" and widevine[12:28] == uuid.UUID(WIDEVINE).bytes
    assert widevine.endswith(b"widevine data")
    assert data_uri(uris["com.microsoft.playready"]) == b"<WRMHEADER/>"
    assert uris["com.apple.streamingkeydelivery"] == f"skd://{KID.hex()}"
    assert all(tag["KEYID"] == "0x" + KID.hex().upper() for tag in tags if "KEYID" in tag)
    master = hls_cbcs.get("/hls/irregular_gop.mp4/master.m3u8").text
    assert key_tags(master, "#EXT-X-SESSION-KEY:") == tags
    assert b"pssh" in init  # the DRM systems' pssh boxes
    missing = hls_cbcs.get("/hls/bframes.mp4/index-v1-a1.m3u8")  # its DRM info has no PlayReady data
    assert missing.status_code == 502 and "PlayReady" in missing.json()["error"]


def test_hls_cbcs_segments_decrypt_to_the_clear_ones(hls_cbcs: httpx.Client, clear_fmp4: httpx.Client,
                                                     tmp_path: Path) -> None:
    """Every segment of a video rendition: its senc maps subsamples (no IVs), decrypted the cbcs
    way it is the clear segment; ffmpeg decodes it with the key to the clear frames."""
    require_tools()
    base = "/hls/video_only.mp4"
    playlist = m3u8.loads(hls_cbcs.get(f"{base}/index-v1.m3u8").text)
    init = hls_cbcs.get(f"{base}/init-v1.mp4").content
    _, pattern, kid, iv = tenc(init)
    assert (pattern, kid) == (0x19, KID)
    clear_init = clear_fmp4.get(f"{base}/init-v1.mp4").content
    assert len(playlist.segments) > 3
    for segment in playlist.segments:
        data = hls_cbcs.get(f"{base}/{segment.uri}").content
        plain = clear_fmp4.get(f"{base}/{segment.uri}").content
        for _, subsamples, sample, expected in paired_samples(data, plain, senc_entries(data, 0)):
            assert sample != expected and cbcs_decrypt(sample, iv, subsamples, 10) == expected
        assert_ffmpeg_decrypts(init, data, clear_init, plain, tmp_path)


# --- CPIX -----------------------------------------------------------------------------------------

VIDEO_KEY, VIDEO_KID = bytes(range(16)), uuid.uuid4().bytes
AUDIO_KEY, AUDIO_KID = bytes(range(16, 32)), uuid.uuid4().bytes


def pssh_box(system: str, data: bytes, kids: tuple[bytes, ...] = ()) -> bytes:
    """A pssh box as a key server writes it (version 1 when it lists KIDs)."""
    version = 1 if kids else 0
    body = uuid.UUID(system).bytes + (struct.pack(">I", len(kids)) + b"".join(kids) if kids else b"")
    body += struct.pack(">I", len(data)) + data
    return struct.pack(">I4sI", 12 + len(body), b"pssh", version << 24) + body


def cpix_document(encrypted_key: bool = False, rule_kid: bytes = AUDIO_KID) -> bytes:
    """A CPIX 2.3 document: a video key (intendedTrackType VIDEO) and an audio key (an AudioFilter),
    each with a ClearKey and a Widevine pssh."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    def content_key(kid: bytes, key: bytes) -> str:
        secret = f"<pskc:EncryptedValue>{b64(key)}</pskc:EncryptedValue>" if encrypted_key else \
            f"<pskc:PlainValue>{b64(key)}</pskc:PlainValue>"
        return (f'<cpix:ContentKey kid="{uuid.UUID(bytes=kid)}" commonEncryptionScheme="cenc">'
                f"<cpix:Data><pskc:Secret>{secret}</pskc:Secret></cpix:Data></cpix:ContentKey>")

    def systems(kid: bytes) -> str:
        return "".join(f'<cpix:DRMSystem kid="{uuid.UUID(bytes=kid)}" systemId="{system}">'
                       f"<cpix:PSSH>{b64(box)}</cpix:PSSH></cpix:DRMSystem>"
                       for system, box in ((CLEARKEY, pssh_box(CLEARKEY, b"", (kid,))),
                                           (WIDEVINE, pssh_box(WIDEVINE, b"wv:" + kid))))
    return (f'<?xml version="1.0" encoding="UTF-8"?><cpix:CPIX contentId="test" '
            f'xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">'
            f"<cpix:ContentKeyList>{content_key(VIDEO_KID, VIDEO_KEY)}{content_key(AUDIO_KID, AUDIO_KEY)}"
            f"</cpix:ContentKeyList><cpix:DRMSystemList>{systems(VIDEO_KID)}{systems(AUDIO_KID)}"
            f"</cpix:DRMSystemList><cpix:ContentKeyUsageRuleList>"
            f'<cpix:ContentKeyUsageRule kid="{uuid.UUID(bytes=VIDEO_KID)}" intendedTrackType="VIDEO"/>'
            f'<cpix:ContentKeyUsageRule kid="{uuid.UUID(bytes=rule_kid)}"><cpix:AudioFilter/>'
            f"</cpix:ContentKeyUsageRule></cpix:ContentKeyUsageRuleList></cpix:CPIX>").encode()


@pytest.fixture(scope="module")
def cpix_service() -> Iterator[FaultServer]:
    with FaultServer() as upstream:
        upstream.documents["/cpix/bframes.mp4"] = cpix_document()
        upstream.documents["/cpix/clip_180p.mp4"] = cpix_document(encrypted_key=True)
        upstream.documents["/cpix/clip_360p.mp4"] = cpix_document(rule_kid=KID)
        upstream.documents["/cpix/moov_end.mp4"] = b"<cpix:CPIX"
        upstream.documents["/cpix/video_only.mp4"] = b"<other/>"
        upstream.statuses["/cpix/audio_only.m4a"] = 404
        yield upstream


@pytest.fixture(scope="module")
def cpix(cpix_service: FaultServer) -> Iterator[httpx.Client]:
    settings = Settings(media_root=str(FIXTURES), cpix_url=f"{cpix_service.base}/cpix",
                        dash={"drm_enabled": True}, **LIVE_SETTINGS)  # type: ignore[arg-type]
    yield from _client(settings)


def test_cpix_keys_encrypt_each_track_type_with_its_own(cpix: httpx.Client, clear: httpx.Client) -> None:
    """The video AdaptationSet and init name the video key, the audio ones the audio key; the
    key server's pssh boxes go into the init segments and the MPD as they are; each fragment
    decrypts with its track type's key to the clear fragment."""
    mpd = etree.fromstring(cpix.get("/dash/bframes.mp4/manifest.mpd").content)
    tracks = (("video", VIDEO_KID, VIDEO_KEY, "v1"), ("audio", AUDIO_KID, AUDIO_KEY, "a1"))
    for content, kid, key, rep in tracks:
        adaptation = mpd.find(f".//d:AdaptationSet[@contentType='{content}']", MPD)
        defaults = {element.get(f"{{{MPD['cenc']}}}default_KID")
                    for element in adaptation.iterfind("d:ContentProtection", MPD)}
        assert defaults == {str(uuid.UUID(bytes=kid))}
        widevine = adaptation.find(f"d:ContentProtection[@schemeIdUri='urn:uuid:{WIDEVINE}']/cenc:pssh", MPD)
        assert base64.b64decode(widevine.text) == pssh_box(WIDEVINE, b"wv:" + kid)
        init = cpix.get(f"/dash/bframes.mp4/init-{rep}.mp4").content
        assert pssh_box(CLEARKEY, b"", (kid,)) in init and pssh_box(WIDEVINE, b"wv:" + kid) in init
        tenc_at = init.index(b"tenc") + 4
        assert init[tenc_at + 8 : tenc_at + 24] == kid
        url = f"/dash/bframes.mp4/fragment-2-{rep}.m4s"
        fragment, plain = cpix.get(url).content, clear.get(url).content
        for iv, subsamples, sample, expected in paired_samples(fragment, plain, senc_entries(fragment)):
            decrypted, protected = ctr_decrypt(sample, iv, subsamples, key)
            assert decrypted == expected and protected > 0


@pytest.mark.parametrize(("name", "says"), [("clip_180p.mp4", "encrypted"), ("clip_360p.mp4", "usage rule"),
                                            ("moov_end.mp4", "not XML"), ("video_only.mp4", "not a CPIX"),
                                            ("audio_only.m4a", "no key")])
def test_cpix_failures_are_clear(name: str, says: str, cpix: httpx.Client) -> None:
    response = cpix.get(f"/dash/{name}/manifest.mpd")
    assert response.status_code == 502 and says in response.json()["error"]


@settings(max_examples=300, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 3000), st.sampled_from(b'<>/"= AZaz09+-:\x00\xff')),
                      max_size=8), cut=st.integers(0, 3000))
def test_hostile_cpix_documents_are_upstream_errors(edits: list[tuple[int, int]], cut: int) -> None:
    """A CPIX document with bytes changed or cut short: its keys, or a 502 naming the problem."""
    document = bytearray(cpix_document())
    for position, value in edits:
        if position < len(document):
            document[position] = value
    try:
        keys = parse_cpix(bytes(document[: cut or None]), "test")
    except UpstreamError:
        return
    assert len(keys.default.key) == 16 and all(len(key.key) == 16 for key in keys.by_type.values())


def test_one_cpix_file_keys_every_file(tmp_path: Path) -> None:
    document = tmp_path / "keys.cpix.xml"
    document.write_bytes(cpix_document())
    settings = Settings(media_root=str(FIXTURES), cpix_file=str(document), dash={"drm_enabled": True},
                        **LIVE_SETTINGS)  # type: ignore[arg-type]
    for client in _client(settings):
        for name in ("bframes.mp4", "clip_360p.mp4"):
            mpd = client.get(f"/dash/{name}/manifest.mpd").text
            assert str(uuid.UUID(bytes=VIDEO_KID)) in mpd and str(uuid.UUID(bytes=AUDIO_KID)) in mpd
    with pytest.raises(ValueError, match="one key source"):
        Settings(cpix_file=str(document), drm_info_url="http://drm", drm_enabled=True)


# --- Smooth Streaming with PlayReady ---------------------------------------------------------------

@pytest.fixture(scope="module")
def playready(drm_service: FaultServer) -> Iterator[httpx.Client]:
    settings = Settings(media_root=str(FIXTURES), drm_info_url=f"{drm_service.base}/drm",
                        mss={"drm_enabled": True}, **LIVE_SETTINGS)  # type: ignore[arg-type]
    yield from _client(settings)


def piff_entries(fragment: bytes) -> tuple[int, list[tuple[bytes, list[tuple[int, int]] | None]]]:
    """Where PIFF's SampleEncryptionBox starts in the fragment, and each sample's (IV, subsamples)."""
    uuid_box = bytes.fromhex("a2394f525a9b4f14a2446c427c648df4")
    start = fragment.index(b"uuid" + uuid_box) - 4
    flags = int.from_bytes(fragment[start + 25 : start + 28], "big")
    count = struct.unpack_from(">I", fragment, start + 28)[0]
    position, entries = start + 32, []
    for _ in range(count):
        iv, subsamples = fragment[position : position + 8], None
        position += 8
        if flags & 2:
            n = struct.unpack_from(">H", fragment, position)[0]
            subsamples = [struct.unpack_from(">HI", fragment, position + 2 + 6 * k) for k in range(n)]
            position += 2 + 6 * n
        entries.append((iv, subsamples))
    return start, entries


def test_smooth_playready_fragments_decrypt_to_the_clear_ones(playready: httpx.Client,
                                                               clear: httpx.Client) -> None:
    """The manifest ends with the PlayReady object as a ProtectionHeader; every video and audio
    fragment carries its IVs and subsamples in PIFF's uuid box (saio pointing at them), and
    decrypted it is the clear fragment; text streams stay clear."""
    root = etree.fromstring(playready.get("/mss/irregular_gop.mp4/manifest").content)
    header = root.find("Protection/ProtectionHeader")
    assert header.get("SystemID") == PLAYREADY and base64.b64decode(header.text) == b"<WRMHEADER/>"
    assert root.index(root.find("Protection")) == len(root) - 1
    for stream in root.iterfind("StreamIndex"):
        level = stream.find("QualityLevel")
        times = [int(c.get("t")) for c in stream.findall("c")]
        for time in times[:3]:
            url = "/mss/irregular_gop.mp4/" + stream.get("Url").replace("{bitrate}", level.get("Bitrate")) \
                .replace("{start time}", str(time))
            fragment, plain = playready.get(url).content, clear.get(url).content
            assert b"senc" not in fragment
            start, entries = piff_entries(fragment)
            saio = _find(fragment, [b"moof", b"traf", b"saio"])
            moof = fragment.index(b"moof") - 4
            assert moof + struct.unpack_from(">I", fragment, saio[0] + 8)[0] == start + 32
            for iv, subsamples, sample, expected in paired_samples(fragment, plain, entries):
                decrypted, protected = ctr_decrypt(sample, iv, subsamples)
                assert decrypted == expected and protected > 0
                assert (subsamples is not None) == (stream.get("Type") == "video")
    missing = playready.get("/mss/bframes.mp4/manifest")  # its DRM info has no PlayReady object
    assert missing.status_code == 502 and "PlayReady" in missing.json()["error"]


def test_smooth_refuses_a_presentation_under_several_keys(cpix_service: FaultServer) -> None:
    """CPIX gives video and audio their own keys; a Smooth manifest has room for one."""
    settings = Settings(media_root=str(FIXTURES), cpix_url=f"{cpix_service.base}/cpix",
                        mss={"drm_enabled": True}, **LIVE_SETTINGS)  # type: ignore[arg-type]
    for client in _client(settings):
        response = client.get("/mss/bframes.mp4/manifest")
        assert response.status_code == 415 and "one key per presentation" in response.json()["error"]


# --- HLS SAMPLE-AES-CTR: cenc in fMP4 -----------------------------------------------------------------

@pytest.fixture(scope="module")
def hls_ctr(drm_service: FaultServer) -> Iterator[httpx.Client]:
    formats = ("org.w3.clearkey", "urn:uuid:" + WIDEVINE)
    settings = Settings(media_root=str(FIXTURES), hls_container="fmp4", drm_enabled=True,
                        hls_encryption_method="sample-aes-ctr", hls_encryption_key_formats=formats,
                        drm_info_url=f"{drm_service.base}/drm", hds={"drm_enabled": False},
                        **LIVE_SETTINGS)  # type: ignore[arg-type]
    yield from _client(settings)


def test_hls_sample_aes_ctr_decrypts_to_the_clear_segments(hls_ctr: httpx.Client, clear_fmp4: httpx.Client,
                                                            tmp_path: Path) -> None:
    """METHOD=SAMPLE-AES-CTR without an IV (each sample's is in senc); the init says 'cenc' with
    the KID; every segment decrypts to the clear one, and ffmpeg decodes it with the key."""
    require_tools()
    base = "/hls/video_only.mp4"
    text = hls_ctr.get(f"{base}/index-v1.m3u8").text
    tags = key_tags(text)
    assert [tag["METHOD"] for tag in tags] == ["SAMPLE-AES-CTR"] * 2 and all("IV" not in tag for tag in tags)
    init = hls_ctr.get(f"{base}/init-v1.mp4").content
    assert b"schm" in init and init[init.index(b"schm") + 8 : init.index(b"schm") + 12] == b"cenc"
    version, _, kid, _ = tenc(init)
    assert (version, kid) == (0, KID)
    clear_init = clear_fmp4.get(f"{base}/init-v1.mp4").content
    for segment in m3u8.loads(text).segments:
        data = hls_ctr.get(f"{base}/{segment.uri}").content
        plain = clear_fmp4.get(f"{base}/{segment.uri}").content
        for iv, subsamples, sample, expected in paired_samples(data, plain, senc_entries(data)):
            decrypted, protected = ctr_decrypt(sample, iv, subsamples)
            assert decrypted == expected and protected > 0
        assert_ffmpeg_decrypts(init, data, clear_init, plain, tmp_path)


def test_sample_aes_ctr_is_fmp4_only(drm_service: FaultServer) -> None:
    settings = Settings(media_root=str(FIXTURES), hls_container="mpegts",
                        hls_encryption_method="sample-aes-ctr", drm_enabled=True,
                        drm_info_url=f"{drm_service.base}/drm", hds={"drm_enabled": False},
                        **LIVE_SETTINGS)  # type: ignore[arg-type]
    for client in _client(settings):
        for name in ("index-v1-a1.m3u8", "seg-1-v1-a1.ts"):
            response = client.get(f"/hls/bframes.mp4/{name}")
            assert response.status_code == 415 and "SAMPLE-AES-CTR" in response.json()["error"], name
