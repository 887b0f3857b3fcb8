/* jwt.c against outside vectors (RFC 7515 A.1, Wycheproof HMAC-SHA256 and JWS) read from
 * $SHARED_TESTDATA/jwt, then a table of home-made cases. Every token is copied into a buffer of
 * exactly its length, so ASan catches any read past the end. */
#include "jwt.h"

#include "json.h"
#include "limits.h"
#include "unit.h"

#define NOW 1700000000  /* the pinned clock of the home-made cases */
#define TOK_CAP 8192

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Test-side base64url, written apart from jwt.c's so one bug cannot hide in both. */
static size_t b64(const void *in, size_t n, char *out)
{
    const unsigned char *p = in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (size_t c = 0; c < chars; c++)
            out[o++] = b64_alphabet[v >> (18 - 6 * c) & 63];
    }
    out[o] = 0;
    return o;
}

static long unb64(const char *s, size_t n, unsigned char *out)
{
    unsigned acc = 0, bits = 0;
    long o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = memchr(b64_alphabet, s[i], 64);
        if (!c)
            return -1;
        acc = (acc << 6 | (unsigned)(c - b64_alphabet)) & 0xffff;
        if ((bits += 6) >= 8)
            out[o++] = (unsigned char)(acc >> (bits -= 8));
    }
    return o;
}

static long unhex(const char *s, size_t n, unsigned char *out)
{
    if (n % 2)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        unsigned v;
        if (sscanf(s + i, "%2x", &v) != 1)
            return -1;
        out[i / 2] = (unsigned char)v;
    }
    return (long)(n / 2);
}

/* Appends "." and the base64url HMAC of out[0..n): signs any signing input, even a bad one. */
static size_t seal(const struct jwt_key *k, char *out, size_t n)
{
    unsigned char mac[32];
    jwt_mac(k, out, n, mac);
    out[n++] = '.';
    return n + b64(mac, sizeof mac, out + n);
}

static size_t mint(const struct jwt_key *k, const char *header, const char *claims, char *out)
{
    size_t n = b64(header, strlen(header), out);
    out[n++] = '.';
    n += b64(claims, strlen(claims), out + n);
    return seal(k, out, n);
}

static enum jwt_result verify(const struct jwt_key *k, const char *tok, size_t len, int64_t now,
                              const struct jwt_policy *p)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, tok, len);
    enum jwt_result r = jwt_verify(k, copy, len, now, p);
    free(copy);
    return r;
}

static void expect(const struct jwt_key *k, const char *name, const char *tok, size_t len,
                   int64_t now, const struct jwt_policy *p, enum jwt_result want)
{
    enum jwt_result got = verify(k, tok, len, now, p);
    CHECK(got == want, "%s: got \"%s\", want \"%s\"", name, jwt_result_str(got),
          jwt_result_str(want));
}

/* A JWS whose MAC is right: jwt_mac must agree, and jwt_verify must get past the signature.
 * None of the outside valid vectors has an exp (most payloads are not even JSON), so the
 * verdict is a claims-step one (NO_EXP or MALFORMED); to show it is not a structural
 * MALFORMED, the same token with its first signature character changed must turn into
 * BAD_SIGNATURE. */
static void expect_valid_jws(const struct jwt_key *k, const char *name, const char *tok,
                             size_t len)
{
    const char *dot = memchr(tok, '.', len);
    const char *sig = dot ? memchr(dot + 1, '.', len - (size_t)(dot + 1 - tok)) : NULL;
    unsigned char mac[32], got[64];
    CHECK(sig != NULL, "%s: not three parts", name);
    if (!sig)
        return;
    jwt_mac(k, tok, (size_t)(sig - tok), mac);
    long n = unb64(sig + 1, len - (size_t)(sig + 1 - tok), got);
    CHECK(n == 32 && memcmp(mac, got, 32) == 0, "%s: jwt_mac disagrees with the vector", name);
    enum jwt_result r = verify(k, tok, len, 1, NULL);
    CHECK(r == JWT_MALFORMED || r == JWT_NO_EXP, "%s: got \"%s\"", name, jwt_result_str(r));
    char *bad = malloc(len);
    memcpy(bad, tok, len);
    bad[sig + 1 - tok] = bad[sig + 1 - tok] == 'A' ? 'B' : 'A';
    expect(k, name, bad, len, 1, NULL, JWT_BAD_SIGNATURE);
    free(bad);
}

/* The value after label: the rest of its line, or the next line when that is empty. */
static size_t field(const char *text, const char *label, const char **val)
{
    const char *p = strstr(text, label);
    if (!p)
        return 0;
    p += strlen(label);
    p += strspn(p, " \t");
    p += strspn(p, "\r\n");
    *val = p;
    return strcspn(p, " \t\r\n");
}

static void test_rfc(const char *dir)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof path, "%s/jwt/jwt_rfc.txt", dir);
    char *text = unit_slurp(path, &len);
    CHECK(text != NULL, "cannot read %s", path);
    if (!text)
        return;
    const char *key_hex = "", *input = "", *mac_hex = "", *tok = "", *none = "";
    const char *key2_hex = "", *tok2 = "", *detached = "", *attached = "";
    size_t key_n = field(text, "Key, raw bytes (64 bytes), hex:", &key_hex);
    size_t input_n = field(text, "Signing input (ASCII):", &input);
    size_t mac_n = field(text, "HMAC-SHA256 (hex):", &mac_hex);
    size_t tok_n = field(text, "Complete token (one line):", &tok);
    size_t none_n = field(text, "Example Unsecured JWT (alg \"none\")", &none);
    size_t key2_n = field(text, "Key hex (32 bytes):", &key2_hex);
    size_t tok2_n = field(text, "Token:", &tok2);
    size_t det_n = field(text, "Compact (detached) form:", &detached);
    size_t att_n = field(text, "Attached form:", &attached);

    unsigned char key[64], key2[32], mac[32], want[32];
    struct jwt_key k, k2;
    CHECK(unhex(key_hex, key_n, key) == 64, "RFC 7515 A.1 key");
    CHECK(unhex(mac_hex, mac_n, want) == 32, "RFC 7515 A.1 MAC");
    CHECK(unhex(key2_hex, key2_n, key2) == 32, "RFC 7520 4.4 key");
    CHECK(tok_n > 0 && none_n > 0 && tok2_n > 0 && det_n > 0 && att_n > 0, "jwt_rfc.txt layout");
    jwt_key_init(&k, key, sizeof key);
    jwt_key_init(&k2, key2, sizeof key2);

    jwt_mac(&k, input, input_n, mac);
    CHECK(memcmp(mac, want, 32) == 0, "RFC 7515 A.1: HMAC of the signing input");
    /* exp is 1300819380; RFC 7519 4.1.4: valid only before it. */
    struct jwt_policy strict = {NULL, NULL, 0}, lax = {NULL, NULL, LIMIT_JWT_LEEWAY_S};
    expect(&k, "A.1 before exp", tok, tok_n, 1300819379, &strict, JWT_OK);
    expect(&k, "A.1 at exp", tok, tok_n, 1300819380, &strict, JWT_EXPIRED);
    expect(&k, "A.1 within leeway", tok, tok_n, 1300819439, &lax, JWT_OK);
    expect(&k, "A.1 past leeway", tok, tok_n, 1300819440, &lax, JWT_EXPIRED);
    expect(&k, "A.1 today", tok, tok_n, NOW, &lax, JWT_EXPIRED);
    expect(&k2, "A.1 other key", tok, tok_n, 1300819379, &strict, JWT_BAD_SIGNATURE);
    expect(&k, "RFC 7519 6.1 alg none", none, none_n, 1300819379, &strict, JWT_BAD_ALG);
    expect_valid_jws(&k2, "RFC 7520 4.4", tok2, tok2_n);
    expect(&k, "RFC 7797 detached (crit b64)", detached, det_n, 1, NULL, JWT_BAD_ALG);
    expect(&k, "RFC 7797 attached (4 parts)", attached, att_n, 1, NULL, JWT_MALFORMED);
    free(text);
}

/* Copies the JSON string at toks[i] into out (NUL-terminated); -1 if not a string or too long. */
static long jcopy(const char *s, const struct json_token *toks, int i, char *out, size_t cap)
{
    if (i < 0 || toks[i].type != JSON_STRING || toks[i].len >= cap)
        return -1;
    size_t n = json_str_decode(s, &toks[i], out);
    out[n] = 0;
    return (long)n;
}

static long jhex(const char *s, const struct json_token *toks, int obj, const char *key,
                 unsigned char *out, size_t cap)
{
    char hex[2048];
    long n = jcopy(s, toks, json_get(s, toks, obj, key), hex, sizeof hex);
    return n < 0 || (size_t)n / 2 > cap ? -1 : unhex(hex, (size_t)n, out);
}

static int jint(const char *s, const struct json_token *toks, int obj, const char *key)
{
    int64_t v = -1;
    int i = json_get(s, toks, obj, key);
    if (i >= 0 && toks[i].type == JSON_NUMBER)
        json_get_int64(s, &toks[i], &v);
    return (int)v;
}

/* Parses a whole Wycheproof file with our json.c. Returns the tokens (malloc'd) or NULL. */
static struct json_token *load_json(const char *dir, const char *name, char **text)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof path, "%s/jwt/%s", dir, name);
    *text = unit_slurp(path, &len);
    CHECK(*text != NULL, "cannot read %s", path);
    if (!*text)
        return NULL;
    uint32_t max = (uint32_t)(len / 2 + 1);
    struct json_token *toks = malloc(max * sizeof *toks);
    int n = json_parse(*text, len, toks, max, LIMIT_JSON_DEPTH);
    CHECK(n >= 1 && toks[0].type == JSON_OBJECT, "%s: json_parse gave %d", name, n);
    if (n < 1 || toks[0].type != JSON_OBJECT) {
        free(toks);
        free(*text);
        return NULL;
    }
    return toks;
}

#define EACH(toks, arr, k, i) \
    for (uint32_t k = 0, i = (uint32_t)(arr) + 1; (arr) >= 0 && k < (toks)[arr].size; \
         k++, i = (toks)[i].next)

/* Every group, including 128-bit tags (a prefix of the MAC) and 16/65-byte keys. */
static void test_wycheproof_hmac(const char *dir)
{
    char *s, result[16];
    struct json_token *toks = load_json(dir, "wycheproof_hmac_sha256_test.json", &s);
    if (!toks)
        return;
    int tests = 0, total = jint(s, toks, 0, "numberOfTests");
    int groups = json_get(s, toks, 0, "testGroups");
    EACH(toks, groups, g, gi) {
        int tag_bytes = jint(s, toks, (int)gi, "tagSize") / 8;
        int arr = json_get(s, toks, (int)gi, "tests");
        EACH(toks, arr, t, ti) {
            int id = jint(s, toks, (int)ti, "tcId");
            unsigned char key[128], msg[1024], tag[128], mac[32];
            long kn = jhex(s, toks, (int)ti, "key", key, sizeof key);
            long mn = jhex(s, toks, (int)ti, "msg", msg, sizeof msg);
            long tn = jhex(s, toks, (int)ti, "tag", tag, sizeof tag);
            jcopy(s, toks, json_get(s, toks, (int)ti, "result"), result, sizeof result);
            CHECK(kn >= 0 && mn >= 0 && tn >= 0, "hmac tcId %d: unreadable", id);
            if (kn < 0 || mn < 0 || tn < 0)
                continue;
            struct jwt_key k;
            jwt_key_init(&k, key, (size_t)kn);
            jwt_mac(&k, msg, (size_t)mn, mac);
            int match = tn == tag_bytes && tag_bytes <= 32 && memcmp(mac, tag, tn) == 0;
            int valid = strcmp(result, "valid") == 0;
            CHECK(match == valid, "hmac tcId %d: result %s but tag %s", id, result,
                  match ? "matches" : "differs");
            tests++;
        }
    }
    CHECK(tests == total && tests > 0, "hmac: ran %d of %d tests", tests, total);
    free(toks);
    free(s);
}

/* The researcher's index of the HS256 rows: tcId, group, wycheproof_result, strict_expected,
 * key_hex, jws, note. Its strict column fixes four Wycheproof labels (see its notes). */
struct row {
    int id, seen;
    char *result, *strict, *key_hex, *jws;
};

static int load_index(char *tsv, struct row *rows, int max)
{
    int n = 0;
    for (char *line = tsv, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *f[7] = {0};
        f[0] = line;
        for (int i = 1; i < 7 && f[i - 1]; i++) {
            char *tab = strchr(f[i - 1], '\t');
            if (tab)
                *tab = 0;
            f[i] = tab ? tab + 1 : NULL;
        }
        if (line[0] == '#' || !f[6] || n == max)
            continue;
        rows[n++] = (struct row){atoi(f[0]), 0, f[2], f[3], f[4], f[5]};
    }
    return n;
}

/* Why each invalid HS256 row fails; rows not listed must be JWT_MALFORMED. Home-made, from
 * reading each vector: it pins the reason, not only the rejection. */
static enum jwt_result jws_reason(int id)
{
    switch (id) {
    case 2: case 3: case 5: case 6: case 8:  /* modified or missing signature, payload, header */
    case 373: case 374:                      /* MAC over other bytes than the ones sent */
        return JWT_BAD_SIGNATURE;
    case 16:                                 /* alg none */
        return JWT_BAD_ALG;
    }
    return JWT_MALFORMED;
}

static void test_wycheproof_jws(const char *dir)
{
    char path[512], *s, k_b64[128], jws[TOK_CAP], result[16];
    size_t tsv_len;
    struct row rows[128];
    snprintf(path, sizeof path, "%s/jwt/wycheproof_hs256_index.tsv", dir);
    char *tsv = unit_slurp(path, &tsv_len);
    CHECK(tsv != NULL, "cannot read %s", path);
    struct json_token *toks = tsv ? load_json(dir, "wycheproof_json_web_signature_test.json", &s)
                                  : NULL;
    if (!toks) {
        free(tsv);
        return;
    }
    int nrows = load_index(tsv, rows, 128), relabelled = 0;
    int groups = json_get(s, toks, 0, "testGroups");
    EACH(toks, groups, g, gi) {
        int priv = json_get(s, toks, (int)gi, "private");
        unsigned char key[64], key_tsv[64];
        if (priv < 0 || jcopy(s, toks, json_get(s, toks, priv, "kty"), k_b64, sizeof k_b64) < 0 ||
            strcmp(k_b64, "oct") != 0)
            continue;
        long kn = jcopy(s, toks, json_get(s, toks, priv, "k"), k_b64, sizeof k_b64);
        kn = kn < 0 ? -1 : unb64(k_b64, (size_t)kn, key);
        struct jwt_key k;
        jwt_key_init(&k, key, kn < 0 ? 0 : (size_t)kn);
        int arr = json_get(s, toks, (int)gi, "tests");
        EACH(toks, arr, t, ti) {
            int id = jint(s, toks, (int)ti, "tcId");
            long n = jcopy(s, toks, json_get(s, toks, (int)ti, "jws"), jws, sizeof jws);
            jcopy(s, toks, json_get(s, toks, (int)ti, "result"), result, sizeof result);
            struct row *r = NULL;
            for (int i = 0; i < nrows; i++)
                r = rows[i].id == id ? &rows[i] : r;
            CHECK(r != NULL && n >= 0, "jws tcId %d: missing from the index", id);
            if (!r || n < 0)
                continue;
            r->seen++;
            CHECK(strcmp(r->jws, jws) == 0 && strcmp(r->result, result) == 0 &&
                      unhex(r->key_hex, strlen(r->key_hex), key_tsv) == kn &&
                      memcmp(key, key_tsv, (size_t)kn) == 0,
                  "jws tcId %d: index and Wycheproof file disagree", id);
            relabelled += strcmp(r->strict, result) != 0;
            char name[64];
            snprintf(name, sizeof name, "jws tcId %d", id);
            if (strcmp(r->strict, "valid") == 0) {
                expect_valid_jws(&k, name, jws, (size_t)n);
            } else {
                CHECK(verify(&k, jws, (size_t)n, 1, NULL) != JWT_OK, "%s verified", name);
                expect(&k, name, jws, (size_t)n, 1, NULL, jws_reason(id));
            }
        }
    }
    for (int i = 0; i < nrows; i++)
        CHECK(rows[i].seen == 1, "index row tcId %d seen %d times", rows[i].id, rows[i].seen);
    CHECK(nrows > 0, "empty index");
    if (relabelled)
        fprintf(stderr, "note: %d Wycheproof JWS labels overridden by the index\n", relabelled);
    free(toks);
    free(s);
    free(tsv);
}

/* Claims and header cases. NOW = 1700000000, leeway 60 s. */
static const struct {
    const char *name, *header, *claims, *audience, *subject;
    enum jwt_result want;
} claim_cases[] = {
#define H256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
    {"valid", H256, "{\"exp\":1700000100}", NULL, NULL, JWT_OK},
    {"valid, spaced JSON", "{ \"alg\" : \"HS256\" }", " { \"exp\" : 1700000100 } ", NULL, NULL, JWT_OK},
    {"alg escaped", "{\"alg\":\"HS\\u0032\\u00356\"}", "{\"exp\":1700000100}", NULL, NULL, JWT_OK},
    {"alg none", "{\"alg\":\"none\"}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"alg HS512", "{\"alg\":\"HS512\"}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"alg 'HS256 '", "{\"alg\":\"HS256 \"}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"alg hs256", "{\"alg\":\"hs256\"}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"alg HS256 NUL", "{\"alg\":\"HS256\\u0000\"}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"alg missing", "{\"typ\":\"JWT\"}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"alg not a string", "{\"alg\":256}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"alg in an array", "{\"alg\":[\"HS256\"]}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"alg duplicate, last none", "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"crit", "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"exp\":1700000100}", NULL, NULL, JWT_BAD_ALG},
    {"header an array", "[\"HS256\"]", "{\"exp\":1700000100}", NULL, NULL, JWT_MALFORMED},
    {"header not JSON", "{\"alg\":\"HS256\"", "{\"exp\":1700000100}", NULL, NULL, JWT_MALFORMED},
    {"header trailing garbage", H256 "x", "{\"exp\":1700000100}", NULL, NULL, JWT_MALFORMED},
    {"header empty", "", "{\"exp\":1700000100}", NULL, NULL, JWT_MALFORMED},
    {"claims an array", H256, "[1700000100]", NULL, NULL, JWT_MALFORMED},
    {"claims not JSON", H256, "{\"exp\":1700000100", NULL, NULL, JWT_MALFORMED},
    {"claims empty", H256, "", NULL, NULL, JWT_MALFORMED},
    {"exp missing", H256, "{\"sub\":\"u\"}", NULL, NULL, JWT_NO_EXP},
    {"exp a string", H256, "{\"exp\":\"1700000100\"}", NULL, NULL, JWT_NO_EXP},
    {"exp null", H256, "{\"exp\":null}", NULL, NULL, JWT_NO_EXP},
    {"exp nested", H256, "{\"x\":{\"exp\":1700000100}}", NULL, NULL, JWT_NO_EXP},
    {"exp fractional", H256, "{\"exp\":1700000100.5}", NULL, NULL, JWT_OK},
    {"exp exponent", H256, "{\"exp\":1.7000001e9}", NULL, NULL, JWT_OK},
    {"exp now", H256, "{\"exp\":1700000000}", NULL, NULL, JWT_OK},
    {"exp within leeway", H256, "{\"exp\":1699999941}", NULL, NULL, JWT_OK},
    {"exp at leeway", H256, "{\"exp\":1699999940}", NULL, NULL, JWT_EXPIRED},
    {"exp beyond leeway", H256, "{\"exp\":1699999000}", NULL, NULL, JWT_EXPIRED},
    {"exp fraction past leeway", H256, "{\"exp\":1699999940.5}", NULL, NULL, JWT_OK},
    {"exp zero", H256, "{\"exp\":0}", NULL, NULL, JWT_EXPIRED},
    {"exp negative", H256, "{\"exp\":-1}", NULL, NULL, JWT_EXPIRED},
    {"exp huge", H256, "{\"exp\":1e300}", NULL, NULL, JWT_OK},
    {"exp duplicate, last wins", H256, "{\"exp\":1700000100,\"exp\":1}", NULL, NULL, JWT_EXPIRED},
    {"nbf past", H256, "{\"exp\":1700000100,\"nbf\":1699990000}", NULL, NULL, JWT_OK},
    {"nbf within leeway", H256, "{\"exp\":1700000100,\"nbf\":1700000060}", NULL, NULL, JWT_OK},
    {"nbf future", H256, "{\"exp\":1700000100,\"nbf\":1700000061}", NULL, NULL, JWT_NOT_YET_VALID},
    {"nbf a string", H256, "{\"exp\":1700000100,\"nbf\":\"0\"}", NULL, NULL, JWT_BAD_CLAIM},
    {"iat past", H256, "{\"exp\":1700000100,\"iat\":1699999999}", NULL, NULL, JWT_OK},
    {"iat within leeway", H256, "{\"exp\":1700000100,\"iat\":1700000060}", NULL, NULL, JWT_OK},
    {"iat future", H256, "{\"exp\":1700000100,\"iat\":1700000061}", NULL, NULL, JWT_ISSUED_IN_FUTURE},
    {"iat a bool", H256, "{\"exp\":1700000100,\"iat\":true}", NULL, NULL, JWT_BAD_CLAIM},
    {"iat null", H256, "{\"exp\":1700000100,\"iat\":null}", NULL, NULL, JWT_BAD_CLAIM},
    {"aud string", H256, "{\"exp\":1700000100,\"aud\":\"agent\"}", "agent", NULL, JWT_OK},
    {"aud string mismatch", H256, "{\"exp\":1700000100,\"aud\":\"other\"}", "agent", NULL, JWT_BAD_AUDIENCE},
    {"aud prefix", H256, "{\"exp\":1700000100,\"aud\":\"agen\"}", "agent", NULL, JWT_BAD_AUDIENCE},
    {"aud longer", H256, "{\"exp\":1700000100,\"aud\":\"agents\"}", "agent", NULL, JWT_BAD_AUDIENCE},
    {"aud array", H256, "{\"exp\":1700000100,\"aud\":[\"x\",\"agent\"]}", "agent", NULL, JWT_OK},
    {"aud array mismatch", H256, "{\"exp\":1700000100,\"aud\":[\"x\",\"y\"]}", "agent", NULL, JWT_BAD_AUDIENCE},
    {"aud array empty", H256, "{\"exp\":1700000100,\"aud\":[]}", "agent", NULL, JWT_BAD_AUDIENCE},
    {"aud array non-string", H256, "{\"exp\":1700000100,\"aud\":[1,\"agent\"]}", "agent", NULL, JWT_BAD_AUDIENCE},
    {"aud nested array", H256, "{\"exp\":1700000100,\"aud\":[[\"agent\"]]}", "agent", NULL, JWT_BAD_AUDIENCE},
    {"aud missing", H256, "{\"exp\":1700000100}", "agent", NULL, JWT_BAD_AUDIENCE},
    {"aud a number", H256, "{\"exp\":1700000100,\"aud\":1}", "agent", NULL, JWT_BAD_AUDIENCE},
    {"aud unchecked", H256, "{\"exp\":1700000100,\"aud\":\"other\"}", NULL, NULL, JWT_OK},
    {"sub", H256, "{\"exp\":1700000100,\"sub\":\"user\"}", NULL, "user", JWT_OK},
    {"sub escaped", H256, "{\"exp\":1700000100,\"sub\":\"\\u0075ser\"}", NULL, "user", JWT_OK},
    {"sub mismatch", H256, "{\"exp\":1700000100,\"sub\":\"root\"}", NULL, "user", JWT_BAD_SUBJECT},
    {"sub missing", H256, "{\"exp\":1700000100}", NULL, "user", JWT_BAD_SUBJECT},
    {"sub a number", H256, "{\"exp\":1700000100,\"sub\":1}", NULL, "1", JWT_BAD_SUBJECT},
    {"aud and sub", H256, "{\"exp\":1700000100,\"aud\":[\"agent\"],\"sub\":\"user\"}", "agent", "user", JWT_OK},
    {"expired before aud", H256, "{\"exp\":1,\"aud\":\"other\"}", "agent", NULL, JWT_EXPIRED},
};

static void test_claims(const struct jwt_key *k)
{
    char tok[TOK_CAP];
    for (size_t i = 0; i < sizeof claim_cases / sizeof claim_cases[0]; i++) {
        struct jwt_policy p = {claim_cases[i].audience, claim_cases[i].subject,
                               LIMIT_JWT_LEEWAY_S};
        size_t n = mint(k, claim_cases[i].header, claim_cases[i].claims, tok);
        expect(k, claim_cases[i].name, tok, n, NOW, &p, claim_cases[i].want);
    }
}

/* Replaces tok[at] with c in a copy and checks the verdict. */
static void expect_edit(const struct jwt_key *k, const char *name, const char *tok, size_t n,
                        size_t at, char c, enum jwt_result want)
{
    char copy[TOK_CAP];
    memcpy(copy, tok, n);
    copy[at] = c;
    expect(k, name, copy, n, NOW, NULL, want);
}

/* header "." payload, signed: only the base64url decoding can refuse what this makes. */
static size_t resign(const struct jwt_key *k, const char *h, size_t hn, const char *p,
                     size_t pn, char *out)
{
    memcpy(out, h, hn);
    out[hn] = '.';
    memcpy(out + hn + 1, p, pn);
    return seal(k, out, hn + 1 + pn);
}

/* Flips the lowest bit of a base64url character: only unused bits when it ends a part. */
static char flip(char c)
{
    return b64_alphabet[(strchr(b64_alphabet, c) - b64_alphabet) ^ 1];
}

static void test_structure(const struct jwt_key *k)
{
    char tok[TOK_CAP], t2[TOK_CAP], h[64], p[64];
    const char *claims = "{\"exp\":1700000100}";
    size_t n = mint(k, H256, claims, tok), m;
    size_t d1 = strcspn(tok, "."), d2 = d1 + 1 + strcspn(tok + d1 + 1, ".");
    const char *sig = tok + d2 + 1;
    expect(k, "valid", tok, n, NOW, NULL, JWT_OK);

    struct jwt_key other;
    jwt_key_init(&other, "another secret", 14);
    expect(&other, "other key", tok, n, NOW, NULL, JWT_BAD_SIGNATURE);
    m = b64("{\"alg\":\"HS256\",\"typ\":\"JWS\"}", 27, t2);
    m += (size_t)sprintf(t2 + m, "%s", tok + d1);
    expect(k, "tampered header", t2, m, NOW, NULL, JWT_BAD_SIGNATURE);
    expect_edit(k, "tampered payload", tok, n, d1 + 1, tok[d1 + 1] == 'e' ? 'f' : 'e',
                JWT_BAD_SIGNATURE);
    expect_edit(k, "tampered signature", tok, n, d2 + 1, sig[0] == 'A' ? 'B' : 'A',
                JWT_BAD_SIGNATURE);
    /* 43 characters carry 258 bits for a 256-bit MAC: the last 2 must be 0, or four
     * signature strings would pass for one MAC. */
    expect_edit(k, "signature unused bits", tok, n, n - 1, flip(tok[n - 1]), JWT_MALFORMED);
    expect_edit(k, "standard base64 '+'", tok, n, d2 + 1, '+', JWT_MALFORMED);
    expect_edit(k, "standard base64 '/'", tok, n, 0, '/', JWT_MALFORMED);
    expect_edit(k, "NUL in signature", tok, n, n - 2, '\0', JWT_MALFORMED);
    expect_edit(k, "space in header", tok, n, 3, ' ', JWT_MALFORMED);
    expect_edit(k, "high byte in signature", tok, n, d2 + 2, (char)0xc3, JWT_MALFORMED);

    memcpy(t2, tok, n);
    t2[n] = '=';
    expect(k, "signature padded", t2, n + 1, NOW, NULL, JWT_MALFORMED);
    memcpy(t2 + n, "AA", 2);
    expect(k, "signature one byte long", t2, n + 1, NOW, NULL, JWT_BAD_SIGNATURE);
    /* 4k+1 characters encode no whole number of bytes, even when the last is 'A' (zeros). */
    expect(k, "signature 45 chars", t2, n + 2, NOW, NULL, JWT_MALFORMED);
    expect(k, "signature one byte short", tok, n - 3, NOW, NULL, JWT_BAD_SIGNATURE);

    /* Parts of 16 and 19 bytes end in 2 characters carrying 4 unused bits, and need "==". */
    size_t hn = b64("{\"alg\":\"HS256\" }", 16, h), pn = b64("{\"exp\":1700000100 }", 19, p);
    CHECK(hn % 4 == 2 && pn % 4 == 2, "odd parts are %zu and %zu long", hn, pn);
    expect(k, "odd parts", t2, resign(k, h, hn, p, pn, t2), NOW, NULL, JWT_OK);
    memcpy(h + hn, "==", 3);
    memcpy(p + pn, "==", 3);
    expect(k, "header padded", t2, resign(k, h, hn + 2, p, pn, t2), NOW, NULL, JWT_MALFORMED);
    expect(k, "payload padded", t2, resign(k, h, hn, p, pn + 2, t2), NOW, NULL, JWT_MALFORMED);
    h[hn - 1] = flip(h[hn - 1]);
    expect(k, "header unused bits", t2, resign(k, h, hn, p, pn, t2), NOW, NULL, JWT_MALFORMED);
    h[hn - 1] = flip(h[hn - 1]);
    p[pn - 1] = flip(p[pn - 1]);
    expect(k, "payload unused bits", t2, resign(k, h, hn, p, pn, t2), NOW, NULL, JWT_MALFORMED);
    p[pn - 1] = flip(p[pn - 1]);
    m = b64(H256, 27, t2 + 2048);
    t2[2048 + m] = 'A';
    expect(k, "header 4k+1 chars", t2, resign(k, t2 + 2048, m + 1, p, pn, t2), NOW, NULL,
           JWT_MALFORMED);
    p[3] = ' ';
    expect(k, "space in payload", t2, resign(k, h, hn, p, pn, t2), NOW, NULL, JWT_MALFORMED);
    expect(k, "empty payload", t2, resign(k, h, hn, p, 0, t2), NOW, NULL, JWT_MALFORMED);

    static const char *bad[] = {
        "", ".", "..", "...", "abc", "a.b", "a.b.c.d", ".a.b", "a..b", "a.b.",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(verify(k, bad[i], strlen(bad[i]), NOW, NULL) != JWT_OK, "\"%s\" verified", bad[i]);
    expect(k, "no dots", tok, d1, NOW, NULL, JWT_MALFORMED);
    expect(k, "one dot", tok, d2, NOW, NULL, JWT_MALFORMED);
    expect(k, "empty signature", tok, d2 + 1, NOW, NULL, JWT_BAD_SIGNATURE);
    expect(k, "empty header", tok + d1, n - d1, NOW, NULL, JWT_MALFORMED);
    expect(k, "all parts empty", "..", 2, NOW, NULL, JWT_MALFORMED);
    memcpy(t2, tok, n);
    memcpy(t2 + n, ".x", 2);
    expect(k, "four parts", t2, n + 2, NOW, NULL, JWT_MALFORMED);
    expect(k, "trailing dot", t2, n + 1, NOW, NULL, JWT_MALFORMED);
    m = (size_t)sprintf(t2, "%.*s..%s", (int)d1, tok, tok + d1 + 1);
    expect(k, "doubled dot", t2, m, NOW, NULL, JWT_MALFORMED);

    /* Any prefix of a valid token is a different token; none may pass. */
    for (size_t i = 0; i < n; i++) {
        enum jwt_result r = verify(k, tok, i, NOW, NULL);
        CHECK(r != JWT_OK, "prefix of %zu bytes verified", i);
    }
    /* So is the token with any one character replaced. */
    for (size_t i = 0; i < n; i++) {
        if (tok[i] == '.')
            continue;
        memcpy(t2, tok, n);
        t2[i] = tok[i] == 'A' ? 'B' : 'A';
        CHECK(verify(k, t2, n, NOW, NULL) != JWT_OK, "byte %zu changed, still verified", i);
    }
}

/* Pads claims with a string until the token is exactly `len` bytes, if that length exists. */
static size_t sized_token(const struct jwt_key *k, size_t len, char *out)
{
    char claims[TOK_CAP];
    for (int pad = 0; pad < LIMIT_TOKEN_BYTES; pad++) {
        snprintf(claims, sizeof claims, "{\"exp\":1700000100,\"pad\":\"%0*d\"}", pad, 0);
        size_t n = mint(k, H256, claims, out);
        if (n == len)
            return n;
        if (n > len)
            break;
    }
    return 0;
}

static void test_limits_and_sign(const struct jwt_key *k)
{
    char tok[TOK_CAP];
    size_t n = sized_token(k, LIMIT_TOKEN_BYTES, tok);
    CHECK(n == LIMIT_TOKEN_BYTES, "no token of exactly the limit");
    expect(k, "exactly the limit", tok, n, NOW, NULL, JWT_OK);
    n = sized_token(k, LIMIT_TOKEN_BYTES + 1, tok);
    CHECK(n == LIMIT_TOKEN_BYTES + 1, "no token just past the limit");
    expect(k, "just past the limit", tok, n, NOW, NULL, JWT_TOO_LONG);
    memset(tok, 'A', TOK_CAP);
    tok[10] = tok[20] = '.';
    expect(k, "long garbage", tok, TOK_CAP, NOW, NULL, JWT_TOO_LONG);
    tok[30] = '.';  /* the split comes first */
    expect(k, "long garbage, 3 dots", tok, TOK_CAP, NOW, NULL, JWT_MALFORMED);

    const char *claims = "{\"sub\":\"user\",\"exp\":1700000100}";
    int len = jwt_sign(k, claims, strlen(claims), tok, sizeof tok);
    CHECK(len > 0 && (size_t)len == strlen(tok), "jwt_sign returned %d", len);
    CHECK(strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37) == 0,
          "jwt_sign header: %.40s", tok);
    struct jwt_policy p = {NULL, "user", LIMIT_JWT_LEEWAY_S};
    expect(k, "sign -> verify", tok, (size_t)len, NOW, &p, JWT_OK);
    expect(k, "sign -> verify, expired", tok, (size_t)len, 1700000160, &p, JWT_EXPIRED);
    char small[TOK_CAP];
    CHECK(jwt_sign(k, claims, strlen(claims), small, (size_t)len) == -1, "cap len accepted");
    CHECK(jwt_sign(k, claims, strlen(claims), small, (size_t)len + 1) == len, "cap len+1");
    CHECK(strcmp(small, tok) == 0, "jwt_sign is not deterministic");
    CHECK(jwt_sign(k, "{}", 2, small, 0) == -1, "cap 0 accepted");
    static char big[LIMIT_TOKEN_BYTES * 2];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[LIMIT_TOKEN_BYTES - 1] = '}';
    CHECK(jwt_sign(k, big, LIMIT_TOKEN_BYTES, small, sizeof small) == -1,
          "minted a token past the limit");
    CHECK(jwt_sign(k, big, sizeof big, small, sizeof small) == -1, "minted a huge token");
}

static void test_strings(void)
{
    CHECK(strstr(jwt_result_str(JWT_EXPIRED), "token expired") != NULL, "JWT_EXPIRED text");
    for (int a = JWT_OK; a <= JWT_BAD_SUBJECT; a++)
        for (int b = JWT_OK; b < a; b++)
            CHECK(strcmp(jwt_result_str(a), jwt_result_str(b)) != 0, "results %d, %d alike", a, b);
}

int main(void)
{
    struct jwt_key k;
    const char *secret = "sandbox-agent unit test secret";
    jwt_key_init(&k, secret, strlen(secret));
    test_claims(&k);
    test_structure(&k);
    test_limits_and_sign(&k);
    test_strings();

    const char *dir = unit_shared();
    if (dir) {
        test_rfc(dir);
        test_wycheproof_hmac(dir);
        test_wycheproof_jws(dir);
    } else {
        SKIP("SHARED_TESTDATA unset: ../shared is absent, RFC and Wycheproof vectors not run");
    }
    return unit_report("test_jwt");
}
