/* An MPEG-TS segment's two inner loops in C (ts_kernel.py loads them). mpegts.plan_segment and
 * ts_write.write_segment_numpy do the same work in numpy, and are the fallback when this is not
 * built; tests/test_ts_kernel.py compares the two, plan for plan and byte for byte.
 *
 * ts_plan lays out a segment from its frames' metadata (mpegts.plan_segment's docstring): one PES
 * per video frame, audio frames grouped in PES of at most 100 ms and 60,000 bytes, all sent in
 * decode order (by stream on equal times, otherwise in the order planned), and each stream's
 * continuity padding. Its output is mpegts.PesTable's matrix: one row of `stride` int64 per column
 * of mpegts.PES_COLUMNS.
 *
 * ts_write_es writes every elementary-stream packet (ISO/IEC 13818-1 2.4.3) of a planned segment
 * after the PAT and PMT the caller has put first:
 *   - each PES's bytes: its header (2.4.3.6: PTS, and DTS when it differs), then per frame a lead
 *     (Annex B's access unit delimiter, with the parameter sets before key frames; or the ADTS
 *     header, ISO/IEC 14496-3 1.A.2) and the frame, whose NAL length fields become start codes;
 *   - laid out as planned: after the first packet's adaptation field (PCR, random access, or the
 *     stuffing of a PES that fits one packet), through full packets, a last partial packet behind
 *     a stuffing adaptation field, then the continuity padding: packets of one payload byte behind
 *     183 bytes of adaptation field;
 *   - packet headers: PUSI on a PES's first packet, its stream's PID and continuity counter.
 * The frames are copied once, from the buffers read for them straight into their packets.
 */

#include <stdint.h>
#include <string.h>

#define PACKET 188
#define PAYLOAD 184
#define PSI 2
#define CLOCK 90000                   /* PTS/DTS run at 90 kHz (2.4.3.7) */
#define TIMESTAMP_OFFSET 126000       /* mpegts.TIMESTAMP_OFFSET: 1.4 s */
#define TIMESTAMP_MASK ((((uint64_t)1) << 33) - 1)
#define PCR_LEAD 9000                 /* a PCR runs 100 ms ahead of its PES's DTS */
#define AUDIO_PES_MAX_MS 100
#define AUDIO_PES_MAX_BYTES 60000
#define ADTS_HEADER 7
#define ADTS_MAX_FRAME 8191           /* frame_length is 13 bits, header included */
#define CC_PADDING_SEARCH 40
#define HEADER_PTS 14
#define HEADER_PTS_DTS 19
#define PCR_AF 8
#define RAP_AF 2

enum { OK = 0, NAL_TRUNCATED = 1, NAL_OVERRUN = 2, SIZE_MISMATCH = 3, FRAME_BEFORE = 4, FRAME_BEYOND = 5,
       ADTS_TOO_LONG = 6, AUDIO_PES_TOO_LONG = 7 };
enum { KIND_OTHER = 0, KIND_ANNEXB = 1, KIND_ADTS = 2 };
/* the plan's columns (mpegts.PES_COLUMNS), each a row of the table */
enum { STREAM, FRAME_START, FRAME_STOP, PTS, DTS, HEADER_SIZE, ES_SIZE, FIRST_AF, PCR, RANDOM_ACCESS, EXTRA,
       PACKETS, COLUMNS };

typedef struct {
    /* its frames: times in track ticks (from the timeline's start), sizes, file offsets, key flags */
    const int64_t *pts, *dts, *sizes, *offsets;
    const uint8_t *sync;
    int64_t count, timescale, video, carries_pcr;
    int64_t pid, stream_id, kind, length_size;
    const uint8_t *plain, *key, *adts;  /* video: the leads of other and key frames; audio: ADTS */
    int64_t plain_size, key_size;
} Stream;

/* Bumped with any change to the functions' arguments: ts_kernel.py loads only its own version. */
int ts_kernel_version(void) { return 3; }

/* --- planning ------------------------------------------------------------------------------- */

/* Python's floor division, for b > 0. */
static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b < 0); }

/* timing.rescale_array to 90 kHz, plus the offset, wrapping on overflow as numpy's int64 does. */
static int64_t to_90khz(int64_t value, int64_t timescale) {
    if (timescale == CLOCK) return (int64_t)((uint64_t)value + TIMESTAMP_OFFSET);
    int64_t whole = floor_div(value, timescale);  /* the remainder in unsigned arithmetic: exact, */
    int64_t rest = (int64_t)((uint64_t)value - (uint64_t)whole * (uint64_t)timescale);  /* never UB */
    int64_t part = (rest * (2 * CLOCK) + timescale) / (2 * timescale);
    return (int64_t)((uint64_t)whole * CLOCK + (uint64_t)part + TIMESTAMP_OFFSET);
}

/* mpegts.pes_packet_count: TS packets of a PES of `size` bytes behind `first_af` adaptation bytes. */
static int64_t pes_packets(int64_t size, int64_t first_af) {
    int64_t rest = size - (PAYLOAD - first_af);
    return ((rest > 0 ? rest : 0) + 2 * PAYLOAD - 1) / PAYLOAD;
}

/* One PES row of stream s: frames [start, stop), es bytes, random access flag. */
static void plan_row(int64_t *row, int64_t stride, const Stream *st, int64_t s, int64_t start, int64_t stop,
                     int64_t es, int64_t random_access) {
    int64_t pts = to_90khz(st->pts[start], st->timescale), dts = to_90khz(st->dts[start], st->timescale);
    int64_t header = pts != dts ? HEADER_PTS_DTS : HEADER_PTS;
    int64_t first_af = st->carries_pcr ? PCR_AF : random_access ? RAP_AF : 0;
    row[STREAM * stride] = s;
    row[FRAME_START * stride] = start;
    row[FRAME_STOP * stride] = stop;
    row[PTS * stride] = pts;
    row[DTS * stride] = dts;
    row[HEADER_SIZE * stride] = header;
    row[ES_SIZE * stride] = es;
    row[FIRST_AF * stride] = first_af;
    row[PCR * stride] = st->carries_pcr ? (int64_t)(((uint64_t)dts - PCR_LEAD) & TIMESTAMP_MASK) : -1;
    row[RANDOM_ACCESS * stride] = random_access;
    row[EXTRA * stride] = 0;
    row[PACKETS * stride] = pes_packets(header + es, first_af);
}

/* The PES of stream s, in its order, from row n of `rows` on; the rows written, or -error. */
static int64_t plan_stream(int64_t *rows, int64_t stride, int64_t n, const Stream *st, int64_t s) {
    int64_t written = 0;
    if (st->count > 0 && st->timescale <= 0) return -SIZE_MISMATCH;
    if (st->video) {
        for (int64_t i = 0; i < st->count; i++, written++) {
            int64_t key = st->sync[i] != 0;
            plan_row(rows + n + written, stride, st, s, i, i + 1,
                     st->sizes[i] + (key ? st->key_size : st->plain_size), key);
        }
        return written;
    }
    /* audio: consecutive frames, at most 100 ms and AUDIO_PES_MAX_BYTES (mpegts._audio_groups) */
    int64_t lead = st->kind == KIND_ADTS ? ADTS_HEADER : 0, max_ticks = st->timescale * AUDIO_PES_MAX_MS / 1000;
    int64_t start = 0, total = 0;
    for (int64_t i = 0; i <= st->count && st->count > 0; i++) {
        int64_t size = i < st->count ? st->sizes[i] + lead : 0;
        if (i == st->count ||
            (i > start && ((__int128)st->dts[i] - st->dts[start] >= max_ticks || total + size > AUDIO_PES_MAX_BYTES))) {
            int64_t *row = rows + n + written;
            plan_row(row, stride, st, s, start, i, total, 0);
            if (row[HEADER_SIZE * stride] - 6 + total > 0xFFFF) return -AUDIO_PES_TOO_LONG;  /* 16 bits */
            written++;
            start = i;
            total = 0;
        }
        total += size;
    }
    return written;
}

/* Row a is sent before row b: an earlier DTS, or the same and a lower stream. */
static int sent_before(const int64_t *rows, int64_t stride, int64_t a, int64_t b) {
    int64_t da = rows[DTS * stride + a], db = rows[DTS * stride + b];
    return da < db || (da == db && rows[STREAM * stride + a] < rows[STREAM * stride + b]);
}

/* The rows' sending order: a stable merge sort (numpy's lexsort((stream, dts))). Returns the array
 * holding it, `order` or `spare`. */
static int64_t *sending_order(const int64_t *rows, int64_t stride, int64_t n, int64_t *order, int64_t *spare) {
    for (int64_t i = 0; i < n; i++) order[i] = i;
    for (int64_t width = 1; width < n; width *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * width) {
            int64_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) spare[k++] = sent_before(rows, stride, order[j], order[i]) ? order[j++] : order[i++];
            while (i < mid) spare[k++] = order[i++];
            while (j < hi) spare[k++] = order[j++];
        }
        int64_t *swap = order; order = spare; spare = swap;
    }
    return order;
}

/* Stream s's continuity padding (mpegts.continuity_padding): the fewest extra packets, in its last
 * PES that can take them (tried from the last), that make its packet count a multiple of 16. */
static void pad_continuity(int64_t *table, int64_t stride, int64_t n, int64_t s) {
    int64_t total = 0;
    for (int64_t r = 0; r < n; r++) if (table[STREAM * stride + r] == s) total += table[PACKETS * stride + r];
    if (total % 16 == 0) return;
    for (int64_t r = n - 1; r >= 0; r--) {
        if (table[STREAM * stride + r] != s) continue;
        int64_t es = table[ES_SIZE * stride + r], size = table[HEADER_SIZE * stride + r] + es;
        int64_t first_af = table[FIRST_AF * stride + r], base = pes_packets(size, first_af);
        for (int64_t extra = 1; extra <= CC_PADDING_SEARCH && extra <= es; extra++) {
            int64_t packets = pes_packets(size - extra, first_af) + extra;
            if ((total - base + packets) % 16 == 0) {
                table[EXTRA * stride + r] = extra;
                table[PACKETS * stride + r] = packets;
                return;
            }
        }
    }
}

/* Plan a segment into `table` (COLUMNS rows of `stride`, stride >= the streams' frames), with
 * `work` (COLUMNS + 2 rows of `stride`) to plan in. Its PES count goes to *rows. */
int ts_plan(const Stream *streams, int64_t n_streams, int64_t *table, int64_t stride, int64_t *work, int64_t *rows) {
    int64_t n = 0, frames = 0;
    for (int64_t s = 0; s < n_streams; s++) frames += streams[s].count > 0 ? streams[s].count : 0;
    if (frames > stride) return SIZE_MISMATCH;
    for (int64_t s = 0; s < n_streams; s++)  /* first, as mpegts._check_writable does */
        for (int64_t i = 0; streams[s].kind == KIND_ADTS && i < streams[s].count; i++)
            if (streams[s].sizes[i] + ADTS_HEADER > ADTS_MAX_FRAME) return ADTS_TOO_LONG;
    for (int64_t s = 0; s < n_streams; s++) {
        int64_t written = plan_stream(work, stride, n, &streams[s], s);
        if (written < 0) return (int)-written;
        n += written;
    }
    const int64_t *order = sending_order(work, stride, n, work + COLUMNS * stride, work + (COLUMNS + 1) * stride);
    for (int64_t c = 0; c < COLUMNS; c++)
        for (int64_t r = 0; r < n; r++) table[c * stride + r] = work[c * stride + order[r]];
    for (int64_t s = 0; s < n_streams; s++) pad_continuity(table, stride, n, s);
    *rows = n;
    return OK;
}

/* --- writing -------------------------------------------------------------------------------- */

/* Copy n bytes into the segment at body position p (body: the ES packets' payloads end to end). */
static void put(uint8_t *out, int64_t p, const uint8_t *src, int64_t n) {
    int64_t into = p % PAYLOAD;
    uint8_t *d = out + PACKET * (PSI + p / PAYLOAD) + 4 + into;
    if (into > 0 && n > 0) {  /* to the end of the packet begun */
        int64_t take = n < PAYLOAD - into ? n : PAYLOAD - into;
        memcpy(d, src, (size_t)take);
        d += take + 4; src += take; n -= take;  /* past the next packet's header */
    }
    for (; n >= PAYLOAD; d += PACKET, src += PAYLOAD, n -= PAYLOAD) memcpy(d, src, PAYLOAD);  /* whole payloads */
    if (n > 0) memcpy(d, src, (size_t)n);
}

static uint8_t *at(uint8_t *out, int64_t p) { return out + PACKET * (PSI + p / PAYLOAD) + 4 + p % PAYLOAD; }

static void timestamp(uint8_t *d, int64_t prefix, int64_t value) {
    value &= (((int64_t)1) << 33) - 1;
    d[0] = (uint8_t)((prefix << 4) | ((value >> 29) & 0x0E) | 1);
    d[1] = (uint8_t)((value >> 22) & 0xFF);
    d[2] = (uint8_t)(((value >> 14) & 0xFE) | 1);
    d[3] = (uint8_t)((value >> 7) & 0xFF);
    d[4] = (uint8_t)(((value << 1) & 0xFE) | 1);
}

/* An adaptation field of `size` bytes at body position p: length, flags, PCR, stuffing. */
static void adaptation(uint8_t *out, int64_t p, int64_t size, int flags, int64_t pcr) {
    uint8_t *d = at(out, p);  /* never crosses a packet: an adaptation field opens its packet */
    memset(d, 0xFF, (size_t)size);
    d[0] = (uint8_t)(size - 1);
    if (size > 1) d[1] = (uint8_t)flags;
    if (pcr >= 0 && size >= 8) {
        uint64_t v = ((uint64_t)pcr << 15) | (0x3Fu << 9);
        for (int k = 0; k < 6; k++) d[2 + k] = (uint8_t)(v >> (8 * (5 - k)));
    }
}

/* Where one PES's bytes go: its byte x (header first) lies, in body positions, at start + head + x
 * below split; in the last, partial packet (behind its stuffing) from split to regular; and from
 * regular on, one byte at the end of each continuity padding packet. */
typedef struct {
    uint8_t *out;
    int64_t start, head, split, regular, tail_at, padding_at;
} Layout;

/* Copy n bytes to PES position x; the caller has checked that x + n lies within the PES. */
static void pes_put(const Layout *l, int64_t x, const uint8_t *src, int64_t n) {
    if (x < l->split) {
        int64_t take = n < l->split - x ? n : l->split - x;
        put(l->out, l->start + l->head + x, src, take);
        x += take; src += take; n -= take;
    }
    if (n > 0 && x < l->regular) {
        int64_t take = n < l->regular - x ? n : l->regular - x;
        memcpy(at(l->out, l->tail_at + x - l->split), src, (size_t)take);
        x += take; src += take; n -= take;
    }
    for (; n > 0; x++, src++, n--) *at(l->out, l->padding_at + (x - l->regular) * PAYLOAD) = *src;
}

/* The bytes read for the segment: `count` buffers, each a file offset, a length and an address,
 * in three rows of `count`, by ascending offset (frames.SourceBytes). */
typedef struct { const int64_t *starts, *lengths, *addresses; int64_t count; } Buffers;

/* Where frame bytes [offset, offset + size) of the file are in memory, or NULL (*status says why). */
static const uint8_t *locate(const Buffers *b, int64_t offset, int64_t size, int *status) {
    int64_t lo = 0, hi = b->count;  /* the last buffer starting at or before offset */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (b->starts[mid] <= offset) lo = mid + 1; else hi = mid;
    }
    if (lo == 0) { *status = FRAME_BEFORE; return NULL; }
    int64_t local = offset - b->starts[lo - 1];
    if (size < 0 || local + size > b->lengths[lo - 1]) { *status = FRAME_BEYOND; return NULL; }
    return (const uint8_t *)(intptr_t)b->addresses[lo - 1] + local;
}

/* The PES's bytes, straight into its packets: the header, then each frame's lead and the frame, its
 * NAL length fields written as start codes. Returns OK or an error. */
static int pes_bytes(const Layout *l, int64_t total, const Stream *st, int64_t header_size, int64_t es_size,
                     int64_t pts, int64_t dts, int64_t start, int64_t stop, const Buffers *buffers) {
    static const uint8_t start_code[4] = {0, 0, 0, 1};
    uint8_t h[HEADER_PTS_DTS];
    int with_dts = header_size == HEADER_PTS_DTS, status = OK;
    int64_t length = header_size - 6 + es_size, n = header_size;
    if (header_size != HEADER_PTS && header_size != HEADER_PTS_DTS) return SIZE_MISMATCH;
    if (length > 0xFFFF) length = 0;  /* unbounded, for video (2.4.3.7; the plan refuses it for audio) */
    h[0] = 0; h[1] = 0; h[2] = 1; h[3] = (uint8_t)st->stream_id;
    h[4] = (uint8_t)(length >> 8); h[5] = (uint8_t)(length & 0xFF);
    h[6] = 0x80; h[7] = with_dts ? 0xC0 : 0x80; h[8] = with_dts ? 10 : 5;
    timestamp(h + 9, with_dts ? 0x3 : 0x2, pts);
    if (with_dts) timestamp(h + 14, 0x1, dts);
    if (header_size > total) return SIZE_MISMATCH;
    pes_put(l, 0, h, header_size);
    for (int64_t f = start; f < stop; f++) {
        int64_t size = st->sizes[f];
        const uint8_t *src = locate(buffers, st->offsets[f], size, &status);
        if (src == NULL) return status;
        if (st->kind == KIND_ANNEXB) {
            const uint8_t *prefix = st->sync[f] ? st->key : st->plain;
            int64_t lead = st->sync[f] ? st->key_size : st->plain_size;
            if (n + lead + size > total) return SIZE_MISMATCH;
            pes_put(l, n, prefix, lead);
            n += lead;
            /* NAL length fields -> start codes (ISO/IEC 14496-15), NAL units copied between them */
            int64_t w = st->length_size, pos = 0;
            if (w < 1 || w > 4 || size < w) return NAL_TRUNCATED;
            while (pos < size) {
                if (pos + w > size) return NAL_TRUNCATED;
                int64_t nal = 0;
                for (int64_t k = 0; k < w; k++) nal = (nal << 8) | src[pos + k];
                if (nal > size - pos - w) return NAL_OVERRUN;
                pes_put(l, n + pos, start_code + 4 - w, w);
                pes_put(l, n + pos + w, src + pos + w, nal);
                pos += w + nal;
            }
        } else {
            if (st->kind == KIND_ADTS) {
                int64_t adts = size + ADTS_HEADER;
                uint8_t a[ADTS_HEADER];
                if (n + ADTS_HEADER + size > total) return SIZE_MISMATCH;
                memcpy(a, st->adts, 3);
                a[3] = (uint8_t)((st->adts[3] & 0xFC) | (adts >> 11));
                a[4] = (uint8_t)((adts >> 3) & 0xFF);
                a[5] = (uint8_t)(((adts & 7) << 5) | 0x1F);
                a[6] = 0xFC;
                pes_put(l, n, a, ADTS_HEADER);
                n += ADTS_HEADER;
            } else if (n + size > total) {
                return SIZE_MISMATCH;
            }
            pes_put(l, n, src, size);
        }
        n += size;
    }
    return n == total ? OK : SIZE_MISMATCH;
}

/* Write the n_pes planned PES (`table`: the plan's COLUMNS rows of `stride`) into `out`, whose
 * first PSI packets the caller has written and which holds out_packets more. */
int ts_write_es(uint8_t *out, int64_t out_packets, const int64_t *table, int64_t stride, int64_t n_pes,
                const Stream *streams, int64_t n_streams, const int64_t *buffer_table, int64_t n_buffers) {
    int64_t counters[64] = {0};
    Buffers buffers = {buffer_table, buffer_table + n_buffers, buffer_table + 2 * n_buffers, n_buffers};
    const int64_t *stream = table + STREAM * stride, *frame_start = table + FRAME_START * stride,
                  *frame_stop = table + FRAME_STOP * stride, *pts = table + PTS * stride, *dts = table + DTS * stride,
                  *header_size = table + HEADER_SIZE * stride, *es_size = table + ES_SIZE * stride,
                  *first_af = table + FIRST_AF * stride, *pcr = table + PCR * stride,
                  *random_access = table + RANDOM_ACCESS * stride, *extra = table + EXTRA * stride,
                  *packets = table + PACKETS * stride;
    if (n_streams > 64 || n_pes > stride) return SIZE_MISMATCH;
    int64_t packet = 0;  /* ES packets written */
    for (int64_t u = 0; u < n_pes; u++) {
        /* the plan is ours; still, nothing is written outside `out` or read outside the frames */
        if (stream[u] < 0 || stream[u] >= n_streams || frame_start[u] < 0 || frame_stop[u] < frame_start[u]
            || frame_stop[u] > streams[stream[u]].count || packet + packets[u] > out_packets
            || header_size[u] + es_size[u] - extra[u] < 1 || extra[u] < 0 || first_af[u] < 0
            || first_af[u] >= PAYLOAD)
            return SIZE_MISMATCH;
        const Stream *st = &streams[stream[u]];
        int64_t regular = header_size[u] + es_size[u] - extra[u];
        int64_t first_room = PAYLOAD - first_af[u];
        int single = regular <= first_room;
        int64_t rest = regular - first_room;
        int64_t count = single ? 1 : 1 + (rest + PAYLOAD - 1) / PAYLOAD;
        int64_t tail = single ? 0 : rest % PAYLOAD;
        int64_t head = single ? PAYLOAD - regular : first_af[u];
        int64_t split = tail > 0 ? regular - tail : regular;
        int64_t start = packet * PAYLOAD;
        if (count + extra[u] != packets[u]) return SIZE_MISMATCH;
        int flags = (random_access[u] ? 0x40 : 0) | (pcr[u] >= 0 ? 0x10 : 0);
        if (head > 0) adaptation(out, start, head, flags, pcr[u]);
        if (tail > 0) adaptation(out, start + (count - 1) * PAYLOAD, PAYLOAD - tail, 0, -1);
        for (int64_t j = 0; j < extra[u]; j++) adaptation(out, start + (count + j) * PAYLOAD, PAYLOAD - 1, 0, -1);
        Layout layout = {out, start, head, split, regular, start + (count - 1) * PAYLOAD + PAYLOAD - tail,
                         start + count * PAYLOAD + PAYLOAD - 1};
        int status = pes_bytes(&layout, regular + extra[u], st, header_size[u], es_size[u], pts[u], dts[u],
                               frame_start[u], frame_stop[u], &buffers);
        if (status) return status;
        for (int64_t k = 0; k < packets[u]; k++) {
            uint8_t *h = out + PACKET * (PSI + packet + k);
            int with_af = k >= count || (k == 0 && head > 0) || (k == count - 1 && tail > 0);
            h[0] = 0x47;
            h[1] = (uint8_t)(((st->pid >> 8) & 0x1F) | (k == 0 ? 0x40 : 0));
            h[2] = (uint8_t)(st->pid & 0xFF);
            h[3] = (uint8_t)((with_af ? 0x30 : 0x10) | (counters[stream[u]] & 0x0F));
            counters[stream[u]]++;
        }
        packet += packets[u];
    }
    return packet == out_packets ? OK : SIZE_MISMATCH;
}
