#include "util.h"

#include <sys/random.h>
#include <time.h>

int64_t util_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_rfc3339(int64_t wall_ms, char out[25])
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 25, "%Y-%m-%dT%H:%M:%S", &tm);
    int ms = (int)(wall_ms % 1000);
    out[n] = '.';
    out[n + 1] = (char)('0' + ms / 100);
    out[n + 2] = (char)('0' + ms / 10 % 10);
    out[n + 3] = (char)('0' + ms % 10);
    out[n + 4] = 'Z';
    out[n + 5] = 0;
}

void util_random_hex(char *out, size_t nhex)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t need = (nhex + 1) / 2;
    if (need > sizeof raw)
        need = sizeof raw, nhex = 2 * sizeof raw;
    /* getrandom never fails for <= 256 bytes once the pool is ready; if it somehow does,
     * fall back to the clock so ids stay distinct rather than aborting a request. */
    if (getrandom(raw, need, 0) != (ssize_t)need) {
        uint64_t x = (uint64_t)util_mono_us() * 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < need; i++, x = x * 6364136223846793005ull + 1)
            raw[i] = (unsigned char)(x >> 56);
    }
    for (size_t i = 0; i < nhex; i++)
        out[i] = hex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[nhex] = 0;
}
