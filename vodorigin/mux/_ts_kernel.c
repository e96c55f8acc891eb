/* The MPEG-TS writer's inner loop in C (ts_kernel.py loads it; ts_write.py is the same writer in
 * numpy, and the fallback when this is not built).
 *
 * Given a planned segment (mpegts.PesTable's columns, one row per PES in sending order) and where
 * each frame's bytes are, it writes every elementary-stream packet (ISO/IEC 13818-1 2.4.3) after
 * the PAT and PMT the caller has put first:
 *   - each PES's bytes: its header (2.4.3.6: PTS, and DTS when it differs), then per frame a lead
 *     (Annex B's access unit delimiter, with the parameter sets before key frames; or the ADTS
 *     header, ISO/IEC 14496-3 1.A.2) and the frame, whose NAL length fields become start codes;
 *   - laid out as mpegts plans it: after the first packet's adaptation field (PCR, random access,
 *     or the stuffing of a PES that fits one packet), through full packets, a last partial packet
 *     behind a stuffing adaptation field, then the continuity padding: packets of one payload
 *     byte behind 183 bytes of adaptation field;
 *   - packet headers: PUSI on a PES's first packet, its stream's PID and continuity counter.
 * The output is byte for byte what ts_write.write_segment_numpy gives (tests/test_ts_kernel.py).
 */

#include <stdint.h>
#include <string.h>

#define PACKET 188
#define PAYLOAD 184
#define PSI 2

enum { OK = 0, NAL_TRUNCATED = 1, NAL_OVERRUN = 2, SIZE_MISMATCH = 3, SCRATCH_SMALL = 4 };
enum { KIND_OTHER = 0, KIND_ANNEXB = 1, KIND_ADTS = 2 };

typedef struct {
    int64_t pid, stream_id, kind, length_size;
    const uint8_t *plain, *key, *adts;  /* video: the leads of other and key frames; audio: ADTS */
    int64_t plain_size, key_size;
    int64_t first_frame;  /* index of its first frame in the frame arrays */
} Stream;

/* Copy n bytes into the segment at body position p (body: the ES packets' payloads end to end). */
static void put(uint8_t *out, int64_t p, const uint8_t *src, int64_t n) {
    while (n > 0) {
        int64_t room = PAYLOAD - p % PAYLOAD, take = n < room ? n : room;
        memcpy(out + PACKET * (PSI + p / PAYLOAD) + 4 + p % PAYLOAD, src, (size_t)take);
        p += take; src += take; n -= take;
    }
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

/* The PES's bytes into scratch; its size, or a negative error. */
static int64_t pes_bytes(uint8_t *s, int64_t room, const Stream *st, int64_t header_size, int64_t es_size,
                         int64_t pts, int64_t dts, int64_t start, int64_t stop, const int64_t *addresses,
                         const int64_t *sizes, const uint8_t *sync) {
    int64_t total = header_size + es_size, n = 0;
    if (total > room) return -SCRATCH_SMALL;
    int with_dts = header_size == 19;
    int64_t length = header_size - 6 + es_size;
    if (length > 0xFFFF) length = 0;  /* unbounded, for video (2.4.3.7; ts_write checks audio) */
    s[0] = 0; s[1] = 0; s[2] = 1; s[3] = (uint8_t)st->stream_id;
    s[4] = (uint8_t)(length >> 8); s[5] = (uint8_t)(length & 0xFF);
    s[6] = 0x80; s[7] = with_dts ? 0xC0 : 0x80; s[8] = with_dts ? 10 : 5;
    timestamp(s + 9, with_dts ? 0x3 : 0x2, pts);
    if (with_dts) timestamp(s + 14, 0x1, dts);
    n = header_size;
    for (int64_t f = start; f < stop; f++) {
        int64_t g = st->first_frame + f, size = sizes[g];
        const uint8_t *src = (const uint8_t *)(intptr_t)addresses[g];
        int64_t lead = 0;
        if (st->kind == KIND_ANNEXB) {
            const uint8_t *prefix = sync[g] ? st->key : st->plain;
            lead = sync[g] ? st->key_size : st->plain_size;
            if (n + lead + size > total) return -SIZE_MISMATCH;
            memcpy(s + n, prefix, (size_t)lead);
        } else if (st->kind == KIND_ADTS) {
            int64_t adts = size + 7;
            lead = 7;
            if (n + lead + size > total) return -SIZE_MISMATCH;
            memcpy(s + n, st->adts, 3);
            s[n + 3] = (uint8_t)((st->adts[3] & 0xFC) | (adts >> 11));
            s[n + 4] = (uint8_t)((adts >> 3) & 0xFF);
            s[n + 5] = (uint8_t)(((adts & 7) << 5) | 0x1F);
            s[n + 6] = 0xFC;
        } else if (n + size > total) {
            return -SIZE_MISMATCH;
        }
        n += lead;
        memcpy(s + n, src, (size_t)size);
        if (st->kind == KIND_ANNEXB) {  /* NAL length fields -> start codes (ISO/IEC 14496-15) */
            int64_t w = st->length_size, pos = 0;
            if (size < w) return -NAL_TRUNCATED;
            while (pos < size) {
                if (pos + w > size) return -NAL_TRUNCATED;
                int64_t nal = 0;
                for (int64_t k = 0; k < w; k++) nal = (nal << 8) | s[n + pos + k];
                for (int64_t k = 0; k < w; k++) s[n + pos + k] = (uint8_t)(k == w - 1 ? 1 : 0);
                pos += w + nal;
                if (pos > size) return -NAL_OVERRUN;
            }
        }
        n += size;
    }
    return n == total ? n : -SIZE_MISMATCH;
}

/* Bumped with any change to ts_write_es's arguments: ts_kernel.py loads only its own version. */
int ts_kernel_version(void) { return 2; }

int ts_write_es(uint8_t *out, int64_t out_packets, int64_t n_frames, int64_t n_pes, const int64_t *stream, const int64_t *frame_start,
                const int64_t *frame_stop, const int64_t *pts, const int64_t *dts, const int64_t *header_size,
                const int64_t *es_size, const int64_t *first_af, const int64_t *pcr, const int64_t *random_access,
                const int64_t *extra, const int64_t *packets, const Stream *streams, int64_t n_streams,
                const int64_t *addresses, const int64_t *sizes, const uint8_t *sync, uint8_t *scratch,
                int64_t scratch_size) {
    int64_t counters[64] = {0};
    if (n_streams > 64) return SIZE_MISMATCH;
    int64_t packet = 0;  /* ES packets written */
    for (int64_t u = 0; u < n_pes; u++) {
        /* the plan is ours; still, nothing is written outside `out`, `scratch` or the frames */
        if (stream[u] < 0 || stream[u] >= n_streams || frame_start[u] < 0 || frame_stop[u] < frame_start[u]
            || streams[stream[u]].first_frame + frame_stop[u] > n_frames || packet + packets[u] > out_packets
            || header_size[u] + es_size[u] - extra[u] < 1 || extra[u] < 0)
            return SIZE_MISMATCH;
        const Stream *st = &streams[stream[u]];
        int64_t size = pes_bytes(scratch, scratch_size, st, header_size[u], es_size[u], pts[u], dts[u],
                                 frame_start[u], frame_stop[u], addresses, sizes, sync);
        if (size < 0) return (int)-size;
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
        put(out, start + head, scratch, split);
        if (tail > 0) put(out, start + (count - 1) * PAYLOAD + PAYLOAD - tail, scratch + split, tail);
        for (int64_t j = 0; j < extra[u]; j++) {
            int64_t p = start + (count + j) * PAYLOAD;
            adaptation(out, p, PAYLOAD - 1, 0, -1);
            *at(out, p + PAYLOAD - 1) = scratch[regular + j];
        }
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
    return OK;
}
