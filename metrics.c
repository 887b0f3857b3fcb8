#include "metrics.h"

/* Upper bounds on a 1-2.5-5 ladder from 100 us (a cached GET) to 5 min (a long synchronous
 * run): fine enough for a p95 within a factor of 2.5 before interpolation, and the same
 * series Prometheus client libraries default to, so dashboards line up. */
static const struct {
    int64_t le_us;
    const char *label;
} bucket[METRICS_BUCKETS] = {
    { 100, "0.0001" }, { 250, "0.00025" }, { 500, "0.0005" }, { 1000, "0.001" },
    { 2500, "0.0025" }, { 5000, "0.005" }, { 10000, "0.01" }, { 25000, "0.025" },
    { 50000, "0.05" }, { 100000, "0.1" }, { 250000, "0.25" }, { 500000, "0.5" },
    { 1000000, "1" }, { 2500000, "2.5" }, { 5000000, "5" }, { 10000000, "10" },
    { 30000000, "30" }, { 60000000, "60" }, { 300000000, "300" }, { INT64_MAX, "+Inf" },
};

static struct metrics_requests m;

void metrics_request(int status, int64_t us)
{
    if (us < 0)
        us = 0;
    m.total++;
    m.by_class[status >= 100 && status < 600 ? status / 100 : 0]++;
    m.sum_us += (uint64_t)us;
    if ((uint64_t)us > m.max_us)
        m.max_us = (uint64_t)us;
    int i = 0;
    while (us > bucket[i].le_us)
        i++;
    m.buckets[i]++;
}

const struct metrics_requests *metrics_get(void)
{
    return &m;
}

int64_t metrics_bucket_le_us(int i)
{
    return bucket[i].le_us;
}

const char *metrics_bucket_label(int i)
{
    return bucket[i].label;
}

double metrics_quantile_ms(double q)
{
    if (!m.total)
        return 0;
    double target = q * (double)m.total, seen = 0;
    int64_t lo = 0;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        double n = (double)m.buckets[i];
        int64_t hi = bucket[i].le_us;
        if ((uint64_t)hi > m.max_us)
            hi = (int64_t)m.max_us;   /* the top bucket ends at the largest seen */
        if (n > 0 && seen + n >= target) {
            double frac = (target - seen) / n;
            return ((double)lo + (double)(hi - lo) * frac) / 1000.0;
        }
        seen += n;
        lo = hi;
    }
    return (double)m.max_us / 1000.0;
}
