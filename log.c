#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define LOG_BUFFER 65536  /* one round's lines; past it lines are dropped, not blocked on */

static char pending[LOG_BUFFER];
static size_t npending;
static unsigned long dropped;
static int json_lines;   /* --log-format json */

/* s[0..n) as the inside of a JSON string: quotes, backslashes and controls escaped, and bytes
 * past ASCII as \u00XX, so a line parses whatever bytes a peer put in a path. out needs 6n. */
static size_t json_escape(char *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            out[o++] = (char)c;
        }
    }
    return o;
}

/* A bare integer value becomes a JSON number, except in identifiers (id, *_id), which stay
 * strings whatever they look like so a field never changes type between lines. */
static int json_number(const char *k, size_t klen, const char *v, size_t vlen)
{
    if ((klen == 2 && !memcmp(k, "id", 2)) || (klen > 3 && !memcmp(k + klen - 3, "_id", 3)))
        return 0;
    size_t i = vlen && v[0] == '-';
    if (i >= vlen || vlen - i > 15 || (v[i] == '0' && vlen - i > 1))
        return 0;
    for (; i < vlen; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return 1;
}

/* The logfmt line in[0..n) (k=v, k="v w", bare k) as one JSON object into out[0..cap).
 * Pairs that would not fit are dropped, so the object always closes. */
static size_t logfmt_to_json(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    out[o++] = '{';
    while (i < n) {
        while (i < n && in[i] == ' ')
            i++;
        size_t k = i, v = 0, vlen = 0;
        int has_value = 0, quoted = 0;
        while (i < n && in[i] != '=' && in[i] != ' ')
            i++;
        size_t klen = i - k;
        if (i < n && in[i] == '=') {
            has_value = 1;
            quoted = ++i < n && in[i] == '"';
            v = i += (size_t)quoted;
            while (i < n && in[i] != (quoted ? '"' : ' '))
                i++;
            vlen = i - v;
            i += quoted && i < n;
        }
        if (!klen || o + 6 * (klen + vlen) + 10 > cap)
            continue;
        if (o > 1)
            out[o++] = ',';
        out[o++] = '"';
        o += json_escape(out + o, in + k, klen);
        out[o++] = '"';
        out[o++] = ':';
        if (!has_value) {
            memcpy(out + o, "true", 4);
            o += 4;
        } else if (!quoted && json_number(in + k, klen, in + v, vlen)) {
            memcpy(out + o, in + v, vlen);
            o += vlen;
        } else {
            out[o++] = '"';
            o += json_escape(out + o, in + v, vlen);
            out[o++] = '"';
        }
    }
    out[o++] = '}';
    return o;
}

int log_set_format(const char *name)
{
    if (name && strcmp(name, "logfmt") && strcmp(name, "json"))
        return -1;
    json_lines = name && !strcmp(name, "json");
    return 0;
}

void log_init(void)
{
    struct stat st;
    /* A pipe or socket reader that stalls must not stall the agent. A terminal or file
     * does not block for long, and O_NONBLOCK on a tty would leak into the shell. */
    if (fstat(STDERR_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        int fl = fcntl(STDERR_FILENO, F_GETFL);
        if (fl >= 0)
            fcntl(STDERR_FILENO, F_SETFL, fl | O_NONBLOCK);
    }
}

void log_line(const char *fmt, ...)
{
    char line[1024];
    char ts[25];
    util_rfc3339(util_wall_ms(), ts);
    int n = snprintf(line, sizeof line, "ts=%s ", ts);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;   /* truncated line still ends in a newline */
    char json[4 * sizeof line];
    const char *out = line;
    if (json_lines) {
        len = logfmt_to_json(line, len, json, sizeof json - 1);
        out = json;
    }
    if (len + 1 > sizeof pending - npending) {
        dropped++;
        return;
    }
    memcpy(pending + npending, out, len);
    npending += len;
    pending[npending++] = '\n';
}

void log_flush(void)
{
    size_t off = 0;
    while (off < npending) {
        ssize_t w = write(STDERR_FILENO, pending + off, npending - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off < npending)
        dropped++;   /* the rest of this round is lost rather than waited for */
    npending = 0;
    if (dropped && npending == 0 && off > 0) {
        char msg[80], json[160];
        int n = snprintf(msg, sizeof msg, "level=warn event=log_dropped count=%lu", dropped);
        const char *out = msg;
        if (json_lines) {
            n = (int)logfmt_to_json(msg, (size_t)n, json, sizeof json - 1);
            out = json;
        }
        ((char *)out)[n++] = '\n';
        if (write(STDERR_FILENO, out, (size_t)n) == n)
            dropped = 0;
    }
}
