/* Host name to address, never blocking the loop: IP literals, then the hosts file, then
 * UDP queries (A, then AAAA when there is no A) to the nameservers of resolv.conf, each
 * try bounded by LIMIT_DNS_TRY_MS, LIMIT_DNS_ROUNDS passes over the servers. Messages are
 * built and parsed by dns.h. No search domains: webhook URLs name full hosts. */
#ifndef SANDBOX_RESOLVE_H
#define SANDBOX_RESOLVE_H
#include <stdint.h>
#include <sys/socket.h>

/* The files read (NULL: /etc/hosts, /etc/resolv.conf). Paths are kept, not copied. A
 * resolv.conf nameserver may carry a port as "IP:PORT" or "[IPv6]:PORT" (an extension
 * for tests; the standard form has none). */
void resolve_init(const char *hosts_path, const char *resolv_path);

/* An IP literal ("[::1]" too) or a hosts-file name: 1 with *sa set (port in network
 * order of `port`), 0 when the name needs DNS, -1 when it cannot be a host name at all. */
int resolve_local(const char *host, uint16_t port, struct sockaddr_storage *sa,
                  socklen_t *salen);

/* Called once, from the loop, when a lookup ends: err 0 with the first address, or an
 * errno: ENOENT (no such name or no address), ETIMEDOUT (no server answered), EIO. */
typedef void resolve_fn(void *ctx, int err, const struct sockaddr_storage *sa,
                        socklen_t salen);

struct resolve;
/* Starts a DNS lookup. Returns the handle, or NULL with errno (ENOMEM, EMFILE, EINVAL for
 * a name DNS cannot carry). fn is never called from inside resolve_start. */
struct resolve *resolve_start(const char *host, uint16_t port, resolve_fn *fn, void *ctx);
/* Ends a lookup early; fn is not called. The handle is invalid afterwards (as it is once
 * fn was called). */
void resolve_cancel(struct resolve *q);
/* Tries due by now (the next server, or give up). Returns the next deadline or -1. */
int64_t resolve_tick(int64_t now_us);

#endif
