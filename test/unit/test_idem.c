/* Unit tests for idem.c: first use, replay, pending, body mismatch, scope (caller, method,
 * path), 5xx forgotten, oversize answers, expiry by the clock the caller passes, the key
 * count and byte budget bounds. */
#include "idem.h"
#include "limits.h"
#include "unit.h"

static struct idem_key key(const char *caller, const char *method, const char *path,
                           const char *k)
{
    return (struct idem_key){ caller, strlen(caller), method, strlen(method), path,
                              strlen(path), k, strlen(k) };
}

static enum idem_result begin(const char *k, const char *body, uint64_t token, int64_t now,
                              struct idem_answer *out)
{
    struct idem_key ik = key("Bearer t1", "POST", "/commands/run", k);
    return idem_begin(&ik, body, strlen(body), token, now, out);
}

static void answer(uint64_t token, int status, const char *body)
{
    struct idem_answer a = { status, NULL, "X-A: 1\r\n", 8, body, strlen(body) };
    idem_answered(token, &a);
}

static void test_flow(void)
{
    struct idem_answer a;
    CHECK(begin("k1", "{}", 1, 1000, &a) == IDEM_FIRST, "first use");
    CHECK(begin("k1", "{}", 2, 1001, &a) == IDEM_PENDING, "repeat before the answer");
    answer(99, 200, "not mine");   /* another request's answer is ignored */
    CHECK(begin("k1", "{}", 3, 1002, &a) == IDEM_PENDING, "still pending");
    answer(1, 200, "{\"ok\":1}");
    CHECK(begin("k1", "{}", 4, 1003, &a) == IDEM_REPLAY, "replayed");
    CHECK(a.status == 200 && a.body_len == 8 && !memcmp(a.body, "{\"ok\":1}", 8)
          && a.headers_len == 8 && !memcmp(a.headers, "X-A: 1\r\n", 8), "the first answer");
    answer(4, 200, "replay's own answer is not kept over the first");
    CHECK(begin("k1", "{}", 5, 1004, &a) == IDEM_REPLAY && a.body_len == 8, "still the first");
    CHECK(begin("k1", "{\"x\":1}", 6, 1005, &a) == IDEM_MISMATCH, "another body");

    /* scope: caller, method and path are part of the key */
    struct idem_key other[] = {
        key("Bearer t2", "POST", "/commands/run", "k1"),
        key("Bearer t1", "PUT", "/commands/run", "k1"),
        key("Bearer t1", "POST", "/commands/background", "k1"),
        key("Bearer t1", "POST", "/commands/run", "k1 "),
    };
    for (size_t i = 0; i < sizeof other / sizeof *other; i++)
        CHECK(idem_begin(&other[i], "{}", 2, 10 + i, 1006, &a) == IDEM_FIRST, "scope %zu", i);

    /* a 5xx started nothing: forgotten, so the retry runs */
    CHECK(begin("k5", "{}", 20, 1007, &a) == IDEM_FIRST, "5xx first");
    answer(20, 503, "{\"code\":\"busy\"}");
    CHECK(begin("k5", "{}", 21, 1008, &a) == IDEM_FIRST, "5xx forgotten");
    answer(21, 400, "{\"code\":\"INVALID_REQUEST\"}");
    CHECK(begin("k5", "{}", 22, 1009, &a) == IDEM_REPLAY && a.status == 400, "4xx kept");

    /* an answer over LIMIT_IDEM_REPLY_BYTES is not kept, and never re-run */
    CHECK(begin("big", "{}", 30, 1010, &a) == IDEM_FIRST, "big first");
    static char big[LIMIT_IDEM_REPLY_BYTES + 1];
    struct idem_answer b = { 200, NULL, NULL, 0, big, sizeof big };
    idem_answered(30, &b);
    CHECK(begin("big", "{}", 31, 1011, &a) == IDEM_NOT_KEPT, "big not kept");

    /* expiry: the caller's clock */
    CHECK(begin("k1", "{}", 40, 1000 + LIMIT_IDEM_TTL_MS - 1, &a) == IDEM_REPLAY, "not yet expired");
    CHECK(begin("k1", "{}", 41, 1000 + LIMIT_IDEM_TTL_MS, &a) == IDEM_FIRST, "expired");
    CHECK(idem_keys() >= 1, "keys counted");
}

static void test_bounds(void)
{
    struct idem_answer a;
    char k[32];
    int64_t now = (int64_t)LIMIT_IDEM_TTL_MS * 10;   /* everything before has expired */
    for (int i = 0; i < LIMIT_IDEM_KEYS + 10; i++) {
        snprintf(k, sizeof k, "n%d", i);
        CHECK(begin(k, "{}", 1000 + (uint64_t)i, now, &a) == IDEM_FIRST, "new %d", i);
        answer(1000 + (uint64_t)i, 201, "{}");
    }
    CHECK(idem_keys() == LIMIT_IDEM_KEYS, "at most LIMIT_IDEM_KEYS kept: %zu", idem_keys());
    CHECK(begin("n0", "{}", 9000, now, &a) == IDEM_FIRST, "the oldest was forgotten");
    answer(9000, 201, "{}");
    snprintf(k, sizeof k, "n%d", LIMIT_IDEM_KEYS + 9);
    CHECK(begin(k, "{}", 9001, now, &a) == IDEM_REPLAY && a.status == 201, "the newest kept");

    /* bytes: answers of 3 MiB each, the budget holds about twenty */
    now += LIMIT_IDEM_TTL_MS;
    static char three[3u << 20];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "b%d", i);
        CHECK(begin(k, "{}", 20000 + (uint64_t)i, now, &a) == IDEM_FIRST, "b %d", i);
        struct idem_answer x = { 200, NULL, NULL, 0, three, sizeof three };
        idem_answered(20000 + (uint64_t)i, &x);
        CHECK(idem_bytes() <= LIMIT_IDEM_TOTAL_BYTES, "bytes %zu", idem_bytes());
    }
    CHECK(begin("b39", "{}", 30000, now, &a) == IDEM_REPLAY && a.body_len == sizeof three,
          "the newest big answer is kept");
    CHECK(begin("b0", "{}", 30001, now, &a) == IDEM_FIRST, "the oldest big answer went first");
}

static void test_key_valid(void)
{
    char longest[LIMIT_IDEM_KEY_BYTES + 2];
    memset(longest, 'a', sizeof longest);
    CHECK(idem_key_valid("0b8c6f1e-2c55-4f0e-9d1c-3a3e7b1f2a90", 36), "uuid");
    CHECK(idem_key_valid(longest, LIMIT_IDEM_KEY_BYTES), "255");
    CHECK(!idem_key_valid(longest, LIMIT_IDEM_KEY_BYTES + 1), "256");
    CHECK(!idem_key_valid("", 0), "empty");
    CHECK(!idem_key_valid("a b", 3), "space");
    CHECK(!idem_key_valid("a\x01", 2), "control");
    CHECK(!idem_key_valid("\xc3\xa9", 2), "non-ASCII");
}

int main(void)
{
    test_flow();
    test_bounds();
    test_key_valid();
    return unit_report("test_idem");
}
