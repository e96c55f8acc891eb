"""The size of an H.264 slice header (ISO/IEC 14496-10 7.3.3) or an HEVC slice segment header
(ISO/IEC 23008-2 7.3.6.1), for 'cbcs', which leaves it clear.

ISO/IEC 23001-7 (10.4, 'cbcs' on NAL-structured video) encrypts a slice from the first byte of
its slice data: the NAL header and the slice header stay clear so that a decoder (or a FairPlay
pipeline) can read them before decrypting. The header's length depends on the sequence and picture
parameter sets it names, so those are parsed too (H.264 7.3.2.1.1, 7.3.2.2; HEVC 7.3.2.2,
7.3.2.3 with the short-term reference picture sets of 7.3.7), from the avcC/hvcC and from any
parameter set NAL units inside the samples (avc3, hev1).

Sizes are in bytes of the NAL unit as stored (emulation prevention bytes included), from its first
byte (the NAL header) to the byte holding the header's last bit. With CABAC the slice data starts on
the next byte (cabac_alignment_one_bit); with CAVLC the last header byte, shared with the first
data bits, stays clear.

A header we cannot read (a missing parameter set, bits past the NAL's end) is a MediaError: an
unreadable slice is refused, never sent with its picture in the clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from vodorigin.errors import MediaError

SPS, PPS = 7, 8
IDR = 5
SLICE_P, SLICE_B, SLICE_I, SLICE_SP, SLICE_SI = range(5)
HIGH_PROFILES = (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135)  # 7.3.2.1.1
MAX_SCAN = 1024  # bytes of a NAL read to find its header: more than the longest header can take
MAX_LOOP = 64  # entries of a list a header may repeat (reference list edits, memory operations)


class _PictureParameterSet(Protocol):
    @property
    def sps_id(self) -> int: ...


S = TypeVar("S")  # a codec's sequence parameter set
P = TypeVar("P", bound=_PictureParameterSet)  # and picture parameter set, which names its SPS


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


def slice_parser(fourcc: str, parameter_sets: tuple[bytes, ...]) -> AvcSlices | HevcSlices:
    """The slice header reader of a video track (avc1/avc3 or hvc1/hev1)."""
    return HevcSlices(parameter_sets) if fourcc in ("hvc1", "hev1") else AvcSlices(parameter_sets)


class _Slices(Generic[S, P]):
    """The parameter sets of one stream, learned from its sample entry and its samples, and the
    slice header sizes they imply; a subclass per codec gives its NAL unit types and syntax."""

    codec = ""
    nal_header = 1  # bytes of the NAL unit header
    slice_types: tuple[int, ...] = ()
    sps_type = pps_type = -1

    def __init__(self, parameter_sets: tuple[bytes, ...] | list[bytes] = ()) -> None:
        self.sps: dict[int, S] = {}
        self.pps: dict[int, P] = {}
        for nal in parameter_sets:
            self.learn(nal)

    def nal_type(self, first_byte: int) -> int:
        raise NotImplementedError

    def parse_sps(self, bits: _Bits) -> tuple[int, S]:
        raise NotImplementedError

    def parse_pps(self, bits: _Bits) -> tuple[int, P]:
        raise NotImplementedError

    def header_size(self, nal: bytes | memoryview) -> int:
        """Stored bytes from the NAL header through the slice header of a slice NAL unit."""
        raise NotImplementedError

    def observe(self, nal: bytes | memoryview) -> int | None:
        """A slice's header size; parameter sets are learned, and other units (SEI, data
        partitions...) give None: they stay clear."""
        if len(nal) < self.nal_header:
            return None
        if self.nal_type(nal[0]) in self.slice_types:
            return self.header_size(nal)
        self.learn(nal)
        return None

    def learn(self, nal: bytes | memoryview) -> None:
        """Remember a sequence or picture parameter set (other NAL units are ignored)."""
        kind = self.nal_type(nal[0]) if len(nal) >= self.nal_header else None
        if kind == self.sps_type:
            sps_id, sps = self.parse_sps(_Bits(nal, self.nal_header))
            self.sps[sps_id] = sps
        elif kind == self.pps_type:
            pps_id, pps = self.parse_pps(_Bits(nal, self.nal_header))
            self.pps[pps_id] = pps

    def parameter_sets(self, pps_id: int) -> tuple[S, P]:
        """The SPS and PPS a slice names (by its PPS's id), or MediaError."""
        pps = self.pps.get(pps_id)
        sps = self.sps.get(pps.sps_id) if pps is not None else None
        if pps is None or sps is None:
            raise MediaError(f"an {self.codec} slice names a parameter set the stream does not carry")
        return sps, pps


class AvcSlices(_Slices["_Sps", "_Pps"]):
    """The parameter sets of one H.264 stream, and the slice header sizes they imply (coded slices:
    NAL unit types 1 and 5)."""

    codec, nal_header, slice_types, sps_type, pps_type = "H.264", 1, (1, IDR), SPS, PPS

    def nal_type(self, first_byte: int) -> int:
        return first_byte & 0x1F

    def parse_sps(self, bits: _Bits) -> tuple[int, _Sps]:
        return _parse_sps(bits)

    def parse_pps(self, bits: _Bits) -> tuple[int, _Pps]:
        return _parse_pps(bits)

    def header_size(self, nal: bytes | memoryview) -> int:
        """Stored bytes from the NAL header through the slice header of a slice NAL (type 1 or 5)."""
        bits = _Bits(nal, 1)
        nal_ref_idc, nal_type = (nal[0] >> 5) & 3, nal[0] & 0x1F
        bits.ue()  # first_mb_in_slice
        slice_type = bits.ue()
        if slice_type > 9:
            raise MediaError(f"H.264 slice type {slice_type}")
        slice_type %= 5
        sps, pps = self.parameter_sets(bits.ue())
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


# --- HEVC (ISO/IEC 23008-2) ---------------------------------------------------------------------

HEVC_SPS, HEVC_PPS = 33, 34
HEVC_SLICE_TYPES = (*range(10), *range(16, 22))  # trailing, leading, IRAP pictures (7.4.2.2)
HEVC_B, HEVC_P = 0, 1  # slice_type (7.4.7.1); 2 is I
MAX_ST_RPS = 64  # num_short_term_ref_pic_sets (7.4.3.2.1)


@dataclass(frozen=True, slots=True)
class _RefPicSet:
    """What a short-term reference picture set tells later ones and a slice: how many pictures
    it lists, and how many of them the current picture uses."""

    delta_pocs: int
    used: int


@dataclass(frozen=True, slots=True)
class _HevcSps:
    chroma_array_type: int
    separate_colour_plane: bool
    log2_max_poc_lsb: int
    address_bits: int  # Ceil(Log2(PicSizeInCtbsY)): slice_segment_address
    sample_adaptive_offset: bool
    ref_pic_sets: tuple[_RefPicSet, ...]
    long_term_refs_present: bool
    long_term_refs_sps: int
    long_term_used: tuple[bool, ...]  # used_by_curr_pic_lt_sps_flag
    temporal_mvp: bool


@dataclass(frozen=True, slots=True)
class _HevcPps:
    sps_id: int
    dependent_slice_segments: bool
    output_flag_present: bool
    extra_slice_header_bits: int
    cabac_init_present: bool
    num_ref_idx_default: tuple[int, int]
    slice_chroma_qp_offsets_present: bool
    weighted_pred: bool
    weighted_bipred: bool
    entry_points: bool  # tiles or entropy coding sync
    loop_filter_across_slices: bool
    deblocking_override_enabled: bool
    deblocking_disabled: bool
    lists_modification_present: bool
    header_extension_present: bool
    chroma_qp_offset_list: bool


class HevcSlices(_Slices["_HevcSps", "_HevcPps"]):
    """The parameter sets of one HEVC stream, and the slice segment header sizes they imply
    (7.3.6.1: the header ends with byte_alignment(), so the slice data starts on a byte)."""

    codec, nal_header, slice_types, sps_type, pps_type = "HEVC", 2, HEVC_SLICE_TYPES, HEVC_SPS, HEVC_PPS

    def nal_type(self, first_byte: int) -> int:
        return (first_byte >> 1) & 0x3F

    def parse_sps(self, bits: _Bits) -> tuple[int, _HevcSps]:
        return _parse_hevc_sps(bits)

    def parse_pps(self, bits: _Bits) -> tuple[int, _HevcPps]:
        return _parse_hevc_pps(bits)

    def header_size(self, nal: bytes | memoryview) -> int:
        """Stored bytes from the NAL header through the slice segment header's byte_alignment()."""
        bits = _Bits(nal, 2)
        nal_type = (nal[0] >> 1) & 0x3F
        first_in_picture = bits.u(1)
        if 16 <= nal_type <= 23:
            bits.u(1)  # no_output_of_prior_pics_flag
        sps, pps = self.parameter_sets(bits.ue())
        dependent = False
        if not first_in_picture:
            if pps.dependent_slice_segments:
                dependent = bool(bits.u(1))
            bits.u(sps.address_bits)  # slice_segment_address
        if not dependent:
            _hevc_independent_header(bits, nal_type, sps, pps)
        if pps.entry_points:
            offsets = bits.ue()
            if offsets > 4400:  # at most a tile per CTB row and column of the largest picture (A.4.2)
                raise MediaError(f"an HEVC slice with {offsets} entry points")
            if offsets:
                length = bits.ue() + 1
                if length > 32:
                    raise MediaError("an HEVC entry point offset longer than 32 bits")
                bits.u(length * offsets)
        if pps.header_extension_present:
            bits.u(8 * bits.ue())  # slice_segment_header_extension_data_byte
        bits.u(1)  # alignment_bit_equal_to_one, then zeros to the byte
        return bits.escaped_size()


def _hevc_independent_header(bits: _Bits, nal_type: int, sps: _HevcSps, pps: _HevcPps) -> None:
    """The part of 7.3.6.1 a dependent slice segment takes from the slice before it."""
    bits.u(pps.extra_slice_header_bits)
    slice_type = bits.ue()
    if slice_type > 2:
        raise MediaError(f"HEVC slice type {slice_type}")
    if pps.output_flag_present:
        bits.u(1)
    if sps.separate_colour_plane:
        bits.u(2)
    temporal_mvp, current_used = False, 0
    if nal_type not in (19, 20):  # not an IDR picture
        bits.u(sps.log2_max_poc_lsb)  # slice_pic_order_cnt_lsb
        sets = sps.ref_pic_sets
        if not bits.u(1):  # short_term_ref_pic_set_sps_flag
            current_used = _st_ref_pic_set(bits, len(sets), sets, True).used
        elif len(sets) > 1:
            current_used = sets[bits.u((len(sets) - 1).bit_length())].used
        elif sets:
            current_used = sets[0].used
        if sps.long_term_refs_present:
            from_sps = bits.ue() if sps.long_term_refs_sps else 0
            pictures = bits.ue()
            if from_sps > sps.long_term_refs_sps or pictures > 32:
                raise MediaError("an HEVC slice with more long-term pictures than allowed")
            for index in range(from_sps + pictures):
                if index < from_sps:
                    entry = bits.u((sps.long_term_refs_sps - 1).bit_length())
                    if entry >= sps.long_term_refs_sps:
                        raise MediaError("an HEVC slice names a long-term picture its SPS does not list")
                    current_used += sps.long_term_used[entry]
                else:
                    bits.u(sps.log2_max_poc_lsb)
                    current_used += bits.u(1)
                if bits.u(1):  # delta_poc_msb_present_flag
                    bits.ue()
        if sps.temporal_mvp:
            temporal_mvp = bool(bits.u(1))
    if sps.sample_adaptive_offset:
        luma = bits.u(1)
        chroma = bits.u(1) if sps.chroma_array_type else 0
    else:
        luma = chroma = 0
    if slice_type in (HEVC_P, HEVC_B):
        references = list(pps.num_ref_idx_default)
        if bits.u(1):  # num_ref_idx_active_override_flag
            references[0] = bits.ue() + 1
            if slice_type == HEVC_B:
                references[1] = bits.ue() + 1
        if max(references) > 16:
            raise MediaError(f"an HEVC slice with {max(references)} reference indices")
        if pps.lists_modification_present and current_used > 1:
            for count in references[: 2 if slice_type == HEVC_B else 1]:
                if bits.u(1):  # ref_pic_list_modification_flag
                    bits.u((current_used - 1).bit_length() * count)
        if slice_type == HEVC_B:
            bits.u(1)  # mvd_l1_zero_flag
        if pps.cabac_init_present:
            bits.u(1)
        if temporal_mvp:
            from_l0 = bits.u(1) if slice_type == HEVC_B else 1
            if references[0 if from_l0 else 1] > 1:
                bits.ue()  # collocated_ref_idx
        if (pps.weighted_pred and slice_type == HEVC_P) or (pps.weighted_bipred and slice_type == HEVC_B):
            lists = references[: 2 if slice_type == HEVC_B else 1]
            _hevc_pred_weight_table(bits, lists, sps.chroma_array_type)
        bits.ue()  # five_minus_max_num_merge_cand
    bits.se()  # slice_qp_delta
    if pps.slice_chroma_qp_offsets_present:
        bits.se()
        bits.se()
    if pps.chroma_qp_offset_list:
        bits.u(1)  # cu_chroma_qp_offset_enabled_flag
    deblocking_disabled = pps.deblocking_disabled
    if pps.deblocking_override_enabled and bits.u(1):  # deblocking_filter_override_flag
        deblocking_disabled = bool(bits.u(1))
        if not deblocking_disabled:
            bits.se()
            bits.se()
    if pps.loop_filter_across_slices and (luma or chroma or not deblocking_disabled):
        bits.u(1)  # slice_loop_filter_across_slices_enabled_flag


def _hevc_pred_weight_table(bits: _Bits, references: list[int], chroma_array_type: int) -> None:
    """7.3.6.3 (a single-layer stream: no reference picture is the current one)."""
    bits.ue()  # luma_log2_weight_denom
    if chroma_array_type:
        bits.se()  # delta_chroma_log2_weight_denom
    for count in references:
        luma = [bits.u(1) for _ in range(count)]
        chroma = [bits.u(1) for _ in range(count)] if chroma_array_type else [0] * count
        for index in range(count):
            if luma[index]:
                bits.se()
                bits.se()
            if chroma[index]:
                for _ in range(4):
                    bits.se()


def _st_ref_pic_set(bits: _Bits, index: int, sets: tuple[_RefPicSet, ...] | list[_RefPicSet],
                    in_slice_header: bool) -> _RefPicSet:
    """st_ref_pic_set(index) (7.3.7): a set of its own, or predicted from an earlier one (in a slice
    header, from any of the SPS's)."""
    if index and bits.u(1):  # inter_ref_pic_set_prediction_flag
        delta = bits.ue() + 1 if in_slice_header else 1  # delta_idx_minus1
        if delta > index:
            raise MediaError("an HEVC reference picture set predicted from one that does not exist")
        bits.u(1)  # delta_rps_sign
        bits.ue()  # abs_delta_rps_minus1
        listed = used = 0
        for _ in range(sets[index - delta].delta_pocs + 1):
            used_by_current = bits.u(1)
            kept = used_by_current or bits.u(1)  # use_delta_flag, 1 when absent
            listed += kept
            used += used_by_current
        return _RefPicSet(listed, used)
    negative, positive = bits.ue(), bits.ue()
    if negative > 16 or positive > 16:
        raise MediaError("an HEVC reference picture set of more than 16 pictures")
    used = 0
    for _ in range(negative + positive):
        bits.ue()  # delta_poc_s0/s1_minus1
        used += bits.u(1)
    return _RefPicSet(negative + positive, used)


def _profile_tier_level(bits: _Bits, sub_layers: int) -> None:
    """7.3.3, with profile_present_flag 1: its size depends on the sub-layers present."""
    bits.u(96)  # general profile space ... general_level_idc
    present = [(bits.u(1), bits.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        bits.u(2 * (8 - sub_layers))
    for profile, level in present:
        bits.u(88 * profile + 8 * level)


def _hevc_scaling_list_data(bits: _Bits) -> None:
    """7.3.4."""
    for size in range(4):
        for _ in range(0, 6, 3 if size == 3 else 1):
            if not bits.u(1):  # scaling_list_pred_mode_flag
                bits.ue()
                continue
            if size > 1:
                bits.se()
            for _ in range(min(64, 1 << (4 + (size << 1)))):
                bits.se()


def _parse_hevc_sps(bits: _Bits) -> tuple[int, _HevcSps]:
    bits.u(4)  # sps_video_parameter_set_id
    sub_layers = bits.u(3)
    bits.u(1)
    if sub_layers > 6:
        raise MediaError("an HEVC SPS with more than 7 sub-layers")
    _profile_tier_level(bits, sub_layers)
    sps_id = bits.ue()
    chroma_format = bits.ue()
    separate = bool(bits.u(1)) if chroma_format == 3 else False
    width, height = bits.ue(), bits.ue()
    if bits.u(1):  # conformance_window_flag
        for _ in range(4):
            bits.ue()
    bits.ue()  # bit_depth_luma_minus8
    bits.ue()  # bit_depth_chroma_minus8
    log2_max_poc_lsb = bits.ue() + 4
    ordering_all = bits.u(1)
    for _ in range(0 if ordering_all else sub_layers, sub_layers + 1):
        bits.ue()
        bits.ue()
        bits.ue()
    min_cb = bits.ue() + 3
    ctb = min_cb + bits.ue()
    for _ in range(4):  # transform block sizes, transform hierarchy depths
        bits.ue()
    if bits.u(1) and bits.u(1):  # scaling_list_enabled_flag, sps_scaling_list_data_present_flag
        _hevc_scaling_list_data(bits)
    bits.u(1)  # amp_enabled_flag
    sao = bool(bits.u(1))
    if bits.u(1):  # pcm_enabled_flag
        bits.u(8)
        bits.ue()
        bits.ue()
        bits.u(1)
    count = bits.ue()
    if sps_id > 15 or count > MAX_ST_RPS or log2_max_poc_lsb > 16 or ctb > 6 or chroma_format > 3:
        raise MediaError("an HEVC SPS out of its ranges (7.4.3.2.1)")
    sets: list[_RefPicSet] = []
    for index in range(count):
        sets.append(_st_ref_pic_set(bits, index, sets, False))
    long_term, used = bool(bits.u(1)), tuple[bool, ...]()
    if long_term:
        entries = bits.ue()
        if entries > 32:
            raise MediaError("an HEVC SPS with more than 32 long-term pictures")
        used = tuple(bool(bits.u(log2_max_poc_lsb + 1) & 1) for _ in range(entries))
    temporal_mvp = bool(bits.u(1))
    ctb_size = 1 << ctb
    pictures = -(-width // ctb_size) * -(-height // ctb_size)
    return sps_id, _HevcSps(0 if separate else chroma_format, separate, log2_max_poc_lsb,
                            max(pictures - 1, 0).bit_length(), sao, tuple(sets), long_term, len(used), used,
                            temporal_mvp)


def _parse_hevc_pps(bits: _Bits) -> tuple[int, _HevcPps]:
    pps_id, sps_id = bits.ue(), bits.ue()
    dependent, output_flag, extra_bits = bool(bits.u(1)), bool(bits.u(1)), bits.u(3)
    bits.u(1)  # sign_data_hiding_enabled_flag
    cabac_init = bool(bits.u(1))
    defaults = (bits.ue() + 1, bits.ue() + 1)
    bits.se()  # init_qp_minus26
    bits.u(1)  # constrained_intra_pred_flag
    transform_skip = bits.u(1)
    if bits.u(1):  # cu_qp_delta_enabled_flag
        bits.ue()
    bits.se()
    bits.se()
    chroma_offsets = bool(bits.u(1))
    weighted_pred, weighted_bipred = bool(bits.u(1)), bool(bits.u(1))
    bits.u(1)  # transquant_bypass_enabled_flag
    tiles, sync = bits.u(1), bits.u(1)
    if pps_id > 63 or sps_id > 15:
        raise MediaError("an HEVC PPS out of its ranges (7.4.3.3.1)")
    if tiles:
        columns, rows = bits.ue() + 1, bits.ue() + 1
        if columns > 20 or rows > 22:
            raise MediaError("an HEVC PPS with more tiles than any level allows")
        if not bits.u(1):  # uniform_spacing_flag
            for _ in range(columns + rows - 2):
                bits.ue()
        bits.u(1)  # loop_filter_across_tiles_enabled_flag
    across_slices = bool(bits.u(1))
    override, disabled = False, False
    if bits.u(1):  # deblocking_filter_control_present_flag
        override, disabled = bool(bits.u(1)), bool(bits.u(1))
        if not disabled:
            bits.se()
            bits.se()
    if bits.u(1):  # pps_scaling_list_data_present_flag
        _hevc_scaling_list_data(bits)
    lists_modification = bool(bits.u(1))
    bits.ue()  # log2_parallel_merge_level_minus2
    extension = bool(bits.u(1))
    chroma_qp_list = False
    if bits.u(1):  # pps_extension_present_flag
        range_extension, others = bits.u(1), bits.u(7)
        if others:
            raise MediaError("an HEVC PPS with multilayer, 3D or screen content extensions")
        if range_extension:
            if transform_skip:
                bits.ue()
            bits.u(1)  # cross_component_prediction_enabled_flag
            chroma_qp_list = bool(bits.u(1))
    return pps_id, _HevcPps(sps_id, dependent, output_flag, extra_bits, cabac_init, defaults, chroma_offsets,
                            weighted_pred, weighted_bipred, bool(tiles or sync), across_slices, override,
                            disabled, lists_modification, extension, chroma_qp_list)
