/* libFuzzer target: jwt_verify. Random bytes rarely carry a valid MAC, so most of the
 * verifier would stay unreached; the first input byte picks a mode:
 *   0: the rest is a token, verified as is (structure, base64url, header, MAC);
 *   1: the rest is "header JSON" 0xFF "claims JSON", each base64url-encoded here and
 *      signed with the key, so header and claim checks run on arbitrary JSON;
 *   2: the rest is claims handed to jwt_sign; its token must pass every check up to the
 *      claims (so MALFORMED only when the claims are not a JSON object).
 * The policy (audience, subject, leeway) is on in odd runs and off (NULL) in even ones. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "json.h"
#include "jwt.h"
#include "limits.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)
#define NOW 1700000000

static int is_object(const char *s, size_t n)
{
    static struct json_token toks[LIMIT_TOKEN_BYTES];
    int r = json_parse(s, n, toks, LIMIT_TOKEN_BYTES, LIMIT_JSON_DEPTH);
    return r >= 1 && toks[0].type == JSON_OBJECT;
}

static enum jwt_result verify(const struct jwt_key *k, const char *t, size_t n, int strict)
{
    static const struct jwt_policy pol = { "api", "user", LIMIT_JWT_LEEWAY_S };
    char *copy = malloc(n ? n : 1);   /* exact size: ASan sees any over-read */
    REQUIRE(copy);
    memcpy(copy, t, n);
    enum jwt_result r = jwt_verify(k, copy, n, NOW, strict ? &pol : NULL);
    free(copy);
    REQUIRE(r >= JWT_OK && r <= JWT_BAD_SUBJECT);
    REQUIRE(jwt_result_str(r)[0]);
    REQUIRE(strict || (r != JWT_BAD_AUDIENCE && r != JWT_BAD_SUBJECT));
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jwt_key key;
    static int ready;
    static char tok[4 * LIMIT_TOKEN_BYTES];
    if (!ready) {
        jwt_key_init(&key, "fuzz-secret", 11);
        ready = 1;
    }
    if (size < 1 || size > LIMIT_TOKEN_BYTES)
        return 0;
    int mode = data[0] % 3, strict = data[0] & 4;
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    if (mode == 0) {
        verify(&key, (const char *)p, n, strict);
    } else if (mode == 1) {
        const uint8_t *sep = memchr(p, 0xFF, n);
        size_t hn = sep ? (size_t)(sep - p) : n;
        const uint8_t *c = sep ? sep + 1 : p + n;
        size_t cn = sep ? n - hn - 1 : 0;
        size_t o = b64url_encode(p, hn, tok);
        tok[o++] = '.';
        o += b64url_encode(c, cn, tok + o);
        unsigned char mac[32];
        jwt_mac(&key, tok, o, mac);
        tok[o++] = '.';
        o += b64url_encode(mac, sizeof mac, tok + o);
        enum jwt_result r = verify(&key, tok, o, strict);
        REQUIRE(r != JWT_BAD_SIGNATURE);
        if (o <= LIMIT_TOKEN_BYTES && !is_object((const char *)p, hn))
            REQUIRE(r == JWT_MALFORMED);
        if (r == JWT_OK)
            REQUIRE(is_object((const char *)c, cn));
    } else {
        int o = jwt_sign(&key, (const char *)p, n, tok, sizeof tok);
        if (o < 0)
            return 0;
        REQUIRE((size_t)o == strlen(tok) && o <= LIMIT_TOKEN_BYTES);
        enum jwt_result r = verify(&key, tok, (size_t)o, strict);
        REQUIRE(r != JWT_BAD_SIGNATURE && r != JWT_BAD_ALG && r != JWT_TOO_LONG);
        REQUIRE((r == JWT_MALFORMED) == !is_object((const char *)p, n));
    }
    return 0;
}
