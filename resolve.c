#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns.h"
#include "limits.h"
#include "loop.h"
#include "util.h"

#define NAME_CAP 256

struct resolve {
    char host[NAME_CAP];
    uint16_t port;
    resolve_fn *fn;
    void *ctx;
    int fd;
    uint16_t id, type;
    int try_;                  /* index over rounds x servers */
    int nservers;
    struct sockaddr_storage servers[LIMIT_DNS_SERVERS];
    socklen_t server_len[LIMIT_DNS_SERVERS];
    int64_t deadline_us;
    struct resolve *prev, *next;
};

static const char *hosts_file = "/etc/hosts", *resolv_file = "/etc/resolv.conf";
static struct resolve *active;

void resolve_init(const char *hosts_path, const char *resolv_path)
{
    if (hosts_path && *hosts_path)
        hosts_file = hosts_path;
    if (resolv_path && *resolv_path)
        resolv_file = resolv_path;
}

/* ---- literals and files ---- */

static int parse_ip(const char *s, uint16_t port, struct sockaddr_storage *sa, socklen_t *len)
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(s);
    if (n >= sizeof buf)
        return 0;
    if (s[0] == '[' && n > 2 && s[n - 1] == ']') {   /* the URL form of an IPv6 literal */
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = 0;
        s = buf;
    }
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, s, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        return 1;
    }
    if (inet_pton(AF_INET6, s, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        return 1;
    }
    return 0;
}

/* The whole of a small file, NUL-terminated, or NULL (missing, unreadable, too large). */
static char *slurp(const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *s = malloc(max + 1);
    size_t n = 0;
    ssize_t r = 1;
    while (s && n < max && (r = read(fd, s + n, max - n)) > 0)
        n += (size_t)r;
    close(fd);
    if (!s || r < 0) {
        free(s);
        return NULL;
    }
    s[n] = 0;
    return s;
}

static int name_eq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (blen && b[blen - 1] == '.')
        blen--;
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

/* "ADDRESS NAME ALIAS... # comment" lines: the first IPv4 line naming host wins, else the
 * first IPv6 one (as A is asked before AAAA: "localhost" is often on both). */
static int hosts_lookup(const char *host, uint16_t port, struct sockaddr_storage *sa,
                        socklen_t *len)
{
    char *text = slurp(hosts_file, LIMIT_HOSTS_BYTES);
    int found = 0;
    for (char *line = text; line && *line && found != AF_INET;) {
        char *end = line + strcspn(line, "\n");
        char *hash = memchr(line, '#', (size_t)(end - line));
        char *stop = hash ? hash : end;
        char addr[INET6_ADDRSTRLEN] = "";
        int field = 0;
        for (char *p = line; p < stop;) {
            p += strspn(p, " \t\r");
            size_t w = strcspn(p, " \t\r\n#");
            if (p + w > stop)
                w = (size_t)(stop - p);
            if (!w)
                break;
            if (field++ == 0) {
                if (w < sizeof addr)
                    memcpy(addr, p, w), addr[w] = 0;
            } else if (name_eq(p, w, host)) {
                struct sockaddr_storage cand;
                socklen_t clen;
                if (parse_ip(addr, port, &cand, &clen) &&
                    (!found || cand.ss_family == AF_INET)) {
                    *sa = cand;
                    *len = clen;
                    found = cand.ss_family;
                }
                break;
            }
            p += w;
        }
        line = *end ? end + 1 : end;
    }
    free(text);
    return found != 0;
}

int resolve_local(const char *host, uint16_t port, struct sockaddr_storage *sa,
                  socklen_t *salen)
{
    size_t n = strlen(host);
    if (n == 0 || n >= NAME_CAP)
        return -1;
    if (parse_ip(host, port, sa, salen))
        return 1;
    for (size_t i = 0; i < n; i++)   /* LDH names (RFC 1123), '_' tolerated */
        if (!(host[i] == '-' || host[i] == '.' || host[i] == '_' ||
              (host[i] >= '0' && host[i] <= '9') || ((host[i] | 32) >= 'a' && (host[i] | 32) <= 'z')))
            return -1;
    return hosts_lookup(host, port, sa, salen);
}

/* "nameserver IP" lines, IP:PORT / [IP6]:PORT allowed; none: the local resolver (RFC
 * default, as libc does). */
static int read_servers(struct resolve *q)
{
    char *text = slurp(resolv_file, LIMIT_HOSTS_BYTES);
    q->nservers = 0;
    for (char *line = text; line && *line && q->nservers < LIMIT_DNS_SERVERS;) {
        char *end = line + strcspn(line, "\n");
        char word[80];
        size_t skip = strspn(line, " \t");
        if (!strncmp(line + skip, "nameserver", 10) && strchr(" \t", line[skip + 10])) {
            char *p = line + skip + 10;
            p += strspn(p, " \t");
            size_t w = strcspn(p, " \t\r\n#;");
            if (w < sizeof word) {
                memcpy(word, p, w);
                word[w] = 0;
                uint16_t port = 53;
                char *colon = strrchr(word, ':');
                /* a port only on "a.b.c.d:P" or "[v6]:P": a bare v6 has colons too */
                if (colon && (word[0] == '[' ? colon[-1] == ']' : !strchr(word, ':') ||
                                                                  strchr(word, ':') == colon)) {
                    port = (uint16_t)atoi(colon + 1);
                    *colon = 0;
                }
                int k = q->nservers;
                if (parse_ip(word, port, &q->servers[k], &q->server_len[k]))
                    q->nservers++;
            }
        }
        line = *end ? end + 1 : end;
    }
    free(text);
    if (!q->nservers)
        parse_ip("127.0.0.1", 53, &q->servers[0], &q->server_len[0]), q->nservers = 1;
    return 0;
}

/* ---- queries ---- */

static void on_reply(void *ctx, int fd, short revents);

static void q_close(struct resolve *q)
{
    if (q->fd >= 0) {
        loop_del(q->fd);
        close(q->fd);
        q->fd = -1;
    }
}

static void q_free(struct resolve *q)
{
    q_close(q);
    if (q->prev)
        q->prev->next = q->next;
    else
        active = q->next;
    if (q->next)
        q->next->prev = q->prev;
    free(q);
}

static void q_end(struct resolve *q, int err, const struct sockaddr_storage *sa, socklen_t len)
{
    resolve_fn *fn = q->fn;
    void *ctx = q->ctx;
    q_free(q);
    fn(ctx, err, sa, len);
}

/* Sends the question of this try to its server, on a fresh connected socket (a new source
 * port and id per try: an answer to an earlier try cannot be mistaken for this one). */
static int q_send(struct resolve *q)
{
    q_close(q);
    const struct sockaddr_storage *srv = &q->servers[q->try_ % q->nservers];
    socklen_t slen = q->server_len[q->try_ % q->nservers];
    uint8_t msg[300];
    char rnd[5];
    util_random_hex(rnd, 4);
    q->id = (uint16_t)strtoul(rnd, NULL, 16);
    int n = dns_build_query(q->id, q->host, q->type, msg, sizeof msg);
    if (n < 0) {
        errno = EINVAL;
        return -1;
    }
    q->fd = socket(srv->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->fd < 0)
        return -1;
    if (connect(q->fd, (const struct sockaddr *)srv, slen) < 0 ||
        send(q->fd, msg, (size_t)n, MSG_NOSIGNAL) != n || loop_add(q->fd, POLLIN, on_reply, q) < 0) {
        int err = errno;
        close(q->fd);
        q->fd = -1;
        errno = err;
        return -1;   /* counts as a failed try: the caller moves on */
    }
    q->deadline_us = util_mono_us() + (int64_t)LIMIT_DNS_TRY_MS * 1000;
    return 0;
}

/* The next try, or the end when every server was tried LIMIT_DNS_ROUNDS times. */
static void q_next(struct resolve *q, int err)
{
    while (++q->try_ < LIMIT_DNS_ROUNDS * q->nservers)
        if (q_send(q) == 0)
            return;
    q_end(q, err, NULL, 0);
}

static void on_reply(void *ctx, int fd, short revents)
{
    struct resolve *q = ctx;
    uint8_t msg[LIMIT_DNS_MSG];
    (void)revents;
    ssize_t n = recv(fd, msg, sizeof msg, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {   /* ICMP unreachable: no server on that address */
        q_next(q, ETIMEDOUT);
        return;
    }
    struct dns_result r;
    int rc = dns_parse_response(msg, (size_t)n, q->id, q->host, q->type, &r);
    if (rc == DNS_MISMATCH)
        return;    /* not ours: keep waiting for the real answer until the deadline */
    if (rc < 0 || (r.rcode && r.rcode != DNS_RCODE_NXDOMAIN)) {
        q_next(q, EIO);   /* malformed, SERVFAIL, REFUSED: ask the next server */
        return;
    }
    if (r.naddr == 0) {
        if (q->type == DNS_TYPE_A && r.rcode == 0) {   /* the name exists: try AAAA */
            q->type = DNS_TYPE_AAAA;
            q->try_ = 0;
            if (q_send(q) == 0)
                return;
        }
        q_end(q, ENOENT, NULL, 0);
        return;
    }
    struct sockaddr_storage sa = { 0 };
    socklen_t len;
    if (q->type == DNS_TYPE_A) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&sa;
        v4->sin_family = AF_INET;
        v4->sin_port = htons(q->port);
        memcpy(&v4->sin_addr, r.addr[0], 4);
        len = sizeof *v4;
    } else {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sa;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(q->port);
        memcpy(&v6->sin6_addr, r.addr[0], 16);
        len = sizeof *v6;
    }
    q_end(q, 0, &sa, len);
}

struct resolve *resolve_start(const char *host, uint16_t port, resolve_fn *fn, void *ctx)
{
    if (strlen(host) >= NAME_CAP) {
        errno = EINVAL;
        return NULL;
    }
    struct resolve *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    strcpy(q->host, host);
    q->port = port;
    q->fn = fn;
    q->ctx = ctx;
    q->fd = -1;
    q->type = DNS_TYPE_A;
    read_servers(q);
    q->next = active;
    if (active)
        active->prev = q;
    active = q;
    q->try_ = -1;
    while (++q->try_ < LIMIT_DNS_ROUNDS * q->nservers)
        if (q_send(q) == 0)
            return q;
    int err = errno;
    q_free(q);
    errno = err;
    return NULL;
}

void resolve_cancel(struct resolve *q)
{
    if (q)
        q_free(q);
}

int64_t resolve_tick(int64_t now_us)
{
    /* a try that ends may call back, and the callback may cancel other lookups: look for
     * the next due one from the head again after each (at most a few dozen in flight) */
    for (struct resolve *q = active; q;) {
        if (q->deadline_us <= now_us) {
            q_next(q, ETIMEDOUT);
            q = active;
        } else {
            q = q->next;
        }
    }
    int64_t next = -1;
    for (struct resolve *q = active; q; q = q->next)
        if (next < 0 || q->deadline_us < next)
            next = q->deadline_us;
    return next;
}
