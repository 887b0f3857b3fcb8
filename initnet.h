/* --net for a VM's init: the IFACE=ADDR/PREFIX[,gw=GW][,mtu=N] flag parsed (pure), then the
 * interface configured over rtnetlink (no ip(8), no ioctl for routes). IPv4 only: it is what
 * user-mode and tap networking hand a guest; IPv6 comes from router advertisements anyway.
 * Makes syscalls, never logs: each step goes to the caller's init_report_fn (init.h). */
#ifndef SANDBOX_INITNET_H
#define SANDBOX_INITNET_H
#include <net/if.h>
#include <netinet/in.h>

#include "init.h"

struct initnet {
    char ifname[IF_NAMESIZE];   /* NUL-terminated, 1..15 characters */
    struct in_addr addr;        /* network byte order */
    int prefix;                 /* 0..32 */
    int has_gw;
    struct in_addr gw;          /* the default route's gateway when has_gw */
    unsigned mtu;               /* 0: left as the driver set it, else 68..65535 */
};

/* Parses spec ("eth0=10.0.2.15/24,gw=10.0.2.2,mtu=1400": options in any order, each at most
 * once) into out. Returns 0, or -1 when anything is malformed (out is then unspecified).
 * spec is NUL-terminated (a flag or an environment word). */
int initnet_parse(const char *spec, struct initnet *out);

/* Waits up to wait_ms for the interface to appear (a NIC module probes its device when it is
 * loaded, but a driver may register the interface later), then sets the MTU, brings the link
 * up, adds the address and the default route, each reported as a step ("net eth0: up"...).
 * A step already in place is INIT_PRESENT; a missing interface ends the sequence (FAILED,
 * ENODEV). Returns 0 when every step is done or present, -1 otherwise. */
int initnet_configure(const struct initnet *n, int wait_ms, init_report_fn *report, void *ctx);

#endif
