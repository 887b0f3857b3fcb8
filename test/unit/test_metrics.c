/* metrics.c: status classes, bucket edges (a duration equal to a bound falls in that
 * bucket, as Prometheus' le means "less or equal"), and quantiles against a brute-force
 * reference computed from the same bucket edges. */
#include "metrics.h"

#include <math.h>
#include <stdint.h>

#include "unit.h"

static int bucket_of(int64_t us)
{
    int i = 0;
    while (us > metrics_bucket_le_us(i))
        i++;
    return i;
}

static void check_labels(void)
{
    double prev = 0;
    for (int i = 0; i < METRICS_BUCKETS - 1; i++) {
        double le = strtod(metrics_bucket_label(i), NULL);
        CHECK(fabs(le * 1e6 - (double)metrics_bucket_le_us(i)) < 0.5, "label %s vs %lld us",
              metrics_bucket_label(i), (long long)metrics_bucket_le_us(i));
        CHECK(le > prev, "labels ascend at %d", i);
        prev = le;
    }
    CHECK(!strcmp(metrics_bucket_label(METRICS_BUCKETS - 1), "+Inf"), "last is +Inf");
    CHECK(metrics_bucket_le_us(METRICS_BUCKETS - 1) == INT64_MAX, "last bound");
}

static void check_counting(void)
{
    CHECK(metrics_quantile_ms(0.95) == 0, "no requests: 0");
    static const struct {
        int status;
        int64_t us;
        int bucket;
    } cases[] = {
        { 200, 0, 0 }, { 200, 100, 0 }, { 204, 101, 1 }, { 404, 250, 1 }, { 500, 251, 2 },
        { 301, 1000000, 12 }, { 101, 1000001, 13 }, { 200, 300000000, 18 },
        { 200, 300000001, 19 }, { 200, INT64_MAX / 4, 19 }, { 999, -5, 0 }, { 0, 7, 0 },
    };
    size_t n = sizeof cases / sizeof cases[0];
    uint64_t want_buckets[METRICS_BUCKETS] = { 0 };
    for (size_t i = 0; i < n; i++) {
        metrics_request(cases[i].status, cases[i].us);
        want_buckets[cases[i].bucket]++;
        CHECK(bucket_of(cases[i].us < 0 ? 0 : cases[i].us) == cases[i].bucket, "case %zu", i);
    }
    const struct metrics_requests *m = metrics_get();
    CHECK(m->total == n, "total %llu", (unsigned long long)m->total);
    CHECK(m->by_class[2] == 6 && m->by_class[4] == 1 && m->by_class[5] == 1 &&
          m->by_class[3] == 1 && m->by_class[1] == 1 && m->by_class[0] == 2,
          "classes %llu %llu %llu %llu %llu %llu", (unsigned long long)m->by_class[0],
          (unsigned long long)m->by_class[1], (unsigned long long)m->by_class[2],
          (unsigned long long)m->by_class[3], (unsigned long long)m->by_class[4],
          (unsigned long long)m->by_class[5]);
    CHECK(!memcmp(m->buckets, want_buckets, sizeof want_buckets), "buckets");
    CHECK(m->max_us == (uint64_t)(INT64_MAX / 4), "max");
    CHECK(metrics_quantile_ms(1.0) == (double)(INT64_MAX / 4) / 1000.0, "q=1 is the max");
}

/* After a uniform 1..100 ms load, p50 and p95 land within their (2.5x wide) bucket and
 * interpolation puts them close to the truth. */
static void check_quantiles(void)
{
    /* counters are global and only grow: the earlier cases are 12 of 10012 samples */
    for (int i = 0; i < 10000; i++)
        metrics_request(200, 1000 + (int64_t)(i % 100) * 990);
    double p50 = metrics_quantile_ms(0.5), p95 = metrics_quantile_ms(0.95);
    CHECK(p50 > 40 && p50 < 60, "p50 %.3f", p50);
    CHECK(p95 > 85 && p95 <= 100, "p95 %.3f", p95);
    CHECK(metrics_quantile_ms(0.5) <= metrics_quantile_ms(0.95), "monotone");
}

int main(void)
{
    check_labels();
    check_counting();
    check_quantiles();
    return unit_report("metrics");
}
