/* Request accounting for /metrics and /metrics/snapshot: counters by status class and a
 * fixed-bucket latency histogram. No syscalls, no allocation; fed once per answered request
 * by the server (metrics_request) and read by the handlers. */
#ifndef SANDBOX_METRICS_H
#define SANDBOX_METRICS_H
#include <stddef.h>
#include <stdint.h>

#define METRICS_BUCKETS 20   /* latency buckets, the last one +Inf */

struct metrics_requests {
    uint64_t total;
    uint64_t by_class[6];             /* [1]..[5]: 1xx..5xx; [0]: anything else */
    uint64_t sum_us;                  /* durations added up */
    uint64_t max_us;
    uint64_t buckets[METRICS_BUCKETS]; /* per bucket, not cumulative */
};

/* One answered request: its status and how long it took from its first byte to the last
 * byte of the answer (microseconds). */
void metrics_request(int status, int64_t us);
/* The counters so far; valid until the next metrics_request. */
const struct metrics_requests *metrics_get(void);
/* Bucket i's upper bound in microseconds (INT64_MAX for the last) and as a Prometheus le
 * label in seconds ("0.0005", "+Inf"). */
int64_t metrics_bucket_le_us(int i);
const char *metrics_bucket_label(int i);
/* The q-quantile (0 < q <= 1) of request durations in milliseconds, interpolated linearly
 * inside its bucket and capped by the largest duration seen; 0 with no requests. */
double metrics_quantile_ms(double q);

#endif
