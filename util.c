#include "util.h"

#include <stdlib.h>
#include <string.h>
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

static char *put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + n;
}

void util_rfc3339(int64_t wall_ms, char out[25])
{
    /* by hand: strftime is slow and records carry three of these */
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char *p = put_digits(out, tm.tm_year + 1900, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = put_digits(p, (int)(wall_ms % 1000), 3);
    *p++ = 'Z';
    *p = 0;
}

void util_http_date(int64_t unix_s, char out[30])
{
    static const char days[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    memcpy(out, days + 3 * tm.tm_wday, 3);
    memcpy(out + 3, ", ", 2);
    char *p = put_digits(out + 5, tm.tm_mday, 2);
    *p++ = ' ';
    memcpy(p, months + 3 * tm.tm_mon, 3);
    p += 3;
    *p++ = ' ';
    p = put_digits(p, tm.tm_year + 1900, 4);
    *p++ = ' ';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    memcpy(p, " GMT", 5);
}

/* Random bytes come from a small pool refilled by one getrandom call: a command run takes
 * two ids (process_id, execution_id), two syscalls of the ~32 the agent spends per run
 * (issue 21). The pool lives in this process only: the agent never forks without exec. */
#define RANDOM_POOL 256   /* getrandom's never-short size */
static unsigned char pool[RANDOM_POOL];
static size_t pool_left;

static void random_bytes(unsigned char *raw, size_t need)
{
    if (need > pool_left) {
        /* getrandom never fails for <= 256 bytes once the pool is ready; if it somehow
         * does, fall back to the clock so ids stay distinct rather than aborting a request. */
        if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool) {
            uint64_t x = (uint64_t)util_mono_us() * 0x9e3779b97f4a7c15ull;
            for (size_t i = 0; i < need; i++, x = x * 6364136223846793005ull + 1)
                raw[i] = (unsigned char)(x >> 56);
            pool_left = 0;
            return;
        }
        pool_left = sizeof pool;
    }
    /* taken from the end; every byte handed out is wiped so it is never given twice */
    pool_left -= need;
    memcpy(raw, pool + pool_left, need);
    memset(pool + pool_left, 0, need);
}

void util_random_hex(char *out, size_t nhex)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t need = (nhex + 1) / 2;
    if (need > sizeof raw)
        need = sizeof raw, nhex = 2 * sizeof raw;
    random_bytes(raw, need);
    for (size_t i = 0; i < nhex; i++)
        out[i] = hex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    out[nhex] = 0;
}

char **util_strv_dup(char *const *v, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(v[i]) + 1;
    char **out = malloc((n + 1) * sizeof *out + bytes);
    if (!out)
        return NULL;
    char *s = (char *)(out + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(v[i]) + 1;
        memcpy(s, v[i], len);
        out[i] = s;
        s += len;
    }
    out[n] = NULL;
    return out;
}
