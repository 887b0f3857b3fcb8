/* initnet.c: the --net flag as a table of accepted and refused specs (rtnetlink itself is
 * exercised in the VM tests, test/integration/test_vm.py). */
#include "initnet.h"

#include <arpa/inet.h>

#include "unit.h"

static void check_good(void)
{
    static const struct {
        const char *spec, *ifname, *addr;
        int prefix;
        const char *gw;   /* NULL: none */
        unsigned mtu;
    } cases[] = {
        { "eth0=10.0.2.15/24", "eth0", "10.0.2.15", 24, NULL, 0 },
        { "eth0=10.0.2.15/24,gw=10.0.2.2", "eth0", "10.0.2.15", 24, "10.0.2.2", 0 },
        { "eth0=10.0.2.15/24,gw=10.0.2.2,mtu=1400", "eth0", "10.0.2.15", 24, "10.0.2.2", 1400 },
        { "ens3=192.168.1.2/32,mtu=9000,gw=192.168.1.1", "ens3", "192.168.1.2", 32,
          "192.168.1.1", 9000 },
        { "a=0.0.0.0/0", "a", "0.0.0.0", 0, NULL, 0 },
        { "abcdefghijklmno=1.2.3.4/8", "abcdefghijklmno", "1.2.3.4", 8, NULL, 0 },
        { "veth-x_1.2=1.2.3.4/8,mtu=68", "veth-x_1.2", "1.2.3.4", 8, NULL, 68 },
        { "eth0=1.2.3.4/8,mtu=65535", "eth0", "1.2.3.4", 8, NULL, 65535 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct initnet n;
        char ip[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN] = "";
        int rc = initnet_parse(cases[i].spec, &n);
        CHECK(rc == 0, "'%s' refused", cases[i].spec);
        if (rc)
            continue;
        inet_ntop(AF_INET, &n.addr, ip, sizeof ip);
        if (n.has_gw)
            inet_ntop(AF_INET, &n.gw, gw, sizeof gw);
        CHECK(!strcmp(n.ifname, cases[i].ifname), "'%s': ifname %s", cases[i].spec, n.ifname);
        CHECK(!strcmp(ip, cases[i].addr), "'%s': addr %s", cases[i].spec, ip);
        CHECK(n.prefix == cases[i].prefix, "'%s': prefix %d", cases[i].spec, n.prefix);
        CHECK(n.has_gw == (cases[i].gw != NULL), "'%s': has_gw %d", cases[i].spec, n.has_gw);
        CHECK(!cases[i].gw || !strcmp(gw, cases[i].gw), "'%s': gw %s", cases[i].spec, gw);
        CHECK(n.mtu == cases[i].mtu, "'%s': mtu %u", cases[i].spec, n.mtu);
    }
}

static void check_bad(void)
{
    static const char *const bad[] = {
        "", "eth0", "eth0=", "=10.0.2.15/24", "eth0=10.0.2.15", "eth0=10.0.2.15/",
        "eth0=10.0.2.15/33", "eth0=10.0.2.15/-1", "eth0=10.0.2.15/+8", "eth0=10.0.2.15/24x",
        "eth0=10.0.2/24", "eth0=10.0.2.256/24", "eth0=::1/128", "eth0=10.0.2.15 /24",
        "eth0=10.0.2.15/24,", "eth0=10.0.2.15/24,gw=", "eth0=10.0.2.15/24,gw=x",
        "eth0=10.0.2.15/24,gw=1.2.3.4,gw=1.2.3.5", "eth0=10.0.2.15/24,mtu=67",
        "eth0=10.0.2.15/24,mtu=65536", "eth0=10.0.2.15/24,mtu=1500,mtu=1400",
        "eth0=10.0.2.15/24,mtu=", "eth0=10.0.2.15/24,mtu=999999", "eth0=10.0.2.15/24,bogus=1",
        "eth0=10.0.2.15/24,,gw=1.2.3.4", "abcdefghijklmnop=1.2.3.4/8", ".=1.2.3.4/8",
        "..=1.2.3.4/8", "a/b=1.2.3.4/8", "a:b=1.2.3.4/8", "a b=1.2.3.4/8", "a\tb=1.2.3.4/8",
        "eth0=10.0.2.15/24/8", "eth0=010.0.2.15/24x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct initnet n;
        CHECK(initnet_parse(bad[i], &n) < 0, "'%s' accepted", bad[i]);
    }
}

int main(void)
{
    check_good();
    check_bad();
    return unit_report("initnet");
}
