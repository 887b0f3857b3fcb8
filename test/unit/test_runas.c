/* runas.c: /etc/passwd and /etc/group parsing as tables, odd lines included. */
#include "runas.h"

#include "unit.h"

static const char passwd[] =
    "root:x:0:0:root:/root:/bin/bash\n"
    "# a comment\n"
    "\n"
    "broken-no-colons\n"
    "short:x:5\n"
    "nonnum:x:7a:7:\n"
    "nohome:x:8:9::\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    "last:x:4242:100::/home/last:/bin/sh";   /* no trailing newline */

static const char group[] =
    "root:x:0:\n"
    "adm:x:4:syslog,last\n"
    "users:x:100:\n"
    "dev:x:200:alice,last,bob\n"
    "bad:x:zz:last\n"
    "dup:x:100:last\n"
    "lastish:x:300:lastx,xlast\n"
    "tail:x:400:last";

static void check_passwd(void)
{
    static const struct {
        const char *who;
        int rc;
        unsigned uid, gid;
        const char *name, *home;
    } cases[] = {
        { "root", 0, 0, 0, "root", "/root" },
        { "0", 0, 0, 0, "root", "/root" },
        { "nobody", 0, 65534, 65534, "nobody", "/nonexistent" },
        { "65534", 0, 65534, 65534, "nobody", "/nonexistent" },
        { "last", 0, 4242, 100, "last", "/home/last" },
        { "nohome", 0, 8, 9, "nohome", "/" },
        { "1234", 0, 1234, 1234, "1234", "/" },   /* a bare uid */
        { "nonnum", -1, 0, 0, "", "" },
        { "short", -1, 0, 0, "", "" },
        { "missing", -1, 0, 0, "", "" },
        { "", -1, 0, 0, "", "" },
        { "4294967295", -1, 0, 0, "", "" },       /* (uid_t)-1 */
        { "12345678901", -1, 0, 0, "", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct runas_user u;
        int rc = runas_parse_passwd(passwd, sizeof passwd - 1, cases[i].who, &u);
        CHECK(rc == cases[i].rc, "'%s': rc %d", cases[i].who, rc);
        if (rc || cases[i].rc)
            continue;
        CHECK(u.uid == cases[i].uid && u.gid == cases[i].gid, "'%s': %u:%u", cases[i].who,
              (unsigned)u.uid, (unsigned)u.gid);
        CHECK(!strcmp(u.name, cases[i].name), "'%s': name %s", cases[i].who, u.name);
        CHECK(!strcmp(u.home, cases[i].home), "'%s': home %s", cases[i].who, u.home);
        CHECK(u.ngroups == 1 && u.groups[0] == u.gid, "'%s': groups", cases[i].who);
    }
}

static void check_groups(void)
{
    struct runas_user u;
    CHECK(runas_parse_passwd(passwd, sizeof passwd - 1, "last", &u) == 0, "last");
    runas_parse_groups(group, sizeof group - 1, &u);
    static const gid_t want[] = { 100, 4, 200, 400 };   /* primary first, no duplicate */
    CHECK(u.ngroups == 4, "ngroups %d", u.ngroups);
    for (int i = 0; i < 4 && i < u.ngroups; i++)
        CHECK(u.groups[i] == want[i], "group %d: %u", i, (unsigned)u.groups[i]);
    CHECK(runas_parse_passwd(passwd, sizeof passwd - 1, "nobody", &u) == 0, "nobody");
    runas_parse_groups(group, sizeof group - 1, &u);
    CHECK(u.ngroups == 1, "nobody ngroups %d", u.ngroups);
}

int main(void)
{
    check_passwd();
    check_groups();
    return unit_report("runas");
}
