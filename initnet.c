#include "initnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util.h"

/* One rtnetlink request: header, family message, and room for the few attributes we send
 * (each at most 8 bytes of payload: an address, an index, an MTU). */
struct nlreq {
    struct nlmsghdr h;
    union {
        struct ifinfomsg ifi;
        struct ifaddrmsg ifa;
        struct rtmsg rt;
    } u;
    char attrs[4 * RTA_SPACE(8)];
};

/* ---- the flag (pure) ---- */

/* The kernel's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace. */
static int ifname_ok(const char *s, size_t n)
{
    if (n == 0 || n >= IF_NAMESIZE || (n == 1 && s[0] == '.') || (n == 2 && !memcmp(s, "..", 2)))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == ':' || s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))
            return 0;
    return 1;
}

/* A dotted quad of exactly n bytes (inet_pton wants a NUL-terminated copy). */
static int ipv4(const char *s, size_t n, struct in_addr *out)
{
    char tmp[INET_ADDRSTRLEN];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    return inet_pton(AF_INET, tmp, out) == 1 ? 0 : -1;
}

/* Decimal digits only (no sign, no spaces), at most max. */
static int number(const char *s, size_t n, unsigned max, unsigned *out)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* ---- rtnetlink ---- */

static void req_init(struct nlreq *r, int type, int flags, size_t family_len)
{
    memset(r, 0, sizeof *r);
    r->h.nlmsg_len = (unsigned)NLMSG_LENGTH(family_len);
    r->h.nlmsg_type = (unsigned short)type;
    r->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
}

static void req_attr(struct nlreq *r, int type, const void *data, size_t len)
{
    struct rtattr *a = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->h.nlmsg_len));
    a->rta_type = (unsigned short)type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Sends r and reads the kernel's acknowledgement. Returns 0, or -1 with errno (the kernel's
 * answer, e.g. EEXIST). The kernel answers while handling sendmsg, so the receive returns at
 * once; its timeout only guards against a kernel that never answers. */
static int nl_talk(int fd, struct nlreq *r, unsigned seq)
{
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    r->h.nlmsg_seq = seq;
    if (sendto(fd, r, r->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        return -1;
    for (;;) {
        union {
            struct nlmsghdr h;
            char raw[4096];
        } in;
        ssize_t n = recv(fd, &in, sizeof in, 0);
        if (n < 0)
            return -1;
        for (struct nlmsghdr *h = &in.h; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR)
                continue;
            const struct nlmsgerr *e = NLMSG_DATA(h);
            if (e->error == 0)
                return 0;
            errno = -e->error;
            return -1;
        }
    }
}

static int nl_open(unsigned groups)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    struct sockaddr_nl me = { .nl_family = AF_NETLINK, .nl_groups = groups };
    struct timeval tv = { .tv_sec = 2 };
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The interface's index once it exists, waiting on link notifications (no polling with
 * sleeps): subscribe first, then look, so an interface registered in between is not missed.
 * Returns the index, 0 when it did not appear in time (errno ENODEV), -1 with errno. */
static int wait_ifindex(const char *name, int wait_ms, int *waited)
{
    *waited = 0;
    unsigned idx = if_nametoindex(name);
    if (idx)
        return (int)idx;
    int fd = nl_open(RTMGRP_LINK);
    if (fd < 0)
        return -1;
    int64_t deadline = util_mono_us() + (int64_t)wait_ms * 1000;
    *waited = 1;
    while (!(idx = if_nametoindex(name))) {
        int64_t left = (deadline - util_mono_us() + 999) / 1000;
        if (left <= 0)
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
            break;
        char drain[4096];   /* any link event: look again */
        while (recv(fd, drain, sizeof drain, MSG_DONTWAIT) > 0)
            ;
    }
    close(fd);
    if (!idx)
        errno = ENODEV;
    return (int)idx;
}

static enum init_result classify(int err)
{
    return err == EPERM || err == EACCES ? INIT_SKIPPED : INIT_FAILED;
}

/* Reports one step named "net IFACE: what"; returns 0 for done/present, -1 for the rest. */
static int step(const struct initnet *n, const char *what, int rc, int present_errno,
                init_report_fn *report, void *ctx)
{
    char name[96];
    snprintf(name, sizeof name, "net %s: %s", n->ifname, what);
    if (rc == 0) {
        report(ctx, name, INIT_DONE, 0);
        return 0;
    }
    if (present_errno && errno == present_errno) {
        report(ctx, name, INIT_PRESENT, 0);
        return 0;
    }
    report(ctx, name, classify(errno), errno);
    return -1;
}

/* ---- API ---- */

int initnet_parse(const char *spec, struct initnet *out)
{
    memset(out, 0, sizeof *out);
    const char *eq = strchr(spec, '=');
    if (!eq || !ifname_ok(spec, (size_t)(eq - spec)))
        return -1;
    memcpy(out->ifname, spec, (size_t)(eq - spec));
    const char *p = eq + 1, *end = p + strcspn(p, ","), *slash = memchr(p, '/', (size_t)(end - p));
    unsigned prefix;
    if (!slash || ipv4(p, (size_t)(slash - p), &out->addr) < 0 ||
        number(slash + 1, (size_t)(end - slash - 1), 32, &prefix) < 0)
        return -1;
    out->prefix = (int)prefix;
    int seen_mtu = 0;
    while (*end == ',') {
        p = end + 1;
        end = p + strcspn(p, ",");
        size_t n = (size_t)(end - p);
        if (n > 3 && !memcmp(p, "gw=", 3) && !out->has_gw) {
            if (ipv4(p + 3, n - 3, &out->gw) < 0)
                return -1;
            out->has_gw = 1;
        } else if (n > 4 && !memcmp(p, "mtu=", 4) && !seen_mtu) {
            if (number(p + 4, n - 4, 65535, &out->mtu) < 0 || out->mtu < 68)
                return -1;
            seen_mtu = 1;
        } else {
            return -1;
        }
    }
    return *end ? -1 : 0;
}

int initnet_configure(const struct initnet *n, int wait_ms, init_report_fn *report, void *ctx)
{
    char what[64], ip[INET_ADDRSTRLEN];
    int waited, failed = 0;
    int idx = wait_ifindex(n->ifname, wait_ms, &waited);
    snprintf(what, sizeof what, "wait up to %d ms", wait_ms);
    if (idx <= 0) {
        step(n, what, -1, 0, report, ctx);
        return -1;
    }
    if (!waited) {   /* there at once: nothing was waited for */
        snprintf(what, sizeof what, "net %s: wait", n->ifname);
        report(ctx, what, INIT_PRESENT, 0);
    } else {
        step(n, what, 0, 0, report, ctx);
    }
    int fd = nl_open(0);
    if (fd < 0) {
        step(n, "netlink", -1, 0, report, ctx);
        return -1;
    }
    unsigned seq = 1;
    struct nlreq r;
    if (n->mtu) {
        req_init(&r, RTM_NEWLINK, 0, sizeof r.u.ifi);
        r.u.ifi.ifi_family = AF_UNSPEC;
        r.u.ifi.ifi_index = idx;
        req_attr(&r, IFLA_MTU, &n->mtu, sizeof n->mtu);
        snprintf(what, sizeof what, "mtu %u", n->mtu);
        failed |= step(n, what, nl_talk(fd, &r, seq++), 0, report, ctx);
    }
    req_init(&r, RTM_NEWLINK, 0, sizeof r.u.ifi);
    r.u.ifi.ifi_family = AF_UNSPEC;
    r.u.ifi.ifi_index = idx;
    r.u.ifi.ifi_flags = IFF_UP;
    r.u.ifi.ifi_change = IFF_UP;
    failed |= step(n, "up", nl_talk(fd, &r, seq++), 0, report, ctx);

    req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof r.u.ifa);
    r.u.ifa.ifa_family = AF_INET;
    r.u.ifa.ifa_prefixlen = (unsigned char)n->prefix;
    r.u.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
    r.u.ifa.ifa_index = (unsigned)idx;
    req_attr(&r, IFA_LOCAL, &n->addr, sizeof n->addr);
    req_attr(&r, IFA_ADDRESS, &n->addr, sizeof n->addr);
    inet_ntop(AF_INET, &n->addr, ip, sizeof ip);
    snprintf(what, sizeof what, "address %s/%d", ip, n->prefix);
    failed |= step(n, what, nl_talk(fd, &r, seq++), EEXIST, report, ctx);

    if (n->has_gw) {
        req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof r.u.rt);
        r.u.rt.rtm_family = AF_INET;
        r.u.rt.rtm_table = RT_TABLE_MAIN;
        r.u.rt.rtm_protocol = RTPROT_BOOT;
        r.u.rt.rtm_scope = RT_SCOPE_UNIVERSE;
        r.u.rt.rtm_type = RTN_UNICAST;
        req_attr(&r, RTA_GATEWAY, &n->gw, sizeof n->gw);
        req_attr(&r, RTA_OIF, &idx, sizeof idx);
        inet_ntop(AF_INET, &n->gw, ip, sizeof ip);
        snprintf(what, sizeof what, "default route via %s", ip);
        failed |= step(n, what, nl_talk(fd, &r, seq++), EEXIST, report, ctx);
    }
    close(fd);
    return failed ? -1 : 0;
}
