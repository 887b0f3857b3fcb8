/* inflate: round trips against gzip streams made at test time by the gzip tool and
 * python's zlib (stored, fixed and dynamic blocks, header fields, several members), split
 * at every input offset and drained through tiny output buffers; embedded vectors; corrupt
 * streams (bad magic, flags, CRC, ISIZE, truncated, distance too far, bad code lengths)
 * rejected with a reason. */
#include "inflate.h"
#include "unit.h"

#include <stdint.h>
#include <unistd.h>

static struct inflate z;

/* Decodes in (pieces of `piece` bytes, output through `cap`-byte buffers). Returns the
 * output length, -1 on a rejected stream, -2 when the stream is incomplete at its end. */
static long run(const unsigned char *in, size_t n, size_t piece, size_t cap,
                unsigned char *out, size_t out_max)
{
    unsigned char buf[70000];
    size_t total = 0;
    inflate_init(&z);
    for (size_t off = 0; off < n || 1;) {
        size_t len = n - off < piece ? n - off : piece;
        size_t used, made;
        if (inflate_run(&z, in + off, len, &used, buf, cap, &made) < 0)
            return -1;
        if (total + made > out_max)
            return -3;
        memcpy(out + total, buf, made);
        total += made;
        off += used;
        if (used < len && made < cap)
            return -4;   /* contract: all input is taken unless the output filled */
        if (off == n && made < cap)
            break;
    }
    return inflate_done(&z) ? (long)total : -2;
}

static char dir[] = "/tmp/inflate-test-XXXXXX";

/* Runs a shell line that writes dir/NAME; returns its bytes or NULL (tool missing). */
static unsigned char *make(const char *name, const char *cmd, size_t *len)
{
    char line[2048], path[256];
    snprintf(line, sizeof line, "cd %s && %s 2>/dev/null", dir, cmd);
    if (system(line) != 0)
        return NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return (unsigned char *)unit_slurp(path, len);
}

/* Feeds all of in, draining the output into out[*total..max). Returns 0 or -1. */
static int feed(const unsigned char *in, size_t n, unsigned char *out, size_t max,
                size_t *total)
{
    unsigned char buf[4096];
    for (size_t off = 0;;) {
        size_t used, made;
        if (inflate_run(&z, in + off, n - off, &used, buf, sizeof buf, &made) < 0 ||
            *total + made > max)
            return -1;
        memcpy(out + *total, buf, made);
        *total += made;
        off += used;
        if (off == n && made < sizeof buf)
            return 0;
    }
}

static void check_round(const char *what, const unsigned char *gz, size_t gzlen,
                        const unsigned char *plain, size_t plen, int every_offset)
{
    unsigned char *out = malloc(plen + 16);
    long r = run(gz, gzlen, gzlen, 65536, out, plen + 16);
    CHECK(r == (long)plen && !memcmp(out, plain, plen), "%s whole: %ld (%s)", what, r,
          z.error ? z.error : "");
    r = run(gz, gzlen, 1, 1, out, plen + 16);
    CHECK(r == (long)plen && !memcmp(out, plain, plen), "%s bytewise: %ld", what, r);
    r = run(gz, gzlen, 997, 7, out, plen + 16);
    CHECK(r == (long)plen && !memcmp(out, plain, plen), "%s 997/7: %ld", what, r);
    if (every_offset) {
        int bad = 0;
        for (size_t cut = 0; cut <= gzlen; cut++) {
            size_t total = 0;
            inflate_init(&z);
            int ok = feed(gz, cut, out, plen, &total) == 0 &&
                     feed(gz + cut, gzlen - cut, out, plen, &total) == 0;
            if (!ok || !inflate_done(&z) || total != plen || memcmp(out, plain, plen))
                bad++;
        }
        CHECK(bad == 0, "%s: %d split offsets of %zu failed", what, bad, gzlen);
    }
    free(out);
}

static void tool_vectors(void)
{
    if (!mkdtemp(dir)) {
        SKIP("mkdtemp");
        return;
    }
    /* text with long repeats (matches across the 32 KiB window) and random bytes */
    size_t plen = 300000;
    unsigned char *plain = malloc(plen);
    uint32_t x = 12345;
    for (size_t i = 0; i < plen; i++) {
        x = x * 1103515245u + 12345u;
        plain[i] = i < 100000 ? (unsigned char)"the quick brown fox "[(i * 7 / 5) % 20]
                 : i < 200000 ? (unsigned char)(x >> 24) : plain[i - 40000 + (i % 3)];
    }
    char path[256];
    snprintf(path, sizeof path, "%s/plain", dir);
    FILE *f = fopen(path, "wb");
    fwrite(plain, 1, plen, f);
    fclose(f);
    static const struct { const char *name, *cmd; } v[] = {
        { "g9.gz", "gzip -9 -c plain > g9.gz" },
        { "g1.gz", "gzip -1 -n -c plain > g1.gz" },
        { "py-stored.gz", "python3 -c \"import zlib;c=zlib.compressobj(0,8,31);"
                          "open('py-stored.gz','wb').write(c.compress(open('plain','rb')."
                          "read())+c.flush())\"" },
        { "py-fixed.gz", "python3 -c \"import zlib;c=zlib.compressobj(6,8,31,9,zlib.Z_FIXED);"
                         "open('py-fixed.gz','wb').write(c.compress(open('plain','rb')."
                         "read())+c.flush())\"" },
        { "py-header.gz", "python3 -c \"import gzip;open('py-header.gz','wb').write("
                          "gzip.compress(open('plain','rb').read(),mtime=0))\" && python3 -c \""
                          "import zlib,struct;d=open('plain','rb').read();c=zlib.compressobj"
                          "(6,8,-15);b=c.compress(d)+c.flush();h=b'\\x1f\\x8b\\x08\\x1e'+"
                          "bytes(6)+struct.pack('<H',3)+b'xyz'+b'name.txt\\x00comment\\x00'+"
                          "b'\\xab\\xcd';open('py-header.gz','wb').write(h+b+struct.pack('<II',"
                          "zlib.crc32(d),len(d)))\"" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t len;
        unsigned char *gz = make(v[i].name, v[i].cmd, &len);
        if (!gz) {
            SKIP("%s: gzip or python3 missing", v[i].name);
            continue;
        }
        check_round(v[i].name, gz, len, plain, plen, 0);
        free(gz);
    }
    /* every split offset, on a smaller stream of each kind */
    f = fopen(path, "wb");
    fwrite(plain + 95000, 1, 9000, f);
    fclose(f);
    static const char *small[] = {
        "gzip -9 -c plain > s.gz",
        "python3 -c \"import zlib;c=zlib.compressobj(0,8,31);open('s.gz','wb').write("
        "c.compress(open('plain','rb').read())+c.flush())\"",
        "python3 -c \"import zlib;c=zlib.compressobj(9,8,31,9,zlib.Z_FIXED);open('s.gz','wb')"
        ".write(c.compress(open('plain','rb').read())+c.flush())\"",
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        size_t len;
        unsigned char *gz = make("s.gz", small[i], &len);
        if (!gz) {
            SKIP("small %zu: tool missing", i);
            continue;
        }
        check_round(small[i], gz, len, plain + 95000, 9000, 1);
        free(gz);
    }
    /* two members, as `cat a.gz b.gz` makes */
    size_t len;
    unsigned char *gz = make("two.gz", "gzip -c plain > a.gz && gzip -1 -c plain > b.gz && "
                             "cat a.gz b.gz > two.gz", &len);
    if (gz) {
        unsigned char *twice = malloc(18000);
        memcpy(twice, plain + 95000, 9000);
        memcpy(twice + 9000, plain + 95000, 9000);
        check_round("two members", gz, len, twice, 18000, 1);
        free(twice);
        free(gz);
    }
    free(plain);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    CHECK(system(path) == 0, "cleanup");
}

/* gzip of "hello hello hello\n" (gzip -n -9: one fixed block with a match) */
static const unsigned char hello[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9,
    0xc9, 0x57, 0xc8, 0x40, 0x90, 0x5c, 0x00, 0x3b, 0x7c, 0x8a, 0xdf, 0x12, 0x00, 0x00,
    0x00,
};
#define HELLO "hello hello hello\n"
/* an empty file, gzip -n */
static const unsigned char empty[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void expect_error(const char *what, const unsigned char *in, size_t n,
                         const char *why)
{
    unsigned char out[256];
    long r = run(in, n, n, sizeof out, out, sizeof out);
    CHECK(r == -1 && z.error && strstr(z.error, why), "%s: whole gives %ld (%s)", what, r,
          z.error ? z.error : "");
    r = run(in, n, 1, 1, out, sizeof out);
    CHECK(r == -1 && z.error, "%s: bytewise gives %ld", what, r);
    /* once rejected it stays rejected */
    size_t used, made;
    CHECK(inflate_run(&z, hello, sizeof hello, &used, out, sizeof out, &made) == -1,
          "%s: sticky", what);
}

static void vectors(void)
{
    unsigned char out[256], bad[64];
    long r = run(hello, sizeof hello, 1, 1, out, sizeof out);
    CHECK(r == (long)strlen(HELLO) && !memcmp(out, HELLO, (size_t)r), "hello: %ld %s", r,
          z.error ? z.error : "");
    r = run(empty, sizeof empty, 1, 1, out, sizeof out);
    CHECK(r == 0, "empty: %ld", r);
    for (size_t cut = 0; cut < sizeof hello; cut++) {
        r = run(hello, cut, cut ? cut : 1, sizeof out, out, sizeof out);
        CHECK(r == -2, "hello cut at %zu: %ld, wanted incomplete", cut, r);
    }
    memcpy(bad, hello, sizeof hello);
    bad[0] = 0x1e;
    expect_error("bad magic", bad, sizeof hello, "magic");
    memcpy(bad, hello, sizeof hello);
    bad[2] = 7;
    expect_error("bad method", bad, sizeof hello, "method");
    memcpy(bad, hello, sizeof hello);
    bad[3] = 0x20;
    expect_error("reserved flag", bad, sizeof hello, "reserved");
    memcpy(bad, hello, sizeof hello);
    bad[sizeof hello - 8] ^= 1;
    expect_error("bad crc", bad, sizeof hello, "CRC");
    memcpy(bad, hello, sizeof hello);
    bad[sizeof hello - 4] ^= 1;
    expect_error("bad isize", bad, sizeof hello, "ISIZE");
    memcpy(bad, hello, sizeof hello);
    bad[sizeof hello] = 0x42;
    expect_error("trailing garbage", bad, sizeof hello + 1, "magic");
    /* hand-made deflate bodies behind a header */
    static const struct { const char *what; unsigned char body[8]; size_t n; const char *why; } d[] = {
        /* BTYPE 3 */
        { "block type 3", { 0x07 }, 1, "block type" },
        /* stored block whose NLEN is not ~LEN */
        { "stored nlen", { 0x01, 0x05, 0x00, 0xfa, 0xfe }, 5, "complement" },
        /* fixed block: literal 'a' then length 3 distance 2 (only 1 byte made so far) */
        { "distance too far", { 0x4b, 0x04, 0x42, 0x00 }, 4, "too far" },
        /* fixed block: length code 286 (invalid symbol) */
        { "length symbol 286", { 0x1b, 0x03 }, 2, "symbol" },
        /* dynamic block, HCLEN 4 with all code length lengths zero: no code */
        { "empty code length code", { 0x05, 0x00, 0x00, 0x00 }, 4, "code length code" },
        /* dynamic block with HLIT 30 (287 codes) */
        { "too many codes", { 0xf5, 0x00, 0x00, 0x00 }, 4, "too many" },
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        memcpy(bad, hello, 10);
        memcpy(bad + 10, d[i].body, d[i].n);
        memset(bad + 10 + d[i].n, 0, 16);
        expect_error(d[i].what, bad, 10 + d[i].n + 16, d[i].why);
    }
}

int main(void)
{
    vectors();
    tool_vectors();
    return unit_report("inflate");
}
