/* libFuzzer target: the --net flag parser (initnet_parse) on any bytes, NUL-terminated as a
 * flag or an environment word is. Whatever it accepts must be in range and round-trip:
 * printed back in the flag's own syntax it parses to the same result. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "initnet.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = malloc(size + 1);
    if (!spec)
        return 0;
    memcpy(spec, data, size);
    spec[size] = 0;
    struct initnet n, again;
    if (initnet_parse(spec, &n) == 0) {
        size_t len = strlen(n.ifname);
        REQUIRE(len >= 1 && len < IF_NAMESIZE && !strpbrk(n.ifname, "/: \t\n\v\f\r="));
        REQUIRE(n.prefix >= 0 && n.prefix <= 32);
        REQUIRE(n.mtu == 0 || (n.mtu >= 68 && n.mtu <= 65535));
        char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN], text[128];
        inet_ntop(AF_INET, &n.addr, ip, sizeof ip);
        inet_ntop(AF_INET, &n.gw, gw, sizeof gw);
        int k = snprintf(text, sizeof text, "%s=%s/%d", n.ifname, ip, n.prefix);
        if (n.has_gw)
            k += snprintf(text + k, sizeof text - (size_t)k, ",gw=%s", gw);
        if (n.mtu)
            snprintf(text + k, sizeof text - (size_t)k, ",mtu=%u", n.mtu);
        REQUIRE(initnet_parse(text, &again) == 0);
        REQUIRE(!memcmp(&n, &again, sizeof n));
    }
    free(spec);
    return 0;
}
