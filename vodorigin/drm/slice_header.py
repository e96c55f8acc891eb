"""The size of an H.264 slice header (ISO/IEC 14496-10 7.3.3), for 'cbcs', which leaves it clear.

ISO/IEC 23001-7 (10.4, 'cbcs' on NAL-structured video) encrypts a slice from the first byte of
its slice data: the NAL header and the slice header stay clear so that a decoder (or a Fairplay
pipeline) can read them before decrypting. The header's length depends on the sequence and picture
parameter sets it names, so those are parsed too (7.3.2.1.1, 7.3.2.2), from the avcC and from any
parameter set NAL units inside the samples (avc3).

Sizes are in bytes of the NAL unit as stored (emulation prevention bytes included), from its first
byte (the NAL header) to the byte holding the header's last bit. With CABAC the slice data starts on
the next byte (cabac_alignment_one_bit); with CAVLC the last header byte, shared with the first
data bits, stays clear.

A header we cannot read (a missing parameter set, bits past the NAL's end) is a MediaError: an
unreadable slice is refused, never sent with its picture in the clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from vodorigin.errors import MediaError

SPS, PPS = 7, 8
IDR = 5
SLICE_P, SLICE_B, SLICE_I, SLICE_SP, SLICE_SI = range(5)
HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)  # 7.3.2.1.1
MAX_SCAN = 1024  # bytes of a NAL read to find its header: more than the longest header can take
MAX_LOOP = 64  # entries of a list a header may repeat (reference list edits, memory operations)


class _Bits:
    """An RBSP bit reader (7.2: u(n), ue(v), se(v)) over the NAL's bytes with emulation prevention
    removed; `escaped_size` maps the bits read back to bytes of the NAL as stored."""

    def __init__(self, nal: bytes | memoryview, skip: int) -> None:
        stored = bytes(nal[skip:MAX_SCAN])
        self.skip = skip
        self.removed: list[int] = []  # RBSP positions before which an emulation prevention byte went
        if b"\0\0\3" not in stored:
            self.data = stored
        else:
            data, zeros = bytearray(), 0
            for byte in stored:
                if zeros >= 2 and byte == 3:
                    self.removed.append(len(data))
                    zeros = 0
                    continue
                zeros = zeros + 1 if byte == 0 else 0
                data.append(byte)
            self.data = bytes(data)
        self.position = 0

    def u(self, count: int) -> int:
        if self.position + count > len(self.data) * 8:
            raise MediaError("an H.264 slice header or parameter set runs past its NAL unit")
        value = 0
        for _ in range(count):
            byte = self.data[self.position >> 3]
            value = (value << 1) | ((byte >> (7 - (self.position & 7))) & 1)
            self.position += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise MediaError("an H.264 Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)

    def escaped_size(self) -> int:
        """Bytes of the stored NAL up to and including the one holding the last bit read."""
        rbsp = -(-self.position // 8)
        return self.skip + rbsp + sum(1 for where in self.removed if where < rbsp)


@dataclass(frozen=True, slots=True)
class _Sps:
    chroma_array_type: int
    log2_max_frame_num: int
    poc_type: int
    log2_max_poc_lsb: int
    delta_pic_order_always_zero: bool
    frame_mbs_only: bool
    separate_colour_plane: bool
    pic_size_in_map_units: int


@dataclass(frozen=True, slots=True)
class _Pps:
    sps_id: int
    cabac: bool
    bottom_field_pic_order_in_frame_present: bool
    num_slice_groups: int
    slice_group_map_type: int
    slice_group_change_rate: int
    num_ref_idx_default: tuple[int, int]
    weighted_pred: bool
    weighted_bipred_idc: int
    deblocking_filter_control_present: bool
    redundant_pic_cnt_present: bool


class AvcSlices:
    """The parameter sets of one H.264 stream, and the slice header sizes they imply."""

    def __init__(self, parameter_sets: tuple[bytes, ...] | list[bytes] = ()) -> None:
        self.sps: dict[int, _Sps] = {}
        self.pps: dict[int, _Pps] = {}
        for nal in parameter_sets:
            self.learn(nal)

    def learn(self, nal: bytes | memoryview) -> None:
        """Remember a sequence or picture parameter set (other NAL units are ignored)."""
        kind = nal[0] & 0x1F if len(nal) else 0
        if kind == SPS:
            sps_id, sps = _parse_sps(_Bits(nal, 1))
            self.sps[sps_id] = sps
        elif kind == PPS:
            pps_id, pps = _parse_pps(_Bits(nal, 1))
            self.pps[pps_id] = pps

    def header_size(self, nal: bytes | memoryview) -> int:
        """Stored bytes from the NAL header through the slice header of a slice NAL (type 1 or 5)."""
        bits = _Bits(nal, 1)
        nal_ref_idc, nal_type = (nal[0] >> 5) & 3, nal[0] & 0x1F
        bits.ue()  # first_mb_in_slice
        slice_type = bits.ue()
        if slice_type > 9:
            raise MediaError(f"H.264 slice type {slice_type}")
        slice_type %= 5
        pps = self.pps.get(bits.ue())
        sps = self.sps.get(pps.sps_id) if pps is not None else None
        if pps is None or sps is None:
            raise MediaError("an H.264 slice names a parameter set the stream does not carry")
        if sps.separate_colour_plane:
            bits.u(2)  # colour_plane_id
        bits.u(sps.log2_max_frame_num)  # frame_num
        field_pic = False
        if not sps.frame_mbs_only:
            field_pic = bool(bits.u(1))
            if field_pic:
                bits.u(1)  # bottom_field_flag
        if nal_type == IDR:
            bits.ue()  # idr_pic_id
        bottom_delta = pps.bottom_field_pic_order_in_frame_present and not field_pic
        if sps.poc_type == 0:
            bits.u(sps.log2_max_poc_lsb)
            if bottom_delta:
                bits.se()
        elif sps.poc_type == 1 and not sps.delta_pic_order_always_zero:
            bits.se()
            if bottom_delta:
                bits.se()
        if pps.redundant_pic_cnt_present:
            bits.ue()
        if slice_type == SLICE_B:
            bits.u(1)  # direct_spatial_mv_pred_flag
        references = list(pps.num_ref_idx_default)
        if slice_type in (SLICE_P, SLICE_SP, SLICE_B) and bits.u(1):  # num_ref_idx_active_override_flag
            references[0] = bits.ue() + 1
            if slice_type == SLICE_B:
                references[1] = bits.ue() + 1
        _ref_pic_list_modification(bits, slice_type)
        if (pps.weighted_pred and slice_type in (SLICE_P, SLICE_SP)) or \
                (pps.weighted_bipred_idc == 1 and slice_type == SLICE_B):
            _pred_weight_table(bits, slice_type, references, sps.chroma_array_type)
        if nal_ref_idc:
            _dec_ref_pic_marking(bits, nal_type == IDR)
        if pps.cabac and slice_type not in (SLICE_I, SLICE_SI):
            bits.ue()  # cabac_init_idc
        bits.se()  # slice_qp_delta
        if slice_type in (SLICE_SP, SLICE_SI):
            if slice_type == SLICE_SP:
                bits.u(1)  # sp_for_switch_flag
            bits.se()  # slice_qs_delta
        if pps.deblocking_filter_control_present and bits.ue() != 1:  # disable_deblocking_filter_idc
            bits.se()
            bits.se()
        if pps.num_slice_groups > 1 and 3 <= pps.slice_group_map_type <= 5:
            units = -(-sps.pic_size_in_map_units // pps.slice_group_change_rate)
            bits.u(units.bit_length())  # slice_group_change_cycle: Ceil(Log2(units + 1)) bits
        return bits.escaped_size()


def _parse_sps(bits: _Bits) -> tuple[int, _Sps]:
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level_idc
    sps_id = bits.ue()
    chroma_format, separate = 1, False
    if profile in HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format == 3:
            separate = bool(bits.u(1))
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if index < 6 else 64)
    log2_max_frame_num = bits.ue() + 4
    poc_type = bits.ue()
    log2_max_poc_lsb, always_zero = 0, False
    if poc_type == 0:
        log2_max_poc_lsb = bits.ue() + 4
    elif poc_type == 1:
        always_zero = bool(bits.u(1))
        bits.se()
        bits.se()
        cycle = bits.ue()
        if cycle > 255:
            raise MediaError("an H.264 SPS with more than 255 reference frames in its POC cycle")
        for _ in range(cycle):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_map_units = bits.ue() + 1
    frame_mbs_only = bool(bits.u(1))
    if sps_id > 31 or log2_max_frame_num > 16 or log2_max_poc_lsb > 16 or poc_type > 2:
        raise MediaError("an H.264 SPS out of its ranges (7.4.2.1.1)")
    return sps_id, _Sps(0 if separate else chroma_format, log2_max_frame_num, poc_type, log2_max_poc_lsb,
                        always_zero, frame_mbs_only, separate, width_mbs * height_map_units)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last, following = 8, 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def _parse_pps(bits: _Bits) -> tuple[int, _Pps]:
    pps_id, sps_id = bits.ue(), bits.ue()
    cabac, bottom = bool(bits.u(1)), bool(bits.u(1))
    groups = bits.ue() + 1
    map_type, change_rate = 0, 1
    if pps_id > 255 or groups > 8:
        raise MediaError("an H.264 PPS out of its ranges (7.4.2.2)")
    if groups > 1:
        map_type = bits.ue()
        if map_type == 0:
            for _ in range(groups):
                bits.ue()
        elif map_type == 2:
            for _ in range(2 * (groups - 1)):
                bits.ue()
        elif map_type in (3, 4, 5):
            bits.u(1)
            change_rate = bits.ue() + 1
        elif map_type == 6:
            units = bits.ue() + 1
            if units * (groups - 1).bit_length() > MAX_SCAN * 8:
                raise MediaError("an H.264 PPS slice group map larger than its NAL unit")
            for _ in range(units):
                bits.u((groups - 1).bit_length())
    defaults = (bits.ue() + 1, bits.ue() + 1)
    weighted_pred, bipred = bool(bits.u(1)), bits.u(2)
    bits.se()  # pic_init_qp_minus26
    bits.se()  # pic_init_qs_minus26
    bits.se()  # chroma_qp_index_offset
    deblocking = bool(bits.u(1))
    bits.u(1)  # constrained_intra_pred_flag
    redundant = bool(bits.u(1))
    return pps_id, _Pps(sps_id, cabac, bottom, groups, map_type, change_rate, defaults, weighted_pred, bipred,
                        deblocking, redundant)


def _ref_pic_list_modification(bits: _Bits, slice_type: int) -> None:
    """7.3.3.1: for P/SP (list 0) and B (lists 0 and 1) slices."""
    lists = 0 if slice_type in (SLICE_I, SLICE_SI) else 2 if slice_type == SLICE_B else 1
    for _ in range(lists):
        if not bits.u(1):
            continue
        for _ in range(MAX_LOOP):
            operation = bits.ue()
            if operation == 3:
                break
            if operation > 5:
                raise MediaError(f"H.264 modification_of_pic_nums_idc {operation}")
            bits.ue()
        else:
            raise MediaError("an H.264 reference list modification that does not end")


def _pred_weight_table(bits: _Bits, slice_type: int, references: list[int], chroma_array_type: int) -> None:
    """7.3.3.2."""
    bits.ue()  # luma_log2_weight_denom
    if chroma_array_type:
        bits.ue()  # chroma_log2_weight_denom
    for count in references[: 2 if slice_type == SLICE_B else 1]:
        if count > 32:
            raise MediaError(f"an H.264 slice with {count} reference indices")
        for _ in range(count):
            if bits.u(1):
                bits.se()
                bits.se()
            if chroma_array_type and bits.u(1):
                for _ in range(4):
                    bits.se()


def _dec_ref_pic_marking(bits: _Bits, idr: bool) -> None:
    """7.3.3.3."""
    if idr:
        bits.u(2)  # no_output_of_prior_pics_flag, long_term_reference_flag
        return
    if not bits.u(1):  # adaptive_ref_pic_marking_mode_flag
        return
    for _ in range(MAX_LOOP):
        operation = bits.ue()
        if operation == 0:
            return
        if operation > 6:
            raise MediaError(f"H.264 memory_management_control_operation {operation}")
        if operation in (1, 3):
            bits.ue()
        if operation == 2:
            bits.ue()
        if operation in (3, 6):
            bits.ue()
        if operation == 4:
            bits.ue()
    raise MediaError("an H.264 reference marking that does not end")
