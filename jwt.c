#include "jwt.h"

#include <string.h>

#include "b64.h"
#include "json.h"
#include "limits.h"

#define MAC_LEN 32
/* Decoded size of the largest part a token within the limit can carry (4 chars -> 3 bytes),
 * plus the 3 bytes of slack b64_decode asks of its output. Parts are decoded as strict
 * base64url (B64_URL) only once the token is known to be within LIMIT_TOKEN_BYTES. */
#define PART_MAX (LIMIT_TOKEN_BYTES / 4 * 3 + 3)
/* A JSON value needs at least two bytes ("0," or "[]") except the last: an upper bound on the
 * tokens any decoded part can produce, so json_parse never fails for want of tokens. */
#define TOKS_MAX (PART_MAX / 2 + 1)

/* The header of every token we mint, before encoding. */
static const char sign_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* Writes that the compiler may not drop as dead stores. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* OR-accumulated so the time taken does not depend on where the tags differ. */
static int tag_equal(const unsigned char *a, const unsigned char *b, size_t n)
{
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

/* Decodes one part and parses it; the part must be a JSON object (RFC 7515 4, RFC 7519 7.2). */
static int parse_part(const char *s, size_t n, unsigned char *dec, struct json_token *toks)
{
    long m = b64_decode(s, n, dec, B64_URL);
    if (m < 0)
        return -1;
    int r = json_parse((const char *)dec, (size_t)m, toks, TOKS_MAX, LIMIT_JSON_DEPTH);
    return r >= 1 && toks[0].type == JSON_OBJECT ? 0 : -1;
}

/* Whether the value at toks[i] is a string equal to want after unescaping. */
static int str_is(const unsigned char *dec, const struct json_token *toks, int i,
                  const char *want)
{
    char tmp[PART_MAX];
    size_t wlen = strlen(want);
    if (i < 0 || toks[i].type != JSON_STRING)
        return 0;
    size_t n = json_str_decode((const char *)dec, &toks[i], tmp);
    return n == wlen && memcmp(tmp, want, n) == 0;
}

/* Reads a NumericDate (RFC 7519 2): 1 with *out set, 0 when absent, -1 when not a number.
 * A double is exact for every integer time until the year 285 million and also takes the
 * fractional seconds the RFC allows. */
static int get_time(const unsigned char *dec, const struct json_token *toks, const char *name,
                    double *out)
{
    int i = json_get((const char *)dec, toks, 0, name);
    if (i < 0)
        return 0;
    if (toks[i].type != JSON_NUMBER || json_get_double((const char *)dec, &toks[i], out) < 0)
        return -1;
    return 1;
}

/* RFC 7519 4.1.3: aud is one string or an array of strings; one of them must match. */
static int audience_ok(const unsigned char *dec, const struct json_token *toks,
                       const char *want)
{
    int a = json_get((const char *)dec, toks, 0, "aud");
    if (a < 0)
        return 0;
    if (toks[a].type != JSON_ARRAY)
        return str_is(dec, toks, a, want);
    int found = 0;
    for (uint32_t k = 0, i = (uint32_t)a + 1; k < toks[a].size; k++, i = toks[i].next) {
        if (toks[i].type != JSON_STRING)
            return 0;  /* a malformed aud is rejected, not skipped */
        found |= str_is(dec, toks, (int)i, want);
    }
    return found;
}

/* alg must be exactly "HS256". The last duplicate key wins (json_get), which RFC 7515 4
 * allows. crit lists extensions that MUST be understood (RFC 7515 4.1.11); we know none. */
static enum jwt_result check_header(const char *s, size_t n)
{
    unsigned char dec[PART_MAX];
    struct json_token toks[TOKS_MAX];
    if (parse_part(s, n, dec, toks) < 0)
        return JWT_MALFORMED;
    if (json_get((const char *)dec, toks, 0, "crit") >= 0)
        return JWT_BAD_ALG;
    if (!str_is(dec, toks, json_get((const char *)dec, toks, 0, "alg"), "HS256"))
        return JWT_BAD_ALG;
    return JWT_OK;
}

/* The MAC covers input[0..n) as received: re-serialising would change the bytes. */
static enum jwt_result check_signature(const struct jwt_key *key, const char *input, size_t n,
                                       const char *sig, size_t sig_len)
{
    unsigned char got[PART_MAX], want[MAC_LEN];
    long m = b64_decode(sig, sig_len, got, B64_URL);
    if (m < 0)
        return JWT_MALFORMED;
    if (m != MAC_LEN)
        return JWT_BAD_SIGNATURE;
    jwt_mac(key, input, n, want);
    int ok = tag_equal(got, want, MAC_LEN);
    wipe(want, sizeof want);
    return ok ? JWT_OK : JWT_BAD_SIGNATURE;
}

static enum jwt_result check_claims(const char *s, size_t n, int64_t now,
                                    const struct jwt_policy *policy)
{
    unsigned char dec[PART_MAX];
    struct json_token toks[TOKS_MAX];
    double exp, nbf, iat;
    double t = (double)now, leeway = policy ? (double)policy->leeway : 0;
    if (parse_part(s, n, dec, toks) < 0)
        return JWT_MALFORMED;
    if (get_time(dec, toks, "exp", &exp) <= 0)
        return JWT_NO_EXP;
    int has_nbf = get_time(dec, toks, "nbf", &nbf);
    int has_iat = get_time(dec, toks, "iat", &iat);
    if (has_nbf < 0 || has_iat < 0)
        return JWT_BAD_CLAIM;
    if (t >= exp + leeway)  /* RFC 7519 4.1.4: valid only before exp */
        return JWT_EXPIRED;
    if (has_nbf && t + leeway < nbf)
        return JWT_NOT_YET_VALID;
    if (has_iat && t + leeway < iat)
        return JWT_ISSUED_IN_FUTURE;
    if (policy && policy->audience && !audience_ok(dec, toks, policy->audience))
        return JWT_BAD_AUDIENCE;
    if (policy && policy->subject &&
        !str_is(dec, toks, json_get((const char *)dec, toks, 0, "sub"), policy->subject))
        return JWT_BAD_SUBJECT;
    return JWT_OK;
}

void jwt_key_init(struct jwt_key *key, const void *secret, size_t len)
{
    br_hmac_key_init(&key->kc, &br_sha256_vtable, secret, len);
}

enum jwt_result jwt_verify(const struct jwt_key *key, const char *token, size_t len,
                           int64_t now, const struct jwt_policy *policy)
{
    size_t dot[2] = {0, 0}, dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] != '.')
            continue;
        if (dots == 2)
            return JWT_MALFORMED;
        dot[dots++] = i;
    }
    if (dots != 2)
        return JWT_MALFORMED;
    if (len > LIMIT_TOKEN_BYTES)
        return JWT_TOO_LONG;
    enum jwt_result r = check_header(token, dot[0]);
    if (r == JWT_OK)
        r = check_signature(key, token, dot[1], token + dot[1] + 1, len - dot[1] - 1);
    if (r == JWT_OK)
        r = check_claims(token + dot[0] + 1, dot[1] - dot[0] - 1, now, policy);
    return r;
}

void jwt_mac(const struct jwt_key *key, const void *msg, size_t len, unsigned char out[32])
{
    br_hmac_context hc;
    br_hmac_init(&hc, &key->kc, 0);
    br_hmac_update(&hc, msg, len);
    br_hmac_out(&hc, out);
    wipe(&hc, sizeof hc);  /* its inner/outer states forge MACs as well as the key does */
}

const char *jwt_result_str(enum jwt_result r)
{
    switch (r) {
    case JWT_OK: return "ok";
    case JWT_MALFORMED: return "malformed token";
    case JWT_TOO_LONG: return "token too long";
    case JWT_BAD_ALG: return "alg is not HS256 or crit present";
    case JWT_BAD_SIGNATURE: return "bad signature";
    case JWT_NO_EXP: return "exp claim missing or not a number";
    case JWT_EXPIRED: return "token expired";
    case JWT_NOT_YET_VALID: return "token not yet valid (nbf)";
    case JWT_ISSUED_IN_FUTURE: return "token issued in the future (iat)";
    case JWT_BAD_CLAIM: return "nbf or iat not a number";
    case JWT_BAD_AUDIENCE: return "audience mismatch";
    case JWT_BAD_SUBJECT: return "subject mismatch";
    }
    return "unknown jwt result";
}

int jwt_sign(const struct jwt_key *key, const char *claims, size_t claims_len, char *out,
             size_t cap)
{
    /* A token jwt_verify would refuse is no use; the bound also keeps the sums small. */
    if (claims_len > LIMIT_TOKEN_BYTES)
        return -1;
    size_t total = B64URL_ENCODED_LEN(sizeof sign_header - 1) + 1 +
                   B64URL_ENCODED_LEN(claims_len) + 1 + B64URL_ENCODED_LEN(MAC_LEN);
    if (total > LIMIT_TOKEN_BYTES || total >= cap)
        return -1;
    unsigned char mac[MAC_LEN];
    size_t o = b64url_encode((const unsigned char *)sign_header, sizeof sign_header - 1, out);
    out[o++] = '.';
    o += b64url_encode((const unsigned char *)claims, claims_len, out + o);
    jwt_mac(key, out, o, mac);
    out[o++] = '.';
    o += b64url_encode(mac, MAC_LEN, out + o);
    out[o] = 0;
    wipe(mac, sizeof mac);
    return (int)o;
}
