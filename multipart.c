#include "multipart.h"

#include <string.h>
#include <strings.h>

enum {
    S_PREAMBLE,   /* before the first delimiter: skipped */
    S_AFTER,      /* just after a delimiter: "--" ends the body, else padding and CRLF */
    S_AFTER_DASH, /* one '-' of the closing "--" seen */
    S_AFTER_PAD,  /* transport padding (spaces, tabs) before the CRLF */
    S_AFTER_CR,   /* the CR of that CRLF seen */
    S_HEADERS,    /* a part's header lines */
    S_DATA,       /* a part's body */
    S_EPILOGUE,   /* after the closing delimiter: skipped */
    S_ERROR,
};

/* RFC 2046 5.1.1 bchars (a space only inside). CR is not one of them, which the delimiter
 * search relies on: CR appears in "\r\n--boundary" only at its start. */
static int bchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("'()+_,-./:=? ", c) != NULL);
}

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

/* ---- parameters: `; key=value` lists (RFC 7578 4.2, RFC 2045 5.1) ---- */

/* Parses the next parameter from s[*i..n): key into key/klen, value (unquoted, escapes
 * resolved) into val (cap bytes). Returns 1 with one, 0 at the end, -1 malformed, -2 too
 * long. */
static int param_next(const char *s, size_t n, size_t *i, const char **key, size_t *klen,
                      char *val, size_t cap, size_t *vlen)
{
    size_t k = *i;
    while (k < n && (ows(s[k]) || s[k] == ';'))
        k++;
    if (k == n)
        return 0;
    *key = s + k;
    while (k < n && s[k] != '=' && s[k] != ';' && !ows(s[k]))
        k++;
    *klen = (size_t)(s + k - *key);
    while (k < n && ows(s[k]))
        k++;
    *vlen = 0;
    if (k < n && s[k] == '=') {
        k++;
        while (k < n && ows(s[k]))
            k++;
        if (k < n && s[k] == '"') {
            for (k++;; k++) {
                if (k >= n)
                    return -1;
                if (s[k] == '"')
                    break;
                if (s[k] == '\\' && k + 1 < n)
                    k++;
                if (*vlen + 1 >= cap)
                    return -2;
                val[(*vlen)++] = s[k];
            }
            k++;
        } else {
            while (k < n && s[k] != ';' && !ows(s[k])) {
                if (*vlen + 1 >= cap)
                    return -2;
                val[(*vlen)++] = s[k++];
            }
        }
    }
    val[*vlen] = 0;
    while (k < n && ows(s[k]))
        k++;
    if (k < n && s[k] != ';')
        return -1;
    *i = k;
    return 1;
}

int multipart_boundary(const char *ct, size_t len, char *out)
{
    static const char type[] = "multipart/form-data";
    size_t tl = sizeof type - 1;
    if (len < tl || strncasecmp(ct, type, tl) != 0 || (len > tl && ct[tl] != ';' && !ows(ct[tl])))
        return -1;
    size_t i = tl, klen, vlen;
    const char *key;
    char val[LIMIT_MULTIPART_BOUNDARY + 2];
    int r, found = -1;
    while ((r = param_next(ct, len, &i, &key, &klen, val, sizeof val, &vlen)) != 0) {
        if (r < 0)
            return -1;
        if (klen == 8 && strncasecmp(key, "boundary", 8) == 0) {
            if (vlen == 0 || vlen > LIMIT_MULTIPART_BOUNDARY || val[vlen - 1] == ' ')
                return -1;
            for (size_t k = 0; k < vlen; k++)
                if (!bchar((unsigned char)val[k]))
                    return -1;
            memcpy(out, val, vlen + 1);
            found = (int)vlen;
        }
    }
    return found;
}

void multipart_init(struct multipart *m, const char *boundary, size_t blen)
{
    memset(m, 0, offsetof(struct multipart, line));
    if (blen > LIMIT_MULTIPART_BOUNDARY)
        blen = LIMIT_MULTIPART_BOUNDARY;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, blen);
    m->dlen = 4 + blen;
    m->state = S_PREAMBLE;
    m->match = 2;   /* the first delimiter may open the body without its CRLF */
    m->name[0] = m->filename[0] = 0;
}

/* ---- the delimiter search ---- */

/* Scans p[0..n) for the delimiter. Returns the bytes consumed; *found when it completed
 * the delimiter, else data[0..*dlen) is part data (possibly the held delimiter prefix). */
static size_t scan(struct multipart *m, const char *p, size_t n, const char **data,
                   size_t *dlen, int *found)
{
    *data = p;
    *dlen = 0;
    *found = 0;
    if (m->match) {   /* a delimiter prefix held from the last call */
        size_t i = 0;
        while (i < n && m->match < m->dlen && p[i] == m->delim[m->match])
            i++, m->match++;
        if (m->match == m->dlen) {
            m->match = 0;
            *found = 1;
            return i;
        }
        if (i == n)
            return n;
        /* not a delimiter: the held bytes were data, and no delimiter starts inside them
         * (CR only at delim[0]); p[i] is looked at afresh on the next call */
        *data = m->delim;
        *dlen = m->match;
        m->match = 0;
        return i;
    }
    for (size_t j = 0; j < n;) {
        const char *cr = memchr(p + j, '\r', n - j);
        if (!cr)
            break;
        size_t k = (size_t)(cr - p), q = 0;
        while (k + q < n && q < m->dlen && p[k + q] == m->delim[q])
            q++;
        if (q == m->dlen) {
            if (k > 0) {   /* the data before it first; the delimiter on the next call */
                *dlen = k;
                return k;
            }
            *found = 1;
            return q;
        }
        if (k + q == n) {   /* a prefix at the very end: hold it */
            m->match = q;
            *dlen = k;
            return n;
        }
        j = k + 1;
    }
    *dlen = n;
    return n;
}

/* ---- part headers ---- */

static int header_line(struct multipart *m, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s)
        return MULTIPART_INVALID;
    size_t nlen = (size_t)(colon - s);
    if (nlen != 19 || strncasecmp(s, "content-disposition", 19) != 0)
        return 0;   /* Content-Type and the rest do not matter to a file upload */
    size_t i = nlen + 1;
    while (i < n && ows(s[i]))
        i++;
    size_t t = i;
    while (i < n && s[i] != ';' && !ows(s[i]))
        i++;
    if (i - t != 9 || strncasecmp(s + t, "form-data", 9) != 0)
        return MULTIPART_INVALID;
    const char *key;
    size_t klen, vlen;
    char val[LIMIT_MULTIPART_NAME + 1];
    int r;
    while ((r = param_next(s, n, &i, &key, &klen, val, sizeof val, &vlen)) != 0) {
        if (r < 0)
            return r == -2 ? MULTIPART_TOO_LARGE : MULTIPART_INVALID;
        if (klen == 4 && strncasecmp(key, "name", 4) == 0) {
            memcpy(m->name, val, vlen + 1);
            m->name_len = vlen;
        } else if (klen == 8 && strncasecmp(key, "filename", 8) == 0) {
            memcpy(m->filename, val, vlen + 1);
            m->filename_len = vlen;
            m->has_filename = 1;
        }
    }
    return 0;
}

/* Header bytes: lines into m->line. Returns consumed or an error; *part when the blank
 * line ended the section. */
static long headers(struct multipart *m, const char *p, size_t n, int *part)
{
    *part = 0;
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    m->hdr_total += take;
    if (m->hdr_total > LIMIT_MULTIPART_HEADER || m->line_len + take > sizeof m->line)
        return MULTIPART_TOO_LARGE;
    memcpy(m->line + m->line_len, p, take);
    m->line_len += take;
    if (!nl)
        return (long)take;
    if (m->line_len < 2 || m->line[m->line_len - 2] != '\r')
        return MULTIPART_INVALID;   /* bare LF */
    size_t len = m->line_len - 2;
    m->line_len = 0;
    if (len == 0) {
        *part = 1;
        return (long)take;
    }
    int r = header_line(m, m->line, len);
    return r < 0 ? r : (long)take;
}

/* ---- feeding ---- */

static long fail(struct multipart *m, long code)
{
    m->state = S_ERROR;
    return code;
}

long multipart_feed(struct multipart *m, const char *p, size_t n, struct multipart_event *ev)
{
    ev->kind = MULTIPART_NONE;
    ev->data = NULL;
    ev->len = 0;
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        switch (m->state) {
        case S_ERROR:
            return MULTIPART_INVALID;
        case S_EPILOGUE:
            return (long)n;
        case S_PREAMBLE:
        case S_DATA: {
            const char *d;
            size_t dl;
            int found;
            size_t k = scan(m, p + i, n - i, &d, &dl, &found);
            i += k;
            if (m->state == S_DATA && dl) {
                ev->kind = MULTIPART_DATA;
                ev->data = d;
                ev->len = dl;
                return (long)i;
            }
            if (!found)
                continue;
            int was_data = m->state == S_DATA;
            m->state = S_AFTER;
            if (was_data) {
                ev->kind = MULTIPART_PART_END;
                return (long)i;
            }
            continue;
        }
        case S_AFTER:
            i++;
            if (c == '-')
                m->state = S_AFTER_DASH;
            else if (c == '\r')
                m->state = S_AFTER_CR;
            else if (ows(c))
                m->state = S_AFTER_PAD;
            else
                return fail(m, MULTIPART_INVALID);
            continue;
        case S_AFTER_DASH:
            if (c != '-')
                return fail(m, MULTIPART_INVALID);
            m->state = S_EPILOGUE;
            m->done = 1;
            ev->kind = MULTIPART_END;
            return (long)i + 1;
        case S_AFTER_PAD:
            i++;
            if (c == '\r')
                m->state = S_AFTER_CR;
            else if (!ows(c))
                return fail(m, MULTIPART_INVALID);
            continue;
        case S_AFTER_CR:
            if (c != '\n')
                return fail(m, MULTIPART_INVALID);
            i++;
            m->state = S_HEADERS;
            m->hdr_total = 0;
            m->line_len = 0;
            m->name[0] = m->filename[0] = 0;
            m->name_len = m->filename_len = 0;
            m->has_filename = 0;
            continue;
        case S_HEADERS: {
            int part;
            long r = headers(m, p + i, n - i, &part);
            if (r < 0)
                return fail(m, r);
            i += (size_t)r;
            if (part) {
                m->state = S_DATA;
                ev->kind = MULTIPART_PART;
                return (long)i;
            }
            continue;
        }
        }
    }
    return (long)i;
}
