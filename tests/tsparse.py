"""A small MPEG-TS reader for tests: packets, continuity counters, PSI CRCs, PES timestamps."""

from __future__ import annotations

from dataclasses import dataclass

from vodorigin.mux.mpegts import crc32_mpeg2


@dataclass
class Packet:
    pid: int
    unit_start: bool
    counter: int
    has_payload: bool
    adaptation: bytes
    payload: bytes


def packets(data: bytes) -> list[Packet]:
    assert len(data) % 188 == 0, "not a whole number of TS packets"
    result = []
    for offset in range(0, len(data), 188):
        packet = data[offset : offset + 188]
        assert packet[0] == 0x47, f"lost sync at {offset}"
        control = (packet[3] >> 4) & 3
        position = 4
        adaptation = b""
        if control & 2:
            length = packet[4]
            adaptation = packet[5 : 5 + length]
            position = 5 + length
            assert position <= 188
        result.append(Packet(((packet[1] & 0x1F) << 8) | packet[2], bool(packet[1] & 0x40),
                             packet[3] & 0x0F, bool(control & 1), adaptation, packet[position:]))
    return result


def check_psi_crc(packet: Packet) -> None:
    pointer = packet.payload[0]
    section = packet.payload[1 + pointer :]
    length = ((section[1] & 0x0F) << 8) | section[2]
    assert crc32_mpeg2(section[: 3 + length]) == 0, "PSI CRC mismatch"


def continuity_errors(stream: list[Packet]) -> list[str]:
    """Continuity counter breaks per PID over a packet sequence (13818-1 2.4.3.3)."""
    last: dict[int, int] = {}
    errors = []
    for index, packet in enumerate(stream):
        if not packet.has_payload:
            continue
        previous = last.get(packet.pid)
        if previous is not None and packet.counter != (previous + 1) % 16:
            errors.append(f"pid {packet.pid:#x} packet {index}: {previous} -> {packet.counter}")
        last[packet.pid] = packet.counter
    return errors


def pes_payloads(stream: list[Packet], pid: int) -> list[bytes]:
    """Whole PES packets of one PID."""
    units: list[bytearray] = []
    for packet in stream:
        if packet.pid != pid:
            continue
        if packet.unit_start:
            units.append(bytearray())
        if units:
            units[-1] += packet.payload
    return [bytes(u) for u in units]


def pes_timestamp(pes: bytes) -> tuple[int, int]:
    """(pts, dts) of a PES packet (dts = pts when absent)."""
    assert pes[:3] == b"\x00\x00\x01"

    def read(at: int) -> int:
        b = pes[at : at + 5]
        return ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1

    flags = pes[7] >> 6
    pts = read(9)
    return pts, read(14) if flags == 3 else pts
