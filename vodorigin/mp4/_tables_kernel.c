/* stsc's pass in C (tables_kernel.py loads it; mp4/tables.py does the same in numpy, and is the
 * fallback when this is not built).
 *
 * stsc (ISO/IEC 14496-12 8.7.4) is a list of runs, 12 big-endian bytes each: the number of the
 * run's first chunk (from 1), the samples in each of its chunks, a sample description index.
 * stsc_first_samples checks the runs' numbering and gives each run's first sample (the samples of
 * the runs before it) and the largest samples-per-chunk, in one pass over the file's bytes. A
 * 2-hour title's audio track has some 190,000 runs; numpy needs several passes over the
 * big-endian columns for the same (README: Performance).
 */

#include <stdint.h>

#define TABLES_KERNEL_VERSION 1

enum { OK = 0, BAD_NUMBERING = 1 };

int tables_kernel_version(void) { return TABLES_KERNEL_VERSION; }

static inline uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* runs: n_runs entries of 12 bytes; n_chunks: the chunks stco/co64 holds. Writes first_sample[i]
 * for every run and *largest (the largest samples-per-chunk); returns BAD_NUMBERING, with
 * nothing promised of the outputs, unless the first run starts at chunk 1 and every run starts
 * after the one before it and at most at chunk n_chunks. Each run's samples are then
 * (chunks in it < n_chunks) x (samples per chunk < 2^32), and the chunks of all runs add up to at
 * most n_chunks: with n_chunks < 2^30 (the caller's bound) no sum reaches 2^62. */
int stsc_first_samples(const uint8_t *runs, int64_t n_runs, int64_t n_chunks, int64_t *first_sample,
                       int64_t *largest) {
    int64_t sample = 0;
    uint32_t previous = 0, previous_per = 0, most = 0;
    for (int64_t i = 0; i < n_runs; i++) {
        const uint8_t *run = runs + 12 * i;
        uint32_t chunk = be32(run), per = be32(run + 4);
        if ((i == 0 ? chunk != 1 : chunk <= previous) || (int64_t)chunk > n_chunks)
            return BAD_NUMBERING;
        sample += (int64_t)(chunk - previous) * (int64_t)previous_per;
        first_sample[i] = sample;
        if (per > most)
            most = per;
        previous = chunk;
        previous_per = per;
    }
    *largest = most;
    return OK;
}
