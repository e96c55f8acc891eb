"""Keys from a CPIX document (DASH-IF Content Protection Information Exchange Format 2.3), what
SPEKE v2 and commercial key servers answer.

Read here (namespace urn:dashif:org:cpix, keys in PSKC, RFC 6030):
* ContentKeyList/ContentKey: @kid (a UUID), the key in Data/pskc:Secret/pskc:PlainValue (base64 of
  16 bytes), and optionally @explicitIV (base64 of 16 bytes: the IV HLS and cbcs use). A key sent
  encrypted (pskc:EncryptedValue, a document key) is refused: no document key is configured here.
* DRMSystemList/DRMSystem: @kid and @systemId, with PSSH (base64 of a whole pssh box, written in
  init segments and MPDs as it is) and, for PlayReady, SmoothStreamingProtectionHeaderData (the
  PlayReady object, base64) when the box carries none.
* ContentKeyUsageRuleList/ContentKeyUsageRule: @kid with @intendedTrackType (VIDEO, AUDIO, ALL, or
  a name such as SD or HD, which this origin takes as video) or a VideoFilter / AudioFilter child:
  which tracks that key encrypts. One key per track type; without rules, the first key is every
  track's.

Anything else than such a document (not XML, no plain key, a key of another length, a rule naming
an unknown key) is a 502 naming it, never clear media.
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid

from lxml import etree

from vodorigin.drm.keys import CLEARKEY_SYSTEM_ID, PLAYREADY_SYSTEM_ID, ContentKey, FileKeys, SystemData
from vodorigin.errors import UpstreamError
from vodorigin.media.model import MediaType

CPIX = "urn:dashif:org:cpix"
PSKC = "urn:ietf:params:xml:ns:keyprov:pskc"
NS = {"cpix": CPIX, "pskc": PSKC}
AUDIO_TYPES = ("AUDIO",)
ALL_TYPES = ("ALL", "")


def parse_cpix(data: bytes, where: str) -> FileKeys:
    """The keys of a CPIX document, by track type."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise UpstreamError(f"{where}: the CPIX document is not XML ({error})") from None
    if root.tag != f"{{{CPIX}}}CPIX":
        raise UpstreamError(f"{where}: not a CPIX document (its root is {root.tag[:80]})")
    systems: dict[bytes, list[SystemData]] = {}
    for element in root.iterfind("cpix:DRMSystemList/cpix:DRMSystem", NS):
        kid = _uuid(element.get("kid"), "DRMSystem kid", where)
        systems.setdefault(kid, []).append(_system(element, where))
    keys = {}
    for element in root.iterfind("cpix:ContentKeyList/cpix:ContentKey", NS):
        kid = _uuid(element.get("kid"), "ContentKey kid", where)
        if element.find("cpix:Data/pskc:Secret/pskc:EncryptedValue", NS) is not None:
            raise UpstreamError(f"{where}: the key {uuid.UUID(bytes=kid)} is encrypted (a CPIX document "
                                "key); only plain keys are read here")
        value = _bytes16(element.findtext("cpix:Data/pskc:Secret/pskc:PlainValue", None, NS), "key", where)
        explicit_iv = element.get("explicitIV")
        iv = _bytes16(explicit_iv, "explicitIV", where) if explicit_iv else None
        keys[kid] = ContentKey(value, kid, iv, tuple(systems.get(kid, ())))
    if not keys:
        raise UpstreamError(f"{where}: the CPIX document has no content key")
    by_type: dict[MediaType, ContentKey] = {}
    default = next(iter(keys.values()))
    for rule in root.iterfind("cpix:ContentKeyUsageRuleList/cpix:ContentKeyUsageRule", NS):
        kid = _uuid(rule.get("kid"), "ContentKeyUsageRule kid", where)
        if kid not in keys:
            raise UpstreamError(f"{where}: a usage rule names the key {uuid.UUID(bytes=kid)}, which the "
                                "document does not hold")
        kinds = _rule_types(rule)
        if not kinds:
            default = keys[kid]
        for kind in kinds:
            by_type.setdefault(kind, keys[kid])
    return FileKeys(default, by_type)


def _rule_types(rule: etree._Element) -> tuple[MediaType, ...]:
    """The track types a usage rule applies to (none: every track)."""
    if rule.find("cpix:VideoFilter", NS) is not None:
        return (MediaType.VIDEO,)
    if rule.find("cpix:AudioFilter", NS) is not None:
        return (MediaType.AUDIO,)
    intended = (rule.get("intendedTrackType") or "").upper()
    if intended in ALL_TYPES:
        return ()
    return (MediaType.AUDIO,) if intended in AUDIO_TYPES else (MediaType.VIDEO,)


def _system(element: etree._Element, where: str) -> SystemData:
    system_id = _uuid(element.get("systemId"), "DRMSystem systemId", where)
    box = _base64(element.findtext("cpix:PSSH", "", NS), "PSSH", where)
    data = _pssh_data(box, system_id, where) if box else b""
    header = element.findtext("cpix:SmoothStreamingProtectionHeaderData", "", NS)
    if system_id == PLAYREADY_SYSTEM_ID and not data and header:
        data = _base64(header, "SmoothStreamingProtectionHeaderData", where)
    return SystemData(system_id, data, box)


def _pssh_data(box: bytes, system_id: bytes, where: str) -> bytes:
    """What nginx-vod-module's DRM info would give for this box: its data (for ClearKey, the body
    after the system id: KID count, KIDs, data size, data)."""
    if len(box) < 32 or box[4:8] != b"pssh" or struct.unpack_from(">I", box)[0] != len(box) \
            or box[12:28] != system_id:
        raise UpstreamError(f"{where}: a PSSH is not a pssh box of its DRM system")
    if system_id == CLEARKEY_SYSTEM_ID:
        return box[28:]
    position = 28
    if box[8] == 1:
        count = struct.unpack_from(">I", box, position)[0]
        position += 4 + 16 * count
    if position + 4 > len(box) or position + 4 + struct.unpack_from(">I", box, position)[0] != len(box):
        raise UpstreamError(f"{where}: a PSSH box's data size does not match the box")
    return box[position + 4 :]


def _uuid(value: str | None, name: str, where: str) -> bytes:
    try:
        return uuid.UUID(value or "").bytes
    except ValueError:
        raise UpstreamError(f"{where}: {name} {str(value)[:40]!r} is not a UUID") from None


def _bytes16(value: str | None, name: str, where: str) -> bytes:
    decoded = _base64(value or "", name, where)
    if len(decoded) != 16:
        raise UpstreamError(f"{where}: {name} must be 16 bytes (base64), not {len(decoded)}")
    return decoded


def _base64(value: str, name: str, where: str) -> bytes:
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamError(f"{where}: {name} is not valid base64") from None
