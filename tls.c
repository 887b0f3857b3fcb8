#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "limits.h"

/* The suites a modern server offers, ChaCha20 first (fast without AES instructions, and
 * small); no RSA key exchange, no CBC, no static ECDH. */
static const uint16_t suites[] = {
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
};

/* The curves: x25519 (what servers pick first) with its fast m31 code, and P-256, P-384
 * and P-521 with BearSSL's generic i31 code. BearSSL's br_ec_all_m31 would add a P-256
 * specialist: 7.8 KB of code (2% of the binary) for ~1.8 -> ~1.0 ms a P-256 multiplication,
 * which only a server that prefers P-256 over x25519, or an ECDSA P-256 certificate's
 * signature check (a few ms a handshake, off the 50 ms budget), ever pays. */
static const br_ec_impl *ec_for(int curve)
{
    return curve == BR_EC_curve25519 ? &br_ec_c25519_m31 : &br_ec_prime_i31;
}

static const unsigned char *ec_generator(int curve, size_t *len)
{
    return ec_for(curve)->generator(curve, len);
}

static const unsigned char *ec_order(int curve, size_t *len)
{
    return ec_for(curve)->order(curve, len);
}

static size_t ec_xoff(int curve, size_t *len)
{
    return ec_for(curve)->xoff(curve, len);
}

static uint32_t ec_mul(unsigned char *g, size_t glen, const unsigned char *k, size_t klen,
                       int curve)
{
    return ec_for(curve)->mul(g, glen, k, klen, curve);
}

static size_t ec_mulgen(unsigned char *r, const unsigned char *x, size_t xlen, int curve)
{
    return ec_for(curve)->mulgen(r, x, xlen, curve);
}

static uint32_t ec_muladd(unsigned char *a, const unsigned char *b, size_t len,
                          const unsigned char *x, size_t xlen, const unsigned char *y,
                          size_t ylen, int curve)
{
    return ec_for(curve)->muladd(a, b, len, x, xlen, y, ylen, curve);
}

static const br_ec_impl ec_impl = {
    (1u << BR_EC_secp256r1) | (1u << BR_EC_secp384r1) | (1u << BR_EC_secp521r1) |
        (1u << BR_EC_curve25519),
    ec_generator, ec_order, ec_xoff, ec_mul, ec_mulgen, ec_muladd,
};

/* Trust anchors: one array, their DNs and keys in one block behind it. */
static br_x509_trust_anchor *anchors;
static size_t nanchors;

/* The X.509 checker handed to the engine: BearSSL's minimal validator, plus, for an IP
 * literal, a match of the address against the end-entity certificate's iPAddress names
 * (the minimal validator matches dNSName only). */
struct x509_ip {
    const br_x509_class *vtable;
    br_x509_minimal_context inner;
    unsigned char ip[16];
    size_t iplen;              /* 0: a DNS name, checked by inner */
    int depth;                 /* certificates begun so far */
    unsigned char *ee;         /* the end-entity certificate, when iplen */
    size_t ee_len;
    int ee_overflow;
};

struct tls {
    br_ssl_client_context cc;
    struct x509_ip x;
    unsigned char ibuf[BR_SSL_BUFSIZE_INPUT];   /* a server may send full 16 KiB records */
    unsigned char obuf[LIMIT_TLS_OUT + 85];     /* ours can be smaller: more records */
};

/* ---- trust anchors ---- */

static void to_buf(void *ctx, const void *data, size_t len)
{
    buf_append(ctx, data, len);
}

struct ta_acc {
    struct buf tas;    /* br_x509_trust_anchor entries, pointers as offsets into bytes */
    struct buf bytes;
};

static void add_anchor(struct ta_acc *acc, const struct buf *der)
{
    br_x509_decoder_context dc;
    struct buf dn;
    buf_init(&dn, 4096);
    br_x509_decoder_init(&dc, to_buf, &dn);
    br_x509_decoder_push(&dc, der->data, der->len);
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    if (!pk || br_x509_decoder_last_error(&dc) || dn.failed || !dn.len) {
        buf_free(&dn);
        return;   /* skipped: a key type we do not know, a malformed block */
    }
    br_x509_trust_anchor ta = { 0 };
    ta.flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
    ta.dn.data = (void *)(uintptr_t)acc->bytes.len;
    ta.dn.len = dn.len;
    buf_append(&acc->bytes, dn.data, dn.len);
    ta.pkey.key_type = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        ta.pkey.key.rsa.n = (void *)(uintptr_t)acc->bytes.len;
        ta.pkey.key.rsa.nlen = pk->key.rsa.nlen;
        buf_append(&acc->bytes, pk->key.rsa.n, pk->key.rsa.nlen);
        ta.pkey.key.rsa.e = (void *)(uintptr_t)acc->bytes.len;
        ta.pkey.key.rsa.elen = pk->key.rsa.elen;
        buf_append(&acc->bytes, pk->key.rsa.e, pk->key.rsa.elen);
    } else {
        ta.pkey.key.ec.curve = pk->key.ec.curve;
        ta.pkey.key.ec.q = (void *)(uintptr_t)acc->bytes.len;
        ta.pkey.key.ec.qlen = pk->key.ec.qlen;
        buf_append(&acc->bytes, pk->key.ec.q, pk->key.ec.qlen);
    }
    buf_append(&acc->tas, &ta, sizeof ta);
    buf_free(&dn);
}

static char *read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct buf b;
    buf_init(&b, max);
    ssize_t r = 0;
    do {
        if (buf_reserve(&b, 65536) < 0)
            break;
        r = read(fd, b.data + b.len, 65536);
        if (r > 0)
            b.len += (size_t)r;
    } while (r > 0 || (r < 0 && errno == EINTR));
    close(fd);
    if (b.failed || r < 0) {
        buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.data ? b.data : calloc(1, 1);
}

/* Decoding the bundle is ~0.3 ms a certificate (Debian's 144: ~45 ms, which at start would
 * be most of the agent's start-up, and most sandboxes never call https), so tls_init only
 * checks that the file holds certificates; they are decoded when the first https callback
 * is due, TLS_LOAD_STEP at a time between loop rounds (tls_load_step), once. */
#define TLS_LOAD_STEP 8

struct loader {
    char *pem;
    size_t len, off;
    int final_newline;          /* the extra "\n" pushed after the file (see below) */
    int in_cert;
    br_pem_decoder_context pc;
    struct buf der;
    struct ta_acc acc;
};

static char ca_path[4096];
static int ca_certs;            /* CERTIFICATE blocks seen by tls_init */
static int loaded;              /* tls_load_step finished */
static struct loader *ld;

static int count_certs(const char *pem, size_t len)
{
    static const char mark[] = "-----BEGIN CERTIFICATE-----";
    int n = 0;
    for (const char *p = pem; (p = memmem(p, len - (size_t)(p - pem), mark, sizeof mark - 1));
         p += sizeof mark - 1)
        n++;
    return n;
}

int tls_init(const char *path, char *why, size_t cap)
{
    size_t len = 0;
    char *pem = read_file(path, LIMIT_CA_FILE_BYTES, &len);
    if (!pem) {
        snprintf(why, cap, "cannot read CA bundle %s: %s", path,
                 errno ? strerror(errno) : "too large");
        return 0;
    }
    ca_certs = count_certs(pem, len);
    free(pem);
    if (!ca_certs) {
        snprintf(why, cap, "no certificate in CA bundle %s", path);
        return 0;
    }
    snprintf(ca_path, sizeof ca_path, "%s", path);
    return ca_certs;
}

int tls_available(void)
{
    return loaded ? nanchors > 0 : ca_certs > 0;
}

int tls_anchors(void)
{
    return (int)nanchors;
}

/* The anchors, moved into one block: the entries, then their bytes; offsets become
 * pointers. */
static void loader_finish(struct loader *l)
{
    size_t count = l->acc.tas.len / sizeof(br_x509_trust_anchor);
    unsigned char *block = count && !l->acc.tas.failed && !l->acc.bytes.failed
                               ? malloc(l->acc.tas.len + l->acc.bytes.len) : NULL;
    if (block) {
        memcpy(block, l->acc.tas.data, l->acc.tas.len);
        memcpy(block + l->acc.tas.len, l->acc.bytes.data, l->acc.bytes.len);
        unsigned char *base = block + l->acc.tas.len;
        anchors = (br_x509_trust_anchor *)(void *)block;
        for (size_t i = 0; i < count; i++) {
            br_x509_trust_anchor *ta = &anchors[i];
            ta->dn.data = base + (uintptr_t)ta->dn.data;
            if (ta->pkey.key_type == BR_KEYTYPE_RSA) {
                ta->pkey.key.rsa.n = base + (uintptr_t)ta->pkey.key.rsa.n;
                ta->pkey.key.rsa.e = base + (uintptr_t)ta->pkey.key.rsa.e;
            } else {
                ta->pkey.key.ec.q = base + (uintptr_t)ta->pkey.key.ec.q;
            }
        }
        nanchors = count;
    }
    free(l->pem);
    buf_free(&l->der);
    buf_free(&l->acc.tas);
    buf_free(&l->acc.bytes);
    free(l);
    loaded = 1;
}

int tls_load_step(void)
{
    if (loaded)
        return 1;
    if (!ld) {
        ld = calloc(1, sizeof *ld);
        if (!ld || !(ld->pem = read_file(ca_path, LIMIT_CA_FILE_BYTES, &ld->len))) {
            free(ld);
            ld = NULL;
            loaded = 1;   /* gone since start: https fails from now on */
            return 1;
        }
        buf_init(&ld->acc.tas, LIMIT_CA_FILE_BYTES);
        buf_init(&ld->acc.bytes, LIMIT_CA_FILE_BYTES);
        buf_init(&ld->der, 65536);
        br_pem_decoder_init(&ld->pc);
    }
    int certs = 0;
    while (certs < TLS_LOAD_STEP) {
        /* a final newline after the file, in case it lacks one: the decoder needs it */
        if (ld->off == ld->len && ld->final_newline++)
            break;
        const char *data = ld->off < ld->len ? ld->pem + ld->off : "\n";
        size_t n = ld->off < ld->len ? ld->len - ld->off : 1;
        size_t used = br_pem_decoder_push(&ld->pc, data, n);
        if (ld->off < ld->len)
            ld->off += used;
        switch (br_pem_decoder_event(&ld->pc)) {
        case BR_PEM_BEGIN_OBJ:
            ld->in_cert = !strcmp(br_pem_decoder_name(&ld->pc), "CERTIFICATE") ||
                          !strcmp(br_pem_decoder_name(&ld->pc), "X509 CERTIFICATE");
            buf_reset(&ld->der);
            br_pem_decoder_setdest(&ld->pc, ld->in_cert ? to_buf : NULL,
                                   ld->in_cert ? &ld->der : NULL);
            break;
        case BR_PEM_END_OBJ:
            if (ld->in_cert && !ld->der.failed)
                add_anchor(&ld->acc, &ld->der);
            ld->in_cert = 0;
            certs++;
            break;
        case BR_PEM_ERROR:   /* a broken block ends the file; what came before stays */
            ld->off = ld->len;
            ld->final_newline = 1;
            break;
        }
    }
    if (ld->off < ld->len || !ld->final_newline)
        return 0;
    loader_finish(ld);
    ld = NULL;
    return 1;
}

/* ---- the IP-address check ---- */

/* One DER element at *p: tag, content view; *p moves past it. -1 when malformed. */
static int der_next(const unsigned char **p, const unsigned char *end, int *tag,
                    const unsigned char **val, size_t *len)
{
    if (end - *p < 2)
        return -1;
    *tag = *(*p)++;
    size_t l = *(*p)++;
    if (l & 0x80) {
        int n = (int)(l & 0x7f);
        if (n == 0 || n > 3)
            return -1;
        for (l = 0; n--;) {
            if (*p >= end)
                return -1;
            l = l << 8 | *(*p)++;
        }
    }
    if (l > (size_t)(end - *p))
        return -1;
    *val = *p;
    *len = l;
    *p += l;
    return 0;
}

/* Does the certificate's subjectAltName hold iPAddress ip? (RFC 5280 4.2.1.6) */
static int cert_has_ip(const unsigned char *cert, size_t len, const unsigned char *ip,
                       size_t iplen)
{
    static const unsigned char san_oid[] = { 0x55, 0x1d, 0x11 };
    const unsigned char *p = cert, *v, *e;
    size_t l;
    int tag;
    if (der_next(&p, cert + len, &tag, &v, &l) < 0 || tag != 0x30)
        return 0;
    p = v, e = v + l;   /* Certificate */
    if (der_next(&p, e, &tag, &v, &l) < 0 || tag != 0x30)
        return 0;
    p = v, e = v + l;   /* TBSCertificate: find [3] extensions */
    while (p < e) {
        if (der_next(&p, e, &tag, &v, &l) < 0)
            return 0;
        if (tag != 0xa3)
            continue;
        const unsigned char *q = v, *qe = v + l, *ev;
        size_t el;
        if (der_next(&q, qe, &tag, &ev, &el) < 0 || tag != 0x30)
            return 0;
        q = ev, qe = ev + el;
        while (q < qe) {   /* Extension ::= SEQUENCE { OID, BOOLEAN?, OCTET STRING } */
            const unsigned char *x, *xv;
            size_t xl;
            if (der_next(&q, qe, &tag, &ev, &el) < 0 || tag != 0x30)
                return 0;
            x = ev;
            if (der_next(&x, ev + el, &tag, &xv, &xl) < 0 || tag != 0x06)
                return 0;
            if (xl != sizeof san_oid || memcmp(xv, san_oid, xl))
                continue;
            if (der_next(&x, ev + el, &tag, &xv, &xl) < 0)
                return 0;
            if (tag == 0x01 && der_next(&x, ev + el, &tag, &xv, &xl) < 0)
                return 0;
            if (tag != 0x04)
                return 0;
            const unsigned char *g = xv, *ge, *gv;
            size_t gl;
            if (der_next(&g, xv + xl, &tag, &gv, &gl) < 0 || tag != 0x30)
                return 0;
            for (g = gv, ge = gv + gl; g < ge;) {
                if (der_next(&g, ge, &tag, &xv, &xl) < 0)
                    return 0;
                if (tag == 0x87 && xl == iplen && !memcmp(xv, ip, iplen))
                    return 1;
            }
            return 0;
        }
        return 0;
    }
    return 0;
}

static void xi_start_chain(const br_x509_class **ctx, const char *server_name)
{
    struct x509_ip *x = (struct x509_ip *)(void *)ctx;
    x->depth = 0;
    x->ee_len = 0;
    x->ee_overflow = 0;
    x->inner.vtable->start_chain(&x->inner.vtable, x->iplen ? NULL : server_name);
}

static void xi_start_cert(const br_x509_class **ctx, uint32_t length)
{
    struct x509_ip *x = (struct x509_ip *)(void *)ctx;
    x->depth++;
    x->inner.vtable->start_cert(&x->inner.vtable, length);
}

static void xi_append(const br_x509_class **ctx, const unsigned char *buf, size_t len)
{
    struct x509_ip *x = (struct x509_ip *)(void *)ctx;
    if (x->iplen && x->depth == 1) {
        if (len > LIMIT_TLS_CERT - x->ee_len)
            x->ee_overflow = 1;
        else
            memcpy(x->ee + x->ee_len, buf, len), x->ee_len += len;
    }
    x->inner.vtable->append(&x->inner.vtable, buf, len);
}

static void xi_end_cert(const br_x509_class **ctx)
{
    struct x509_ip *x = (struct x509_ip *)(void *)ctx;
    x->inner.vtable->end_cert(&x->inner.vtable);
}

static unsigned xi_end_chain(const br_x509_class **ctx)
{
    struct x509_ip *x = (struct x509_ip *)(void *)ctx;
    unsigned r = x->inner.vtable->end_chain(&x->inner.vtable);
    if (r == 0 && x->iplen &&
        (x->ee_overflow || !cert_has_ip(x->ee, x->ee_len, x->ip, x->iplen)))
        r = BR_ERR_X509_BAD_SERVER_NAME;
    return r;
}

static const br_x509_pkey *xi_get_pkey(const br_x509_class *const *ctx, unsigned *usages)
{
    const struct x509_ip *x = (const struct x509_ip *)(const void *)ctx;
    return x->inner.vtable->get_pkey(&x->inner.vtable, usages);
}

static const br_x509_class xi_vtable = {
    sizeof(struct x509_ip), xi_start_chain, xi_start_cert, xi_append, xi_end_cert,
    xi_end_chain, xi_get_pkey,
};

/* ---- connections ---- */

struct tls *tls_new(const char *host)
{
    struct tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    struct x509_ip *x = &t->x;
    if (inet_pton(AF_INET, host, x->ip) == 1)
        x->iplen = 4;
    else if (inet_pton(AF_INET6, host, x->ip) == 1)
        x->iplen = 16;
    if (x->iplen && !(x->ee = malloc(LIMIT_TLS_CERT))) {
        free(t);
        return NULL;
    }
    br_ssl_client_context *cc = &t->cc;
    br_ssl_engine_context *eng = &cc->eng;
    /* the m31/i31 code: on 64-bit CPUs both smaller than m15 and about twice as fast (a
     * handshake is ~2 ms of the loop's CPU); curves: ec_impl above */
    br_ssl_client_zero(cc);
    br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
    br_ssl_engine_set_suites(eng, suites, sizeof suites / sizeof suites[0]);
    br_ssl_engine_set_ec(eng, &ec_impl);
    br_ssl_engine_set_rsavrfy(eng, br_rsa_i31_pkcs1_vrfy);
    br_ssl_engine_set_ecdsa(eng, br_ecdsa_i31_vrfy_asn1);
    br_ssl_engine_set_hash(eng, br_sha256_ID, &br_sha256_vtable);
    br_ssl_engine_set_hash(eng, br_sha384_ID, &br_sha384_vtable);
    br_ssl_engine_set_prf_sha256(eng, br_tls12_sha256_prf);
    br_ssl_engine_set_prf_sha384(eng, br_tls12_sha384_prf);
    br_ssl_engine_set_gcm(eng, &br_sslrec_in_gcm_vtable, &br_sslrec_out_gcm_vtable);
    br_ssl_engine_set_aes_ctr(eng, &br_aes_ct64_ctr_vtable);
    br_ssl_engine_set_ghash(eng, br_ghash_ctmul64);
    br_ssl_engine_set_chapol(eng, &br_sslrec_in_chapol_vtable, &br_sslrec_out_chapol_vtable);
    br_ssl_engine_set_chacha20(eng, br_chacha20_ct_run);
    br_ssl_engine_set_poly1305(eng, br_poly1305_ctmul_run);

    br_x509_minimal_init(&x->inner, &br_sha256_vtable, anchors, nanchors);
    /* chains are signed with SHA-256/384 (SHA-1 only on roots, whose signature is not
     * checked); RSA PKCS#1 and ECDSA on P-256/P-384 */
    br_x509_minimal_set_hash(&x->inner, br_sha256_ID, &br_sha256_vtable);
    br_x509_minimal_set_hash(&x->inner, br_sha384_ID, &br_sha384_vtable);
    br_x509_minimal_set_hash(&x->inner, br_sha512_ID, &br_sha512_vtable);
    br_x509_minimal_set_rsa(&x->inner, br_rsa_i31_pkcs1_vrfy);
    br_x509_minimal_set_ecdsa(&x->inner, &ec_impl, br_ecdsa_i31_vrfy_asn1);
    x->vtable = &xi_vtable;
    br_ssl_engine_set_x509(eng, &x->vtable);

    br_ssl_engine_set_buffers_bidi(eng, t->ibuf, sizeof t->ibuf, t->obuf, sizeof t->obuf);
    if (!br_ssl_client_reset(cc, x->iplen ? NULL : host, 0)) {
        tls_free(t);
        return NULL;
    }
    return t;
}

br_ssl_engine_context *tls_engine(struct tls *t)
{
    return &t->cc.eng;
}

void tls_free(struct tls *t)
{
    if (!t)
        return;
    free(t->x.ee);
    free(t);
}

const char *tls_strerror(int err)
{
    switch (err) {
    case BR_ERR_X509_BAD_SERVER_NAME: return "certificate does not match the host name";
    case BR_ERR_X509_NOT_TRUSTED: return "certificate not trusted (unknown CA)";
    case BR_ERR_X509_EXPIRED: return "certificate expired or not yet valid";
    case BR_ERR_X509_BAD_SIGNATURE: return "certificate signature invalid";
    case BR_ERR_BAD_VERSION: return "server offers no TLS 1.2";
    case BR_ERR_BAD_CIPHER_SUITE: return "no common cipher suite";
    case BR_ERR_IO: return "connection closed during the TLS handshake";
    }
    if (err >= BR_ERR_RECV_FATAL_ALERT && err < BR_ERR_RECV_FATAL_ALERT + 256)
        return "server sent a fatal TLS alert";
    if (err >= BR_ERR_SEND_FATAL_ALERT && err < BR_ERR_SEND_FATAL_ALERT + 256)
        return "TLS handshake failed (alert sent)";
    if (err >= 32 && err < 64)
        return "certificate chain invalid";
    return "TLS error";
}
